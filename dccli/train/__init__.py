"""Multi-node training runs: torchrun on every node under a small supervisor, watched from here."""
