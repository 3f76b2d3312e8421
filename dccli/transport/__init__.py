"""SSH and local connections: paramiko, a per-command pool, strict host keys, ~/.ssh/config, ProxyJump."""
