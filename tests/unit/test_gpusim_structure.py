"""The simulated nvidia-smi has the STRUCTURE of real captures (../shared/fixtures/real).

Small pure structure extractors below reduce both outputs to what a parser depends on: XML element paths,
`-q` key paths with their indentation and key column, CSV header cells and value units, the table's frame,
topo's tab layout. The simulator's output and the real capture go through the same extractor.
"""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from dccli.lab.gpusim import cli, model, query, render_text

NOW = 1_750_000_000.0
H100_CAPTURE = "nvgpuexp_capture_linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt"


# ---------------------------------------------------------------- structure extractors (pure)


def xml_paths(text: str) -> set[str]:
    """Every element path (/a/b/c) in an XML document; repeated children count once."""
    root = ET.fromstring(text.encode())  # expat skips the external DOCTYPE
    out: set[str] = set()

    def walk(el: ET.Element, prefix: str) -> None:
        path = f"{prefix}/{el.tag}"
        out.add(path)
        for child in el:
            walk(child, path)

    walk(root, "")
    return out


def q_structure(text: str) -> tuple[set[str], set[int]]:
    """`nvidia-smi -q` text -> (set of 'Section/Sub/Key' paths under a GPU, set of colon columns)."""
    paths: set[str] = set()
    colons: set[int] = set()
    stack: list[tuple[int, str]] = []
    in_gpu = False
    for line in text.splitlines():
        if not line.strip() or line.startswith("="):
            continue
        if line.startswith("GPU "):
            in_gpu, stack = True, []
            continue
        if not in_gpu:
            if ":" in line:
                colons.add(line.index(" : ") + 1 if " : " in line else line.index(":"))
            continue
        indent = len(line) - len(line.lstrip(" "))
        key = line.split(" : ")[0].strip() if " : " in line else line.strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        paths.add("/".join([k for _, k in stack] + [f"{key}@{indent}"]))
        if " : " in line:
            colons.add(line.index(" : ") + 1)
        else:
            stack.append((indent, key))
    return paths, colons


def csv_structure(text: str) -> tuple[list[str], list[str]]:
    """(header cells, unit of each cell of the first data row: 'MiB', '%', '' or '[N/A]')."""
    lines = text.strip().splitlines()
    header = lines[0].split(", ")
    units = []
    for value in lines[1].split(", "):
        m = re.fullmatch(r"-?[\d.]+ (\S+)", value)
        units.append("[N/A]" if value == "[N/A]" else (m.group(1) if m else ""))
    return header, units


def capture_sections(path: Path) -> dict[str, tuple[str, str]]:
    """nvgpuexp capture bundle -> {section title: (command, body)}."""
    text = path.read_text(encoding="utf-8", errors="replace")
    parts = re.split(r"\n#{80}\n# (.*?)\n(?:# \$ (.*?)\n)?#{80}\n", "\n" + text)
    return {parts[i]: (parts[i + 1] or "", parts[i + 2]) for i in range(1, len(parts) - 2, 3)}


# ---------------------------------------------------------------- simulator fixtures


