"""User data from a ``.npz`` file (``load_dataset("npz:PATH")``).

Arrays read (``np.load(..., allow_pickle=False)``):

* ``x``, ``y`` -- required; ``x_test``, ``y_test`` -- optional, both or neither. Without
  them, a seeded 20 % test split of ``x``/``y`` is made.
* ``n_classes`` -- optional scalar; default ``max label + 1`` over train and test.

Conversions: ``x`` becomes float32; uint8 arrays are taken as pixels and divided by 255;
3-D arrays ``(N, H, W)`` get a channel axis ``(N, 1, H, W)``; 1-D ``(N,)`` becomes
``(N, 1)``. Labels must be non-negative integers (integral floats are accepted) and
become int64.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from weightinfo.data.dataset import Dataset
from weightinfo.data.splits import train_test_split

__all__ = ["NPZ_TEST_FRACTION", "load_npz"]

NPZ_TEST_FRACTION = 0.2


def _features(x: np.ndarray, path: Path, key: str) -> torch.Tensor:
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    elif not (
        np.issubdtype(x.dtype, np.floating)
        or np.issubdtype(x.dtype, np.integer)
        or x.dtype == np.bool_
    ):
        raise ValueError(f"{path}: array {key!r} has non-numeric dtype {x.dtype}")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    elif x.ndim == 3:
        x = x[:, None]
    return torch.from_numpy(np.ascontiguousarray(x))


def _labels(y: np.ndarray, path: Path, key: str) -> torch.Tensor:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{path}: labels {key!r} must be 1-D, got shape {y.shape}")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError(f"{path}: labels {key!r} must be integers")
    elif not (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
        raise ValueError(f"{path}: labels {key!r} have dtype {y.dtype}, expected integers")
    y = y.astype(np.int64)
    if len(y) and y.min() < 0:
        raise ValueError(f"{path}: labels {key!r} must be non-negative")
    return torch.from_numpy(y)


def load_npz(path: str | os.PathLike, seed: int = 0) -> Dataset:
    """Load ``x``, ``y`` (and optionally ``x_test``, ``y_test``) from an ``.npz`` file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"npz dataset file not found: {path.resolve()}")
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise ValueError(f"{path}: missing array(s) {missing}; found {sorted(arrays)}")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise ValueError(f"{path}: give both x_test and y_test, or neither")
    x, y = _features(arrays["x"], path, "x"), _labels(arrays["y"], path, "y")
    if len(x) != len(y):
        raise ValueError(f"{path}: x has {len(x)} samples but y has {len(y)}")
    info = {"variant": "npz", "source": str(path.resolve()), "seed": int(seed)}
    if "x_test" in arrays:
        x_tr, y_tr = x, y
        x_te = _features(arrays["x_test"], path, "x_test")
        y_te = _labels(arrays["y_test"], path, "y_test")
        info["test_split"] = "file"
    else:
        x_tr, y_tr, x_te, y_te = train_test_split(x, y, NPZ_TEST_FRACTION, seed)
        info["test_split"] = f"seeded {NPZ_TEST_FRACTION:.0%}"
    if "n_classes" in arrays:
        n_classes = int(arrays["n_classes"])
    else:
        n_classes = 1 + max((int(t.max()) for t in (y_tr, y_te) if len(t)), default=-1)
    return Dataset(f"npz:{path.name}", x_tr, y_tr, x_te, y_te, n_classes=n_classes, info=info)
