"""`dccli backup prune`: forget by each profile's policy, then prune (implemented beside verify, which
shares the stale-lock clearing); this module is the name the CLI imports."""

from dccli.backup.verify import PruneResult, prune

__all__ = ["PruneResult", "prune"]
