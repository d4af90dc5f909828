"""The Dataset container: validation, loaders, subsets, splits, metadata."""

from __future__ import annotations

import json

import pytest
import torch

from weightinfo.data import Dataset


def make(n_train=100, n_test=30, n_classes=4):
    g = torch.Generator().manual_seed(0)
    return Dataset(
        name="toy",
        x_train=torch.arange(n_train, dtype=torch.float32)[:, None].repeat(1, 3),
        y_train=torch.randint(0, n_classes, (n_train,), generator=g),
        x_test=torch.rand(n_test, 3, generator=g),
        y_test=torch.randint(0, n_classes, (n_test,), generator=g),
        n_classes=n_classes,
        info={"seed": 0, "variant": "toy"},
    )


def test_basic_properties():
    ds = make()
    assert len(ds) == ds.n_train == 100 and ds.n_test == 30
    assert ds.input_shape == (3,) and ds.seed == 0
    assert "toy [toy]: 100 train / 30 test, 4 classes" in repr(ds)


def test_validation():
    ds = make()
    with pytest.raises(ValueError, match="outside"):
        ds.replace(y_train=ds.y_train + 10)
    with pytest.raises(TypeError, match="int64"):
        ds.replace(y_train=ds.y_train.int())
    with pytest.raises(ValueError, match="differ in length"):
        ds.replace(y_train=ds.y_train[:-1])
    with pytest.raises(ValueError, match="input_shape"):
        ds.replace(x_test=torch.zeros(30, 4))


def _order(loader):
    return torch.cat([x[:, 0] for x, _ in loader]).long()


def test_train_loader_seeded_shuffle_and_batches():
    ds = make()
    loader = ds.train_loader(batch_size=32, seed=1)
    batches = list(loader)
    assert len(loader) == len(batches) == 4
    assert [len(x) for x, _ in batches] == [32, 32, 32, 4]
    x, y = batches[0]
    assert x.shape == (32, 3) and y.dtype == torch.int64
    # pairs stay together
    assert torch.equal(ds.y_train[x[:, 0].long()], y)
    epoch1 = torch.cat([x[:, 0] for x, _ in batches]).long()
    assert sorted(epoch1.tolist()) == list(range(100))
    assert not torch.equal(epoch1, torch.arange(100))
    # reproducible from the seed (over several epochs), different for another seed
    again = ds.train_loader(batch_size=32, seed=1)
    assert torch.equal(_order(again), epoch1)
    epoch2 = _order(loader)
    assert torch.equal(_order(again), epoch2)
    assert not torch.equal(_order(ds.train_loader(batch_size=32, seed=2)), epoch1)
    # a new epoch reshuffles
    assert not torch.equal(epoch2, epoch1)


def test_train_loader_indices_and_no_shuffle():
    ds = make()
    idx = torch.tensor([5, 3, 9, 50])
    in_order = ds.train_loader(batch_size=3, shuffle=False, indices=idx)
    assert _order(in_order).tolist() == [5, 3, 9, 50]
    got = _order(ds.train_loader(batch_size=3, indices=idx, seed=0))
    assert sorted(got.tolist()) == [3, 5, 9, 50]
    mask = torch.zeros(100, dtype=torch.bool)
    mask[[1, 2]] = True
    assert _order(ds.train_loader(shuffle=False, indices=mask)).tolist() == [1, 2]
    assert len(ds.train_loader(batch_size=30, drop_last=True)) == 3


def test_test_loader_in_order():
    ds = make()
    xs = torch.cat([x for x, _ in ds.test_loader(batch_size=7)])
    assert torch.equal(xs, ds.x_test)


def test_subset_keeps_test_and_records():
    ds = make()
    sub = ds.subset([4, 2, 7])
    assert len(sub) == 3 and sub.x_train[:, 0].tolist() == [4.0, 2.0, 7.0]
    assert torch.equal(sub.x_test, ds.x_test)
    assert sub.info["subsets"] == [3] and "subsets" not in ds.info
    with pytest.raises(IndexError):
        ds.subset([100])
    with pytest.raises(TypeError):
        ds.subset(torch.tensor([0.5]))


def test_prior_bound_split_method():
    ds = make()
    prior, bound = ds.prior_bound_split(0.3, seed=4)
    assert len(prior) == 30 and len(bound) == 70
    assert set(prior.tolist()).isdisjoint(bound.tolist())
    p2, b2 = ds.split(0.3, seed=4)
    assert torch.equal(prior, p2) and torch.equal(bound, b2)
    assert len(ds.subset(prior)) + len(ds.subset(bound)) == len(ds)


def test_to_dict_is_json():
    ds = make().subset(torch.arange(10))
    d = json.loads(json.dumps(ds.to_dict()))
    assert d["name"] == "toy" and d["n_train"] == 10 and d["n_test"] == 30
    assert d["n_classes"] == 4 and d["input_shape"] == [3]
    assert d["seed"] == 0 and d["variant"] == "toy"
    assert d["info"]["subsets"] == [10]
