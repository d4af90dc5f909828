"""Datasets that need no files: bundled with a package or generated on the spot.

* ``digits``: scikit-learn's ``load_digits`` (1,797 real 8x8 digit images shipped inside
  the wheel), pixels / 16 -> [0, 1], shape ``(N, 1, 8, 8)``, seeded split with test
  fraction 1/5 (1,438 / 359).
* ``mnist1d``: MNIST-1D (Greydanus 2020) generated locally by the ``mnist1d`` package with
  ``args.seed = seed``: ``(N, 40)`` float32, already centred to mean 0 / std 1 by the
  generator (not in [0, 1]); default 5,000 samples split 4,000 / 1,000 by the package.
  The published ``mnist1d_data.pkl`` corresponds to ``seed=42``. Only ``make_dataset`` is
  used -- never ``get_dataset``, which downloads and writes a pickle to the working folder.
  The generator seeds the global ``random`` / ``numpy.random`` state; it is restored after.
* ``two-moons``: ``sklearn.datasets.make_moons(n_samples, noise=0.1, random_state=seed)``,
  ``(N, 2)`` float32, default 1,000 samples, seeded 20 % test split.
"""

from __future__ import annotations

import random

import numpy as np
import torch

from weightinfo.data.dataset import Dataset
from weightinfo.data.splits import train_test_split

__all__ = ["DIGITS_TEST_FRACTION", "load_digits", "load_mnist1d", "load_two_moons"]

DIGITS_TEST_FRACTION = 0.2
TWO_MOONS_TEST_FRACTION = 0.2
TWO_MOONS_NOISE = 0.1


def _tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.as_tensor(np.asarray(x, dtype=np.float32)),
        torch.as_tensor(np.asarray(y, dtype=np.int64)),
    )


def load_digits(seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 digits as ``(N, 1, 8, 8)`` images in [0, 1], seeded 4:1 split."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x, y = _tensors(bunch.data.reshape(-1, 1, 8, 8) / 16.0, bunch.target)
    x_tr, y_tr, x_te, y_te = train_test_split(x, y, DIGITS_TEST_FRACTION, seed)
    info = {"variant": "sklearn", "source": "sklearn.datasets.load_digits", "seed": int(seed)}
    return Dataset("digits", x_tr, y_tr, x_te, y_te, n_classes=10, info=info)


def load_mnist1d(seed: int = 0, n_samples: int | None = None) -> Dataset:
    """MNIST-1D generated offline (see module docstring); ``n_samples`` = train + test."""
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = int(seed)
    if n_samples is not None:
        if n_samples < 10:
            raise ValueError(f"mnist1d needs at least 10 samples, got {n_samples}")
        args.num_samples = int(n_samples)
    # mnist1d draws from the legacy global RNGs: save and restore them around it.
    py_state, np_state = random.getstate(), np.random.get_state()  # noqa: NPY002
    try:
        data = make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)  # noqa: NPY002
    x_tr, y_tr = _tensors(data["x"], data["y"])
    x_te, y_te = _tensors(data["x_test"], data["y_test"])
    info = {
        "variant": "generated",
        "source": "mnist1d.data.make_dataset",
        "seed": int(seed),
        "n_samples": int(args.num_samples),
    }
    return Dataset("mnist1d", x_tr, y_tr, x_te, y_te, n_classes=10, info=info)


def load_two_moons(seed: int = 0, n_samples: int | None = None) -> Dataset:
    """Two interleaved half circles, noise 0.1, ``(N, 2)``; ``n_samples`` = train + test."""
    from sklearn.datasets import make_moons

    n = 1000 if n_samples is None else int(n_samples)
    x, y = make_moons(n_samples=n, noise=TWO_MOONS_NOISE, random_state=int(seed))
    x_tr, y_tr, x_te, y_te = train_test_split(*_tensors(x, y), TWO_MOONS_TEST_FRACTION, seed)
    info = {
        "variant": "generated",
        "source": "sklearn.datasets.make_moons",
        "seed": int(seed),
        "n_samples": n,
        "noise": TWO_MOONS_NOISE,
    }
    return Dataset("two-moons", x_tr, y_tr, x_te, y_te, n_classes=2, info=info)
