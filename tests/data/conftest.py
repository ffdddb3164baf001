"""Fixtures of the dataset builder tests: where the real label excerpts are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _fixtures_dir() -> Path:
    configured = os.environ.get("AESFORMER_FIXTURES")
    return (
        Path(configured) if configured else Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"
    )


FIXTURES = _fixtures_dir()


@pytest.fixture
def fixtures_dir() -> Path:
    """The real label excerpts (see fixtures/SOURCES.md); skips when they are not on this machine."""
    if not FIXTURES.is_dir():
        pytest.skip(f"real fixture excerpts not found at {FIXTURES} (set AESFORMER_FIXTURES)")
    return FIXTURES
