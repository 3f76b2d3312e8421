"""One lab host: its disk (overlay upper dir), its init process, its sshd, and running commands inside it.

A host's files are seeded by writing into its upper dir *before* the overlay is mounted (the kernel
forbids nothing here, but changing layers under a mounted overlay is undefined); later changes go
through host_exec, i.e. through the overlay, like any change on a real host.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

from dccli.errors import LabError
from dccli.lab import procs, sshkeys
from dccli.lab.model import LabHost, LabInfo
from dccli.paths import dccli_home

HOSTINIT = Path(__file__).with_name("hostinit.py")
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
HOST_ENV = {"PATH": HOST_PATH, "HOME": "/root", "LANG": "C.UTF-8", "USER": "root", "LOGNAME": "root"}
SSHD_LOG = "/var/log/sshd.log"
# Paths a host must keep seeing from the lower layer even if DCCLI_HOME points at one of them.
_NEVER_HIDE = {"/", "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/var", "/opt", "/home", "/srv"}


def sshd_path() -> str | None:
    for path in ("/usr/sbin/sshd", "/usr/bin/sshd", "/usr/local/sbin/sshd"):
        if os.access(path, os.X_OK):
            return path
    return shutil.which("sshd")


def init_python() -> str:
    # The system python3 is visible inside hosts too (a venv under /root is not): use it when present.
    return "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def dirs_of(host: LabHost) -> tuple[Path, Path, Path]:
    """(upper, work, merged) of a host; work and merged sit next to upper."""
    base = host.upper_dir.parent
    return host.upper_dir, base / "work", base / "root"


def hidden_paths() -> list[str]:
    """Lower-layer paths masked inside every host: the control node's dccli state (keys, labs' disks)."""
    home = os.path.realpath(dccli_home())
    return [] if home in _NEVER_HIDE else [home]


# ---------------------------------------------------------------- disk seeding


def mkdirs_like_lower(upper: Path, relative: str) -> Path:
    """Create upper/relative, each level with the mode and owner of the same dir in "/".

    An upper dir's attributes win over the lower one's in the merged view, so they must match.
    """
    current = upper
    lower = Path("/")
    for part in Path(relative).parts:
        current, lower = current / part, lower / part
        if current.exists():
            continue
        current.mkdir()
        try:
            st = lower.stat()
            os.chmod(current, stat.S_IMODE(st.st_mode))
            os.chown(current, st.st_uid, st.st_gid)
        except FileNotFoundError:
            os.chmod(current, 0o755)
    return current


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.write_text(text)
    os.chmod(path, mode)


def sshd_config(host: LabHost) -> str:
    host_keys = "".join(f"HostKey /etc/ssh/ssh_host_{t}_key\n" for t in sshkeys.HOST_KEY_TYPES)
    return f"""# dccli lab host {host.name}: OpenSSH on its own loopback address only (written by dccli lab up).
