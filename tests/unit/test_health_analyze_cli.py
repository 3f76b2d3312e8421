"""`dccli health analyze` through the real CLI: per-file facts, --json, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def dccli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dccli", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, NO_COLOR="1"),
        timeout=60,
    )


def test_analyze_json_per_file(real_fixtures: Path) -> None:
    files = [
        "telegraf_nvsmi_q_x_a10g.xml",
        "gpud_dmesg_dmesg-time-format-iso.log",
        "gpud_ibstat.47.0.h100.some.down.0.txt",
        "gpud_nvidia-smi-query.535.161.08.out.0.valid.txt",
    ]
    proc = dccli("health", "analyze", "--json", *[str(real_fixtures / f) for f in files])
    assert proc.returncode == 1, proc.stderr  # findings that are not OK
    doc = json.loads(proc.stdout)
    assert doc["schema_version"] == 1
    by = {d["file"]: d for d in doc["files"]}
    assert list(by) == files
    assert (
        by[files[0]]["facts"]["models"] == ["NVIDIA A10G"]
        and by[files[0]]["facts"]["driver_version"] == "515.105.01"
    )
    assert by[files[1]]["facts"]["xid_codes"] == [48, 63, 94]
    xid = next(r for r in by[files[1]]["results"] if r["check"] == "gpu.xid")
    assert xid["verdict"] == "CRIT" and "Xid 48" in xid["value"]
    assert by[files[2]]["facts"]["states"] == {"Active": 9, "Down": 3}
    assert by[files[3]]["facts"]["gpu_count"] == 8


def test_analyze_text_and_clean_capture(real_fixtures: Path) -> None:
    proc = dccli("health", "analyze", str(real_fixtures / "gpud_ibstat.47.0.h100.all.active.0.txt"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "gpud_ibstat.47.0.h100.all.active.0.txt: ibstat: 12 ports: 12 Active: OK\n"


def test_analyze_bad_input_is_one_line_and_prints_nothing(real_fixtures: Path, tmp_path: Path) -> None:
    good = str(real_fixtures / "telegraf_nvsmi_q_x_tesla-t4.xml")
    bad = tmp_path / "notes.txt"
    bad.write_text("hello\nworld\n")
    proc = dccli("health", "analyze", good, str(bad))
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(f"dccli: error: {bad}: not a capture")
    missing = dccli("health", "analyze", str(tmp_path / "nope.xml"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr and "Traceback" not in missing.stderr
    broken = tmp_path / "broken.xml"
    broken.write_text("<?xml version='1.0'?>\n<nvidia_smi_log><gpu id='x'>")
    proc = dccli("health", "analyze", str(broken))
    assert proc.returncode == 2 and "not nvidia-smi XML" in proc.stderr and "Traceback" not in proc.stderr
