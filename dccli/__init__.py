"""dccli: one inventory, the whole GPU cluster."""

__version__ = "0.1.0"
