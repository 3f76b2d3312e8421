"""SIMULATION: `dmesg` and `journalctl -k` of a lab host (installed in /usr/local/bin, ahead of the real ones).

The kernel is shared by every lab host, so a host's kernel log is: the real kernel's records newer than the
host's (simulated) boot, plus the host's simulated records (/var/lib/dccli-gpusim/kmsg). Options this module
does not handle (dmesg -w, journalctl -u ...) run the real tool unchanged.
"""

from __future__ import annotations

import datetime as _dt
import os
import sys
import time

from . import klog, model, replay

DMESG_LEVELS = {name: i for i, name in enumerate(klog.LEVELS)}
DMESG_LEVELS["warning"] = 4


class Unsupported(Exception):
    """An option we do not simulate: hand the whole command line to the real tool."""


def _root() -> str:
    return os.environ.get("DCCLI_GPUSIM_ROOT", "")


def real_tool(name: str) -> str:
    here = os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    for directory in ("/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK) and os.path.realpath(path) != here:
            return path
    return ""


def _output(argv: list[str]) -> str:
    """stdout of argv (stderr dropped). fork/exec by hand: `import subprocess` would double our start time."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(write_fd, 1)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    os.close(write_fd)
    chunks = []
    while True:
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_fd)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode(errors="replace")


def _records() -> tuple[list[klog.Record], float]:
    boot = klog.read_boot(_root() + model.BOOT_PATH)
    if not boot["boot_time"]:
        boot["boot_time"] = time.time() - time.monotonic()
    real: list[klog.Record] = []
    dmesg = real_tool("dmesg")
    if dmesg:
        real = klog.parse_raw(_output([dmesg, "--raw"]), boot["boot_monotonic"])
    try:
        with open(_root() + model.KMSG_PATH, encoding="utf-8", errors="replace") as fh:
            simulated = klog.parse_kmsg(fh.read())
    except OSError:
        simulated = []
    return klog.merged(real, simulated), boot["boot_time"]


def _exec_real(name: str, argv: list[str]) -> int:
    path = real_tool(name)
    if not path:
        sys.stderr.write(f"{name}: not found\n")
        return 127
    os.execv(path, [name, *argv])
    return 127  # not reached


def parse_dmesg(argv: list[str]) -> dict:
    opts = {"fmt": "default", "decode": False, "levels": None, "kernel_only": False}
    args = list(argv)
    while args:
        arg = args.pop(0)
        name, eq, value = arg.partition("=")
        if arg in ("-T", "--ctime"):
            opts["fmt"] = "ctime"
        elif arg in ("-r", "--raw"):
            opts["fmt"] = "raw"
        elif arg in ("-t", "--notime"):
            opts["fmt"] = "notime"
        elif arg in ("-x", "--decode"):
            opts["decode"] = True
        elif arg in ("-k", "--kernel"):
            opts["kernel_only"] = True
        elif arg in ("-H", "--human", "-P", "--nopager", "-L", "--color", "--color=never", "-e", "--reltime"):
            pass
        elif name == "--time-format":
            fmt = value if eq else (args.pop(0) if args else "")
            if fmt not in ("iso", "ctime", "raw", "notime"):
                raise Unsupported(fmt)
            opts["fmt"] = {"raw": "default"}.get(fmt, fmt)
        elif name in ("-l", "--level"):
            spec = value if eq else (args.pop(0) if args else "")
            try:
                opts["levels"] = {DMESG_LEVELS[x.strip()] for x in spec.split(",") if x.strip()}
            except KeyError:
                raise Unsupported(spec) from None
        elif arg.startswith("-l") and len(arg) > 2:
            args.insert(0, arg[2:])
            args.insert(0, "-l")
        else:
            raise Unsupported(arg)
    return opts


def main_dmesg(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    before = replay.snapshot("dmesg")
    try:
        opts = parse_dmesg(argv)
    except Unsupported:
        return _exec_real("dmesg", argv)
    records, boot_time = _records()
    if opts["levels"] is not None:
        records = [r for r in records if (r.priority & 7) in opts["levels"]]
    if opts["kernel_only"]:
        records = [r for r in records if r.priority >> 3 == 0]
    text = klog.render_dmesg(records, boot_time, opts["fmt"], opts["decode"])
    code = _write(text)
    # Replayed until the host's simulated records or its boot change: real kernel records logged after
    # this render show up at the next change (docs/lab.md).
    replay.store("dmesg", argv, text, code, None, before)
    return code


def _since(value: str) -> float:
    if value.startswith("@"):
        return float(value[1:])
    if value == "today":
        return _dt.datetime.combine(_dt.date.today(), _dt.time()).timestamp()
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"):
        try:
            return _dt.datetime.strptime(value, fmt).timestamp()
        except ValueError:
            pass
    raise Unsupported(value)


def _take(args: list[str], arg: str, eq: str, value: str) -> str:
    if eq:
        return value
    if not args:
        raise Unsupported(arg)
    return args.pop(0)


def parse_journalctl(argv: list[str]) -> dict:
    opts = {"kernel": False, "fmt": "short", "since": None, "lines": None}
    args = list(argv)
    while args:
        arg = args.pop(0)
        name, eq, value = arg.partition("=")

        if arg in ("-k", "--dmesg"):
            opts["kernel"] = True
        elif arg in (
            "-b",
            "--boot",
            "-b0",
            "--boot=0",
            "-q",
            "--quiet",
            "--no-pager",
            "--no-hostname",
            "-a",
            "--all",
        ):
            if arg == "--no-hostname":
                opts["no_hostname"] = True
            if args[:1] in (["0"], ["-0"]) and arg in ("-b", "--boot"):
                args.pop(0)
        elif name in ("-o", "--output"):
            fmt = _take(args, arg, eq, value)
            if fmt not in ("short", "short-iso", "short-precise", "short-iso-precise", "cat"):
                raise Unsupported(fmt)
            opts["fmt"] = fmt
        elif name in ("-S", "--since"):
            opts["since"] = _since(_take(args, arg, eq, value))
        elif name in ("-n", "--lines"):
            opts["lines"] = int(_take(args, arg, eq, value))
        elif arg.startswith("-o") and len(arg) > 2:
            args.insert(0, arg[2:])
            args.insert(0, "-o")
        else:
            raise Unsupported(arg)
    if not opts["kernel"]:
        raise Unsupported("not -k")
    return opts


def main_journalctl(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        opts = parse_journalctl(argv)
    except (Unsupported, ValueError):
        return _exec_real("journalctl", argv)
    records, boot_time = _records()
    if opts["since"] is not None:
        records = [r for r in records if boot_time + r.usec / 1e6 >= opts["since"]]
    if opts["lines"] is not None:
        records = records[-opts["lines"] :] if opts["lines"] > 0 else []
    return _write(klog.render_journal(records, boot_time, os.uname().nodename, opts["fmt"]))


def _write(text: str) -> int:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
