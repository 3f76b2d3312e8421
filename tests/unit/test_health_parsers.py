"""Every real capture of the kinds `dccli health analyze` reads parses, and its facts come out right.

Expected values were read off the files themselves (grep of Driver Version / Product Name / <gpu id>,
Xid lines, ibstat State lines), not produced by the parser.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dccli.health import parse_logs, parse_smi
from dccli.health.analyze import AnalyzeError, analyze_file, bundle_sections

H100 = "NVIDIA H100 80GB HBM3"
R4090 = "NVIDIA GeForce RTX 4090"

# file -> (kind, gpu sections, attached, models, driver, cuda)
SMI = {
    "telegraf_nvsmi_q_x_a100-sxm4-v12.xml": (
        "nvidia-smi-xml",
        1,
        4,
        ["NVIDIA A100-SXM4-80GB"],
        "535.54.03",
        "12.2",
    ),
    "telegraf_nvsmi_q_x_a10g.xml": ("nvidia-smi-xml", 1, 1, ["NVIDIA A10G"], "515.105.01", "11.7"),
    "telegraf_nvsmi_q_x_gtx-1070-ti.xml": ("nvidia-smi-xml", 1, None, ["GeForce GTX 1070 Ti"], None, None),
    "telegraf_nvsmi_q_x_gtx-1660-ti.xml": ("nvidia-smi-xml", 1, 1, ["Graphics Device"], "418.43", "10.1"),
    "telegraf_nvsmi_q_x_quadro-p2000-v12.xml": (
        "nvidia-smi-xml",
        1,
        1,
        ["Quadro P2000"],
        "525.125.06",
        "12.0",
    ),
    "telegraf_nvsmi_q_x_quadro-p400.xml": ("nvidia-smi-xml", 1, 1, ["Quadro P400"], "418.43", "10.1"),
    "telegraf_nvsmi_q_x_rtx-3060-v12.xml": (
        "nvidia-smi-xml",
        1,
        1,
        ["NVIDIA GeForce RTX 3060"],
        "570.124.04",
        "12.8",
    ),
    "telegraf_nvsmi_q_x_rtx-3080-v12.xml": (
        "nvidia-smi-xml",
        1,
        1,
        ["NVIDIA GeForce RTX 3080"],
        "536.40",
        "12.2",
    ),
    "telegraf_nvsmi_q_x_rtx-3080-v13.xml": (
        "nvidia-smi-xml",
        1,
        1,
        ["NVIDIA GeForce RTX 3080"],
        "595.58.03",
        "13.2",
    ),
    "telegraf_nvsmi_q_x_rtx-3090-v12.xml": (
        "nvidia-smi-xml",
        1,
        1,
        ["NVIDIA GeForce RTX 3090"],
        "525.147.05",
        "12.0",
    ),
    "telegraf_nvsmi_q_x_rtx-4000-sff-ada-v13.xml": (
        "nvidia-smi-xml",
        1,
        1,
        ["NVIDIA RTX 4000 SFF Ada Generation"],
        "595.84",
        "13.2",
    ),
    "telegraf_nvsmi_q_x_tesla-t4.xml": ("nvidia-smi-xml", 1, 1, ["Tesla T4"], "515.105.01", "11.7"),
    "gpud_nvidia-smi-query.535.129.03.out.0.valid.a10.txt": (
        "nvidia-smi-q",
        1,
        1,
        ["NVIDIA A10"],
        "535.129.03",
        "12.2",
    ),
    "gpud_nvidia-smi-query.535.154.05.out.0.valid.4090.txt": (
        "nvidia-smi-q",
        8,
        8,
        [R4090],
        "535.154.05",
        "12.2",
    ),
    "gpud_nvidia-smi-query.535.154.05.out.0.valid.txt": ("nvidia-smi-q", 8, 8, [R4090], "535.154.05", "12.2"),
    "gpud_nvidia-smi-query.535.154.05.out.1.valid.txt": ("nvidia-smi-q", 8, 8, [R4090], "535.154.05", "12.2"),
    "gpud_nvidia-smi-query.535.154.05.out.2.valid.txt": ("nvidia-smi-q", 8, 8, [R4090], "535.154.05", "12.2"),
    "gpud_nvidia-smi-query.535.154.05.out.3.valid.txt": ("nvidia-smi-q", 8, 8, [R4090], "535.154.05", "12.2"),
    "gpud_nvidia-smi-query.535.161.08.out.0.valid.txt": ("nvidia-smi-q", 8, 8, [H100], "535.161.08", "12.2"),
    "gpud_nvidia-smi-query.535.183.01.out.0.invalid.txt": (
        "nvidia-smi-q",
        1,
        8,
        [H100],
        "535.183.01",
        "12.2",
    ),
    "gpud_nvidia-smi-query.535.183.01.out.0.valid.txt": ("nvidia-smi-q", 8, 8, [H100], "535.183.01", "12.2"),
    "gpud_nvidia-smi-query.560.35.03.out.0.valid.txt": (
        "nvidia-smi-q",
        1,
        1,
        ["NVIDIA TITAN V"],
        "560.35.03",
        "12.6",
    ),
    "azhc_orig_nvsmi8_output.txt": ("nvidia-smi-q", 8, 8, [], "535.86.10", "12.2"),
    "azhc_bad_nvsmi8_output.txt": ("nvidia-smi-q", 8, 8, [], "535.86.10", "12.2"),
    "nvgpuexp_capture_linux-x86_64__nvidia-geforce-rtx-2080-super__595.71.05.txt": (
        "capture-bundle",
        1,
        1,
        ["NVIDIA GeForce RTX 2080 SUPER"],
        "595.71.05",
        "13.2",
    ),
    "nvgpuexp_capture_linux-x86_64__nvidia-geforce-rtx-2080-super__610.57.04.txt": (
        "capture-bundle",
        1,
        1,
        ["NVIDIA GeForce RTX 2080 SUPER"],
        "610.57.04",
        "13.3",
    ),
    "nvgpuexp_capture_linux-x86_64__nvidia-geforce-rtx-4080-super__595.71.05.txt": (
        "capture-bundle",
        1,
        1,
        ["NVIDIA GeForce RTX 4080 SUPER"],
        "595.71.05",
        "13.2",
    ),
    "nvgpuexp_capture_linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt": (
        "capture-bundle",
        1,
        1,
        [H100],
        "590.48.01",
        "13.1",
    ),
    "nvgpuexp_capture_linux-x86_64__nvidia-h100-mig__590.48.01.txt": (
        "capture-bundle",
        1,
        1,
        [H100],
        "590.48.01",
        "13.1",
    ),
    "nvgpuexp_capture_linux-x86_64__nvidia-l40s__595.80.txt": (
        "capture-bundle",
        1,
        1,
        ["NVIDIA L40S"],
        "595.80",
        "13.2",
    ),
    "nvgpuexp_capture_windows-x86_64__nvidia-geforce-rtx-2080-super__591.86.txt": (
        "capture-bundle",
        1,
        1,
        ["NVIDIA GeForce RTX 2080 SUPER"],
        "591.86",
        "13.1",
    ),
    "nvgpuexp_capture_windows-x86_64__nvidia-geforce-rtx-2080-super__610.62.txt": (
        "capture-bundle",
        1,
        1,
        ["NVIDIA GeForce RTX 2080 SUPER"],
        "610.62",
        "13.3",
    ),
}

# file -> (Xid codes present, Xid lines, GPUs with Xid)
LOGS = {
    "gpud_dmesg_dmesg-time-format-iso.log": ([48, 63, 94], 11, ["0000:19:00"]),
    "gpud_dmesg_dmesg-time-format-short-iso.log": ([], 0, []),
    "gpud_dmesg_dmesg.decode.iso.log.0": ([13, 43], 636, ["0000:38:00"]),
    "gpud_dmesg_dmesg.decode.iso.log.1": ([], 0, []),
    "gpud_dmesg_dmesg.peermem.log.0": ([], 0, []),
    "gpud_dmesg_journalctl-time-format-short-iso-1.log": ([], 0, []),
    "gpud_dmesg_journalctl-time-format-short-iso-2.log": ([], 0, []),
    "gpud_kmsg.2.peermem.log": ([], 0, []),
    "gpud_pstore_dmesg-erst.txt": ([], 0, []),
    "azhc_1dev_6flap_syslog": ([], 0, []),
}

# file -> {state: count}, {rate: count}
IB = {
    "gpud_ibstat.39.0.a100.failed.ibpanic.exit-255.0.txt": ({"Active": 8}, {200.0: 8}),
    "gpud_ibstat.47.0.a100.all.active.0.txt": ({"Active": 9}, {200.0: 9}),
    "gpud_ibstat.47.0.h100.all.active.0.txt": ({"Active": 12}, {400.0: 8, 100.0: 4}),
    "gpud_ibstat.47.0.h100.all.active.1.txt": ({"Active": 12}, {400.0: 8, 100.0: 4}),
    "gpud_ibstat.47.0.h100.all.active.2.txt": ({"Active": 9}, {400.0: 8, 200.0: 1}),
    "gpud_ibstat.47.0.h100.some.down.0.txt": ({"Active": 9, "Down": 3}, {400.0: 8, 40.0: 3, 100.0: 1}),
    "gpud_ibstat.47.0.h100.some.down.with.polling.1.txt": (
        {"Active": 10, "Down": 2},
        {400.0: 6, 100.0: 4, 40.0: 2},
    ),
    "gpud_ibstatus.39.0.a100.all.active.0.txt": ({"Active": 9}, {200.0: 8, 40.0: 1}),
}

NVLINK = {  # file -> (links, down)
    "gpud_nvidia-smi.nvlink.status.a100.txt": (96, 0),
    "azhc_good_nvlink_status.txt": (12, 0),
    "azhc_bad_nvlink_status.txt": (1, 1),
    "aws_nvlink_s_p4de_a100_gpu0.txt": (12, 0),
}

# Captures of the kinds the issue names, found by name: a new file of such a kind must be added above.
_KIND_PATTERNS = (
    r".*\.xml$",
    r"^gpud_nvidia-smi-query",
    r"nvsmi8_output",
    r"^nvgpuexp_capture",
    r"^gpud_dmesg_",
    r"^gpud_kmsg",
    r"^gpud_pstore_dmesg",
    r"syslog$",
    r"^gpud_ibstat",
)


def _captures(real: Path) -> list[str]:
    return sorted(
        p.name for p in real.iterdir() if not p.name.endswith(".source.txt") and p.name != "README.md"
    )


def test_every_capture_of_a_covered_kind_has_expectations(real_fixtures: Path) -> None:
    covered = set(SMI) | set(LOGS) | set(IB) | set(NVLINK)
    wanted = {n for n in _captures(real_fixtures) if any(re.search(p, n) for p in _KIND_PATTERNS)}
    assert wanted - covered == set()


@pytest.mark.parametrize("name", sorted(SMI))
def test_nvidia_smi_capture_facts(real_fixtures: Path, name: str) -> None:
    kind, count, attached, models, driver, cuda = SMI[name]
    a = analyze_file(real_fixtures / name)
    assert a.kind == kind
    assert a.facts["gpu_count"] == count
    assert a.facts["attached_gpus"] == attached
    assert a.facts["models"] == models
    assert a.facts["driver_version"] == driver
    assert a.facts["cuda_version"] == cuda
    if kind == "capture-bundle":  # the bundle's own CSV and --version sections agree with its -q
        assert a.facts["csv_gpu_count"] == count
        assert a.facts["version_section_driver"] == driver


@pytest.mark.parametrize("name", sorted(LOGS))
def test_kernel_log_xids(real_fixtures: Path, name: str) -> None:
    codes, lines, pcis = LOGS[name]
    text = (real_fixtures / name).read_text()
    a = analyze_file(real_fixtures / name)
    assert a.kind == "kernel-log"
    assert a.facts["xid_codes"] == codes
    assert a.facts["xid_events"] == lines == text.count("NVRM: Xid")
    assert a.facts["gpus_with_xid"] == pcis


@pytest.mark.parametrize("name", sorted(IB))
def test_ibstat_port_states(real_fixtures: Path, name: str) -> None:
    states, rates = IB[name]
    text = (real_fixtures / name).read_text()
    ports = parse_logs.parse_ibstat(text)
    assert {s: sum(1 for p in ports if p.state == s) for s in {p.state for p in ports}} == states
    assert {r: sum(1 for p in ports if p.rate_gbps == r) for r in {p.rate_gbps for p in ports}} == rates
    assert len(ports) == len(re.findall(r"(?im)^\s*state:", text))
    assert analyze_file(real_fixtures / name).kind == "ibstat"


@pytest.mark.parametrize("name", sorted(NVLINK))
def test_nvlink_status(real_fixtures: Path, name: str) -> None:
    links, down = NVLINK[name]
    a = analyze_file(real_fixtures / name)
    assert (a.kind, a.facts["links"], a.facts["down"]) == ("nvlink-status", links, down)


def test_xml_details_a10g(real_fixtures: Path) -> None:
    rep = parse_smi.parse_xml((real_fixtures / "telegraf_nvsmi_q_x_a10g.xml").read_text())
    g = rep.gpus[0]
    assert (g.temperature_c, g.persistence_mode, g.pcie_width_current, g.pcie_width_max) == (
        17.0,
        "Disabled",
        8,
        16,
    )
    assert (g.remap_pending, g.remap_failure, g.remap_correctable, g.remap_uncorrectable) == (
        False,
        False,
        0,
        0,
    )
    assert [(p.pid, p.name, p.used_mib) for p in g.processes] == [(725, "/usr/lib/xorg/Xorg", 22.0)]


def test_text_details_real_faults(real_fixtures: Path) -> None:
    a10 = parse_smi.parse_text(
        (real_fixtures / "gpud_nvidia-smi-query.535.129.03.out.0.valid.a10.txt").read_text()
    )
    g = a10.gpus[0]
    assert (g.remap_uncorrectable, g.remap_pending, g.remap_failure) == (4, True, False)
    h100 = parse_smi.parse_text(
        (real_fixtures / "gpud_nvidia-smi-query.535.161.08.out.0.valid.txt").read_text()
    )
    assert h100.gpus[0].bus_id == "00000000:19:00.0"
    assert set(h100.gpus[0].throttle_active) == {"hw_slowdown", "hw_power_brake_slowdown"}
    bad = parse_smi.parse_text((real_fixtures / "azhc_bad_nvsmi8_output.txt").read_text())
    assert [(g.retired_sbe, g.retired_dbe) for g in bad.gpus][:2] == [(60, 5), (2, 61)]
    r4090 = parse_smi.parse_text(
        (real_fixtures / "gpud_nvidia-smi-query.535.154.05.out.0.valid.txt").read_text()
    )
    assert [(p.pid, p.used_mib) for p in r4090.gpus[0].processes] == [(58130, 20322.0)]


def test_bundle_csv_matches_q(real_fixtures: Path) -> None:
    text = (real_fixtures / "nvgpuexp_capture_linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt").read_text()
    sections = bundle_sections(text)
    q = parse_smi.parse_text(next(b for _, c, b in sections if c == "nvidia-smi -q"))
    csv = parse_smi.parse_csv(next(b for _, c, b in sections if "--query-gpu=" in c))
    assert [(g.name, g.uuid, g.pcie_width_max) for g in csv.gpus] == [
        (g.name, g.uuid, g.pcie_width_max) for g in q.gpus
    ]
    assert csv.driver_version == q.driver_version == "590.48.01"


@pytest.mark.parametrize(
    "name",
    [
        "gpud_lspci.nn.a100.txt",
        "ref_xid_catalog_from_gpud.csv",
        "gpud_host_file_file-nr",
        "meta_gcm_sample-sinfo-output.txt",
    ],
)
def test_other_files_are_refused_in_one_line(real_fixtures: Path, name: str) -> None:
    with pytest.raises(AnalyzeError, match="not a capture"):
        analyze_file(real_fixtures / name)


def test_xid_times_from_each_log_form() -> None:
    iso = (
        "2024-11-15T12:02:03,470068+00:00 NVRM: Xid (PCI:0000:19:00): 79, pid=1, GPU has fallen off the bus."
    )
    (e,) = parse_logs.parse_xids(iso)
    assert (e.xid, e.pci, round(e.time or 0, 3)) == (79, "0000:19:00", 1731672123.470)
    journal = "2025-01-02T15:20:12+0800 host kernel: NVRM: Xid (PCI:0000:3b:00): 48, pid=2, Double Bit ECC"
    assert parse_logs.parse_xids(journal)[0].time == 1735802412.0
    kmsg = "4,100,5000000,-;NVRM: Xid (PCI:0000:3b:00): 13, pid=3, Graphics Exception"
    assert parse_logs.parse_xids(kmsg, boot_time=1000.0)[0].time == 1005.0
    raw = "[   12.500000] NVRM: Xid (PCI:0000:3b:00): 31, pid=4, MMU Fault"
    assert parse_logs.parse_xids(raw)[0].time is None
    assert parse_logs.parse_xids(raw, boot_time=100.0)[0].time == 112.5


def test_mount_info_captures(real_fixtures: Path) -> None:
    """df/mount information: findmnt --json (sizes, Use%) and /proc/self/mountinfo (mount table)."""
    a = analyze_file(real_fixtures / "gpud_host_disk_findmnt.0.json")
    assert a.kind == "findmnt-json"
    (root,) = a.facts["mounts"]
    assert (root["target"], root["fstype"], root["used_pct"]) == ("/", "ext4", 24.0)  # "use%": "24%"
    assert root["size"] == int(1.7 * 1024**4) and root["free"] == int(1.2 * 1024**4)  # "1.7T", "1.2T"
    assert [(r.check, r.verdict) for r in a.results] == [("host.disk", "OK")]

    text = (real_fixtures / "gpud_host_disk_mountinfo").read_text()
    entries = parse_logs.parse_mountinfo(text)
    assert len(entries) == text.count(" - ") == 171
    assert entries[0] == ("/", "ext4", "/dev/mapper/vgroot-lvroot")
    assert sum(1 for _, t, _ in entries if t == "tmpfs") == 54
    meta = parse_logs.parse_mountinfo(
        (real_fixtures / "meta_gcm_sample-proc-self-mountinfo-output.txt").read_text()
    )
    assert meta == [
        ("/logs", "nfs", "node101:/syslog"),
        ("/le/cmd", "nfs", "node104:/cmd"),
        ("/public", "nfs", "node101:/public"),
    ]
    assert analyze_file(real_fixtures / "gpud_host_disk_mountinfo").kind == "mountinfo"
    assert (
        parse_logs.parse_mountinfo("36 35 98:0 /mnt1 /mnt\\040two rw - ext3 /dev/root rw")[0][0] == "/mnt two"
    )


def test_probe_cuts_only_what_parse_xml_never_reads(real_fixtures: Path) -> None:
    """The health probe strips parse_smi.XML_UNREAD from -q -x before parsing (probe.facts_from_raw): every
    real capture must give the same report with and without those sections, and lose most of its size."""
    from dccli.health import parse_smi

    strip = parse_smi.strip_elements
    captures = sorted(real_fixtures.glob("*.xml"))
    assert len(captures) >= 10
    for path in captures:
        text = path.read_text()
        cut = strip(text, parse_smi.XML_UNREAD)
        assert parse_smi.parse_xml(cut) == parse_smi.parse_xml(text), path.name
        if "<gpu_power_readings>" in text or "<power_readings>" in text:
            assert len(cut) < len(text) * 0.75, path.name
