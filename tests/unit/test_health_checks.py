"""Checks, thresholds (with inventory overrides), formats and history: pure functions, real SQLite."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from dccli.health import formats, history, parse_smi
from dccli.health.checks_gpu import gpu_checks, model_matches
from dccli.health.checks_host import consistency_checks, host_checks
from dccli.health.history import HostRecord
from dccli.health.model import (
    CRIT,
    OK,
    UNKNOWN,
    WARN,
    CheckResult,
    Gpu,
    HostFacts,
    IbPort,
    Mount,
    SmiReport,
    XidEvent,
)
from dccli.health.thresholds import BY_NAME, TABLE, defaults, for_host
from dccli.inventory.loader import HEALTH, loads

LIM = defaults()


def _gpu(i: int = 0, **kw) -> Gpu:
    base = dict(
        index=i,
        name="NVIDIA H100 80GB HBM3",
        persistence_mode="Enabled",
        temperature_c=40.0,
        ecc_volatile_sbe=0,
        ecc_volatile_dbe=0,
        ecc_aggregate_sbe=0,
        ecc_aggregate_dbe=0,
        retired_sbe=0,
        retired_dbe=0,
        retired_pending=False,
        remap_correctable=0,
        remap_uncorrectable=0,
        remap_pending=False,
        remap_failure=False,
        pcie_gen_current=5,
        pcie_gen_max=5,
        pcie_width_current=16,
        pcie_width_max=16,
        utilization_pct=0.0,
    )
    base.update(kw)
    return Gpu(**base)


def _facts(*gpus: Gpu, **kw) -> HostFacts:
    smi = SmiReport("xml", "550.54.15", "12.4", len(gpus), tuple(gpus))
    return HostFacts(host="n1", smi=smi, **kw)


def _verdicts(results: list[CheckResult]) -> dict[str, str]:
    return {r.check: r.verdict for r in results}


def test_healthy_host_is_all_ok() -> None:
    res = gpu_checks(_facts(*[_gpu(i) for i in range(8)]), 8, "H100-SXM5-80GB", LIM, None)
    assert {r.verdict for r in res} == {OK}
    assert {
        "gpu.count",
        "gpu.model",
        "gpu.xid",
        "gpu.ecc",
        "gpu.retired_pages",
        "gpu.row_remap",
        "gpu.temperature",
        "gpu.throttle",
        "gpu.persistence",
        "gpu.pcie",
        "gpu.processes",
    } <= set(_verdicts(res))


@pytest.mark.parametrize(
    "gpu_kw,check,verdict",
    [
        ({"ecc_volatile_dbe": 2}, "gpu.ecc", CRIT),
        ({"ecc_aggregate_dbe": 1}, "gpu.ecc", WARN),
        ({"ecc_volatile_sbe": 20000}, "gpu.ecc", WARN),
        ({"retired_sbe": 30, "retired_dbe": 34}, "gpu.retired_pages", CRIT),
        ({"retired_dbe": 12}, "gpu.retired_pages", WARN),
        ({"retired_pending": True}, "gpu.retired_pages", WARN),
        ({"remap_pending": True}, "gpu.row_remap", WARN),
        ({"remap_failure": True}, "gpu.row_remap", CRIT),
        ({"temperature_c": 86.0}, "gpu.temperature", WARN),
        ({"temperature_c": 95.0}, "gpu.temperature", CRIT),
        ({"temperature_c": 80.0, "slowdown_temp_c": 79.0}, "gpu.temperature", CRIT),
        ({"throttle_active": ("hw_thermal_slowdown",)}, "gpu.throttle", WARN),
        ({"throttle_active": ("gpu_idle",)}, "gpu.throttle", OK),
        ({"persistence_mode": "Disabled"}, "gpu.persistence", WARN),
        ({"pcie_width_current": 8}, "gpu.pcie", WARN),
        ({"pcie_gen_current": 1}, "gpu.pcie", OK),  # idle GPUs lower their link speed
        ({"pcie_gen_current": 3, "utilization_pct": 90.0}, "gpu.pcie", WARN),
    ],
)
def test_one_gpu_fault_flags_one_check(gpu_kw: dict, check: str, verdict: str) -> None:
    res = gpu_checks(_facts(_gpu(0), _gpu(1, **gpu_kw)), 2, None, LIM, None)
    got = _verdicts(res)
    assert got[check] == verdict
    assert {c for c, v in got.items() if v != OK} == ({check} if verdict != OK else set())
    if verdict != OK:
        bad = next(r for r in res if r.check == check)
        assert bad.value.startswith("GPU1:") and bad.action and bad.threshold and bad.source


def test_missing_gpu_and_driver_not_loaded() -> None:
    assert _verdicts(gpu_checks(_facts(_gpu(0)), 8, None, LIM, None))["gpu.count"] == CRIT
    res = gpu_checks(HostFacts(host="n1", smi_error="nvidia-smi rc 9: driver not loaded"), 8, None, LIM, None)
    assert _verdicts(res) == {"gpu.count": CRIT}


def test_xids_since_last_check_with_catalogue_severity() -> None:
    xids = (XidEvent(13, "0000:19:00", "Graphics", 100.0), XidEvent(79, "0000:3b:00", "fallen off", 200.0))
    res = {r.check: r for r in gpu_checks(_facts(_gpu(0), xids=xids), 1, None, LIM, None)}
    assert (
        res["gpu.xid"].verdict == CRIT
        and "Xid 79" in res["gpu.xid"].value
        and "reboot" in res["gpu.xid"].action
    )
    res = {r.check: r for r in gpu_checks(_facts(_gpu(0), xids=xids), 1, None, LIM, 150.0)}
    assert res["gpu.xid"].verdict == CRIT and "Xid 13" not in res["gpu.xid"].value
    res = {r.check: r for r in gpu_checks(_facts(_gpu(0), xids=xids), 1, None, LIM, 250.0)}
    assert res["gpu.xid"].verdict == OK
    only13 = (XidEvent(13, "0000:19:00", "Graphics", 300.0),)
    assert _verdicts(gpu_checks(_facts(_gpu(0), xids=only13), 1, None, LIM, 250.0))["gpu.xid"] == WARN


def test_foreign_gpu_processes() -> None:
    from dccli.health.model import GpuProcess

    g = _gpu(0, processes=(GpuProcess(42, "python", 1000.0), GpuProcess(43, "torchrun", 500.0)))
    res = {r.check: r for r in gpu_checks(_facts(g, foreign_pids=(42,)), 1, None, LIM, None)}
    assert res["gpu.processes"].verdict == WARN and "pid 42" in res["gpu.processes"].value
    assert "pid 43" not in res["gpu.processes"].value


def test_model_matching() -> None:
    assert model_matches("H100-SXM5-80GB", "NVIDIA H100 80GB HBM3")
    assert model_matches("A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB")
    assert model_matches("H200", "NVIDIA H200")
    assert not model_matches("H100-SXM5-80GB", "NVIDIA A100-SXM4-80GB")


def test_host_checks() -> None:
    f = HostFacts(
        host="n1",
        mounts=(Mount("/", "ext4", 100, 50, 100, 90), Mount("/data", "xfs", 100, 2, 100, 99)),
        mem_total=100,
        mem_available=50,
        load1=1.0,
        cpus=4,
        clock_skew_s=0.0,
        services={"sshd": True, "slurmd": False},
        defunct=0,
        reboot_required=True,
        ib_ports=(
            IbPort("mlx5_0", 1, "Active", "LinkUp", 200.0, "InfiniBand"),
            IbPort("mlx5_1", 1, "Down", "Disabled", 40.0, "InfiniBand"),
        ),
    )
    res = host_checks(f, LIM)
    got = {(r.check, r.subject): r.verdict for r in res}
    assert got[("host.disk", "/data")] == CRIT
    assert got[("host.inodes", "")] == OK
    assert got[("host.service", "slurmd")] == CRIT and got[("host.service", "sshd")] == OK
    assert got[("host.infiniband", "")] == CRIT
    assert got[("host.reboot_required", "")] == WARN
    assert got[("host.memory", "")] == OK and got[("host.load", "")] == OK
    lim = dataclasses.replace(LIM, values={**LIM.values, "ib_rate_gbps": 400})
    ok_ports = dataclasses.replace(
        f, ib_ports=(IbPort("mlx5_0", 1, "Active", "LinkUp", 200.0, "InfiniBand"),)
    )
    assert {r.check: r.verdict for r in host_checks(ok_ports, lim)}["host.infiniband"] == WARN
    skewed = dataclasses.replace(f, clock_skew_s=7.5)
    assert {r.check: r.verdict for r in host_checks(skewed, LIM)}["host.clock_skew"] == CRIT


def test_driver_consistency_flags_the_odd_host() -> None:
    rep = lambda d, c: SmiReport("xml", d, c, 1, ())  # noqa: E731
    res = consistency_checks(
        {"a": rep("550.54.15", "12.4"), "b": rep("550.54.15", "12.4"), "c": rep("535.1", "12.2")}
    )
    bad = {(r.host, r.check) for r in res if r.verdict == WARN}
    assert bad == {("c", "gpu.driver_version"), ("c", "gpu.cuda_version")}


def test_threshold_table_and_inventory_schema_agree() -> None:
    assert set(HEALTH) == {t.name for t in TABLE}
    assert all(t.source and t.doc for t in TABLE)


def test_inventory_overrides_per_group(tmp_path: Path) -> None:
    inv = loads("""
