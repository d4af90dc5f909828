"""Seeded index splits: deterministic, disjoint, covering, of the stated sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from weightinfo.data import prior_bound_split, seeded_permutation, split_indices, train_test_split


def test_permutation_is_deterministic_and_ignores_global_rng():
    a = seeded_permutation(100, seed=5)
    torch.manual_seed(123)
    torch.rand(10)
    b = seeded_permutation(100, seed=5)
    assert torch.equal(a, b)
    assert not torch.equal(a, seeded_permutation(100, seed=6))
    assert torch.equal(a.sort().values, torch.arange(100))


@pytest.mark.parametrize(("n", "fraction"), [(100, 0.5), (101, 0.3), (7, 0.0), (7, 1.0)])
def test_prior_bound_split_disjoint_covering_sized(n, fraction):
    prior, bound = prior_bound_split(n, fraction, seed=0)
    assert prior.dtype == bound.dtype == torch.int64
    assert len(prior) == round(fraction * n)
    both = torch.cat([prior, bound])
    assert torch.equal(both.sort().values, torch.arange(n))
    assert torch.equal(prior, prior.sort().values) and torch.equal(bound, bound.sort().values)


def test_prior_bound_split_seeds():
    p1, b1 = prior_bound_split(1000, 0.5, seed=1)
    p1b, b1b = prior_bound_split(1000, 0.5, seed=1)
    p2, _ = prior_bound_split(1000, 0.5, seed=2)
    assert torch.equal(p1, p1b) and torch.equal(b1, b1b)
    assert not torch.equal(p1, p2)


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan")])
def test_bad_fraction(fraction):
    with pytest.raises(ValueError, match="fraction"):
        split_indices(10, fraction)


def test_train_test_split_shuffles_pairs_together():
    x = torch.arange(50, dtype=torch.float32)[:, None]
    y = torch.arange(50) % 5
    x_tr, y_tr, x_te, y_te = train_test_split(x, y, test_fraction=0.2, seed=0)
    assert len(x_te) == 10 and len(x_tr) == 40
    assert torch.equal(x_tr[:, 0].long() % 5, y_tr) and torch.equal(x_te[:, 0].long() % 5, y_te)
    assert sorted(torch.cat([x_tr, x_te])[:, 0].tolist()) == list(range(50))
    assert not torch.equal(x_tr[:, 0], x_tr[:, 0].sort().values)  # shuffled, not sorted
    again = train_test_split(x, y, test_fraction=0.2, seed=0)
    assert all(torch.equal(a, b) for a, b in zip((x_tr, y_tr, x_te, y_te), again))


def test_train_test_split_numpy_in_numpy_out():
    x, y = np.arange(10.0), np.arange(10)
    x_tr, y_tr, x_te, y_te = train_test_split(x, y, 0.3, seed=1)
    assert isinstance(x_tr, np.ndarray) and len(x_te) == 3
    np.testing.assert_array_equal(x_tr.astype(int), y_tr)
    with pytest.raises(ValueError, match="length"):
        train_test_split(x, y[:5])
