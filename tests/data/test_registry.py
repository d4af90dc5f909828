"""load_dataset: names, generated and bundled sets, npz files, options."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from weightinfo.data import DATASET_NAMES, canonical_name, load_dataset


@pytest.fixture(scope="module")
def mnist1d():
    return load_dataset("mnist1d", seed=0)


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError) as info:
        load_dataset("cifar10")
    for name in DATASET_NAMES:
        assert name in str(info.value)
    assert "npz:PATH" in str(info.value) and "binary-<name>" in str(info.value)
    with pytest.raises(ValueError, match="once"):
        load_dataset("binary-binary-digits")


def test_canonical_names():
    assert canonical_name("Fashion_MNIST") == "fashion-mnist"
    assert canonical_name("moons") == "two-moons"
    assert canonical_name("BINARY_mnist") == "binary-mnist"
    assert canonical_name("binary-npz:/Some/Path.npz") == "binary-npz:/Some/Path.npz"


def test_digits():
    ds = load_dataset("digits", seed=0)
    assert ds.x_train.shape == (1438, 1, 8, 8) and ds.x_test.shape == (359, 1, 8, 8)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert float(ds.x_train.min()) == 0.0 and float(ds.x_train.max()) == 1.0
    assert ds.n_classes == 10 and set(ds.y_test.tolist()) == set(range(10))
    other = load_dataset("digits", seed=1)
    assert not torch.equal(ds.y_train, other.y_train)
    assert torch.equal(ds.y_train, load_dataset("digits", seed=0).y_train)


def test_mnist1d_shapes_and_offline_generation(mnist1d, tmp_path, monkeypatch):
    ds = mnist1d
    assert ds.x_train.shape == (4000, 40) and ds.x_test.shape == (1000, 40)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert ds.input_shape == (40,) and ds.n_classes == 10
    assert set(ds.y_train.tolist()) == set(range(10))
    assert ds.info["source"] == "mnist1d.data.make_dataset"
    # a small, different-seed set: no file written to the working folder, global RNG kept
    monkeypatch.chdir(tmp_path)
    random.seed(7)
    np.random.seed(7)  # noqa: NPY002
    state = (random.getstate(), np.random.get_state()[1].copy())  # noqa: NPY002
    small = load_dataset("mnist1d", seed=1, n_samples=100)
    assert (len(small), small.n_test) == (80, 20)
    assert os.listdir(tmp_path) == []
    assert random.getstate() == state[0]
    assert np.array_equal(np.random.get_state()[1], state[1])  # noqa: NPY002
    again = load_dataset("mnist1d", seed=1, n_samples=100)
    assert torch.equal(small.x_train, again.x_train)


def test_two_moons():
    ds = load_dataset("two-moons", seed=0)
    assert ds.x_train.shape == (800, 2) and ds.x_test.shape == (200, 2)
    assert ds.n_classes == 2 and set(ds.y_train.tolist()) == {0, 1}
    small = load_dataset("two-moons", seed=0, n_samples=50)
    assert (len(small), small.n_test) == (40, 10)
    assert not torch.equal(ds.x_train, load_dataset("two-moons", seed=1).x_train)


def test_binary_variant():
    ds = load_dataset("binary-digits", seed=0)
    base = load_dataset("digits", seed=0)
    assert ds.n_classes == 2 and ds.name == "binary-digits"
    assert ds.y_train.dtype == torch.int64
    assert torch.equal(ds.y_train, (base.y_train >= 5).long())
    assert torch.equal(ds.x_train, base.x_train)


def test_n_samples_subsamples_stored_sets():
    ds = load_dataset("digits", seed=0, n_samples=100)
    assert len(ds) == 100 and ds.n_test == 359 and ds.info["n_samples"] == 100
    with pytest.raises(ValueError):
        load_dataset("digits", n_samples=0)


def test_normalize_option():
    ds = load_dataset("digits", normalize=True)
    assert abs(float(ds.x_train.mean())) < 1e-5
    assert "normalization" in ds.info


def test_npz_with_test_arrays(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(
        path,
        x=rng.integers(0, 256, (30, 6, 6), dtype=np.uint8),
        y=np.arange(30) % 3,
        x_test=rng.integers(0, 256, (9, 6, 6), dtype=np.uint8),
        y_test=np.arange(9) % 3,
    )
    ds = load_dataset(f"npz:{path}")
    assert ds.x_train.shape == (30, 1, 6, 6) and ds.x_test.shape == (9, 1, 6, 6)
    assert float(ds.x_train.max()) <= 1.0 and ds.n_classes == 3
    assert ds.info["test_split"] == "file" and ds.info["source"] == str(path.resolve())
    assert torch.equal(ds.y_train, torch.arange(30) % 3)


def test_npz_without_test_arrays(tmp_path):
    path = tmp_path / "vec.npz"
    x = np.arange(100, dtype=np.float64).reshape(50, 2)
    np.savez(path, x=x, y=(np.arange(50) % 4).astype(np.float32), n_classes=5)
    ds = load_dataset(f"npz:{path}", seed=2)
    assert (len(ds), ds.n_test) == (40, 10) and ds.n_classes == 5
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert torch.equal((ds.x_train[:, 0] / 2).long() % 4, ds.y_train)  # rows kept with labels
    assert torch.equal(ds.y_train, load_dataset(f"npz:{path}", seed=2).y_train)
    assert not torch.equal(ds.y_train, load_dataset(f"npz:{path}", seed=3).y_train)
    binary = load_dataset(f"binary-npz:{path}", seed=2)
    assert binary.n_classes == 2


def test_npz_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load_dataset(f"npz:{tmp_path / 'missing.npz'}")
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="'y'"):
        load_dataset(f"npz:{bad}")
    np.savez(bad, x=np.zeros((3, 2)), y=np.array([0.5, 1, 2]))
    with pytest.raises(ValueError, match="integers"):
        load_dataset(f"npz:{bad}")
    np.savez(bad, x=np.zeros((3, 2)), y=np.zeros(3, int), x_test=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="both"):
        load_dataset(f"npz:{bad}")


def _savez(path, **arrays):
    np.savez(path, **arrays)
    return f"npz:{path}"


def test_npz_files_that_are_not_archives_are_named(tmp_path):
    x, y = np.zeros((20, 2)), np.arange(20) % 2
    good = tmp_path / "good.npz"
    np.savez(good, x=x, y=y)
    truncated = tmp_path / "cut.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"cut\.npz is a truncated or corrupt \.npz archive"):
        load_dataset(f"npz:{truncated}")
    array = tmp_path / "x.npy"
    np.save(array, x)
    with pytest.raises(ValueError, match=r"x\.npy is a single \.npy array, not an \.npz"):
        load_dataset(f"npz:{array}")
    text = tmp_path / "notes.npz"
    text.write_text("x,y\n1,0\n")
    with pytest.raises(ValueError, match=r"notes\.npz is not an \.npz archive"):
        load_dataset(f"npz:{text}")


def test_npz_labels_and_features_are_checked(tmp_path):
    x, y = np.random.default_rng(0).normal(size=(50, 3)), np.arange(50) % 3
    path = tmp_path / "d.npz"
    huge = y.copy()
    huge[7] = 10**9  # would otherwise ask for a 10⁹-way output layer
    with pytest.raises(ValueError, match=r"d\.npz: the largest label 1000000000 .*at most 1000\)"):
        load_dataset(_savez(path, x=x, y=huge))
    with pytest.raises(ValueError, match=r"d\.npz: 'n_classes' asks for 5000 classes"):
        load_dataset(_savez(path, x=x, y=y, n_classes=5000))
    with pytest.raises(ValueError, match=r"d\.npz: labels go up to 2 but 'n_classes' is 2"):
        load_dataset(_savez(path, x=x, y=y, n_classes=2))
    with pytest.raises(ValueError, match=r"d\.npz: 'n_classes' must be an integer scalar"):
        load_dataset(_savez(path, x=x, y=y, n_classes=2.5))
    with pytest.raises(
        ValueError, match=r"d\.npz: the training labels hold only class 1; at least 2"
    ):
        load_dataset(_savez(path, x=x, y=np.ones(50, int)))
    bad = x.copy()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match=r"d\.npz: array 'x_test' contains 1 NaN/Inf"):
        load_dataset(_savez(path, x=x, y=y, x_test=bad, y_test=y))
    # up to one class per sample is fine beyond NPZ_MAX_CLASSES
    many = np.arange(1500) % 1200
    ds = load_dataset(_savez(path, x=np.zeros((1500, 1)), y=many))
    assert ds.n_classes == 1200


def test_single_class_training_set_is_refused_after_binarising(tmp_path):
    x, y = np.zeros((40, 2)), 2 + np.arange(40) % 2  # classes 2, 3 of 4: all "1" when binarised
    name = _savez(tmp_path / "hi.npz", x=x, y=y)
    assert load_dataset(name).n_classes == 4
    with pytest.raises(ValueError, match=r"dataset 'binary-npz:.*hi\.npz': .* class 1 only"):
        load_dataset(f"binary-{name}")
