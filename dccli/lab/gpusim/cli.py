"""SIMULATION: the `nvidia-smi` command line of a lab host (installed as /usr/bin/nvidia-smi by `lab up --gpus`).

Exit codes are the real tool's: 0 ok, 2 invalid argument or field, 6 no device matched -i, 9 driver not loaded,
15 a selected GPU has fallen off the bus, 255 other error (here: an unreadable state file).
"""

from __future__ import annotations

import os
import sys
import time

from . import model, query, render_text, render_xml, replay

TYPE_CHECKING = False  # not `import typing`: it costs the simulator ~20 ms a call
if TYPE_CHECKING:
    from typing import Any

DRIVER_MESSAGE = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running."
)
BAD_ARGS = "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help."
HELP = """NVIDIA System Management Interface -- v{driver}  (SIMULATED by dccli lab: no GPU hardware)

nvidia-smi [OPTION1 [ARG1]] [OPTION2 [ARG2]] ...

    -h,   --help                Print usage information and exit.
          --version             Print version information and exit.
    -L,   --list-gpus           Display a list of GPUs connected to the system.
    <no arguments>              Show a summary of GPUs connected to the system.
    -i,   --id=                 Target a specific GPU.
    -q,   --query               Display GPU or Unit info.
    -x,   --xml-format          Produce XML output.
    -d,   --display=            Display only selected information: {displays}
    --query-gpu                 Information about GPU. Call --help-query-gpu for more info.
    --query-compute-apps        List of currently active compute processes.
    --query-retired-pages       List of device memory pages that have been retired.
    --query-remapped-rows       Information about remapped rows.
    --format=                   csv, noheader, nounits
    topo -m                     Display the GPU topology matrix.
"""


class Usage(Exception):
    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _root() -> str:
    # Tests point the simulator at a directory standing in for the host's "/".
    return os.environ.get("DCCLI_GPUSIM_ROOT", "")


def load_state() -> dict[str, Any]:
    path = _root() + model.STATE_PATH
    with open(path, encoding="utf-8") as fh:
        state = model.loads(fh.read(), path)
    try:
        with open(_root() + model.DRIVER_OVERRIDE_PATH, encoding="utf-8") as fh:
            override = fh.read().strip()
        if override:
            state["driver_version"] = override  # written by the simulated driver packages
    except FileNotFoundError:
        pass
    return state


def _take(args: list[str], eq: str, value: str) -> str:
    """The value of `--opt=value` or of `--opt value`."""
    if eq:
        return value
    if not args:
        raise Usage(BAD_ARGS)
    return args.pop(0)


def parse(argv: list[str]) -> dict[str, Any]:
    opts: dict[str, Any] = {"mode": "table", "ids": None, "displays": None, "xml": False, "format": None}
    args = list(argv)
    if args[:1] == ["topo"]:
        if len(args) >= 2 and args[1] in ("-m", "--matrix"):
            opts["mode"] = "topo"
            args = args[2:]
        else:
            raise Usage(BAD_ARGS)
    while args:
        arg = args.pop(0)
        name, eq, value = arg.partition("=")

        if arg in ("-h", "--help"):
            opts["mode"] = "help"
        elif arg == "--version":
            opts["mode"] = "version"
        elif arg in ("-L", "--list-gpus"):
            opts["mode"] = "list"
        elif arg in ("-q", "--query"):
            opts["mode"] = "query" if opts["mode"] == "table" else opts["mode"]
        elif arg in ("-x", "--xml-format"):
            opts["xml"] = True
        elif arg in ("-qx", "-xq"):
            opts["mode"], opts["xml"] = "query", True
        elif name in ("-i", "--id"):
            opts["ids"] = [part.strip() for part in _take(args, eq, value).split(",") if part.strip()]
        elif name in ("-d", "--display"):
            displays = [part.strip().upper() for part in _take(args, eq, value).split(",") if part.strip()]
            for d in displays:
                if d not in render_text.DISPLAY_SECTIONS:
                    raise Usage(BAD_ARGS)
            opts["displays"] = displays
        elif name in (
            "--query-gpu",
            "--query-compute-apps",
            "--query-retired-pages",
            "--query-remapped-rows",
        ):
            opts["mode"] = name[len("--query-") :]
            opts["fields"] = _take(args, eq, value)
        elif name == "--format":
            opts["format"] = [part.strip() for part in _take(args, eq, value).split(",")]
        elif arg == "--help-query-gpu":
            opts["mode"] = "help-query-gpu"
        else:
            raise Usage(BAD_ARGS)
    if opts["xml"] and opts["mode"] != "query":
        raise Usage(BAD_ARGS)
    if opts["displays"] and (opts["mode"] != "query" or opts["xml"]):
        raise Usage(BAD_ARGS)  # -d only with -q, and not with -x (as the real help says)
    if opts["mode"] in query.TABLES:
        fmt = opts["format"]
        if not fmt or fmt[0] != "csv" or any(f not in ("csv", "noheader", "nounits") for f in fmt):
            raise Usage('"--format" option is required and must be csv[,noheader][,nounits]')
    return opts


