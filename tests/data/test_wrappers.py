"""corrupt_labels, first_classes, binarize, subsample, standardize."""

from __future__ import annotations

import pytest
import torch

from weightinfo.data import (
    Dataset,
    binarize,
    corrupt_labels,
    corruption_plan,
    first_classes,
    standardize,
    subsample,
)


def make(n_train=1000, n_test=200, n_classes=10):
    return Dataset(
        name="toy",
        x_train=torch.arange(n_train, dtype=torch.float32)[:, None],
        y_train=torch.arange(n_train) % n_classes,
        x_test=torch.arange(n_test, dtype=torch.float32)[:, None],
        y_test=torch.arange(n_test) % n_classes,
        n_classes=n_classes,
        info={"seed": 0},
    )


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.25, 0.5, 1.0])
def test_corrupt_labels_touches_exactly_the_planned_samples(fraction):
    ds = make()
    noisy = corrupt_labels(ds, fraction, seed=3)
    idx, new = corruption_plan(ds.n_train, ds.n_classes, fraction, seed=3)
    k = round(fraction * ds.n_train)
    assert len(idx) == len(set(idx.tolist())) == k
    assert torch.equal(noisy.y_train[idx], new)
    untouched = torch.ones(ds.n_train, dtype=torch.bool)
    untouched[idx] = False
    assert torch.equal(noisy.y_train[untouched], ds.y_train[untouched])
    changed = int((noisy.y_train != ds.y_train).sum())
    assert noisy.info["label_noise"] == {
        "fraction": fraction,
        "seed": 3,
        "n_corrupted": k,
        "n_changed": changed,
    }
    # uniform over all 10 classes: about 9/10 of the replaced labels differ
    if k >= 100:
        assert 0.8 * k < changed <= k
    assert torch.equal(noisy.y_test, ds.y_test)
    assert torch.equal(noisy.x_train, ds.x_train)
    assert "label_noise" not in ds.info  # input untouched


def test_corrupt_labels_reproducible_and_seed_dependent():
    ds = make()
    a, b = corrupt_labels(ds, 0.3, seed=1), corrupt_labels(ds, 0.3, seed=1)
    c = corrupt_labels(ds, 0.3, seed=2)
    assert torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.y_train, c.y_train)


def test_fully_random_labels_cover_all_classes():
    noisy = corrupt_labels(make(), 1.0, seed=0)
    counts = torch.bincount(noisy.y_train, minlength=10)
    assert (counts > 50).all()
    assert "label_noise=1.0" in noisy.describe()


@pytest.mark.parametrize("fraction", [-0.01, 1.01])
def test_corrupt_labels_validates_fraction(fraction):
    with pytest.raises(ValueError, match="fraction"):
        corrupt_labels(make(), fraction)


def test_first_classes():
    ds = make()
    three = first_classes(ds, 3)
    assert three.n_classes == 3 and three.info["first_classes"] == 3
    assert set(three.y_train.tolist()) == {0, 1, 2} and set(three.y_test.tolist()) == {0, 1, 2}
    assert len(three) == 300 and three.n_test == 60
    assert torch.equal(three.x_train[:, 0].long() % 10, three.y_train)
    assert first_classes(ds, 10).n_train == 1000
    for bad in (0, 11):
        with pytest.raises(ValueError):
            first_classes(ds, bad)
    with pytest.raises(ValueError, match=r"k must lie in \[2, 10\] \(at least two classes\)"):
        first_classes(ds, 1)


def test_binarize():
    ds = make()
    two = binarize(ds)
    assert two.n_classes == 2 and two.name == "binary-toy"
    assert two.y_train.dtype == torch.int64
    assert torch.equal(two.y_train, (ds.y_train >= 5).long())
    assert torch.equal(two.y_test, (ds.y_test >= 5).long())
    assert two.info["binarized"] == {"threshold": 5, "original_classes": 10}
    with pytest.raises(ValueError):
        binarize(ds, threshold=10)


def test_subsample():
    ds = make()
    sub = subsample(ds, 100, seed=0)
    assert len(sub) == 100 and sub.n_test == ds.n_test
    assert len(set(sub.x_train[:, 0].tolist())) == 100
    assert torch.equal(sub.x_train, subsample(ds, 100, seed=0).x_train)
    assert not torch.equal(sub.x_train, subsample(ds, 100, seed=1).x_train)
    with pytest.raises(ValueError):
        subsample(ds, 1001)


def test_standardize_uses_training_statistics():
    ds = make()
    std = standardize(ds)
    assert abs(float(std.x_train.mean())) < 1e-5 and abs(float(std.x_train.std()) - 1) < 1e-5
    norm = std.info["normalization"]
    expected = (ds.x_test - norm["mean"]) / norm["std"]
    assert torch.allclose(std.x_test, expected)
