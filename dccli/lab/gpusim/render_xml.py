"""SIMULATION: `nvidia-smi -q -x`. Element names and nesting follow the real nvsmi_device_v12 captures
(telegraf_nvsmi_q_x_a100-sxm4-v12.xml, driver 535.54.03; remapped_rows as in telegraf_nvsmi_q_x_a10g.xml).
Pure string building: no xml library, so the host's interpreter starts fast."""

from __future__ import annotations

from .model import MODELS

TYPE_CHECKING = False  # not `import typing`: it costs the simulator ~20 ms a call
if TYPE_CHECKING:
    from typing import Any


def escape(text: str) -> str:
    # Not xml.sax.saxutils.escape: importing it pulls in urllib and http.client (~40 ms per call).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


Elem = tuple  # (tag, text) or (tag, [children]) or (tag, [children], attrs)


def _throttle(gpu: dict[str, Any], reason: str) -> str:
    return "Active" if reason in gpu["throttle_reasons"] else "Not Active"


def gpu_elements(state: dict[str, Any], gpu: dict[str, Any]) -> list[Elem]:
    spec = MODELS[state["model"]]
    bus = gpu["pci_bus_id"]
    pcie = gpu["pcie"]
    ev, ea = gpu["ecc"]["volatile"], gpu["ecc"]["aggregate"]
    rp, rr = gpu["retired_pages"], gpu["row_remap"]
    free = gpu["memory_total_mib"] - gpu["memory_reserved_mib"] - gpu["memory_used_mib"]
    clocks = spec["clocks_idle"] if gpu["utilization_gpu"] == 0 else spec["clocks_max"]
    limit = f"{gpu['power_limit_w']:.2f} W"
    reasons = [
        ("clocks_event_reason_gpu_idle", "gpu_idle"),
        ("clocks_event_reason_applications_clocks_setting", "applications_clocks_setting"),
        ("clocks_event_reason_sw_power_cap", "sw_power_cap"),
        ("clocks_event_reason_hw_slowdown", "hw_slowdown"),
        ("clocks_event_reason_hw_thermal_slowdown", "hw_thermal_slowdown"),
        ("clocks_event_reason_hw_power_brake_slowdown", "hw_power_brake_slowdown"),
        ("clocks_event_reason_sync_boost", "sync_boost"),
        ("clocks_event_reason_sw_thermal_slowdown", "sw_thermal_slowdown"),
        ("clocks_event_reason_display_clocks_setting", "display_clock_setting"),
    ]
    processes: Any = [
        (
            "process_info",
            [
                ("gpu_instance_id", "N/A"),
                ("compute_instance_id", "N/A"),
                ("pid", str(p["pid"])),
                ("type", "C"),
                ("process_name", p["name"]),
                ("used_memory", f"{p['used_memory_mib']} MiB"),
            ],
        )
        for p in gpu["processes"]
    ]
    return [
        ("product_name", spec["name"]),
        ("product_brand", "NVIDIA"),
        ("product_architecture", spec["architecture"]),
        ("display_mode", "Disabled"),
        ("display_active", "Disabled"),
        ("persistence_mode", gpu["persistence_mode"]),
        ("addressing_mode", "None"),
        ("mig_mode", [("current_mig", "Disabled"), ("pending_mig", "Disabled")]),
        ("mig_devices", "None"),
        ("accounting_mode", "Disabled"),
        ("accounting_mode_buffer_size", "4000"),
        ("driver_model", [("current_dm", "N/A"), ("pending_dm", "N/A")]),
        ("serial", gpu["serial"]),
        ("uuid", gpu["uuid"]),
        ("minor_number", str(gpu["index"])),
        ("vbios_version", spec["vbios"]),
        ("multigpu_board", "No"),
        ("board_id", "0x" + bus[9:11].lower() + "00"),
        ("board_part_number", spec["board_part"]),
        ("gpu_part_number", spec["gpu_part"]),
        ("gpu_fru_part_number", "N/A"),
        ("gpu_module_id", str(gpu["index"] + 1)),
        (
            "inforom_version",
            [
                ("img_version", spec["inforom"][0]),
                ("oem_object", spec["inforom"][1]),
                ("ecc_object", spec["inforom"][2]),
                ("pwr_object", "N/A"),
            ],
        ),
        ("gpu_operation_mode", [("current_gom", "N/A"), ("pending_gom", "N/A")]),
        ("gsp_firmware_version", state["driver_version"]),
        ("gpu_virtualization_mode", [("virtualization_mode", "Pass-Through"), ("host_vgpu_mode", "N/A")]),
        ("gpu_reset_status", [("reset_required", "No"), ("drain_and_reset_recommended", "No")]),
        ("ibmnpu", [("relaxed_ordering_mode", "N/A")]),
        (
            "pci",
            [
                ("pci_bus", bus[9:11]),
                ("pci_device", bus[12:14]),
                ("pci_domain", bus[4:8]),
                ("pci_device_id", spec["device_id"][2:]),
                ("pci_bus_id", bus),
                ("pci_sub_system_id", spec["subsystem_id"][2:]),
                (
                    "pci_gpu_link_info",
                    [
                        (
                            "pcie_gen",
                            [
                                ("max_link_gen", str(pcie["gen_max"])),
                                ("current_link_gen", str(pcie["gen_current"])),
                                ("device_current_link_gen", str(pcie["gen_current"])),
                                ("max_device_link_gen", str(pcie["gen_max"])),
                                ("max_host_link_gen", str(pcie["gen_max"])),
                            ],
                        ),
                        (
                            "link_widths",
                            [
                                ("max_link_width", f"{pcie['width_max']}x"),
                                ("current_link_width", f"{pcie['width_current']}x"),
                            ],
                        ),
                    ],
                ),
                ("pci_bridge_chip", [("bridge_chip_type", "N/A"), ("bridge_chip_fw", "N/A")]),
                ("replay_counter", "0"),
                ("replay_rollover_counter", "0"),
                ("tx_util", "0 KB/s"),
                ("rx_util", "0 KB/s"),
                ("atomic_caps_inbound", "N/A"),
                ("atomic_caps_outbound", "N/A"),
            ],
        ),
        ("fan_speed", "N/A"),
        ("performance_state", gpu["pstate"]),
        ("clocks_event_reasons", [(tag, _throttle(gpu, r)) for tag, r in reasons]),
        (
            "fb_memory_usage",
            [
                ("total", f"{gpu['memory_total_mib']} MiB"),
                ("reserved", f"{gpu['memory_reserved_mib']} MiB"),
                ("used", f"{gpu['memory_used_mib']} MiB"),
                ("free", f"{free} MiB"),
            ],
        ),
        ("bar1_memory_usage", [("total", "131072 MiB"), ("used", "1 MiB"), ("free", "131071 MiB")]),
        ("cc_protected_memory_usage", [("total", "0 MiB"), ("used", "0 MiB"), ("free", "0 MiB")]),
        ("compute_mode", "Default"),
        (
            "utilization",
            [
                ("gpu_util", f"{gpu['utilization_gpu']} %"),
                ("memory_util", f"{gpu['utilization_memory']} %"),
                ("encoder_util", "0 %"),
                ("decoder_util", "0 %"),
                ("jpeg_util", "0 %"),
                ("ofa_util", "0 %"),
            ],
        ),
        ("encoder_stats", [("session_count", "0"), ("average_fps", "0"), ("average_latency", "0")]),
        ("fbc_stats", [("session_count", "0"), ("average_fps", "0"), ("average_latency", "0")]),
        ("ecc_mode", [("current_ecc", "Enabled"), ("pending_ecc", "Enabled")]),
        (
            "ecc_errors",
            [
                (
                    "volatile",
                    [
                        ("sram_correctable", "0"),
                        ("sram_uncorrectable", "0"),
                        ("dram_correctable", str(ev["sbe"])),
                        ("dram_uncorrectable", str(ev["dbe"])),
                    ],
                ),
                (
                    "aggregate",
                    [
                        ("sram_correctable", "0"),
                        ("sram_uncorrectable", "0"),
                        ("dram_correctable", str(ea["sbe"])),
                        ("dram_uncorrectable", str(ea["dbe"])),
                    ],
                ),
            ],
        ),
        (
            "retired_pages",
            [
                (
                    "multiple_single_bit_retirement",
                    [("retired_count", str(rp["sbe"])), ("retired_pagelist", "")],
                ),
                ("double_bit_retirement", [("retired_count", str(rp["dbe"])), ("retired_pagelist", "")]),
                ("pending_blacklist", "Yes" if rp["pending"] else "No"),
                ("pending_retirement", "Yes" if rp["pending"] else "No"),
            ],
        ),
        (
            "remapped_rows",
            [
                ("remapped_row_corr", str(rr["correctable"])),
                ("remapped_row_unc", str(rr["uncorrectable"])),
                ("remapped_row_pending", "Yes" if rr["pending"] else "No"),
                ("remapped_row_failure", "Yes" if rr["failure"] else "No"),
                (
                    "row_remapper_histogram",
                    [
                        (
                            "row_remapper_histogram_max",
                            f"{spec['histogram_max'] - rr['correctable'] - rr['uncorrectable']} bank(s)",
                        ),
                        (
                            "row_remapper_histogram_high",
                            f"{min(rr['correctable'] + rr['uncorrectable'], 1)} bank(s)",
                        ),
                        ("row_remapper_histogram_partial", "0 bank(s)"),
                        ("row_remapper_histogram_low", "0 bank(s)"),
                        ("row_remapper_histogram_none", "0 bank(s)"),
                    ],
                ),
            ],
        ),
        (
            "temperature",
            [
                ("gpu_temp", f"{gpu['temperature_gpu']} C"),
                ("gpu_temp_tlimit", f"{spec['temp_max_op'] - gpu['temperature_gpu']} C"),
                ("gpu_temp_max_threshold", f"{spec['temp_shutdown']} C"),
                ("gpu_temp_slow_threshold", f"{spec['temp_slowdown']} C"),
                ("gpu_temp_max_gpu_threshold", f"{spec['temp_max_op']} C"),
                ("gpu_target_temperature", "N/A"),
                ("memory_temp", f"{gpu['temperature_memory']} C"),
                ("gpu_temp_max_mem_threshold", f"{spec['temp_mem_max']} C"),
            ],
        ),
        ("supported_gpu_target_temp", [("gpu_target_temp_min", "N/A"), ("gpu_target_temp_max", "N/A")]),
        (
            "gpu_power_readings",
            [
                ("power_state", gpu["pstate"]),
                ("power_draw", f"{gpu['power_draw_w']:.2f} W"),
                ("current_power_limit", limit),
                ("requested_power_limit", limit),
                ("default_power_limit", f"{spec['power_limit_w']:.2f} W"),
                ("min_power_limit", f"{spec['power_min_w']:.2f} W"),
                ("max_power_limit", f"{spec['power_limit_w']:.2f} W"),
            ],
        ),
        (
            "module_power_readings",
            [
                ("power_state", gpu["pstate"]),
                ("power_draw", "N/A"),
                ("current_power_limit", "N/A"),
                ("requested_power_limit", "N/A"),
                ("default_power_limit", "N/A"),
                ("min_power_limit", "N/A"),
                ("max_power_limit", "N/A"),
            ],
        ),
        ("clocks", _clocks(clocks)),
        (
            "applications_clocks",
            [
                ("graphics_clock", f"{spec['clocks_max'][0]} MHz"),
                ("mem_clock", f"{spec['clocks_max'][2]} MHz"),
            ],
        ),
        (
            "default_applications_clocks",
            [
                ("graphics_clock", f"{spec['clocks_max'][0]} MHz"),
                ("mem_clock", f"{spec['clocks_max'][2]} MHz"),
            ],
        ),
        ("deferred_clocks", [("mem_clock", "N/A")]),
        ("max_clocks", _clocks(spec["clocks_max"])),
        ("max_customer_boost_clocks", [("graphics_clock", f"{spec['clocks_max'][0]} MHz")]),
        ("clock_policy", [("auto_boost", "N/A"), ("auto_boost_default", "N/A")]),
        ("voltage", [("graphics_volt", "670.000 mV")]),
        ("fabric", [("state", "Completed"), ("status", "Success")]),
        (
            "supported_clocks",
            [
                (
                    "supported_mem_clock",
                    [("value", f"{spec['clocks_max'][2]} MHz")]
                    + [
                        ("supported_graphics_clock", f"{mhz} MHz")
                        for mhz in range(spec["clocks_max"][0], 209, -15)
                    ],
                )
            ],
        ),
        ("processes", processes),
        ("accounted_processes", []),
    ]


