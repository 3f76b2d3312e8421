"""SIMULATION: a tiny `torch` wheel for the lab's wheelhouse, so python-env.yml's air-gapped mode runs in the
lab without downloading PyTorch. It is a valid wheel (PEP 427) whose package only records that it is simulated.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

TORCH_VERSION = "2.5.1+dccli.sim"  # a local version label: `torch==2.5.1` matches it (PEP 440)


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def wheel_files(name: str, version: str) -> dict[str, bytes]:
    """The files of a pure-Python wheel (RECORD included), in a stable order."""
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": (
            f'"""SIMULATED {name} (dccli lab wheelhouse): not the real package, it only carries a version."""\n'
            f'__version__ = "{version}"\nSIMULATED = True\n'
        ).encode(),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            f"Summary: SIMULATED {name} built by dccli lab up (contains no PyTorch code)\n"
        ).encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: dccli-lab\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [_record_line(path, data) for path, data in files.items()] + [f"{dist_info}/RECORD,,"]
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    return files


def build_wheel(directory: Path, name: str = "torch", version: str = TORCH_VERSION) -> Path:
    """Write <name>-<version>-py3-none-any.whl into directory with fixed timestamps (same bytes every time)."""
    path = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in wheel_files(name, version).items():
            info = zipfile.ZipInfo(member, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return path
