"""User data from a ``.npz`` file (``load_dataset("npz:PATH")``).

Arrays read (``np.load(..., allow_pickle=False)``):

* ``x``, ``y`` -- required; ``x_test``, ``y_test`` -- optional, both or neither. Without
  them, a seeded 20 % test split of ``x``/``y`` is made.
* ``n_classes`` -- optional integer scalar; default ``max label + 1`` over train and test.

Checks (each a ``ValueError`` naming the file): the file must be an ``.npz`` archive (not a
single ``.npy`` array, text, or a truncated download); features finite; labels integers in
``[0, n_classes)``; ``n_classes`` at most :data:`NPZ_MAX_CLASSES` or the number of samples,
whichever is larger, so that a stray label such as 10⁹ cannot ask for a 10⁹-way output layer;
and at least two classes with training samples (one class has nothing to learn: IW = 0).

Conversions: ``x`` becomes float32; uint8 arrays are taken as pixels and divided by 255;
3-D arrays ``(N, H, W)`` get a channel axis ``(N, 1, H, W)``; 1-D ``(N,)`` becomes
``(N, 1)``. Labels must be non-negative integers (integral floats are accepted) and
become int64.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from weightinfo.data.dataset import Dataset
from weightinfo.data.splits import train_test_split

__all__ = ["NPZ_MAX_CLASSES", "NPZ_TEST_FRACTION", "load_npz"]

NPZ_TEST_FRACTION = 0.2
#: Classes allowed in any file; files with more samples than this may have up to one class per sample.
NPZ_MAX_CLASSES = 1000
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """All arrays of the archive, or a ``ValueError`` saying why ``path`` is not a readable .npz."""
    with open(path, "rb") as f:
        head = f.read(6)
    if head.startswith(_NPY_MAGIC):
        raise ValueError(
            f"{path} is a single .npy array, not an .npz archive: save the arrays x and y "
            "together with numpy.savez"
        )
    if not head.startswith(_ZIP_MAGIC):
        raise ValueError(
            f"{path} is not an .npz archive (no zip header): save the arrays x and y with numpy.savez"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as e:
        raise ValueError(f"{path} is a truncated or corrupt .npz archive ({e})") from e


def _features(x: np.ndarray, path: Path, key: str) -> torch.Tensor:
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    elif not (
        np.issubdtype(x.dtype, np.floating)
        or np.issubdtype(x.dtype, np.integer)
        or x.dtype == np.bool_
    ):
        raise ValueError(f"{path}: array {key!r} has non-numeric dtype {x.dtype}")
    if x.ndim == 0:
        raise ValueError(f"{path}: array {key!r} must have one row per sample, got a scalar")
    x = np.asarray(x, dtype=np.float32)
    if not np.all(np.isfinite(x)):
        n_bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise ValueError(f"{path}: array {key!r} contains {n_bad} NaN/Inf value(s)")
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


def _n_classes(arrays: dict, y_tr: torch.Tensor, y_te: torch.Tensor, path: Path) -> int:
    """The number of classes: the file's ``n_classes`` or max label + 1, checked (module docstring)."""
    n_samples = len(y_tr) + len(y_te)
    top = max((int(t.max()) for t in (y_tr, y_te) if len(t)), default=-1)
    limit = max(NPZ_MAX_CLASSES, n_samples)
    if "n_classes" in arrays:
        given = np.asarray(arrays["n_classes"])
        if given.ndim != 0 or not (
            np.issubdtype(given.dtype, np.integer)
            or (np.issubdtype(given.dtype, np.floating) and float(given).is_integer())
        ):
            raise ValueError(f"{path}: 'n_classes' must be an integer scalar, got {given!r}")
        n_classes = int(given)
        if n_classes <= top:
            raise ValueError(
                f"{path}: labels go up to {top} but 'n_classes' is {n_classes}; labels must lie "
                f"in [0, n_classes)"
            )
        where = "'n_classes'"
    else:
        n_classes, where = top + 1, f"the largest label {top} (n_classes = max label + 1)"
    if n_classes > limit:
        raise ValueError(
            f"{path}: {where} asks for {n_classes} classes, more than allowed for {n_samples} "
            f"samples (at most {limit}); labels must be class indices 0, 1, ..., n_classes - 1"
        )
    present = torch.unique(y_tr)
    if len(present) < 2:
        found = "no training samples" if len(present) == 0 else f"only class {int(present[0])}"
        raise ValueError(
            f"{path}: the training labels hold {found}; at least 2 classes with samples are needed"
        )
    return n_classes


def load_npz(path: str | os.PathLike, seed: int = 0) -> Dataset:
    """Load ``x``, ``y`` (and optionally ``x_test``, ``y_test``) from an ``.npz`` file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"npz dataset file not found: {path.resolve()}")
    arrays = _read_arrays(path)
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
    n_classes = _n_classes(arrays, y_tr, y_te, path)
    return Dataset(f"npz:{path.name}", x_tr, y_tr, x_te, y_te, n_classes=n_classes, info=info)
