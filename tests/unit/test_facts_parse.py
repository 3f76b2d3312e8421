"""Fact parsers against real nvidia-smi captures from ../shared/fixtures/real."""

from __future__ import annotations

import re

import pytest

from dccli.facts import parse
from dccli.facts.model import build

CAPTURES = [
    ("nvgpuexp_capture_linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt", "NVIDIA H100 80GB HBM3", "590.48.01", "13.1"),
    ("nvgpuexp_capture_linux-x86_64__nvidia-l40s__595.80.txt", "NVIDIA L40S", "595.80", None),
    ("nvgpuexp_capture_linux-x86_64__nvidia-geforce-rtx-4080-super__595.71.05.txt", "NVIDIA GeForce RTX 4080 SUPER", "595.71.05", None),
]


def section(text: str, title: str) -> str:
    """The body of one '# <title>' section of an nvidia_gpu_exporter capture."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# ") and title in line)
    body = []
    for line in lines[start + 1:]:
        if line.startswith("#####") and body:
            break
        if line.startswith("#"):
            continue
        body.append(line)
    return "\n".join(body).strip()


@pytest.mark.parametrize(("name", "model", "driver", "cuda"), CAPTURES)
def test_query_csv_from_real_captures(real_fixtures, name, model, driver, cuda):
    text = (real_fixtures / name).read_text()
    rows = parse.parse_query_csv(section(text, "idle :: query-gpu"))
    assert rows, "no GPU row parsed"
    gpu = rows[0]
    assert gpu["name"] == model
    assert gpu["driver_version"] == driver
    assert re.fullmatch(r"\d+", gpu["memory.total"] or ""), gpu["memory.total"]  # unit stripped
    assert gpu["pci.bus_id"].count(":") == 2
    version = parse.parse_smi_version(section(text, "capabilities :: version"))
    assert version["driver_version"] == driver
    if cuda:
        assert version["cuda_version"] == cuda


def test_header_units_and_na_values(real_fixtures):
    text = (real_fixtures / CAPTURES[0][0]).read_text()
    gpu = parse.parse_query_csv(section(text, "load :: query-gpu"))[0]
    assert gpu["utilization.gpu"] == "100"  # "100 %" -> "100", header "utilization.gpu [%]"
    assert gpu["power.draw"] == "631.95"
    assert gpu["vgpu_driver_capability.heterogenous_multivGPU"] is None  # [N/A]
    assert gpu["display_mode"] is None  # "[Requested functionality has been deprecated]"


@pytest.mark.parametrize("name", [
    "gpud_nvidia-smi-query.535.161.08.out.0.valid.txt",
    "gpud_nvidia-smi.550.90.07.out.0.valid.txt",
])
def test_cuda_version_from_q_and_table(real_fixtures, name):
    assert re.fullmatch(r"\d+\.\d+", parse.parse_cuda_from_q((real_fixtures / name).read_text()) or "")


def test_build_facts_from_raw_sources(real_fixtures):
    text = (real_fixtures / CAPTURES[0][0]).read_text()
    raw = {
        "hostname": "gpu01",
        "kernel": "5.15.0-185-generic",
        "machine": "x86_64",
        "os_release": 'PRETTY_NAME="Ubuntu 22.04.5 LTS"\nID=ubuntu\nVERSION_ID="22.04"\n',
        "cpuinfo": "processor\t: 0\nmodel name\t: AMD EPYC 9654 96-Core Processor\n",
        "cpu_count": 192,
        "meminfo": "MemTotal:       2113389100 kB\nMemAvailable:   2000000000 kB\n",
        "disks": {"/": {"fstype": "ext4", "size": 100, "free": 40}},
        "nvidia_smi": {
            "query": {"rc": 0, "stdout": section(text, "idle :: query-gpu")},
            "version": {"rc": 0, "stdout": section(text, "capabilities :: version")},
        },
        "infiniband": {"mlx5_0/1": {"state": "4: ACTIVE", "rate": "400 Gb/sec (4X NDR)"}},
        "uptime": "1234.5 100.0",
    }
    facts = build("gpu01", raw)
    assert facts.os == "Ubuntu 22.04.5 LTS" and facts.os_version == "22.04"
    assert facts.memory_bytes == 2113389100 * 1024
    assert facts.cpu_model == "AMD EPYC 9654 96-Core Processor"
    assert [g.name for g in facts.gpus] == ["NVIDIA H100 80GB HBM3"]
    assert facts.gpus[0].memory_total_mib == 81559
    assert facts.driver_version == "590.48.01" and facts.cuda_version == "13.1"
    assert facts.infiniband[0].name == "mlx5_0/1"
    assert facts.to_dict()["gpus"][0]["uuid"].startswith("GPU-")


def test_os_release_and_meminfo_edge_cases():
    assert parse.parse_os_release("# c\nNAME='Debian'\nBAD LINE\nX=\"a=b\"\n") == {"NAME": "Debian", "X": "a=b"}
    assert parse.parse_meminfo("HugePages_Total:       0\nMemTotal: 2 kB\n") == {"HugePages_Total": 0, "MemTotal": 2048}
