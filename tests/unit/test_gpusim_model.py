"""SIMULATED GPUs: state transforms (faults, reboot, clear), exit codes, kernel-log formats, and the product's
own parsers (dccli.health) reading the simulator's output the way they read real captures."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path

import pytest

from dccli.lab.gpusim import cli, klog, logcli, model

NOW = 1_750_000_000.0
UTC = dt.UTC


def state(count: int = 8) -> dict:
    return model.new_state("H100-SXM5-80GB", count, "unit")


def render(argv: list[str], st: dict) -> tuple[str, int]:
    return cli.render(cli.parse(argv), st, NOW)


# ---------------------------------------------------------------- state and faults


def test_new_state_is_valid_and_deterministic() -> None:
    a, b = state(), state()
    assert a == b and model.loads(model.dumps(a)) == a
    assert len({g["uuid"] for g in a["gpus"]}) == 8
    assert len({g["pci_bus_id"] for g in a["gpus"]}) == 8
    with pytest.raises(model.StateError, match="unknown GPU model"):
        model.new_state("B200", 8, "x")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"schema_version": 9}, "schema_version"),
        ({"model": "X"}, "model"),
        ({"gpus": {}}, "gpus: expected a list"),
    ],
)
def test_validate_names_the_bad_key(bad: dict, message: str) -> None:
    with pytest.raises(model.StateError, match=message):
        model.validate({**state(), **bad})


def test_validate_names_a_missing_gpu_key() -> None:
    st = state()
    del st["gpus"][3]["row_remap"]
    with pytest.raises(model.StateError, match=r"gpus\[3\]\.row_remap: missing"):
        model.validate(st)


def test_faults_then_reboot_keep_what_hardware_keeps() -> None:
    st = state()
    st = model.apply_fault(st, "ecc_dbe", 1, 3)
    st = model.apply_fault(st, "retired_pages", 2, 4)
    st = model.apply_fault(st, "row_remap_pending", 3)
    st = model.apply_fault(st, "temp", 4, 95)
    st = model.apply_fault(st, "fell_off_bus", 5)
    g = st["gpus"]
    assert g[1]["ecc"] == {"volatile": {"sbe": 0, "dbe": 3}, "aggregate": {"sbe": 0, "dbe": 3}}
    assert g[2]["retired_pages"] == {"sbe": 0, "dbe": 4, "pending": True}
    assert g[3]["row_remap"]["pending"] and g[3]["row_remap"]["uncorrectable"] == 1
    assert {"hw_slowdown", "hw_thermal_slowdown", "sw_thermal_slowdown"} <= set(g[4]["throttle_reasons"])
    assert g[5]["fell_off_bus"]

    after = model.after_reboot(st)["gpus"]
    assert after[1]["ecc"] == {"volatile": {"sbe": 0, "dbe": 0}, "aggregate": {"sbe": 0, "dbe": 3}}
    assert after[2]["retired_pages"] == {"sbe": 0, "dbe": 4, "pending": False}
    assert after[3]["row_remap"] == {"correctable": 0, "uncorrectable": 1, "pending": False, "failure": False}
    assert after[4]["temperature_gpu"] < 50 and after[4]["throttle_reasons"] == ["gpu_idle"]
    assert not after[5]["fell_off_bus"]
    assert [a["uuid"] for a in after] == [b["uuid"] for b in g]


def test_row_remap_failure_survives_reboot() -> None:
    st = state()
    st["gpus"][0]["row_remap"]["failure"] = True
    assert model.after_reboot(st)["gpus"][0]["row_remap"]["failure"] is True


def test_clear_one_gpu_or_all() -> None:
    st = model.apply_fault(model.apply_fault(state(), "ecc_dbe", 1, 3), "fell_off_bus", 2)
    one = model.clear(st, 1)
    assert one["gpus"][1]["ecc"]["aggregate"]["dbe"] == 0 and one["gpus"][2]["fell_off_bus"]
    assert model.clear(st) == model.clear(model.clear(st, 1), 2) == state()
    with pytest.raises(model.StateError, match="no GPU 9"):
        model.clear(st, 9)


def test_apply_fault_does_not_mutate_its_input() -> None:
    st = state()
    before = json.dumps(st)
    model.apply_fault(st, "ecc_dbe", 0, 1)
    assert json.dumps(st) == before


# ---------------------------------------------------------------- command line and exit codes


def test_driver_not_loaded_exit_9() -> None:
    st = dict(state(), driver_loaded=False)
    for argv in ([], ["-L"], ["-q"], ["-q", "-x"], ["--query-gpu=name", "--format=csv"], ["topo", "-m"]):
        text, code = render(argv, st)
        assert (text, code) == (cli.DRIVER_MESSAGE + "\n", 9)


def test_fell_off_bus_exit_15() -> None:
    st = model.apply_fault(state(), "fell_off_bus", 3)
    text, code = render([], st)
    assert code == 15
    assert (
        text
        == "Unable to determine the device handle for GPU 0000:5D:00.0: GPU is lost.  Reboot the system to recover this GPU\n"
    )
    text, code = render(["-L"], st)
    assert code == 15 and len(text.splitlines()) == 8 and "GPU is lost" in text.splitlines()[3]
    text, code = render(["-i", "0", "-q"], st)  # the lost GPU not selected: fine
    assert code == 0


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["-i", "9"], 6),
        (["-i", "GPU-nope", "-q"], 6),
        (["--bogus"], 2),
        (["-x"], 2),
        (["-q", "-d", "NOPE"], 2),
        (["-q", "-x", "-d", "ECC"], 2),
        (["--query-gpu=name"], 2),
        (["--query-gpu=name", "--format=json"], 2),
        (["topo"], 2),
    ],
)
def test_bad_usage_exit_codes(argv: list[str], code: int) -> None:
    with pytest.raises(cli.Usage) as err:
        render(argv, state())
    assert err.value.code == code


def test_select_by_index_uuid_and_bus_id() -> None:
    st = state()
    uuid = st["gpus"][5]["uuid"]
    text, _ = render(["-i", f"1,{uuid},0000:5D:00.0", "-L"], st)
    assert [line.split(":")[0] for line in text.splitlines()] == ["GPU 1", "GPU 3", "GPU 5"]


def test_main_reads_state_and_driver_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    directory = tmp_path / model.STATE_DIR.lstrip("/")
    directory.mkdir(parents=True)
    (directory / "state.json").write_text(model.dumps(state(2)))
    monkeypatch.setenv("DCCLI_GPUSIM_ROOT", str(tmp_path))
    assert cli.main(["--query-gpu=driver_version,count", "--format=csv,noheader"]) == 0
    assert capsys.readouterr().out == "535.183.01, 2\n535.183.01, 2\n"
    (directory / "driver_version").write_text("550.90.07\n")
    assert cli.main(["--version"]) == 0
    assert "DRIVER version      : 550.90.07" in capsys.readouterr().out
    (directory / "state.json").write_text("{")
    assert cli.main(["-L"]) == 255
    assert "state.json: not valid JSON" in capsys.readouterr().err


# ---------------------------------------------------------------- kernel log formats (vs real captures)


def records() -> list[klog.Record]:
    return [
        klog.Record(4, 5_017_904, klog.xid_message("00000000:5D:00.0", 79)),
        klog.Record(3, 6_000_001, "some driver error"),
    ]


def first_xid(path: Path) -> str:
    return next(line for line in path.read_text().splitlines() if "NVRM: Xid" in line)


def test_xid_line_matches_capture_wording(real_fixtures: Path) -> None:
    real = first_xid(real_fixtures / "gpud_dmesg_dmesg-time-format-iso.log")
    sim = klog.xid_message("00000000:19:00.0", 48)
    assert real.split(" ", 1)[1] == sim


def test_dmesg_formats_match_captures(real_fixtures: Path) -> None:
    iso = klog.render_dmesg(records(), NOW, "iso", False, UTC).splitlines()[0]
    real_iso = first_xid(real_fixtures / "gpud_dmesg_dmesg-time-format-iso.log")
    pattern = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d,\d{6}\+00:00 NVRM: Xid \(PCI:[0-9a-f:]+\): \d+, .*"
    assert re.fullmatch(pattern, iso) and re.fullmatch(pattern, real_iso)
    decoded = klog.render_dmesg(records(), NOW, "iso", True, UTC).splitlines()
    real_decoded = (real_fixtures / "gpud_dmesg_dmesg.decode.iso.log.0").read_text().splitlines()[0]
    assert decoded[0][:15] == real_decoded[:15] == "kern  :warn  : "
    assert decoded[1].startswith("kern  :err   : ")
    assert (
        klog.render_dmesg(records(), NOW, "default", False)
        .splitlines()[0]
        .startswith("[    5.017904] NVRM: Xid")
    )
    assert klog.render_dmesg(records(), NOW, "raw", False).splitlines()[1].startswith("<3>[    6.000001] ")


def test_kmsg_and_journal_formats_match_captures(real_fixtures: Path) -> None:
    real_kmsg = (real_fixtures / "gpud_kmsg.2.peermem.log").read_text().splitlines()[0]
    sim_kmsg = klog.format_kmsg(1000, records()[0]).rstrip("\n")
    pattern = r"\d+,\d+,\d+,-;.+"
    assert re.fullmatch(pattern, real_kmsg) and re.fullmatch(pattern, sim_kmsg)
    assert klog.parse_kmsg(sim_kmsg + "\ngarbage\n") == [records()[0]]
    real_journal = (
        (real_fixtures / "gpud_dmesg_journalctl-time-format-short-iso-2.log").read_text().splitlines()[0]
    )
    sim_journal = klog.render_journal(records(), NOW, "node01", "short-iso", UTC).splitlines()[0]
    jpattern = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} \S+ kernel: .+"
    assert re.fullmatch(jpattern, real_journal) and re.fullmatch(jpattern, sim_journal)
    precise = klog.render_journal(records(), NOW, "node01", "short-precise", UTC).splitlines()[0]
    assert re.fullmatch(r"\w{3} \d\d \d\d:\d\d:\d\d\.\d{6} node01 kernel: NVRM: Xid .*", precise)
    assert klog.render_journal([], NOW, "node01", "short") == "-- No entries --\n"


def test_real_kernel_records_are_rebased_on_the_host_boot() -> None:
    raw = "<6>[   10.000000] before the host booted\n<4>[  120.500000] after\nnot a record\n"
    assert klog.parse_raw(raw, 100.0) == [klog.Record(4, 20_500_000, "after")]


def test_wrapper_options() -> None:
    assert logcli.parse_dmesg(["--time-format", "iso", "-x"])["fmt"] == "iso"
    assert logcli.parse_dmesg(["-l", "err,warn"])["levels"] == {3, 4}
    assert (
        logcli.parse_journalctl(["-k", "-b", "0", "-o", "short-precise", "--no-pager"])["fmt"]
        == "short-precise"
    )
    for unsupported in (["-w"], ["--time-format", "delta"]):
        with pytest.raises(logcli.Unsupported):
            logcli.parse_dmesg(unsupported)
    with pytest.raises(logcli.Unsupported):
        logcli.parse_journalctl(["-u", "sshd"])


# ---------------------------------------------------------------- the product's parsers read the simulator


def test_health_parsers_read_simulated_output() -> None:
    parse_smi = pytest.importorskip("dccli.health.parse_smi")
    parse_logs = pytest.importorskip("dccli.health.parse_logs")
    st = model.apply_fault(model.apply_fault(state(), "ecc_dbe", 1, 2), "row_remap_pending", 2)
    xml = parse_smi.parse_xml(render(["-q", "-x"], st)[0])
    text = parse_smi.parse_text(render(["-q"], st)[0])
    fields = "index,name,pci.bus_id,uuid,ecc.errors.uncorrected.volatile.total,ecc.errors.uncorrected.aggregate.total,remapped_rows.pending,temperature.gpu"
    csv = parse_smi.parse_csv(render([f"--query-gpu={fields}", "--format=csv"], st)[0])
    for report in (xml, text, csv):
        assert len(report.gpus) == 8
        assert {g.name for g in report.gpus} == {"NVIDIA H100 80GB HBM3"}
        assert report.gpus[1].ecc_volatile_dbe == 2 and report.gpus[1].ecc_aggregate_dbe == 2
        assert report.gpus[2].remap_pending is True and report.gpus[0].remap_pending is False
    assert xml.driver_version == text.driver_version == "535.183.01"
    log = klog.render_dmesg(records(), NOW, "iso", False, UTC)
    assert [(x.xid, x.pci) for x in parse_logs.parse_xids(log)] == [(79, "0000:5d:00")]


# ---------------------------------------------------------------- what `lab up` writes into a host's disk


def test_seeded_disk_runs_standalone_with_the_system_python(tmp_path: Path) -> None:
    import os
    import subprocess

    from dccli.lab.gpusim import install

    upper = tmp_path / "upper"
    upper.mkdir()
    install.seed_gpus(upper, "A100-SXM4-80GB", 4, "seed")
    (upper / model.DRIVER_OVERRIDE_PATH.lstrip("/")).write_text("550.90.07\n")
    boot = install.on_boot(upper)
    assert (upper / model.BOOT_ID_PATH.lstrip("/")).read_text() == boot["boot_id"] + "\n"
    assert "Kernel Module  550.90.07" in (upper / model.KMSG_PATH.lstrip("/")).read_text()
    public = upper / "usr/bin/nvidia-smi"
    assert public.stat().st_mode & 0o777 == 0o755
    assert public.read_text().startswith("#!/bin/sh\n# SIMULATED")
    assert f"exec {install.PYTHON} -IS /{install.HOST_LIB}/bin/nvidia-smi" in public.read_text()
    launcher = upper / install.HOST_LIB / "bin" / "nvidia-smi"
    assert launcher.read_text().startswith(f"#!{install.PYTHON} -IS\n# SIMULATED")
    # The copied package alone (no dccli, no site-packages) must run: that is all a host has.
    code = launcher.read_text().replace("'/usr/lib/dccli-gpusim'", repr(str(upper / install.HOST_LIB)))
    python = install.PYTHON if os.access(install.PYTHON, os.X_OK) else sys.executable
    env = {"DCCLI_GPUSIM_ROOT": str(upper), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([python, "-IS", "-c", code, "-L"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("NVIDIA A100-SXM4-80GB (UUID: GPU-") == 4
    proc = subprocess.run([python, "-IS", "-c", code, "--version"], capture_output=True, text=True, env=env)
    assert "DRIVER version      : 550.90.07" in proc.stdout
    dmesg = (
        launcher.read_text()
        .replace("cli import main", "logcli import main_dmesg")
        .replace("main()", "main_dmesg()")
    )
    dmesg = dmesg.replace("'/usr/lib/dccli-gpusim'", repr(str(upper / install.HOST_LIB)))
    proc = subprocess.run([python, "-IS", "-c", dmesg, "-x"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "kern  :warn  : [    0.042000] NVRM: loading NVIDIA" in proc.stdout