cluster: c
health: {temp_warn_c: 80}
racks:
  r1:
    health: {disk_warn_pct: 50}
    hosts:
      n[1-2]: {address: "10.0.0.[1-2]", gpus: 8}
groups:
  g: {hosts: n1, health: {required_services: [sshd], temp_warn_c: 70}}
""")
    n1, n2 = (for_host(inv, inv.host(n)) for n in ("n1", "n2"))
    assert (n1["temp_warn_c"], n1["disk_warn_pct"], list(n1["required_services"])) == (70, 50, ["sshd"])
    assert (n2["temp_warn_c"], n2["disk_warn_pct"], list(n2["required_services"])) == (80, 50, [])
    assert n2["temp_crit_c"] == BY_NAME["temp_crit_c"].default


@pytest.mark.parametrize(
    "snippet,message",
    [
        (
            "health: {temp_wran_c: 80}",
            "2:10: health.temp_wran_c: unknown key 'temp_wran_c' (did you mean 'temp_warn_c'?)",
        ),
        ("health: {temp_warn_c: hot}", "health.temp_warn_c: expected a number >= 0"),
        ("health: {required_services: ['a;b']}", "may only hold letters"),
    ],
)
def test_inventory_health_errors_name_line_and_key(snippet: str, message: str) -> None:
    from dccli.errors import InventoryError

    with pytest.raises(InventoryError) as exc:
        loads("cluster: c\n" + snippet + "\n", path="inv.yml")
    assert message in str(exc.value) and str(exc.value).startswith("inv.yml:2:")


def _report() -> tuple[list[CheckResult], list[HostRecord]]:
    results = [
        CheckResult("n1", "gpu.ecc", CRIT, "GPU1: DBE=2", "DBE >= 1", "reset", "DCGM"),
        CheckResult("n1", "host.disk", OK, "max / 10%", ">= 90%", "", "NHC"),
        CheckResult('n"2', "host.reachable", UNKNOWN, "timed out", "reachable", "check", "dccli"),
    ]
    hosts = [HostRecord("n1", "ok", CRIT, 1.0), HostRecord('n"2', "unreachable", UNKNOWN)]
    return results, hosts


def test_prometheus_textfile_parses_and_is_atomic(tmp_path: Path) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    results, hosts = _report()
    text = formats.prometheus(results, hosts, "lab-x", 1700000000.0)
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.labels["host"], s.labels["check"]): s.value for s in fams["dccli_health_check"].samples}
    assert samples == {("n1", "gpu.ecc"): 2.0, ("n1", "host.disk"): 0.0, ('n"2', "host.reachable"): 3.0}
    assert {s.labels["host"]: s.value for s in fams["dccli_health_host"].samples} == {"n1": 2.0, 'n"2': 3.0}
    path = formats.write_textfile(tmp_path / "tf", "dccli_health_lab-x.prom", text)
    assert path.read_text() == text and sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_nagios_line_and_codes() -> None:
    results, hosts = _report()
    line, code = formats.nagios(results, hosts)
    assert code == 2 and line.startswith(
        "DCCLI HEALTH CRITICAL - 1 CRIT, 0 WARN, 1 UNKNOWN of 2 hosts: n1 gpu.ecc"
    )
    assert line.count("\n") == 0 and "| crit=1 warn=0 unknown=1 hosts=2" in line
    assert formats.nagios([], [HostRecord("a", "ok", OK)]) == (
        "DCCLI HEALTH OK - 1 hosts OK | crit=0 warn=0 unknown=0 hosts=1",
        0,
    )
    assert formats.nagios(results[2:], hosts[1:])[1] == 3


def test_history_changes_and_cursor(tmp_path: Path) -> None:
    from dccli.state import db

    conn = db.connect(tmp_path / "state.db")
    ok = [CheckResult("n1", "gpu.ecc", OK, "fine"), CheckResult("n2", "gpu.ecc", OK, "fine")]
    r1 = history.store(
        conn,
        "c",
        1000.0,
        [HostRecord("n1", "ok", OK, 500.0, "b1"), HostRecord("n2", "ok", OK, 600.0)],
        ok,
        OK,
    )
    conn.execute("UPDATE health_runs SET started_at = 1000.0 WHERE id = ?", (r1,))
    bad = [
        CheckResult("n1", "gpu.ecc", CRIT, "GPU1: DBE=2"),
        CheckResult("n2", "gpu.ecc", OK, "fine"),
        CheckResult("n2", "host.disk", WARN, "/ 91%", subject="/"),
    ]
    r2 = history.store(
        conn,
        "c",
        90000.0,
        [HostRecord("n1", "ok", CRIT, 900.0), HostRecord("n2", "ok", WARN, 950.0)],
        bad,
        CRIT,
    )
    changes = history.changes(conn, "c", r2, 86400.0, now=90000.0 + 1000.0)
    assert [(c.host, c.check, c.was, c.now) for c in changes] == [
        ("n1", "gpu.ecc", OK, CRIT),
        ("n2", "host.disk", "", WARN),
    ]
    assert history.xid_cursors(conn, "c") == {"n1": (900.0, None), "n2": (950.0, None)}
    assert history.latest(conn, "c")["n1"]["worst"] == CRIT
    assert history.parse_duration("24h") == 86400 and history.parse_duration("30m") == 1800
    with pytest.raises(ValueError):
        history.parse_duration("yesterday")
    assert isinstance(conn, sqlite3.Connection)


def test_text_and_xml_give_the_same_checks(real_fixtures: Path) -> None:
    """-q text and --query-gpu CSV of one capture bundle judge the same GPU the same way."""
    from dccli.health.analyze import bundle_sections

    text = (real_fixtures / "nvgpuexp_capture_linux-x86_64__nvidia-l40s__595.80.txt").read_text()
    sec = bundle_sections(text)
    q = parse_smi.parse_text(next(b for _, c, b in sec if c == "nvidia-smi -q"))
    c = parse_smi.parse_csv(next(b for _, c, b in sec if "--query-gpu=" in c))
    pick = {"gpu.count", "gpu.persistence", "gpu.temperature"}

    def judge(rep: SmiReport) -> dict[str, str]:
        return {
            r.check: r.verdict
            for r in gpu_checks(HostFacts("x", smi=rep), 1, None, LIM, None)
            if r.check in pick
        }

    assert judge(q) == judge(c) == {"gpu.count": OK, "gpu.persistence": WARN, "gpu.temperature": OK}


def test_probe_step_runs_for_real_through_a_local_connection() -> None:
    """The remote health step (stdlib helper) on this machine, parsed and checked like any host's answer."""
    from dccli.health.probe import collect, facts_from_raw
    from dccli.transport.local import LocalConnection

    raw = collect(LocalConnection("here"), ["no-such-daemon-x"], gpu=False)
    facts = facts_from_raw(raw)
    assert facts.mounts and facts.mem_total and facts.cpus and facts.load1 is not None
    assert facts.services == {"no-such-daemon-x": False} and facts.defunct is not None
    assert facts.clock_skew_s is not None and abs(facts.clock_skew_s) < 1.0
    res = {(r.check, r.subject): r.verdict for r in host_checks(facts, LIM)}
    assert res[("host.service", "no-such-daemon-x")] == CRIT
    assert any(k[0] == "host.disk" for k in res)


