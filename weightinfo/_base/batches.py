"""Uniform access to the data argument of every curvature routine.

``data`` is any iterable of ``(x, y)`` batches (a ``DataLoader``) or a tuple ``(X, Y)`` of tensors, which is
split into batches of ``batch_size``. Each batch is validated (finite inputs, matching lengths) as it is read,
and an iterable that yields nothing is an error, not a zero. ``batch_size`` must be a positive integer, also
for a DataLoader (which brings its own batches): every routine that takes one validates it here.
Batches whose inputs are dicts of tensors (Hugging Face style) are packed into one tensor by
``weightinfo.adapt`` (``weightinfo.models.adapter``), so every routine keeps one tensor ``x`` per batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import torch

from .checks import check_finite_tensor, check_int

DEFAULT_BATCH_SIZE = 256


def count_batches(data, batch_size: int = DEFAULT_BATCH_SIZE) -> int | None:
    """Batches per pass: ⌈N/batch_size⌉ for an ``(X, Y)`` tuple, ``len(loader)`` otherwise; None if unknown."""
    batch_size = check_int("batch_size", batch_size, 1)
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], torch.Tensor):
        return -(-data[0].shape[0] // batch_size)
    try:
        return len(data)
    except TypeError:
        return None


def iter_batches(
    data, *, device: torch.device | None = None, batch_size: int = DEFAULT_BATCH_SIZE
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield validated ``(x, y)`` batches from a DataLoader-like iterable or an ``(X, Y)`` tuple.

    Raises ``ValueError`` at once if ``batch_size`` is not a positive integer; while reading, if the data are
    empty, a batch is not an ``(x, y)`` pair, lengths differ, or an input holds NaN/Inf.
    """
    return _validated(data, device, check_int("batch_size", batch_size, 1))


def _validated(data, device, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    if (
        isinstance(data, tuple)
        and len(data) == 2
        and all(isinstance(t, torch.Tensor) for t in data)
    ):
        X, Y = data
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"data: X has {X.shape[0]} rows but Y has {Y.shape[0]}")
        source: Iterable = (
            (X[i : i + batch_size], Y[i : i + batch_size]) for i in range(0, X.shape[0], batch_size)
        )
    elif isinstance(data, torch.Tensor):
        raise TypeError(
            "data must be a DataLoader of (x, y) batches or a tuple (X, Y); got a single tensor"
        )
    else:
        source = data
    n_batches = 0
    for k, batch in enumerate(source):
        if isinstance(batch, Mapping):
            raise TypeError(
                f"data: batch {k} is a dict, not an (x, y) pair: wrap the model with weightinfo.adapt and "
                "pass adapter.data(loader, target=...)"
            )
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError(f"data: batch {k} is not an (x, y) pair")
        x, y = batch[0], batch[1]
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            hint = (
                " (inputs given as a dict: wrap the model with weightinfo.adapt and pass adapter.data(data))"
                if isinstance(x, Mapping) or isinstance(batch, Mapping)
                else ""
            )
            raise TypeError(
                f"data: batch {k} must hold tensors, got {type(x).__name__}, {type(y).__name__}{hint}"
            )
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"data: batch {k} has {x.shape[0]} inputs but {y.shape[0]} targets")
        if x.shape[0] == 0:
            continue
        check_finite_tensor(f"data: input batch {k}", x)
        check_finite_tensor(f"data: target batch {k}", y)
        n_batches += 1
        host_range = _host_range(y)
        if device is not None:
            x, y = x.to(device), y.to(device)
        if host_range is not None:
            # Read on the host before the transfer: label checks cost no device sync (``value_range``).
            y._weightinfo_range = host_range
        yield x, y
    if n_batches == 0:
        raise ValueError("data is empty: the loader yielded no samples")


def _host_range(y: torch.Tensor) -> tuple[float, float] | None:
    """(min, max) of a CPU tensor of targets (None for an empty one or one on another device)."""
    if y.device.type != "cpu" or y.numel() == 0 or y.is_complex():
        return None
    return y.min().item(), y.max().item()


def rows(y: torch.Tensor, start: int, stop: int | None = None) -> torch.Tensor:
    """``y[start:stop]``, keeping the host-read range of a batch from :func:`iter_batches` (see there)."""
    part = y[start:stop]
    r = getattr(y, "_weightinfo_range", None)
    if r is not None:
        part._weightinfo_range = r
    return part


def value_range(y: torch.Tensor) -> tuple[float, float]:
    """(min, max) of a non-empty tensor of targets without a device sync where :func:`iter_batches` read them
    on the host before moving them (also for a slice of such a batch: the batch's range bounds the slice's);
    otherwise one read of two numbers."""
    for t in (y, y._base):
        r = getattr(t, "_weightinfo_range", None) if t is not None else None
        if r is not None:
            return r
    return tuple(torch.stack([y.min(), y.max()]).tolist())