def select(state: dict[str, Any], ids: list[str] | None) -> list[dict[str, Any]]:
    gpus = state["gpus"]
    if ids is None:
        return list(gpus)
    chosen = []
    for wanted in ids:
        for gpu in gpus:
            bus = gpu["pci_bus_id"].lower()
            w = wanted.lower()
            if w in (str(gpu["index"]), gpu["uuid"].lower(), bus, bus[4:]) and gpu not in chosen:
                chosen.append(gpu)
    if not chosen:
        raise Usage("No devices were found", 6)
    return sorted(chosen, key=lambda g: g["index"])  # device order, whatever the order of -i


def _stamp(now: float) -> str:
    return time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(now))


def _csv_stamp(now: float) -> str:
    return time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"


def render(opts: dict[str, Any], state: dict[str, Any], now: float) -> tuple[str, int]:
    """(stdout text, exit code) for parsed options. Pure apart from the clock passed in."""
    mode = opts["mode"]
    if mode == "help":
        return HELP.format(
            driver=state["driver_version"], displays=", ".join(render_text.DISPLAY_SECTIONS)
        ), 0
    if mode == "help-query-gpu":
        return "".join(f'"{name}"\n' for name, _, _ in query.GPU_FIELDS), 0
    if not state.get("driver_loaded", True):
        return DRIVER_MESSAGE + "\n", 9
    if mode == "version":
        return render_text.version_text(state), 0
    gpus = select(state, opts["ids"])
    lost = [g for g in gpus if g["fell_off_bus"]]
    stamp, csv_stamp = _stamp(now), _csv_stamp(now)
    if mode == "list":
        return render_text.list_gpus(state, gpus), 15 if lost else 0
    if mode in ("table", "query", "topo") and lost:
        return "".join(render_text.gpu_lost_line(g) + "\n" for g in lost), 15
    if mode == "table":
        return render_text.table(state, gpus, stamp), 0
    if mode == "topo":
        return render_text.topo_matrix(state, gpus), 0
    if mode == "query":
        if opts["xml"]:
            return render_xml.query_xml(state, gpus, stamp), 0
        return render_text.query_text(state, gpus, stamp, opts["displays"]), 0
    try:
        fields = query.resolve(mode, opts["fields"])
    except query.FieldError as exc:
        raise Usage(str(exc)) from None
    fmt = opts["format"]
    healthy = [g for g in gpus if not g["fell_off_bus"]]
    rows: list[Any]
    if mode == "gpu":
        rows = [
            render_text.gpu_lost_line(g) if g["fell_off_bus"] else query.gpu_values(state, g, csv_stamp)
            for g in gpus
        ]
    elif mode == "compute-apps":
        rows = query.compute_app_rows(state, healthy, csv_stamp)
    elif mode == "retired-pages":
        rows = query.retired_page_rows(state, healthy, csv_stamp)
    else:
        rows = query.remapped_row_rows(healthy)
    return query.csv_rows(fields, rows, "noheader" in fmt, "nounits" in fmt), 15 if lost else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    before = replay.snapshot("nvidia-smi")
    try:
        opts = parse(argv)
        state = load_state()
        now = time.time()
        text, code = render(opts, state, now)
    except Usage as exc:
        sys.stdout.write(f"{exc}\n")
        return exc.code
    except (OSError, model.StateError) as exc:
        sys.stderr.write(f"nvidia-smi (dccli lab simulation): {exc}\n")
        return 255
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `nvidia-smi | head` must not print a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    # CSV timestamps carry milliseconds: those renders are not replayed (the -q style stamp is).
    if _csv_stamp(now) not in text:
        replay.store("nvidia-smi", argv, text, code, _stamp(now), before)
    return code
