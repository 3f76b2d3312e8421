"""SQLite state under $DCCLI_HOME: WAL mode, additive migrations, JSON (never pickle) for structured columns."""