def sim_state(gpu_model: str = "H100-SXM5-80GB", count: int = 8) -> dict:
    state = model.new_state(gpu_model, count, "structure-test")
    state["gpus"][0]["processes"] = [{"pid": 4242, "name": "/usr/bin/python", "used_memory_mib": 9212}]
    state = model.apply_fault(state, "ecc_dbe", count - 1, 2)
    return model.apply_fault(state, "row_remap_pending", count // 2)


def run(argv: list[str], state: dict | None = None) -> tuple[str, int]:
    return cli.render(cli.parse(argv), state or sim_state(), NOW)


# ---------------------------------------------------------------- -q -x


def test_xml_paths_are_real_ones(real_fixtures: Path) -> None:
    real: set[str] = set()
    for path in real_fixtures.glob("telegraf_nvsmi_q_x_*.xml"):
        real |= xml_paths(path.read_text())
    for gpu_model in model.MODELS:
        text, code = run(["-q", "-x"], sim_state(gpu_model))
        assert code == 0
        sim = xml_paths(text)
        assert sim - real == set(), f"{gpu_model}: elements no real capture has"


def test_xml_has_every_element_of_the_a100_capture(real_fixtures: Path) -> None:
    ref = xml_paths((real_fixtures / "telegraf_nvsmi_q_x_a100-sxm4-v12.xml").read_text())
    # That capture's GPUs are in MIG mode: MIG device details replace a non-MIG GPU's plain "None".
    ref = {p for p in ref if "/mig_devices/" not in p}
    sim = xml_paths(run(["-q", "-x"])[0])
    assert ref - sim == set()


def test_xml_root_and_doctype() -> None:
    text = run(["-q", "-x"])[0]
    assert text.splitlines()[1] == '<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">'
    root = ET.fromstring(text.encode())
    assert root.findtext("attached_gpus") == "8"
    assert len(root.findall("gpu")) == 8


# ---------------------------------------------------------------- -q text


def test_q_text_matches_the_8x_h100_535_capture(real_fixtures: Path) -> None:
    real = (real_fixtures / "gpud_nvidia-smi-query.535.183.01.out.0.valid.txt").read_text()
    real_paths, real_colons = q_structure(real)
    sim_paths, sim_colons = q_structure(run(["-q"])[0])
    assert sim_paths == real_paths
    assert sim_colons == real_colons == {42}


def test_q_text_header_lines(real_fixtures: Path) -> None:
    real = (real_fixtures / "gpud_nvidia-smi-query.535.183.01.out.0.valid.txt").read_text().splitlines()
    sim = run(["-q"])[0].splitlines()
    # Real nvidia-smi starts with an empty line (the azhc and nvgpuexp captures keep it; gpud stripped it).
    keys = lambda lines: [line.split(":")[0] for line in lines[lines[0] == "" :][:8]]  # noqa: E731
    assert keys(sim) == keys(real)


def test_q_display_page_retirement_matches_azure_capture(real_fixtures: Path) -> None:
    real = (real_fixtures / "azhc_orig_nvsmi8_output.txt").read_text()
    sim = run(["-q", "-d", "PAGE_RETIREMENT"])[0]
    assert q_structure(sim) == q_structure(real)
    assert [line for line in sim.splitlines() if line.startswith("GPU ")].__len__() == 8


@pytest.mark.parametrize("display", ["ECC", "ROW_REMAPPER", "TEMPERATURE", "PERFORMANCE"])
def test_q_display_sections_are_the_full_query_sections(real_fixtures: Path, display: str) -> None:
    full, _ = q_structure((real_fixtures / "gpud_nvidia-smi-query.535.183.01.out.0.valid.txt").read_text())
    sim, _ = q_structure(run(["-q", "-d", display])[0])
    assert sim and sim <= full
    tops = {p.split("/")[0].split("@")[0] for p in sim}
    assert tops == set(render_text.DISPLAY_SECTIONS[display])


def test_q_display_combined_keeps_full_query_order() -> None:
    text = run(["-q", "-d", "TEMPERATURE,ECC,ROW_REMAPPER,PAGE_RETIREMENT,PERFORMANCE"])[0]
    block = text.split("GPU 00000000:18:00.0\n")[1].split("\n\n")[0]
    tops = [
        line.strip()
        for line in block.splitlines()
        if line.startswith("    ") and not line.startswith("     ")
    ]
    tops = [t.split(" : ")[0].strip() for t in tops]
    assert tops == [
        "Performance State",
        "Clocks Event Reasons",
        "ECC Mode",
        "ECC Errors",
        "Retired Pages",
        "Remapped Rows",
        "Temperature",
    ]


# ---------------------------------------------------------------- --query-gpu CSV


def test_query_gpu_header_and_units_match_h100_capture(real_fixtures: Path) -> None:
    command, body = capture_sections(real_fixtures / H100_CAPTURE)[
        "idle :: query-gpu (csv, what the exporter parses)"
    ]
    fields = command.split("=", 1)[1].split(" ")[0]
    text, code = run([f"--query-gpu={fields}", "--format=csv"], sim_state(count=1))
    assert code == 0
    real_header, real_units = csv_structure(body)
    sim_header, sim_units = csv_structure(text)
    assert sim_header == real_header
    for name, real_unit, sim_unit in zip(real_header, real_units, sim_units, strict=True):
        if real_unit not in ("", "[N/A]") and sim_unit != "[N/A]":
            assert sim_unit == real_unit, name


def test_query_gpu_noheader_nounits() -> None:
    text, _ = run(
        ["--query-gpu=index,memory.total,power.draw,temperature.gpu", "--format=csv,noheader,nounits"]
    )
    first = text.splitlines()[0]
    assert re.fullmatch(r"0, 81559, \d+\.\d\d, \d+", first)
    assert len(text.splitlines()) == 8


def test_query_gpu_aliases_and_unknown_field() -> None:
    text, _ = run(["--query-gpu=gpu_name,gpu_bus_id", "--format=csv"])
    assert text.splitlines()[0] == "gpu_name, gpu_bus_id"
    assert text.splitlines()[1] == "NVIDIA H100 80GB HBM3, 00000000:18:00.0"
    with pytest.raises(cli.Usage) as err:
        run(["--query-gpu=name,bogus", "--format=csv"])
    assert (str(err.value), err.value.code) == ('Field "bogus" is not a valid field to query.', 2)


def test_every_documented_field_is_accepted() -> None:
    names = ",".join(name for name, _, _ in query.GPU_FIELDS)
    text, code = run([f"--query-gpu={names}", "--format=csv"], sim_state(count=1))
    assert code == 0 and len(text.splitlines()[1].split(", ")) >= len(query.GPU_FIELDS)


def test_compute_apps_header_matches_capture(real_fixtures: Path) -> None:
    command, body = capture_sections(real_fixtures / H100_CAPTURE)["idle :: query-compute-apps (per-process)"]
    text, _ = run([command.split()[1], "--format=csv"])
    assert text.splitlines()[0] == body.strip().splitlines()[0]
    assert text.splitlines()[1].endswith(", 4242, /usr/bin/python, 9212 MiB")


def test_retired_pages_header_matches_capture(real_fixtures: Path) -> None:
    command, body = capture_sections(real_fixtures / H100_CAPTURE)["idle :: query-retired-pages"]
    state = model.apply_fault(sim_state(), "retired_pages", 0, 2)
    text, _ = run([command.split()[1], "--format=csv"], state)
    assert text.splitlines()[0] == body.strip().splitlines()[0]
    assert len(text.splitlines()) == 3 and text.splitlines()[1].endswith("Double Bit ECC")


# ---------------------------------------------------------------- table, -L, topo, --version


def test_default_table_frame_matches_550_capture(real_fixtures: Path) -> None:
    real = (real_fixtures / "gpud_nvidia-smi.550.90.07.out.0.valid.txt").read_text().splitlines()
    sim = run([])[0].splitlines()
    frame = lambda lines: [re.sub(r"[^|+=\-]", " ", line) for line in lines[1:]]  # noqa: E731
    assert frame(sim)[: len(frame(real)) - 2] == frame(real)[:-2]  # processes differ: one running here
    assert {len(line) for line in sim[1:] if line} == {91}
    assert sim[4:8] == real[4:8]


def test_default_table_row_positions_match_capture(real_fixtures: Path) -> None:
    real = (real_fixtures / "gpud_nvidia-smi.550.90.07.out.0.valid.txt").read_text().splitlines()
    state = model.new_state("H100-SXM5-80GB", 1, "x")
    gpu = state["gpus"][0]
    gpu.update(temperature_gpu=27, power_draw_w=72.0, memory_used_mib=1, pci_bus_id="00000000:19:00.0")
    state.update(driver_version="550.90.07", cuda_version="12.4")
    sim = render_text.table(state, state["gpus"], real[0]).splitlines()
    assert sim[:11] == real[:11]


def test_list_gpus_format(real_fixtures: Path) -> None:
    _, body = capture_sections(real_fixtures / H100_CAPTURE)["capabilities :: list (-L)"]
    pattern = re.compile(r"GPU \d+: NVIDIA [^(]+ \(UUID: GPU-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\)")
    assert pattern.fullmatch(body.strip())
    assert all(pattern.fullmatch(line) for line in run(["-L"])[0].splitlines())


def test_topo_layout_matches_capture(real_fixtures: Path) -> None:
    _, body = capture_sections(real_fixtures / H100_CAPTURE)["capabilities :: topo -m"]
    real = body.strip("\n").splitlines()
    sim = run(["topo", "-m"])[0].splitlines()
    assert sim[0].startswith("\t\x1b[4mGPU0\t") and sim[0].endswith(
        "\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\x1b[0m"
    )
    assert real[0].endswith(sim[0][-len("\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\x1b[0m") :])
    assert sim[-9:] == real[-9:]  # the legend
    row = sim[1].split("\t")
    assert row[0] == "GPU0" and row[1] == " X " and row[2] == "NV18" and row[-2:] == ["", "N/A"]


def test_version_keys_match_capture(real_fixtures: Path) -> None:
    _, body = capture_sections(real_fixtures / H100_CAPTURE)["capabilities :: version"]
    keys = lambda text: [line.split(":")[0] for line in text.strip().splitlines()]  # noqa: E731
    sim = run(["--version"])[0]
    assert keys(sim)[:4] == keys(body)
    assert "Simulated" in sim


def test_timestamp_formats() -> None:
    assert re.search(r"Timestamp\s+: \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}", run(["-q"])[0])
    text = run(["--query-gpu=timestamp", "--format=csv,noheader"])[0]
    assert re.fullmatch(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d{3}", text.splitlines()[0])
    assert time.time() > NOW  # NOW is a fixed past instant: output never depends on the wall clock here
