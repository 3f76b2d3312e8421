# dccli remote helper: runs ON the managed host, streamed over the SSH session's stdin.
# The program sent is this file, then every dccli/remote/steps/*.py (more @handler step kinds, sharing
# this namespace), then a call to main().
# Stdlib only, Python 3.6+ (old distributions' python3), no files written unless a step asks.
# Protocol: stdin carries this program, then one JSON job {"steps": [{"id", "kind", "args"}]}.
# stdout carries JSON lines: {"ev": "hello"|"start"|"result"|"end", ...}. One line per event,
# flushed at once, so the control node can show progress while later steps run.
import os
import sys
import time

# Start-up cost is paid on every host of every command: `import json` (re, enum) and `import subprocess`
# (signal, threading, selectors) were 10 of a session's 20 ms of CPU. The wire format stays JSON, through
# json's own C accelerator (_json, no re); programs run through spawn/collect (fork, exec, poll); json and
# subprocess load on first use only, for the steps that use them directly (restic output, Popen).
try:
    import _json

    class _ScanContext(object):
        strict = True
        object_hook = object_pairs_hook = None
        parse_float, parse_int, parse_constant = float, int, float
        memo = {}  # noqa: RUF012  (the C scanner's own cache, as json.decoder sets it)

    _scan = _json.make_scanner(_ScanContext())
    _encode = _json.make_encoder(
        None, None, _json.encode_basestring_ascii, None, ":", ",", False, False, True
    )

    def loads(text):
        text = text.strip()
        if not text:
            return None
        value, end = _scan(text, 0)
        if end != len(text):
            raise ValueError("extra data after the JSON value")
        return value

    def dumps(value):
        return "".join(_encode(value, 0))
except (ImportError, AttributeError):  # an interpreter without the accelerator

    def loads(text):
        import json as _j

        return _j.loads(text) if text.strip() else None

    def dumps(value):
        import json as _j

        return _j.dumps(value, separators=(",", ":"))


class _Lazy(object):
    """A module imported on first attribute access (then bound in place of this proxy)."""

    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        module = __import__(self._name)
        globals()[self._name] = module
        return getattr(module, attr)


json = _Lazy("json")
subprocess = _Lazy("subprocess")

HANDLERS = {}


def handler(kind):
    def deco(fn):
        HANDLERS[kind] = fn
        return fn

    return deco


# A step result bigger than this travels zlib-compressed (base64 in "data_z"): sshd's encryption and the
# control node's SSH packet handling cost about 20 ms of CPU per 100 kB, compressing a few hundred us.
SQUEEZE_AT = 16384


def emit(**event):
    line = dumps(event)
    if len(line) > SQUEEZE_AT and "data" in event:
        import binascii
        import zlib

        packed = zlib.compress(dumps(event.pop("data")).encode("ascii"), 1)
        event["data_z"] = binascii.b2a_base64(packed).decode("ascii").strip()
        line = dumps(event)
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def read_text(path, limit=1 << 20):
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


def which(name):
    for d in os.environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(
        ":"
    ):
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def spawn(argv, stdin=None):
    """Start argv with stdout and stderr piped (stdin: these bytes, else /dev/null). Returns the handle for
    collect(), or None when argv[0] cannot be found. fork/exec by hand: `import subprocess` (signal, enum,
    threading, selectors) costs every host more CPU than most steps (see the note at the top)."""
    import _signal  # builtin; imported here, not in the child: a fork may copy a held import lock

    path = argv[0] if "/" in argv[0] else which(argv[0])
    if not path or not os.access(path, os.X_OK):
        return None
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    in_r, in_w = os.pipe() if stdin else (None, None)
    pid = os.fork()
    if pid == 0:  # the child: only async-signal-safe work between fork and exec, then exec or _exit
        try:
            _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)  # Python ignores it; the program must not
            os.dup2(in_r if stdin else os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            os.execv(path, list(argv))
        finally:
            os._exit(127)
    for fd in (out_w, err_w, in_r):
        if fd is not None:
            os.close(fd)
    return {"pid": pid, "out": out_r, "err": err_r, "in": in_w, "stdin": stdin or b""}


def collect(procs, timeout):
    """Feed and read every spawned process at once until EOF (they run side by side), then reap each.
    procs: {name: spawn(...) or None} -> {name: {"rc", "stdout", "stderr"}}; rc None after `timeout` s
    (the process is killed), 127 when it could not be started."""
    import select

    deadline = None if timeout is None else time.time() + timeout
    chunks, writes = {}, {}
    poller = select.poll()
    for p in procs.values():
        if p is None:
            continue
        for fd in (p["out"], p["err"]):
            chunks[fd] = []
            poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
        if p["in"] is not None:
            writes[p["in"]] = p["stdin"]
            poller.register(p["in"], select.POLLOUT | select.POLLERR)
    open_fds = set(chunks) | set(writes)
    while open_fds:
        left = None if deadline is None else deadline - time.time()
        if left is not None and left <= 0:
            break
        for fd, event in poller.poll(-1 if left is None else int(left * 1000) + 1):
            if fd in writes:
                try:
                    sent = os.write(fd, writes[fd][:65536]) if not event & select.POLLERR else 0
                except OSError:  # the program exited without reading all of it (EPIPE)
                    sent = 0
                writes[fd] = writes[fd][sent:] if sent else b""
                if not writes[fd]:
                    poller.unregister(fd)
                    os.close(fd)
                    open_fds.discard(fd)
                    del writes[fd]
                continue
            chunk = os.read(fd, 65536)
            if chunk:
                chunks[fd].append(chunk)
            else:
                poller.unregister(fd)
                open_fds.discard(fd)
    for fd in writes:
        os.close(fd)
    out = {}
    for name, p in procs.items():
        if p is None:
            out[name] = {"rc": 127, "stdout": "", "stderr": "not found"}
            continue
        timed_out = p["out"] in open_fds or p["err"] in open_fds
        if timed_out:
            os.kill(p["pid"], 9)  # not reaped yet, so it cannot be gone
        _, status = os.waitpid(p["pid"], 0)
        os.close(p["out"])
        os.close(p["err"])
        if timed_out:
            out[name] = {"rc": None, "stdout": "", "stderr": "timed out after %ss" % timeout}
            continue
        out[name] = {
            "rc": os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status),
            "stdout": b"".join(chunks[p["out"]]).decode("utf-8", "replace"),
            "stderr": b"".join(chunks[p["err"]]).decode("utf-8", "replace"),
        }
    return out


