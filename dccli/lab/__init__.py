"""The lab: a simulated cluster on one machine (namespaces + overlayfs + OpenSSH sshd per host).

Public API: dccli.lab.manager (lab_up, lab_down, lab_status), dccli.lab.host (host_exec, sshd_stop,
sshd_start, regenerate_host_keys), dccli.lab.registry (active_lab_inventory). See docs/lab.md.
"""
