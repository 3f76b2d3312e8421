"""SSH key rotation and host trust without lockouts (docs/keys.md).

Modules: model (values), authorized (pure authorized_keys edits), store (dccli's key pairs on the
control node), authfile (authorized_keys over SFTP, atomic), rotate (the per-host protocol), ca (user CA,
certificates, KRL), sshdconf (pure sshd_config edits), hostkeys_rotate, audit (state DB), status.
"""
