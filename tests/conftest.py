"""Shared test settings: every test gets its own DCCLI_HOME, so no test reads the user's state."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REAL_FIXTURES = ROOT.parent / "shared" / "fixtures" / "real"


@pytest.fixture
def real_fixtures() -> Path:
    if not REAL_FIXTURES.is_dir():
        pytest.fail(f"real captures missing: {REAL_FIXTURES} (../shared/fixtures/real must sit beside the project)")
    return REAL_FIXTURES
