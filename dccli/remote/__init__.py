"""The stdlib-only helper that runs ON a host, and the control side of its wire protocol."""
