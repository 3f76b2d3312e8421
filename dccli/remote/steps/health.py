# Health probe step kinds (dccli health, dccli status). Runs in the helper's namespace (steps/__init__.py):
# stdlib only, Python 3.6+. Raw sources only; dccli/health/probe.py parses them on the control node.
# Cost matters (one session per host, many hosts): files are read directly; a process is spawned only for
# tools that exist (nvidia-smi, dmesg when GPUs exist, chronyc, systemctl for required services).
import glob as _glob
import re as _re


@handler("health_clock")
def h_health_clock(args):
    # First step of the session, answered at once: the control node brackets it for the skew measurement.
    return {"time": time.time()}


def _health_mounts():
    out = {}
    for line in (read_text("/proc/mounts") or "").splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[2] in PSEUDO_FS or parts[1] in out:
            continue
        path = parts[1].replace("\\040", " ")
        try:
            st = os.statvfs(path)
        except OSError:
            continue
        if st.f_blocks == 0:
            continue
        out[path] = {
            "fstype": parts[2],
            "size": st.f_blocks * st.f_frsize,
            "free": st.f_bavail * st.f_frsize,
            "used": (st.f_blocks - st.f_bfree) * st.f_frsize,
            "inodes": st.f_files,
            "inodes_free": st.f_favail,
        }
    return out


def _health_procs():
    """Zombie count and the set of process names (for services on hosts without systemd)."""
    zombies, names = 0, set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        stat = read_text("/proc/%s/stat" % d, 4096)
        if not stat:
            continue
        close = stat.rfind(")")
        names.add(stat[stat.find("(") + 1 : close])
        if stat[close + 2 : close + 3] == "Z":
            zombies += 1
    return zombies, sorted(names)


def _health_run_ids(pids):
    """pid -> DCCLI_RUN_ID from its environment (None: not a dccli run; '?' unreadable)."""
    out = {}
    for pid in pids:
        try:
            with open("/proc/%d/environ" % pid, "rb") as fh:
                env = fh.read().split(b"\0")
        except OSError:
            out[str(pid)] = "?"
            continue
        run_id = None
        for item in env:
            if item.startswith(b"DCCLI_RUN_ID="):
                run_id = item[13:].decode("utf-8", "replace")
        out[str(pid)] = run_id
    return out


_SUPPORTED_CLOCKS = _re.compile(r"[ \t]*<supported_clocks>.*?</supported_clocks>\n?", _re.S)


def _health_start(argv):
    try:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError:
        return None


def _health_finish(proc, timeout):
    if proc is None:
        return {"rc": 127, "stdout": "", "stderr": "not found"}
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"rc": None, "stdout": "", "stderr": "timed out after %ss" % timeout}
    return {
        "rc": proc.returncode,
        "stdout": out.decode("utf-8", "replace"),
        "stderr": err.decode("utf-8", "replace"),
    }


@handler("health")
def h_health(args):
    data = {
        "time": time.time(),
        "boot_id": (read_text("/proc/sys/kernel/random/boot_id") or "").strip(),
        "meminfo": read_text("/proc/meminfo"),
        "loadavg": read_text("/proc/loadavg"),
        "stat_btime": None,
        "cpus": os.cpu_count(),
        "mounts": _health_mounts(),
        "reboot_required": os.path.exists("/var/run/reboot-required")
        or os.path.exists("/run/reboot-required"),
        "smi": None,
        "nvlink": None,
        "kernel_log": None,
        "run_ids": {},
        "chrony": None,
        "timedatectl": None,
        "services": {},
        "infiniband": {},
        "ibstat": None,
    }
    for line in (read_text("/proc/stat") or "").splitlines():
        if line.startswith("btime "):
            data["stat_btime"] = float(line.split()[1])
    # nvidia-smi and dmesg are the slow parts (NVML start-up; the whole kernel ring): start both at once and
    # scan /proc while they run.
    smi = which("nvidia-smi") if args.get("gpu", True) else None
    want_log = args.get("kernel_log", True) and (smi or os.path.isdir("/proc/driver/nvidia"))
    smi_proc = _health_start([smi, "-q", "-x"]) if smi else None
    log_proc = _health_start(["dmesg", "--time-format", "iso"]) if want_log else None
    zombies, names = _health_procs()
    data["defunct"] = zombies
    if smi_proc is not None:
        data["smi"] = _health_finish(smi_proc, 60)
        # <supported_clocks> is half of -q -x (every memory/graphics clock pair) and no check reads it.
        data["smi"]["stdout"] = _SUPPORTED_CLOCKS.sub("", data["smi"]["stdout"])
        pids = [int(p) for p in _re.findall(r"<pid>\s*(\d+)\s*</pid>", data["smi"]["stdout"])]
        data["run_ids"] = _health_run_ids(pids)
        if args.get("nvlink") and data["smi"]["rc"] == 0:
            data["nvlink"] = run([smi, "nvlink", "-s"], timeout=30)
    if want_log:
        dmesg = _health_finish(log_proc, 30) if log_proc is not None else {"rc": 127}
        if dmesg["rc"] != 0:  # busybox / old util-linux: raw timestamps, placed with /proc/stat btime
            dmesg = run(["dmesg"], timeout=30)
        if dmesg["rc"] != 0 and which("journalctl"):
            dmesg = run(["journalctl", "-k", "-b", "-o", "short-iso", "--no-pager"], timeout=30)
        data["kernel_log"] = dmesg
    if which("chronyc"):
        data["chrony"] = run(["chronyc", "-n", "tracking"], timeout=10)
    systemd = os.path.isdir("/run/systemd/system")
    if systemd and which("timedatectl"):
        data["timedatectl"] = run(["timedatectl", "show"], timeout=10)
    wanted = list(args.get("services") or [])
    if wanted:
        if systemd and which("systemctl"):
            res = run(["systemctl", "is-active", *wanted], timeout=10)
            states = res["stdout"].split()
            for i, name in enumerate(wanted):
                data["services"][name] = i < len(states) and states[i] == "active"
        else:
            have = set(names)
            for name in wanted:
                data["services"][name] = name in have or name.rsplit(".service", 1)[0] in have
    ib = "/sys/class/infiniband"
    if os.path.isdir(ib):
        for base in sorted(_glob.glob(ib + "/*/ports/*")):
            parts = base.split("/")
            data["infiniband"]["%s/%s" % (parts[-3], parts[-1])] = {
                k: (read_text(os.path.join(base, k)) or "").strip()
                for k in ("state", "phys_state", "rate", "link_layer")
            }
    elif which("ibstat"):
        data["ibstat"] = run(["ibstat"], timeout=30)
    return data
