"""load_dataset / from_torch on a torch Dataset or DataLoader the user already has."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import weightinfo
from weightinfo.data import from_torch, load_dataset


def _pairs(n=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 4, 4, generator=g, dtype=torch.float64), torch.arange(n) % 3


def test_tensor_dataset_with_test_set():
    X, Y = _pairs()
    Xt, Yt = _pairs(10, seed=1)
    ds = load_dataset(TensorDataset(X, Y), test=TensorDataset(Xt, Yt))
    assert ds.name == "torch:TensorDataset" and ds.info["test_split"] == "given"
    assert torch.equal(ds.x_train, X.float()) and torch.equal(ds.y_train, Y)
    assert torch.equal(ds.x_test, Xt.float()) and ds.x_train.dtype == torch.float32
    assert ds.n_classes == 3 and ds.input_shape == (1, 4, 4) and len(ds) == 50


def test_dataloader_in_its_order_and_seeded_split():
    X, Y = _pairs(40)
    loader = DataLoader(TensorDataset(X, Y), batch_size=7)  # last batch smaller
    ds = load_dataset(loader, seed=3)
    assert ds.info["test_split"] == "seeded 20%" and (ds.n_train, ds.n_test) == (32, 8)
    rows = {tuple(r.tolist()) for r in torch.cat([ds.x_train, ds.x_test]).flatten(1)}
    assert rows == {tuple(r.tolist()) for r in X.float().flatten(1)}
    again = load_dataset(loader, seed=3)
    assert torch.equal(again.x_test, ds.x_test)  # the split is seeded
    # the wrappers of load_dataset apply as for a name
    assert load_dataset(loader, n_samples=10, test=loader).n_train == 10
    assert abs(float(load_dataset(loader, normalize=True, test=loader).x_train.mean())) < 1e-5


def test_items_of_a_map_style_dataset_and_uint8_pixels():
    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return 6

        def __getitem__(self, i):
            return torch.full((2,), 51 * (i % 5), dtype=torch.uint8), i % 2

    ds = from_torch(Items(), Items(), n_classes=4)
    assert ds.x_train[1].tolist() == pytest.approx([0.2, 0.2]) and ds.y_train.tolist() == [
        0,
        1,
        0,
        1,
        0,
        1,
    ]
    assert ds.n_classes == 4 and ds.name == "torch:Items"
    # the library's entry points then take it like any named dataset
    model = weightinfo.build_model(
        "mlp", input_shape=ds.input_shape, n_classes=ds.n_classes, widths=[3]
    )
    F = weightinfo.fisher(model, (ds.x_train, ds.y_train), structure="diag", progress=False)
    assert F.n_samples == 6


def test_clear_errors():
    X, Y = _pairs(10)
    with pytest.raises(ValueError, match=r"not an \(x, y\) pair"):
        from_torch(TensorDataset(X, Y, Y))
    with pytest.raises(ValueError, match="empty"):
        from_torch(TensorDataset(X[:0], Y[:0]))
    with pytest.raises(ValueError, match="empty"):
        from_torch(DataLoader(TensorDataset(X[:0], Y[:0]), batch_size=4))
    with pytest.raises(ValueError, match="one class index per input"):
        from_torch(TensorDataset(X, torch.nn.functional.one_hot(Y)))
    with pytest.raises(ValueError, match="class indices"):
        from_torch(TensorDataset(X, Y + 0.5))
    with pytest.raises(ValueError, match="non-negative"):
        from_torch(TensorDataset(X, Y - 1))
    with pytest.raises(ValueError, match="NaN"):
        from_torch(TensorDataset(X.clone().fill_(float("nan")), Y))
    with pytest.raises(ValueError, match="at least 2 classes"):
        from_torch(TensorDataset(X, torch.zeros(10, dtype=torch.int64)))
    with pytest.raises(ValueError, match="test inputs have shape"):
        from_torch(TensorDataset(X, Y), TensorDataset(X.flatten(1), Y))
    with pytest.raises(ValueError, match="n_classes"):
        from_torch(TensorDataset(X, Y), n_classes=2)
    with pytest.raises(TypeError, match="Dataset or DataLoader"):
        from_torch((X, Y))
    with pytest.raises(ValueError, match="do not apply to torch data"):
        load_dataset(TensorDataset(X, Y), download=True)
    with pytest.raises(ValueError, match="brings its own"):
        load_dataset("digits", test=TensorDataset(X, Y))
