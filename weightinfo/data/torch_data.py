"""A torch ``Dataset`` or ``DataLoader`` the user already has, as the library's :class:`Dataset`.

``load_dataset(torch_data, test=...)`` and :func:`from_torch` read every ``(x, y)`` pair once and stack them
into the in-memory tensors of :class:`~weightinfo.data.dataset.Dataset` (``x_train``, ``y_train``,
``x_test``, ``y_test``), so everything that takes a dataset name (the models' suggested shapes, the loaders,
the wrappers) takes it too. The routines that only *read* data — :func:`weightinfo.fisher`,
:func:`weightinfo.information`, :class:`weightinfo.Tracker`, … — already take a ``DataLoader`` of ``(x, y)``
batches directly (:mod:`weightinfo._base.batches`) and need no conversion.

Rules (the same as ``npz:PATH`` files, :mod:`~weightinfo.data.npz`):

* an item of a ``Dataset`` / a batch of a ``DataLoader`` must be a pair ``(x, y)``; a ``Dataset`` is read in
  index order, a ``DataLoader`` in the order it yields (its shuffling and ``drop_last`` apply);
* ``x`` becomes float32 (uint8 pixels are divided by 255), finite; ``y`` must be integer class indices ≥ 0
  (integral floats accepted), one per sample, and becomes int64;
* without ``test``, a seeded 20 % test split of ``train`` is made (``info["test_split"]`` says which);
* ``n_classes`` defaults to max label + 1; the training set needs at least two classes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader

from weightinfo.data.dataset import Dataset
from weightinfo.data.splits import train_test_split

__all__ = ["TORCH_TEST_FRACTION", "from_torch", "is_torch_data"]

TORCH_TEST_FRACTION = 0.2
_READ_BATCH = 256


def is_torch_data(obj: Any) -> bool:
    """Whether ``obj`` is a ``torch.utils.data.Dataset`` or ``DataLoader``."""
    return isinstance(obj, (torch.utils.data.Dataset, DataLoader))


def _batches(data, what: str):
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, torch.utils.data.Dataset):
        try:
            n = len(data)
        except TypeError:
            raise TypeError(f"{what}: a torch Dataset without len() (iterable-style); wrap it in a DataLoader") from None  # fmt: skip
        if n == 0:
            raise ValueError(f"{what} is empty (0 samples)")
        return DataLoader(data, batch_size=_READ_BATCH, shuffle=False)
    raise TypeError(
        f"{what} must be a torch.utils.data.Dataset or DataLoader of (x, y) pairs, got {type(data).__name__}"
    )


def _stack(data, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (x, y) of ``data`` stacked: float32 inputs, int64 labels."""
    xs, ys = [], []
    for k, batch in enumerate(_batches(data, what)):
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            n = len(batch) if isinstance(batch, (tuple, list)) else type(batch).__name__
            raise ValueError(f"{what}: batch {k} is not an (x, y) pair (got {n})")
        x, y = (torch.as_tensor(t) for t in batch)
        if x.ndim == 0 or y.ndim != 1 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"{what}: batch {k} has inputs of shape {tuple(x.shape)} and targets of shape "
                f"{tuple(y.shape)}; expected one class index per input, (N, ...) and (N,)"
            )
        xs.append(x)
        ys.append(y)
    if not xs or sum(len(y) for y in ys) == 0:
        raise ValueError(f"{what} is empty (0 samples)")
    x, y = torch.cat(xs), torch.cat(ys)
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.to(torch.float32)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{what}: inputs contain NaN/Inf")
    if y.is_floating_point():
        if not bool((y == y.round()).all()):
            raise ValueError(
                f"{what}: labels must be class indices (integers), got fractional values"
            )
    elif y.dtype == torch.bool or y.is_complex():
        raise TypeError(f"{what}: labels must be integer class indices, got {y.dtype}")
    y = y.to(torch.int64)
    if len(y) and int(y.min()) < 0:
        raise ValueError(f"{what}: labels must be non-negative class indices")
    return x, y


def from_torch(
    train,
    test=None,
    *,
    name: str | None = None,
    n_classes: int | None = None,
    seed: int = 0,
) -> Dataset:
    """The library's :class:`Dataset` from a torch ``Dataset``/``DataLoader`` of ``(x, y)`` pairs.

    ``test``: the held-out set (same kinds); without it a seeded (``seed``) 20 % split of ``train``.
    ``name``: the dataset's name (default ``"torch:<class of train>"``). ``n_classes``: default max label + 1.
    Raises ``TypeError``/``ValueError`` for other objects, items that are not ``(x, y)`` pairs, empty sets,
    inputs of different shapes in train and test, non-finite inputs, labels that are not class indices, or
    fewer than two classes in the training set (module docstring).
    """
    x, y = _stack(train, "train")
    info: dict[str, Any] = {"variant": "torch", "source": type(train).__name__, "seed": int(seed)}
    if test is not None:
        x_te, y_te = _stack(test, "test")
        if x_te.shape[1:] != x.shape[1:]:
            raise ValueError(f"test inputs have shape {tuple(x_te.shape[1:])}, train inputs {tuple(x.shape[1:])}")  # fmt: skip
        x_tr, y_tr = x, y
        info["test_split"] = "given"
    else:
        x_tr, y_tr, x_te, y_te = train_test_split(x, y, TORCH_TEST_FRACTION, int(seed))
        info["test_split"] = f"seeded {TORCH_TEST_FRACTION:.0%}"
    top = max(int(y_tr.max()), int(y_te.max()) if len(y_te) else -1)
    if n_classes is None:
        n_classes = top + 1
    elif isinstance(n_classes, bool) or int(n_classes) != n_classes or n_classes <= top:
        raise ValueError(
            f"n_classes must be an integer > the largest label {top}, got {n_classes!r}"
        )
    present = torch.unique(y_tr)
    if len(present) < 2:
        raise ValueError(
            f"train: the training labels hold only class {int(present[0])}; at least 2 classes with "
            "samples are needed"
        )
    name = name or f"torch:{type(train).__name__}"
    return Dataset(name, x_tr, y_tr, x_te, y_te, n_classes=int(n_classes), info=info)