ListenAddress {host.address}:{host.port}
AddressFamily inet
{host_keys}PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes yes
UseDNS no
# dccli fans out to every host at once (64 connections by default): never drop early connections.
MaxStartups 1000:30:2000
MaxSessions 1000
X11Forwarding no
AllowTcpForwarding yes
PrintMotd no
PrintLastLog no
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
"""


def etc_hosts(lab_name: str, hosts: tuple[LabHost, ...]) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", f"# dccli lab {lab_name}"]
    lines += [f"{h.address}\t{h.name}" for h in hosts]
    return "\n".join(lines) + "\n"


def _seed_root_home(upper: Path, authorized_key: str) -> None:
    # /root is opaque: the control node's /root (its keys, history, tokens) never shows through,
    # and each host gets a private, writable home for authorized_keys.
    home = upper / "root"
    home.mkdir(mode=0o700, exist_ok=True)
    os.chmod(home, 0o700)
    os.setxattr(home, "trusted.overlay.opaque", b"y")
    for name in (".bashrc", ".profile"):
        skel = Path("/etc/skel") / name
        if skel.is_file():
            shutil.copyfile(skel, home / name)
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    _write(ssh_dir / "authorized_keys", authorized_key.strip() + "\n", 0o600)


def _unlock_root(upper: Path) -> None:
    """With UsePAM no, sshd refuses any login to a locked account ("!" password): give the host "*"."""
    try:
        lines = Path("/etc/shadow").read_text().splitlines(keepends=True)
    except OSError:
        return
    changed = False
    for i, line in enumerate(lines):
        fields = line.split(":")
        if fields[0] == "root" and len(fields) > 1 and fields[1].startswith("!"):
            fields[1] = "*"
            lines[i] = ":".join(fields)
            changed = True
    if changed:
        target = upper / "etc" / "shadow"
        target.write_text("".join(lines))
        st = os.stat("/etc/shadow")
        os.chmod(target, stat.S_IMODE(st.st_mode))
        os.chown(target, st.st_uid, st.st_gid)


def prepare_disk(lab_name: str, host: LabHost, hosts: tuple[LabHost, ...], authorized_key: str) -> list[str]:
    """Seed a new host's upper dir; returns its public host keys (one 'type base64 comment' each)."""
    upper, work, merged = dirs_of(host)
    for path in (upper, work, merged):
        path.mkdir(parents=True, exist_ok=True)
    etc = mkdirs_like_lower(upper, "etc")
    etc_ssh = mkdirs_like_lower(upper, "etc/ssh")
    _write(etc / "hostname", host.name + "\n")
    _write(etc / "hosts", etc_hosts(lab_name, hosts))
    _write(etc / "machine-id", secrets.token_hex(16) + "\n", 0o444)
    _write(etc_ssh / "sshd_config", sshd_config(host))
    ours = {p.name for p in sshkeys.host_key_paths(etc_ssh)} | {
        p.name + ".pub" for p in sshkeys.host_key_paths(etc_ssh)
    }
    with contextlib.suppress(OSError):
        for lower in Path("/etc/ssh").glob("ssh_host_*"):
            if lower.name not in ours:
                # A whiteout (char device 0:0) hides the control node's own host keys from the host.
                os.mknod(etc_ssh / lower.name, stat.S_IFCHR | 0o000, os.makedev(0, 0))
    public = []
    for path in sshkeys.host_key_paths(etc_ssh):
        key_type = path.name.removeprefix("ssh_host_").removesuffix("_key")
        sshkeys.keygen(path, key_type, f"root@{host.name}")
        public.append(path.with_name(path.name + ".pub").read_text().strip())
    _seed_root_home(upper, authorized_key)
    _unlock_root(upper)
    return public


