"""The init process of one lab host (PID 1 of its PID namespace). Stdlib only: run as a script.

Started by dccli.lab.host with the system python3 as
``python3 -I -S hostinit.py dccli-lab=NAME host=HOST`` and a JSON spec on stdin. It:

1. unshares mount + UTS + PID namespaces and forks; the child is PID 1 of the new PID namespace;
2. (child) makes every mount private, sets the hostname, mounts the overlay root (lower ``/``, the
   host's own upper/work dirs) and fresh /proc, /sys (ro), /dev, /dev/pts, /dev/shm, /tmp and /run
   inside it, masks the control node's dccli state, then pivot_root()s into it and detaches the old
   root, so the host cannot see or reach the control node's mounts;
3. starts sshd (daemon mode, so dccli can stop and start it later without killing the host), tells
   the parent "ok" through a pipe, and then only reaps zombies until it is killed;
4. (parent) prints ``{"pid": <init pid as seen from the control node>}`` or ``{"error": ...}`` and exits.

Killing PID 1 makes the kernel kill every process of the namespace, and the mount namespace (with
all of the host's mounts) disappears with its last process: nothing can leak to the control node.

``hostinit.py --probe DIR`` only checks that overlayfs accepts upper dirs under DIR (exit 0).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWPID = 0x20000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
# pivot_root has no glibc wrapper; without a known number we fall back to switch_root's MS_MOVE + chroot.
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}

# Character devices a host needs (name, major, minor); everything else of the real /dev stays hidden.
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))
DEV_LINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
)
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def mount(source: str, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    ret = _libc.mount(
        source.encode(),
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    _check(ret, f"mount {fstype or 'bind'} on {target}")


def umount(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(target.encode(), flags), f"umount {target}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def overlay_options(upper: str, work: str) -> str:
    # Commas and colons cannot be escaped in overlay options; dccli refuses such lab paths earlier.
    return f"lowerdir=/,upperdir={upper},workdir={work}"


def enter_root(new_root: str) -> None:
    """Make new_root the root of this mount namespace and drop every old mount from view."""
    os.chdir(new_root)
    number = SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is not None:
        # pivot_root(".", ".") stacks the old root under the new one; detaching "." then removes it.
        _check(_libc.syscall(number, b".", b"."), "pivot_root")
        umount(".", MNT_DETACH)
    else:
        mount(new_root, "/", None, MS_MOVE)
        _check(_libc.chroot(b"."), "chroot")
    os.chdir("/")


def make_dev(root: str) -> None:
    dev = root + "/dev"
    mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=1m")
    for name, major, minor in DEVICES:
        path = f"{dev}/{name}"
        try:
            os.mknod(path, 0o666 | 0o020000, os.makedev(major, minor))
            os.chmod(path, 0o666)  # mknod honours the umask
        except PermissionError:
            # A device cgroup may forbid mknod: bind the real node instead (still the old root here).
            open(path, "w").close()
            mount(f"/dev/{name}", path, None, MS_BIND)
    for name, target in DEV_LINKS:
        os.symlink(target, f"{dev}/{name}")
    os.mkdir(f"{dev}/pts", 0o755)
    os.mkdir(f"{dev}/shm", 0o1777)
    # A new devpts instance: the host's ptys are its own, not the control node's.
    mount(
        "devpts", f"{dev}/pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5"
    )
    mount("tmpfs", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")


def build_root(spec: dict) -> str:
    root = spec["merged"]
    mount("overlay", root, "overlay", 0, overlay_options(spec["upper"], spec["work"]))
    mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    # The kernel is the control node's: as Docker does, a host may read but not change sysctls, and
    # cannot reboot or crash the machine through /proc/sysrq-trigger.
    mount(root + "/proc/sys", root + "/proc/sys", None, MS_BIND)
    mount(
        "none", root + "/proc/sys", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
    )
    boot_id = root + "/var/lib/dccli-lab/boot_id"
    if os.path.isfile(boot_id):
        # The kernel's boot id is shared by every host: show this host's own, new on each (re)start.
        # Best effort: a kernel that refuses the bind leaves the shared id visible, the host still starts.
        try:
            mount(boot_id, root + "/proc/sys/kernel/random/boot_id", None, MS_BIND)
        except OSError as exc:
            print(f"hostinit: boot_id not bound: {exc}", file=sys.stderr)
    if os.path.exists(root + "/proc/sysrq-trigger"):  # absent from kernels built without magic SysRq
        mount("/dev/null", root + "/proc/sysrq-trigger", None, MS_BIND)
    mount("sysfs", root + "/sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    make_dev(root)
    mount("tmpfs", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=1g")
    mount("tmpfs", root + "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=64m")
    for sub, mode in (("sshd", 0o755), ("lock", 0o1777)):
        os.mkdir(f"{root}/run/{sub}")
        os.chmod(f"{root}/run/{sub}", mode)
    for path in spec.get("share", ()):
        # Read-only, at the same path: the host runs the control node's checkout or venv where / cannot show it.
        target = root + path
        os.makedirs(target, exist_ok=True)
        mount(path, target, None, MS_BIND | MS_REC)
        mount("none", target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)
    for path in spec.get("hide", ()):
        # The control node's dccli state (keys, other labs' disks) is in the lower layer: mask it.
        target = root + path
        if os.path.isdir(target) and not os.path.ismount(target):
            mount("tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755,size=4k")
    return root


def start_sshd(spec: dict) -> None:
    env = {"PATH": HOST_PATH, "LANG": "C.UTF-8"}
    # Daemon mode: sshd forks, the parent exits once the config is accepted; the daemon becomes our child.
    proc = subprocess.run(
        [spec["sshd"], "-E", "/var/log/sshd.log"], env=env, stdin=subprocess.DEVNULL, capture_output=True
    )
    if proc.returncode != 0:
        detail = " | ".join(proc.stderr.decode(errors="replace").strip().splitlines())
        raise RuntimeError(f"sshd exited {proc.returncode}: {detail}")


def reap_forever() -> None:
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            time.sleep(1.0)  # no child right now (sshd stopped): orphans may be re-parented to us later


def child_main(spec: dict, ready_fd: int) -> None:
    try:
        mount("none", "/", None, MS_REC | MS_PRIVATE)
        sethostname(spec["hostname"])
        root = build_root(spec)
        enter_root(root)
        os.environ.clear()
        os.environ.update({"PATH": HOST_PATH, "HOME": "/root", "LANG": "C.UTF-8"})
        start_sshd(spec)
    except BaseException as exc:  # report every failure to the parent as one line
        os.write(ready_fd, f"error: {exc}".encode())
        os._exit(1)
    os.write(ready_fd, b"ok")
    os.close(ready_fd)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    reap_forever()


def sethostname(name: str) -> None:
    data = name.encode()
    _check(_libc.sethostname(data, len(data)), "sethostname")


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--probe":
        return probe(sys.argv[2])
    spec = json.load(sys.stdin)
    devnull = os.open("/dev/null", os.O_RDWR)
    os.dup2(devnull, 0)
    os.close(devnull)
    unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWPID)
    read_fd, ready_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        os.dup2(2, 1)  # stdout is the pipe the control node reads until EOF: the host must not hold it
        os.setsid()
        child_main(spec, ready_fd)
        os._exit(0)
    os.close(ready_fd)
    chunks = []
    while True:
        chunk = os.read(read_fd, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    message = b"".join(chunks).decode(errors="replace")
    if message == "ok":
        print(json.dumps({"pid": pid}), flush=True)
        return 0
    os.waitpid(pid, 0)  # a failed init exits by itself; do not leave a zombie behind
    print(json.dumps({"pid": pid, "error": message.removeprefix("error: ") or "init died"}), flush=True)
    return 1


def probe(directory: str) -> int:
    """Exit 0 if overlayfs accepts upper/work dirs under directory over a lower "/"."""
    dirs = {name: os.path.join(directory, name) for name in ("u", "w", "m")}
    for path in dirs.values():
        os.makedirs(path, exist_ok=True)
    try:
        unshare(CLONE_NEWNS)
        mount("none", "/", None, MS_REC | MS_PRIVATE)
        mount("overlay", dirs["m"], "overlay", 0, overlay_options(dirs["u"], dirs["w"]))
        umount(dirs["m"])
    except OSError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
