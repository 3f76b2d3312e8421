"""Rendering: consoles (stdout = data, stderr = progress/diagnostics), renderers, JSON encoding."""
