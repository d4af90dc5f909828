"""Test-wide settings: one thread (two OpenMP threads beside another process run 5-100x slower), offline data from ../shared/data."""

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

# CI clones the repository beside a copy of shared/: use its data unless the caller chose another folder.
_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "WEIGHTINFO_DATA" not in os.environ and _SHARED.is_dir():
    os.environ["WEIGHTINFO_DATA"] = str(_SHARED)
# Checkpoints trained on the fly by tests never touch the user's cache.
os.environ.setdefault(
    "WEIGHTINFO_CACHE", str(Path(os.environ.get("TMPDIR", "/tmp")) / "weightinfo-test-cache")
)


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """Checkpoints trained on the fly go to a per-test cache (``tmp_path/cache``)."""
    monkeypatch.setenv("WEIGHTINFO_CACHE", str(tmp_path / "cache"))
