"""NVIDIA's Xid catalogue (data/xid_catalog.csv, copied from gpud with its source line and licence).

Each code's severity comes from the catalogue's immediate resolution: what NVIDIA tells an operator to
do first. Codes the catalogue does not know are WARN with "look the code up".
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from dccli.health.model import CRIT, OK, WARN

SOURCE = "NVIDIA Xid catalog (docs.nvidia.com/deploy/xid-errors), via gpud's catalog_generated.go"

# Immediate resolution -> verdict. A reset, reboot or RMA takes the node out of service: CRIT.
# Restarting the application is the app's problem, but the node should be watched: WARN.
_SEVERITY = {
    "IGNORE": OK,
    "RESTART_APP": WARN,
    "CHECK_UVM": WARN,
    "CHECK_MECHANICALS": CRIT,
    "UPDATE_SWFW": WARN,
    "RESET_GPU": CRIT,
    "RESTART_BM": CRIT,
    "RESTART_VM": CRIT,
    "CONTACT_SUPPORT": CRIT,
    "WORKFLOW_XID_45": WARN,
    "WORKFLOW_XID_48": CRIT,
    "WORKFLOW_NVLINK_ERR": CRIT,
    "WORKFLOW_NVLINK5_ERR": CRIT,
    "XID_154": WARN,
}

_ACTIONS = {
    "IGNORE": "no action (informational)",
    "RESTART_APP": "restart the application",
    "RESET_GPU": "drain the node and reset the GPU (nvidia-smi -r) or reboot",
    "RESTART_BM": "drain the node and reboot it (power cycle if the GPU stays missing)",
    "RESTART_VM": "drain the node and restart the VM",
    "CONTACT_SUPPORT": "drain the node and open a hardware ticket (RMA)",
    "CHECK_MECHANICALS": "drain the node and check cooling, power and seating",
    "UPDATE_SWFW": "update the driver/firmware",
    "WORKFLOW_XID_48": "drain the node; double-bit ECC: reset the GPU, RMA if it repeats",
    "WORKFLOW_XID_45": "follow the Xid that preceded it",
    "WORKFLOW_NVLINK_ERR": "drain the node; check NVLink (nvidia-smi nvlink -e), reset, RMA if it repeats",
    "WORKFLOW_NVLINK5_ERR": "drain the node; check NVLink (nvidia-smi nvlink -e), reset, RMA if it repeats",
}


@dataclass(frozen=True)
class XidInfo:
    code: int
    mnemonic: str
    description: str
    resolution: str
    investigation: str

    @property
    def severity(self) -> str:
        return _SEVERITY.get(self.resolution, WARN)  # unknown resolutions: look at it

    @property
    def action(self) -> str:
        return _ACTIONS.get(
            self.resolution, f"see NVIDIA's Xid catalogue ({self.resolution or 'no resolution'})"
        )


@lru_cache(maxsize=1)
def catalog() -> dict[int, XidInfo]:
    text = resources.files("dccli.health").joinpath("data/xid_catalog.csv").read_text()
    out = {}
    for row in csv.DictReader(io.StringIO(text)):
        code = int(row["xid"])
        out[code] = XidInfo(
            code,
            row["mnemonic"],
            row["description"],
            row["immediate_resolution"],
            row["investigatory_resolution"],
        )
    return out


def lookup(code: int) -> XidInfo:
    return catalog().get(code) or XidInfo(code, "UNKNOWN", "not in the catalogue", "", "")
