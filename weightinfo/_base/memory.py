"""Memory guard of the curvature and information entry points: ``max_memory=`` (issue 12 §2).

``max_memory`` (bytes, or a string such as ``"2GB"``, ``"512MiB"``) bounds the memory one batch may take. The
per-sample cost is **estimated** from a probe forward pass on one sample: the bytes of every tensor autograd
saves for the backward pass (the activations; parameters, shared by all samples, excluded), counted through
``torch.autograd.graph.saved_tensors_hooks``, times ``ACTIVATION_FACTOR`` — the activations, their gradients
and the per-sample engine's copies of layer inputs and output gradients. Batches are then split into chunks
of at most ``max_memory // per_sample`` rows. Every routine guarded here is a sum over samples divided by N, so
the chunked result equals the unchunked one up to float64 rounding (Monte Carlo draws are taken chunk by chunk:
the same distribution, other numbers). If one sample alone exceeds ``max_memory`` a ``MemoryError`` says so.

On CUDA a ``torch.OutOfMemoryError`` in a guarded call restarts the whole call with half the batch size (a
pass is never resumed half-accumulated), down to one row, then raises the same clear ``MemoryError``.
"""

from __future__ import annotations

import re

import torch
from torch import nn

from .batches import iter_batches

# Activations + their gradients + the per-sample engine's recorded inputs / output gradients.
ACTIVATION_FACTOR = 3

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_bytes(value) -> int:
    """``2_000_000``, ``"2MB"``, ``"1.5 GiB"`` -> bytes (a positive integer); anything else a ``ValueError``."""
    if isinstance(value, bool):
        raise ValueError(
            f"max_memory must be a number of bytes or a string like '2GB', got {value!r}"
        )
    if isinstance(value, (int, float)):
        n = value
    else:
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]i?b|b)?\s*", str(value).lower())
        if m is None:
            raise ValueError(
                f"max_memory must be a number of bytes or a string like '2GB', got {value!r}"
            )
        n = float(m.group(1)) * _UNITS[m.group(2) or ""]
    if not n >= 1 or n != n or n == float("inf"):
        raise ValueError(f"max_memory must be at least 1 byte, got {value!r}")
    return int(n)


def per_sample_bytes(model: nn.Module, x1: torch.Tensor) -> int:
    """Estimated bytes one sample costs (module docstring), from a forward pass of ``model`` on ``x1``."""
    params = {p.data_ptr() for p in model.parameters()}
    saved = [0]
    seen: set[int] = set()

    def pack(t):
        ptr = t.data_ptr() if t.layout == torch.strided else id(t)
        if ptr not in params and ptr not in seen:
            seen.add(ptr)
            saved[0] += t.numel() * t.element_size()
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        z = model(x1)
    out = z.numel() * z.element_size() if torch.is_tensor(z) else 0
    return ACTIVATION_FACTOR * (saved[0] + out + x1.numel() * x1.element_size())


def rows_that_fit(model: nn.Module, data, max_memory) -> int:
    """Rows per batch that fit in ``max_memory`` (at least 1), or a ``MemoryError`` if one does not."""
    limit = parse_bytes(max_memory)
    device = next(model.parameters()).device
    x, _ = next(iter(iter_batches(data, device=device, batch_size=1)))
    need = per_sample_bytes(model, x[:1])
    if need > limit:
        raise MemoryError(
            f"one sample needs ~{need} bytes (estimated: {ACTIVATION_FACTOR} x its activations) > "
            f"max_memory={limit}: even a batch of 1 does not fit; raise max_memory or use a smaller model"
        )
    return max(1, limit // need)


class Rechunked:
    """A re-iterable view of ``data`` (a loader or an ``(X, Y)`` tuple) in batches of at most ``rows`` rows."""

    def __init__(self, data, rows: int, batch_size: int):
        self.data, self.rows, self.batch_size = data, int(rows), int(batch_size)

    def __iter__(self):
        for x, y in iter_batches(self.data, batch_size=self.batch_size):
            for i in range(0, x.shape[0], self.rows):
                yield x[i : i + self.rows], y[i : i + self.rows]

    def __len__(self):
        if isinstance(self.data, tuple):
            return -(-self.data[0].shape[0] // min(self.rows, self.batch_size))
        raise TypeError("length unknown")


def split(data, rows: int, batch_size: int):
    """``(data, batch_size)`` in batches of at most ``rows`` rows."""
    if isinstance(data, tuple) and len(data) == 2 and torch.is_tensor(data[0]):
        return data, min(int(batch_size), int(rows))
    return Rechunked(data, rows, batch_size), batch_size


def guarded(model: nn.Module, data, batch_size: int, max_memory, run):
    """``run(data, batch_size)`` with batches that fit ``max_memory`` (``data`` untouched for ``None``),
    restarted with half the rows after a ``torch.OutOfMemoryError`` (module docstring)."""
    rows = None
    if max_memory is not None:
        rows = min(rows_that_fit(model, data, max_memory), int(batch_size))
    while True:
        try:
            if rows is None:
                return run(data, batch_size)
            return run(*split(data, rows, batch_size))
        except torch.OutOfMemoryError as err:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if rows == 1:
                raise MemoryError(
                    "out of device memory with a batch of 1 sample: even one sample does not fit; "
                    "use a smaller model or a device with more memory"
                ) from err
            rows = max(1, (int(batch_size) if rows is None else rows) // 2)
