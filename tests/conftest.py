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


# ``WEIGHTINFO_TEST_DEVICE=cuda`` (set by ``make gpu-check``): tensors the tests create land on that device, so
# the dense-reference tests run weightinfo there (it follows the model's device). Unset: nothing changes.
# Not yet run on a GPU (no device was available when it was written); tests that draw from an explicit CPU
# ``torch.Generator`` need their generator on the same device and may fail under it.
_TEST_DEVICE = os.environ.get("WEIGHTINFO_TEST_DEVICE")
if _TEST_DEVICE:
    torch.set_default_device(_TEST_DEVICE)
