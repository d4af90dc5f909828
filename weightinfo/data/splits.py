"""Seeded, deterministic index splits.

Conventions:

* All randomness comes from a fresh ``torch.Generator().manual_seed(seed)``: the same
  ``(n, fraction, seed)`` gives the same indices on every machine and run, independent
  of the global RNG state (which is never touched).
* Sizes are rounded with Python's ``round``: the first part of a split of ``n`` items
  with ``fraction`` holds ``round(fraction * n)`` of them.
* Index tensors are ``torch.int64``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = [
    "prior_bound_split",
    "seeded_permutation",
    "split_indices",
    "train_test_split",
]


def _check_fraction(fraction: float, what: str = "fraction") -> float:
    fraction = float(fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"{what} must lie in [0, 1], got {fraction}")
    return fraction


def seeded_permutation(n: int, seed: int = 0) -> torch.Tensor:
    """A random permutation of ``range(n)`` (int64) determined by ``seed`` alone."""
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    generator = torch.Generator().manual_seed(int(seed))
    return torch.randperm(int(n), generator=generator)


def split_indices(n: int, fraction: float, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``range(n)`` at random into disjoint parts of ``round(fraction*n)`` and the rest.

    Both parts are returned **sorted**; together they cover ``range(n)`` exactly once.
    """
    fraction = _check_fraction(fraction)
    perm = seeded_permutation(n, seed)
    k = int(round(fraction * n))
    return perm[:k].sort().values, perm[k:].sort().values


def prior_bound_split(
    n: int, prior_fraction: float = 0.5, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint ``(prior_idx, bound_idx)`` covering ``range(n)`` for data-dependent PAC-Bayes.

    ``prior_idx`` (``round(prior_fraction * n)`` sorted indices) may be used to choose the
    prior; the bound is then evaluated only on ``bound_idx``, which the prior never saw.
    """
    _check_fraction(prior_fraction, "prior_fraction")
    return split_indices(n, prior_fraction, seed)


def _take(a: Any, idx: torch.Tensor) -> Any:
    if isinstance(a, torch.Tensor):
        return a[idx]
    return np.asarray(a)[idx.numpy()]


def train_test_split(
    x: Any, y: Any, test_fraction: float = 0.2, seed: int = 0
) -> tuple[Any, Any, Any, Any]:
    """Seeded shuffle-and-split of paired arrays: ``(x_train, y_train, x_test, y_test)``.

    The test part holds ``round(test_fraction * n)`` samples. Both parts stay in the
    shuffled order (not sorted), so data stored sorted by label comes out mixed. Works on
    torch tensors and numpy arrays (returns the same kind it gets).
    """
    _check_fraction(test_fraction, "test_fraction")
    n = len(x)
    if len(y) != n:
        raise ValueError(f"x and y differ in length: {n} != {len(y)}")
    perm = seeded_permutation(n, seed)
    n_test = int(round(test_fraction * n))
    test, train = perm[:n_test], perm[n_test:]
    return _take(x, train), _take(y, train), _take(x, test), _take(y, test)
