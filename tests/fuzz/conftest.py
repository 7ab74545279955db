"""The fixture the command-line properties share."""

from pathlib import Path

import pytest


@pytest.fixture
def fresh_folder(tmp_path):
    """A new empty folder for each generated case (hypothesis reuses the test's own tmp_path)."""
    count = iter(range(10**9))
    return lambda: Path(tmp_path / str(next(count))).resolve()
