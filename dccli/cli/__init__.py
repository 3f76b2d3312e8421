"""Typer front end. Each module registers one command group; none imports paramiko, SQL or YAML at import time."""

# Command modules, each exposing register(app). Order is the order in --help.
REGISTERED: tuple[str, ...] = ("inventory", "nodeset", "run", "facts", "hosts", "keys", "backup", "health", "status", "lab", "train", "provision")
