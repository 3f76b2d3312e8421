"""Step kinds for the remote helper, one file per capability. Each file is stdlib-only Python 3.6+ and is
concatenated after helper.py, so it uses the core's names (handler, emit, run, read_text, which) directly."""
