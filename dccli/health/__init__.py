"""Health checks: parsers, the Xid catalogue, checks, thresholds, the probe, history and formats."""
