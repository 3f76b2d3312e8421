"""The inventory: node-set syntax, the frozen model, the YAML loader with file:line errors, and exporters."""
