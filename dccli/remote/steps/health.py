# Health probe step kinds (dccli health, dccli status). Runs in the helper's namespace (steps/__init__.py):
# stdlib only, Python 3.6+. Raw sources only; dccli/health/probe.py parses them on the control node.
# Cost matters (one session per host, many hosts): files are read directly; a process is spawned only for
# tools that exist (nvidia-smi, dmesg when GPUs exist, chronyc, systemctl for required services), through the
# core's spawn/collect; no module beyond the core's is imported (re and glob cost more than the probe).


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


def _strip_elements(text, tags):
    """text less every <tag>...</tag> element of tags (with its line's indentation and newline); one copy."""
    spans = []
    for tag in tags:
        start_tag, end_tag = "<%s>" % tag, "</%s>" % tag
        pos = 0
        while True:
            i = text.find(start_tag, pos)
            j = text.find(end_tag, i) if i >= 0 else -1
            if j < 0:
                break
            line_start = text.rfind("\n", 0, i) + 1
            begin = line_start if not text[line_start:i].strip(" \t") else i
            pos = j + len(end_tag)
            if text.startswith("\n", pos):
                pos += 1
            spans.append((begin, pos))
    if not spans:
        return text
    spans.sort()
    out, pos = [], 0
    for begin, end in spans:
        if begin >= pos:  # a span inside one already cut is gone with it
            out.append(text[pos:begin])
            pos = end
        elif end > pos:
            pos = end
    out.append(text[pos:])
    return "".join(out)


def _xml_pids(text):
    pids, pos = [], 0
    while True:
        i = text.find("<pid>", pos)
        if i < 0:
            return pids
        j = text.find("</pid>", i)
        if j < 0:
            return pids
        value = text[i + 5 : j].strip()
        if value.isdigit():
            pids.append(int(value))
        pos = j


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
    dmesg = which("dmesg") if want_log else None
    procs = {}
    if smi:
        procs["smi"] = spawn([smi, "-q", "-x"])
    if want_log:
        procs["log"] = spawn([dmesg, "--time-format", "iso"]) if dmesg else None
    zombies, names = _health_procs()
    data["defunct"] = zombies
    done = collect(procs, 60) if procs else {}
    if smi:
        data["smi"] = done["smi"]
        # Sections no check reads (parse_smi.XML_UNREAD: <supported_clocks> alone is half of -q -x).
        unread = args.get("smi_unread") or ("supported_clocks",)
        data["smi"]["stdout"] = _strip_elements(data["smi"]["stdout"], unread)
        data["run_ids"] = _health_run_ids(_xml_pids(data["smi"]["stdout"]))
        if args.get("nvlink") and data["smi"]["rc"] == 0:
            data["nvlink"] = run([smi, "nvlink", "-s"], timeout=30)
    if want_log:
        log = done["log"]
        if log["rc"] != 0:  # busybox / old util-linux: raw timestamps, placed with /proc/stat btime
            log = run(["dmesg"], timeout=30)
        if log["rc"] != 0 and which("journalctl"):
            log = run(["journalctl", "-k", "-b", "-o", "short-iso", "--no-pager"], timeout=30)
        data["kernel_log"] = log
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
    if os.path.isdir("/sys/class/infiniband"):
        data["infiniband"] = ib_ports()
    elif which("ibstat"):
        data["ibstat"] = run(["ibstat"], timeout=30)
    return data
