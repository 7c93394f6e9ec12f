"""Shared fixtures.  Real instrument data is read in place from ../shared/data (never copied)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ORBITML_SHARED_DATA", ROOT.parent / "shared" / "data"))

# keep numerical libraries from oversubscribing the 2 CI cores under pytest-xdist
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder; tests that need it skip with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real instrument data not found at {SHARED_DATA} (fresh clone without ../shared)")
    return SHARED_DATA


def shared_file(rel: str) -> Path:
    """Path of one file under ../shared/data, skipping the test when it is absent."""
    p = SHARED_DATA / rel
    if not p.exists():
        pytest.skip(f"real data file {p} not available")
    return p
