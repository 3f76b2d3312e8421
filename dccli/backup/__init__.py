"""Backups with restic: profiles from the inventory, runs fanned out over hosts, cron schedules, restores,
verification and pruning (docs/backup.md). Pure modules (profile, plan, restic, schedule) build values and
argv lists; run/restore/verify/prune talk to hosts; records.py keeps results in the state DB."""
