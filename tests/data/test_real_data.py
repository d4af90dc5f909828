"""The real offline datasets (skipped, with the reason, where their files are absent)."""

from __future__ import annotations

import torch


def test_fashion_mnist_full(real_dataset):
    ds = real_dataset("fashion-mnist")
    assert ds.info["variant"] == "full"
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert float(ds.x_train.min()) == 0.0 and float(ds.x_train.max()) == 1.0
    assert ds.n_classes == 10 and ds.input_shape == (1, 28, 28)
    # the official split is balanced: 6,000 / 1,000 images per class
    assert torch.bincount(ds.y_train).tolist() == [6000] * 10
    assert torch.bincount(ds.y_test).tolist() == [1000] * 10
    assert ds.y_train[:5].tolist() == [9, 0, 0, 3, 0]  # ankle boot, t-shirt, ...
    assert 0.25 < float(ds.x_train[:1000].mean()) < 0.32


def test_fashion_mnist_loader(real_dataset):
    ds = real_dataset("fashion-mnist")
    x, y = next(iter(ds.train_loader(batch_size=256, seed=0)))
    assert x.shape == (256, 1, 28, 28) and y.shape == (256,)


def test_mnist_10k_subset_is_shuffled_and_balanced(real_dataset):
    ds = real_dataset("mnist-10k", seed=0)
    assert ds.info["variant"] == "10k"
    assert (len(ds), ds.n_test) == (8571, 1429)
    assert ds.x_train.shape[1:] == (1, 28, 28)
    for y in (ds.y_train, ds.y_test):
        assert set(y.tolist()) == set(range(10))  # both splits see every class
        assert (torch.bincount(y, minlength=10) > 0.05 * len(y)).all()
        # stored sorted by label, but loaded shuffled: many label changes along the set
        assert int((y[1:] != y[:-1]).sum()) > len(y) // 2
    assert torch.bincount(torch.cat([ds.y_train, ds.y_test])).sum() == 10000


def test_mnist_10k_split_depends_on_seed(real_dataset):
    a = real_dataset("mnist-10k", seed=0)
    b = real_dataset("mnist-10k", seed=1)
    assert not torch.equal(a.y_train[:100], b.y_train[:100])
    # same images overall, different split
    assert torch.isclose(
        a.x_train.sum() + a.x_test.sum(), b.x_train.sum() + b.x_test.sum(), rtol=1e-5
    )


def test_mnist_records_variant(real_dataset):
    ds = real_dataset("mnist")
    assert ds.info["variant"] in ("full", "10k")
    if ds.info["variant"] == "full":
        assert (len(ds), ds.n_test) == (60000, 10000)
    else:
        assert (len(ds), ds.n_test) == (8571, 1429)
