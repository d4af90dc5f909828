"""Functions that derive one :class:`Dataset` from another (the input is never modified).

Each wrapper records what it did in ``info`` so that checkpoint metadata says exactly
which data a network saw:

* :func:`corrupt_labels` -- ``info['label_noise']`` (fraction, seed, counts);
* :func:`first_classes` -- ``info['first_classes']``;
* :func:`binarize` -- ``info['binarized']`` (threshold);
* :func:`subsample` -- ``info['n_samples']`` and ``info['subsample_seed']``;
* :func:`standardize` -- ``info['normalization']`` (train mean and std).
"""

from __future__ import annotations

import torch

from weightinfo.data.dataset import Dataset
from weightinfo.data.splits import _check_fraction, seeded_permutation

__all__ = [
    "binarize",
    "corrupt_labels",
    "corruption_plan",
    "first_classes",
    "standardize",
    "subsample",
]


def corruption_plan(
    n: int, n_classes: int, fraction: float, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(indices, new_labels)`` used by :func:`corrupt_labels`.

    ``indices``: ``round(fraction * n)`` distinct positions chosen uniformly at random;
    ``new_labels``: one label per position, uniform over all ``n_classes`` (so about
    ``1/n_classes`` of them happen to equal the old label). Deterministic in ``seed``.
    """
    fraction = _check_fraction(fraction)
    k = int(round(fraction * n))
    generator = torch.Generator().manual_seed(int(seed))
    indices = torch.randperm(n, generator=generator)[:k]
    new_labels = torch.randint(0, int(n_classes), (k,), generator=generator)
    return indices, new_labels


def corrupt_labels(ds: Dataset, fraction: float, seed: int = 0) -> Dataset:
    """Replace the labels of ``round(fraction * len(ds))`` random training samples by
    uniformly random labels over all classes (the random-label experiments of Zhang et al.).

    The test set is untouched. ``fraction=1`` gives completely random labels. Recorded in
    ``info['label_noise'] = {fraction, seed, n_corrupted, n_changed}``, where
    ``n_changed`` counts the labels that actually differ from the original.
    """
    indices, new_labels = corruption_plan(ds.n_train, ds.n_classes, fraction, seed)
    y = ds.y_train.clone()
    y[indices] = new_labels
    noise = {
        "fraction": float(fraction),
        "seed": int(seed),
        "n_corrupted": int(len(indices)),
        "n_changed": int((y != ds.y_train).sum()),
    }
    return ds.replace(y_train=y, info={"label_noise": noise})


def first_classes(ds: Dataset, k: int) -> Dataset:
    """Keep only samples with label ``< k`` in train and test; ``n_classes`` becomes ``k`` (>= 2: a
    single class has nothing to learn)."""
    k = int(k)
    if not 2 <= k <= ds.n_classes:
        raise ValueError(f"k must lie in [2, {ds.n_classes}] (at least two classes), got {k}")
    train = ds.y_train < k
    test = ds.y_test < k
    return ds.replace(
        name=f"{ds.name}[:{k}]",
        x_train=ds.x_train[train],
        y_train=ds.y_train[train],
        x_test=ds.x_test[test],
        y_test=ds.y_test[test],
        n_classes=k,
        info={"first_classes": k},
    )


def binarize(ds: Dataset, threshold: int | None = None) -> Dataset:
    """Two classes: label ``>= threshold`` becomes 1, the rest 0 (labels stay int64).

    ``threshold`` defaults to ``n_classes // 2`` (5 for the ten-class digit sets, i.e.
    digits 0-4 vs 5-9). The name gets the prefix ``binary-``.
    """
    threshold = ds.n_classes // 2 if threshold is None else int(threshold)
    if not 1 <= threshold < ds.n_classes:
        raise ValueError(f"threshold must lie in [1, {ds.n_classes - 1}], got {threshold}")
    return ds.replace(
        name=f"binary-{ds.name}",
        y_train=(ds.y_train >= threshold).long(),
        y_test=(ds.y_test >= threshold).long(),
        n_classes=2,
        info={"binarized": {"threshold": threshold, "original_classes": ds.n_classes}},
    )


def subsample(ds: Dataset, n_samples: int, seed: int = 0) -> Dataset:
    """A seeded random subset of ``n_samples`` training samples (test set kept whole)."""
    n_samples = int(n_samples)
    if not 0 < n_samples <= ds.n_train:
        raise ValueError(f"n_samples must lie in [1, {ds.n_train}], got {n_samples}")
    idx = seeded_permutation(ds.n_train, seed)[:n_samples]
    return ds.replace(
        x_train=ds.x_train[idx],
        y_train=ds.y_train[idx],
        info={"n_samples": n_samples, "subsample_seed": int(seed)},
    )


def standardize(ds: Dataset) -> Dataset:
    """Subtract the training mean and divide by the training std (scalars over all
    features), for train and test alike; recorded in ``info['normalization']``."""
    mean = ds.x_train.mean()
    std = ds.x_train.std().clamp_min(1e-12)
    return ds.replace(
        x_train=(ds.x_train - mean) / std,
        x_test=(ds.x_test - mean) / std,
        info={"normalization": {"mean": float(mean), "std": float(std)}},
    )