def run(argv, timeout=30, stdin=None):
    started = spawn(argv, stdin)
    if started is None:
        return {"rc": 127, "stdout": "", "stderr": "%s: not found" % argv[0]}
    return collect({"run": started}, timeout)["run"]


@handler("exec")
def h_exec(args):
    return run(
        args["argv"], timeout=args.get("timeout", 60), stdin=(args.get("stdin") or "").encode() or None
    )


@handler("read_files")
def h_read_files(args):
    return {p: read_text(p, args.get("limit", 1 << 20)) for p in args["paths"]}


@handler("facts")
def h_facts(args):
    # Raw sources only: parsing happens on the control node in pure, tested functions.
    uname = os.uname()
    data = {
        "hostname": uname.nodename,
        "kernel": uname.release,
        "machine": uname.machine,
        "os_release": read_text("/etc/os-release") or read_text("/usr/lib/os-release"),
        "cpuinfo": read_text("/proc/cpuinfo"),
        "cpu_count": os.cpu_count(),
        "meminfo": read_text("/proc/meminfo"),
        "mounts": read_text("/proc/mounts"),
        "boot_id": (read_text("/proc/sys/kernel/random/boot_id") or "").strip(),
        "uptime": read_text("/proc/uptime"),
        "python": sys.version.split()[0],
        "time": time.time(),
        "disks": {},
        "nvidia_smi": None,
        "infiniband": {},
    }
    for line in (data["mounts"] or "").splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[2] in PSEUDO_FS or parts[1] in data["disks"]:
            continue
        try:
            st = os.statvfs(parts[1].replace("\\040", " "))
        except OSError:
            continue
        data["disks"][parts[1]] = {
            "fstype": parts[2],
            "device": parts[0],
            "size": st.f_blocks * st.f_frsize,
            "free": st.f_bavail * st.f_frsize,
            "inodes": st.f_files,
            "inodes_free": st.f_favail,
        }
    smi = which("nvidia-smi")
    if smi:
        data["nvidia_smi"] = {
            "query": run([smi, "--query-gpu=" + ",".join(GPU_FIELDS), "--format=csv"]),
            "version": run([smi, "--version"]),
        }
    data["infiniband"] = ib_ports()
    return data


def ib_ports():
    """{"mlx5_0/1": {state, phys_state, rate, link_layer}} from sysfs; {} without /sys/class/infiniband."""
    out, ib = {}, "/sys/class/infiniband"
    for dev in sorted(os.listdir(ib)) if os.path.isdir(ib) else []:
        ports = os.path.join(ib, dev, "ports")
        for port in sorted(os.listdir(ports)) if os.path.isdir(ports) else []:
            base = os.path.join(ports, port)
            out["%s/%s" % (dev, port)] = {
                k: (read_text(os.path.join(base, k)) or "").strip()
                for k in ("state", "phys_state", "rate", "link_layer")
            }
    return out


PSEUDO_FS = {
    "proc",
    "sysfs",
    "devtmpfs",
    "devpts",
    "cgroup",
    "cgroup2",
    "securityfs",
    "debugfs",
    "tracefs",
    "pstore",
    "bpf",
    "mqueue",
    "hugetlbfs",
    "configfs",
    "fusectl",
    "autofs",
    "binfmt_misc",
    "nsfs",
    "rpc_pipefs",
    "efivarfs",
    "overlay_lower",
    "ramfs",
}
GPU_FIELDS = [
    "index",
    "name",
    "uuid",
    "pci.bus_id",
    "driver_version",
    "memory.total",
    "persistence_mode",
    "temperature.gpu",
    "pcie.link.gen.current",
    "pcie.link.gen.max",
    "pcie.link.width.current",
    "pcie.link.width.max",
]


def main():
    emit(ev="hello", python=sys.version.split()[0], pid=os.getpid())
    job = loads(sys.stdin.readline()) or {}
    for step in job.get("steps", []):
        sid, kind = step.get("id"), step.get("kind")
        fn = HANDLERS.get(kind)
        emit(ev="start", id=sid, kind=kind)
        t0 = time.time()
        if fn is None:
            emit(ev="result", id=sid, ok=False, error="unknown step kind %r" % kind, duration_s=0.0)
            continue
        try:
            emit(ev="result", id=sid, ok=True, data=fn(step.get("args") or {}), duration_s=time.time() - t0)
        except Exception as exc:  # one step's failure is reported, the next steps still run
            emit(
                ev="result",
                id=sid,
                ok=False,
                error="%s: %s" % (type(exc).__name__, exc),
                duration_s=time.time() - t0,
            )
    emit(ev="end")
