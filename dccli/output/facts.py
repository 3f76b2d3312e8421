"""The facts table."""

from __future__ import annotations


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def facts_table(facts: list):
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("host", "os", "kernel", "cpus", "memory", "root free", "gpus", "driver", "cuda", "ib"):
        table.add_column(col, no_wrap=True)
    for f in facts:
        root = next((d for d in f.disks if d.mount == "/"), None)
        models = sorted({g.name for g in f.gpus})
        gpus = f"{len(f.gpus)}x {models[0]}" if len(models) == 1 else (", ".join(models) or "-")
        ib = ",".join(f"{p.name}:{p.state.split(':')[-1].strip()}" for p in f.infiniband) or "-"
        table.add_row(
            f.host, f.os, f.kernel, str(f.cpus), human_bytes(f.memory_bytes),
            human_bytes(root.free_bytes) if root else "-", gpus,
            f.driver_version or "-", f.cuda_version or "-", ib,
        )
    return table
