# dccli remote helper: runs ON the managed host, streamed over the SSH session's stdin.
# The program sent is this file, then every dccli/remote/steps/*.py (more @handler step kinds, sharing
# this namespace), then a call to main().
# Stdlib only, Python 3.6+ (old distributions' python3), no files written unless a step asks.
# Protocol: stdin carries this program, then one JSON job {"steps": [{"id", "kind", "args"}]}.
# stdout carries JSON lines: {"ev": "hello"|"start"|"result"|"end", ...}. One line per event,
# flushed at once, so the control node can show progress while later steps run.
import json
import os
import subprocess
import sys
import time

HANDLERS = {}


def handler(kind):
    def deco(fn):
        HANDLERS[kind] = fn
        return fn

    return deco


def emit(**event):
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def read_text(path, limit=1 << 20):
    try:
        with open(path, "rb") as handle:
            return handle.read(limit).decode("utf-8", "replace")
    except OSError:
        return None


def which(name):
    for d in os.environ.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(":"):
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def run(argv, timeout=30, stdin=None):
    try:
        proc = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        return {"rc": proc.returncode, "stdout": proc.stdout.decode("utf-8", "replace"),
                "stderr": proc.stderr.decode("utf-8", "replace")}
    except FileNotFoundError:
        return {"rc": 127, "stdout": "", "stderr": "%s: not found" % argv[0]}
    except subprocess.TimeoutExpired:
        return {"rc": None, "stdout": "", "stderr": "timed out after %ss" % timeout}


@handler("exec")
def h_exec(args):
    return run(args["argv"], timeout=args.get("timeout", 60), stdin=(args.get("stdin") or "").encode() or None)


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
        data["disks"][parts[1]] = {"fstype": parts[2], "device": parts[0], "size": st.f_blocks * st.f_frsize,
                                   "free": st.f_bavail * st.f_frsize, "inodes": st.f_files, "inodes_free": st.f_favail}
    smi = which("nvidia-smi")
    if smi:
        data["nvidia_smi"] = {
            "query": run([smi, "--query-gpu=" + ",".join(GPU_FIELDS), "--format=csv"]),
            "version": run([smi, "--version"]),
        }
    ib = "/sys/class/infiniband"
    if os.path.isdir(ib):
        for dev in sorted(os.listdir(ib)):
            ports = os.path.join(ib, dev, "ports")
            for port in sorted(os.listdir(ports)) if os.path.isdir(ports) else []:
                base = os.path.join(ports, port)
                data["infiniband"]["%s/%s" % (dev, port)] = {
                    k: (read_text(os.path.join(base, k)) or "").strip() for k in ("state", "phys_state", "rate", "link_layer")
                }
    return data


PSEUDO_FS = {"proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "securityfs", "debugfs", "tracefs",
             "pstore", "bpf", "mqueue", "hugetlbfs", "configfs", "fusectl", "autofs", "binfmt_misc", "nsfs",
             "rpc_pipefs", "efivarfs", "overlay_lower", "ramfs"}
GPU_FIELDS = ["index", "name", "uuid", "pci.bus_id", "driver_version", "memory.total", "persistence_mode",
              "temperature.gpu", "pcie.link.gen.current", "pcie.link.gen.max", "pcie.link.width.current",
              "pcie.link.width.max"]


def main():
    emit(ev="hello", python=sys.version.split()[0], pid=os.getpid())
    job = json.loads(sys.stdin.readline() or "{}")
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
            emit(ev="result", id=sid, ok=False, error="%s: %s" % (type(exc).__name__, exc),
                 duration_s=time.time() - t0)
    emit(ev="end")