def test_skew_counts_only_what_exceeds_half_the_round_trip() -> None:
    from dccli.health.probe import Raw, facts_from_raw, skew

    base = {"meminfo": "MemTotal: 100 kB\nMemAvailable: 50 kB\n", "loadavg": "0.1 0 0 1/1 1", "cpus": 2}
    assert skew(Raw("h", base, 1000.3, 1000.0, 1000.2)) == pytest.approx((0.2, 0.1))
    assert facts_from_raw(Raw("h", base, 1000.15, 1000.0, 1000.2)).clock_skew_s == 0.0  # inside the bracket
    assert facts_from_raw(Raw("h", base, 1007.1, 1000.0, 1000.2)).clock_skew_s == pytest.approx(6.9)
    assert facts_from_raw(Raw("h", base, 990.0, 1000.0, 1000.2)).clock_skew_s == pytest.approx(-10.0)
    assert facts_from_raw(Raw("h", base, None, 1000.0, 1000.2)).clock_skew_s is None


def test_chrony_and_timedatectl_parsers() -> None:
    from dccli.health.parse_logs import parse_chrony_tracking, parse_timedatectl

    tracking = (
        "Reference ID    : A9FEA97B (169.254.169.123)\nStratum         : 4\n"
        "System time     : 0.000012345 seconds slow of NTP time\nLast offset     : -0.000004 seconds\n"
    )
    assert parse_chrony_tracking(tracking) == pytest.approx(-1.2345e-05)
    assert parse_chrony_tracking("System time : 0.25 seconds fast of NTP time") == 0.25
    assert parse_chrony_tracking("506 Cannot talk to daemon") is None
    assert parse_timedatectl("Timezone=UTC\nNTP=yes\nNTPSynchronized=no\n") is False
    f = HostFacts(host="n1", clock_offset_s=0.25)
    assert {r.check: r.verdict for r in host_checks(f, LIM)}["host.clock_offset"] == WARN
    f = HostFacts(host="n1", ntp_synchronized=False)
    assert {r.check: r.verdict for r in host_checks(f, LIM)}["host.clock_offset"] == WARN


