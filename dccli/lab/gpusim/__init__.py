"""SIMULATED GPU tooling for lab hosts: `nvidia-smi`, kernel-log Xid lines, and the state they render.

Stdlib only (Python 3.8+), no imports here: the package is copied into each lab host as
/usr/lib/dccli-gpusim/gpusim and started by /usr/bin/nvidia-smi, /usr/local/bin/dmesg and
/usr/local/bin/journalctl launchers. docs/lab.md ("GPU simulation") documents the files and formats.
"""