def _clocks(clocks: tuple) -> list[Elem]:
    graphics, sm, memory, video = clocks
    return [
        ("graphics_clock", f"{graphics} MHz"),
        ("sm_clock", f"{sm} MHz"),
        ("mem_clock", f"{memory} MHz"),
        ("video_clock", f"{video} MHz"),
    ]


def _emit(elem: Elem, level: int, out: list[str]) -> None:
    tag, value = elem[0], elem[1]
    attrs = "".join(f' {k}="{escape(v)}"' for k, v in (elem[2] if len(elem) > 2 else {}).items())
    pad = "\t" * level
    if isinstance(value, list):
        out.append(f"{pad}<{tag}{attrs}>")
        for child in value:
            _emit(child, level + 1, out)
        out.append(f"{pad}</{tag}>")
    elif value == "" and tag.endswith("pagelist"):
        out += [f"{pad}<{tag}>", f"{pad}</{tag}>"]  # an empty list, as the real tool prints it
    else:
        out.append(f"{pad}<{tag}{attrs}>{escape(value)}</{tag}>")


def query_xml(state: dict[str, Any], gpus: list[dict[str, Any]], timestamp: str) -> str:
    out = [
        '<?xml version="1.0" ?>',
        '<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v12.dtd">',
        "<nvidia_smi_log>",
        f"\t<timestamp>{timestamp}</timestamp>",
        f"\t<driver_version>{escape(state['driver_version'])}</driver_version>",
        f"\t<cuda_version>{escape(state['cuda_version'])}</cuda_version>",
        f"\t<attached_gpus>{len(state['gpus'])}</attached_gpus>",
    ]
    for gpu in gpus:
        _emit(("gpu", gpu_elements(state, gpu), {"id": gpu["pci_bus_id"]}), 1, out)
    out.append("</nvidia_smi_log>")
    return "\n".join(out) + "\n"
