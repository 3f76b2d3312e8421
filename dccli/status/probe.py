"""The status probe: ONE plain exec session per host (no helper, no kernel log), cheap enough to run often.

`dccli status` shows live reachability and GPU numbers from this probe; the health verdict is the host's
latest `dccli health` result from the state DB, made worse by what the probe itself sees (an unreachable
host, missing GPUs). The full catalogue stays `dccli health`'s job (it reads the kernel log, every counter).
"""

from __future__ import annotations

from dataclasses import dataclass

from dccli.executor import OK as FATE_OK
from dccli.executor import EventSink, GroupOutcome, fan_out

FIELDS = "index,utilization.gpu,temperature.gpu"
# POSIX sh; sections marked so the parse is exact. nvidia-smi is asked once (the costly part on a real host).
COMMAND = (
    "if command -v nvidia-smi >/dev/null 2>&1; then echo '#smi'; "
    f'nvidia-smi --query-gpu={FIELDS} --format=csv,noheader,nounits 2>&1; echo "#rc $?"; fi; '
    "echo '#load'; cat /proc/loadavg"
)


@dataclass(frozen=True)
class GpuLive:
    index: int
    util_pct: float | None
    temp_c: float | None


@dataclass(frozen=True)
class LiveHost:
    host: str
    smi: bool  # nvidia-smi exists
    smi_rc: int | None
    smi_error: str | None
    gpus: tuple[GpuLive, ...] = ()
    load1: float | None = None


def _num(text: str) -> float | None:
    try:
        return float(text.strip())
    except ValueError:
        return None  # [N/A], [Not Supported]


def parse(host: str, stdout: str) -> LiveHost:
    """Pure: the probe's output -> LiveHost."""
    section, smi_lines, load, rc = "", [], None, None
    seen_smi = False
    for line in stdout.splitlines():
        if line == "#smi":
            section, seen_smi = "smi", True
            continue
        if line.startswith("#rc "):
            rc = int(line[4:]) if line[4:].strip().isdigit() else None
            section = ""
            continue
        if line == "#load":
            section = "load"
            continue
        if section == "smi":
            smi_lines.append(line)
        elif section == "load" and load is None:
            load = _num(line.split()[0]) if line.split() else None
    gpus, error = [], None
    if rc == 0:
        for line in smi_lines:
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 3 and parts[0].isdigit():
                gpus.append(GpuLive(int(parts[0]), _num(parts[1]), _num(parts[2])))
    elif seen_smi:
        text = " ".join(ln.strip() for ln in smi_lines if ln.strip())
        error = f"nvidia-smi rc {rc}: {text[:200]}" if text else f"nvidia-smi rc {rc}"
    return LiveHost(host, seen_smi, rc, error, tuple(gpus), load)


def probe(
    hosts: list, pool, *, forks: int = 64, timeout: float = 60, on_event: EventSink | None = None
) -> GroupOutcome[LiveHost]:
    from dccli.errors import DccliError

    def work(host) -> tuple[str, LiveHost]:
        res = pool.get(host).exec(COMMAND, timeout=timeout)
        if res.timed_out:
            raise DccliError(f"{host.name}: status probe timed out after {timeout:g}s")
        return FATE_OK, parse(host.name, res.stdout.decode("utf-8", "replace"))

    return fan_out(hosts, work, forks=forks, on_event=on_event)