def test_history_is_pruned_but_each_hosts_latest_probe_stays(tmp_path: Path) -> None:
    from dccli.state import db

    conn = db.connect(tmp_path / "state.db")
    day = 86400.0
    res = [CheckResult("n1", "gpu.ecc", OK, "fine")]

    def run(at: float, hosts: list[str]) -> int:
        rid = history.store(conn, "c", at, [HostRecord(h, "ok", OK, at, None) for h in hosts], res, OK)
        conn.execute("UPDATE health_runs SET started_at = ? WHERE id = ?", (at, rid))
        return rid

    only_n2 = run(0.0, ["n2"])  # n2 never probed again: its latest probe must survive
    old = [run(d * day, ["n1"]) for d in range(1, 5)]
    history.store(conn, "other", 100 * day, [HostRecord("x", "ok", OK, 1.0)], [], OK)  # another cluster
    kept = {r[0] for r in conn.execute("SELECT id FROM health_runs WHERE cluster = 'c'")}
    assert kept == {only_n2, *old}  # within 30 days + a day of slack of the newest: nothing pruned yet
    new = run(40 * day, ["n1"])
    kept = {r[0] for r in conn.execute("SELECT id FROM health_runs WHERE cluster = 'c'")}
    assert kept == {only_n2, new}
    orphans = conn.execute(
        f"SELECT COUNT(*) FROM health_results WHERE run_id IN ({','.join(map(str, old))})"
    ).fetchone()[0]
    assert orphans == 0  # results went with their runs
    assert set(history.xid_cursors(conn, "c")) == {"n1", "n2"}
    assert conn.execute("SELECT COUNT(*) FROM health_runs WHERE cluster = 'other'").fetchone()[0] == 1