def probe_overlay(directory: Path) -> str | None:
    """None if overlayfs takes upper dirs under directory (over a lower "/"), else the kernel's complaint."""
    probe_dir = directory / ".overlay-probe"
    try:
        proc = subprocess.run(
            [init_python(), "-I", "-S", str(HOSTINIT), "--probe", str(probe_dir)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return None if proc.returncode == 0 else (proc.stderr.strip() or f"exit {proc.returncode}")
    finally:
        shutil.rmtree(probe_dir, ignore_errors=True)


# ---------------------------------------------------------------- processes


def start_host(lab: LabInfo, host: LabHost, timeout: float = 60.0) -> LabHost:
    """Start the host's init (namespaces, mounts, sshd); returns host with init_pid/init_start set."""
    upper, work, merged = dirs_of(host)
    from dccli.lab.gpusim import install

    install.on_boot(upper)  # new boot id and boot time (a reboot is a start too), fresh kernel log
    spec = {
        "hostname": host.name,
        "upper": str(upper),
        "work": str(work),
        "merged": str(merged),
        "sshd": sshd_path(),
        "hide": hidden_paths(),
        "share": list(lab.shares),
    }
    log_dir = lab.dir / "logs"
    log_dir.mkdir(exist_ok=True)
    env = {"PATH": HOST_PATH, "LANG": "C.UTF-8", procs.TAG_VAR: lab.tag}
    argv = [init_python(), "-I", "-S", str(HOSTINIT), f"dccli-lab={lab.name}", f"host={host.name}"]
    with open(log_dir / f"{host.name}.log", "ab") as log:
        # A new session: the host must outlive the CLI and its terminal (no SIGHUP, no Ctrl-C).
        proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env, start_new_session=True
        )
    try:
        out, _ = proc.communicate(json.dumps(spec).encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise LabError(f"host {host.name}: init did not start within {timeout:.0f}s") from None
    try:
        result = json.loads(out.decode() or "{}")
    except ValueError:
        result = {}
    if proc.returncode != 0 or "error" in result or "pid" not in result:
        detail = result.get("error") or _tail(log_dir / f"{host.name}.log") or f"exit {proc.returncode}"
        raise LabError(f"host {host.name} failed to start: {detail}")
    pid = int(result["pid"])
    return LabHost(host.name, host.address, host.port, pid, host.upper_dir, procs.start_time(pid))


def _tail(path: Path, lines: int = 3) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def sshd_log_tail(host: LabHost) -> str:
    return _tail(host.upper_dir / SSHD_LOG.lstrip("/"))


def ssh_banner(address: str, port: int, timeout: float = 1.0) -> bool:
    """True if something on address:port accepts a TCP connection and sends an SSH banner."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            data = b""
            while b"\n" not in data and len(data) < 256:
                chunk = sock.recv(256)
                if not chunk:
                    break
                data += chunk
            return data.startswith(b"SSH-")
    except OSError:
        return False


def wait_ssh(host: LabHost, deadline: float) -> bool:
    """Poll until the host's sshd answers, its init dies, or the monotonic deadline passes."""
    while time.monotonic() < deadline:
        if ssh_banner(host.address, host.port):
            return True
        if not procs.alive(host.init_pid, host.init_start):
            return False
        time.sleep(0.05)
    return False


def port_closed(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def address_bindable(address: str, port: int) -> bool:
    """False if a listener (e.g. a system sshd on 0.0.0.0:22) would stop a host's sshd binding there."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as sshd does: TIME_WAIT is no conflict
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


# ---------------------------------------------------------------- inside a host


def _running_init(lab: LabInfo, host_name: str) -> int:
    host = lab.host(host_name)
    if host.init_pid is None or not procs.alive(host.init_pid, host.init_start):
        raise LabError(f"lab {lab.name!r}: host {host_name} is not running")
    return host.init_pid


def host_exec(
    lab: LabInfo,
    host_name: str,
    argv: list[str],
    input: str | bytes | None = None,
    timeout: float = 60.0,
    text: bool = True,
) -> subprocess.CompletedProcess:
    """Run argv as root inside the host (its mounts, hostname, PID namespace and root), without SSH."""
    pid = _running_init(lab, host_name)
    nsenter = ["nsenter", f"--target={pid}", "--mount", "--uts", "--pid", "--root", "--wd", "--"]
    if text and isinstance(input, bytes):
        input = input.decode()
    return subprocess.run(
        nsenter + list(argv),
        input=input,
        capture_output=True,
        text=text,
        timeout=timeout,
        env=HOST_ENV,
        stdin=None if input is not None else subprocess.DEVNULL,
    )


def _exec_ok(lab: LabInfo, host_name: str, argv: list[str], what: str) -> str:
    proc = host_exec(lab, host_name, argv)
    if proc.returncode != 0:
        raise LabError(f"host {host_name}: {what} failed: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


def sshd_stop(lab: LabInfo, host_name: str, timeout: float = 10.0) -> None:
    """Stop the host's listening sshd (open sessions survive, as on a real host); the host keeps running."""
    host = lab.host(host_name)
    # SIGCONT too: a stopped (fault-injected) sshd would otherwise never act on SIGTERM.
    script = 'if [ -s /run/sshd.pid ]; then p=$(cat /run/sshd.pid); kill -TERM "$p"; kill -CONT "$p"; fi; rm -f /run/sshd.pid'
    _exec_ok(lab, host_name, ["sh", "-c", script], "stopping sshd")
    deadline = time.monotonic() + timeout
    while not port_closed(host.address, host.port):
        if time.monotonic() > deadline:
            raise LabError(f"host {host_name}: sshd still answers on {host.address}:{host.port}")
        time.sleep(0.05)


def sshd_start(lab: LabInfo, host_name: str, timeout: float = 15.0) -> None:
    """Start the host's sshd (daemon mode; the host's init adopts and reaps it) and wait for its banner."""
    host = lab.host(host_name)
    sshd = sshd_path() or "/usr/sbin/sshd"
    _exec_ok(lab, host_name, [sshd, "-E", SSHD_LOG], "starting sshd")
    if not wait_ssh(host, time.monotonic() + timeout):
        raise LabError(f"host {host_name}: sshd does not answer: {sshd_log_tail(host)}")


def regenerate_host_keys(lab: LabInfo, host_name: str) -> list[str]:
    """New host keys and a restarted sshd. The lab's known_hosts is deliberately NOT updated, so strict
    clients now see a changed host key. Returns the new public keys."""
    script = sshkeys.keygen_script("/etc/ssh", f"root@{host_name}")
    script += " && cat " + " ".join(f"/etc/ssh/ssh_host_{t}_key.pub" for t in sshkeys.HOST_KEY_TYPES)
    out = _exec_ok(lab, host_name, ["sh", "-c", script], "regenerating host keys")
    sshd_stop(lab, host_name)
    sshd_start(lab, host_name)
    return [line.strip() for line in out.splitlines() if line.strip()]
