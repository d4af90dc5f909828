"""``load_dataset(name, ...)``: one entry point for every dataset of the library.

Names (case-insensitive; ``_`` and ``-`` interchangeable):

=================  ==========================================================================
``fashion-mnist``  60,000 / 10,000 images 1x28x28, 10 classes (files; see ``images``)
``mnist``          full 60,000 / 10,000 when the files exist, else the 10k real subset
                   shuffled with ``seed`` (8,571 / 1,429); ``info['variant']`` says which
``mnist-full``     MNIST, full split only;  ``mnist-10k``: the 10k subset only
``digits``         scikit-learn 8x8 digits, 1x8x8 in [0, 1], seeded 1,438 / 359 split
``mnist1d``        MNIST-1D generated offline, (40,), 4,000 / 1,000 by default
``two-moons``      sklearn ``make_moons``, noise 0.1, (2,), 1,000 samples, seeded 20 % test
``binary-<name>``  any of the above with labels ``>= n_classes // 2`` -> 1, else 0
``npz:PATH``       user arrays ``x``, ``y`` [, ``x_test``, ``y_test``] (see ``npz``)
=================  ==========================================================================

Instead of a name, a torch ``Dataset`` or ``DataLoader`` of ``(x, y)`` pairs (with ``test=`` its held-out
set, else a seeded 20 % split) is read into memory (:func:`weightinfo.data.torch_data.from_torch`).

``n_samples``: for generated sets (``mnist1d``, ``two-moons``) the total generated before
the train/test split; for stored sets a seeded random subset of the *training* set of
that size (the test set stays whole).
"""

from __future__ import annotations

import os

import torch

from weightinfo.data.dataset import Dataset
from weightinfo.data.generated import load_digits, load_mnist1d, load_two_moons
from weightinfo.data.images import load_fashion_mnist, load_mnist
from weightinfo.data.npz import load_npz
from weightinfo.data.torch_data import from_torch, is_torch_data
from weightinfo.data.wrappers import binarize, standardize, subsample

__all__ = ["DATASET_NAMES", "canonical_name", "load_dataset"]

#: Names accepted by :func:`load_dataset` (plus ``binary-<name>`` and ``npz:PATH``).
DATASET_NAMES: tuple[str, ...] = (
    "fashion-mnist",
    "mnist",
    "mnist-full",
    "mnist-10k",
    "digits",
    "mnist1d",
    "two-moons",
)

_ALIASES = {
    "fashionmnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "mnist-1d": "mnist1d",
    "moons": "two-moons",
    "twomoons": "two-moons",
}

_GENERATED = {"mnist1d", "two-moons"}


def canonical_name(name: str) -> str:
    """Normalise a dataset name (``"Fashion_MNIST"`` -> ``"fashion-mnist"``); paths untouched."""
    stripped = name.strip()
    if stripped[:7].lower().replace("_", "-") == "binary-":
        return "binary-" + canonical_name(stripped[7:])
    if stripped[:4].lower() == "npz:":
        return "npz:" + stripped[4:]
    key = stripped.lower().replace("_", "-")
    return _ALIASES.get(key, key)


def _valid_names() -> str:
    return ", ".join(DATASET_NAMES) + ", binary-<name>, npz:PATH"


def _load_base(name: str, root, download: bool, seed: int, n_samples: int | None) -> Dataset:
    if name.startswith("npz:"):
        return load_npz(name[4:], seed=seed)
    if name == "fashion-mnist":
        return load_fashion_mnist(root=root, download=download, seed=seed)
    if name in ("mnist", "mnist-full", "mnist-10k"):
        variant = {"mnist": "auto", "mnist-full": "full", "mnist-10k": "10k"}[name]
        return load_mnist(root=root, download=download, seed=seed, variant=variant)
    if name == "digits":
        return load_digits(seed=seed)
    if name == "mnist1d":
        return load_mnist1d(seed=seed, n_samples=n_samples)
    if name == "two-moons":
        return load_two_moons(seed=seed, n_samples=n_samples)
    raise ValueError(f"unknown dataset {name!r}; valid names: {_valid_names()}")


def load_dataset(
    name,
    *,
    test=None,
    root: str | os.PathLike | None = None,
    download: bool = False,
    seed: int = 0,
    n_samples: int | None = None,
    normalize: bool = False,
) -> Dataset:
    """Load a dataset by name (see the module docstring for names and conventions).

    Parameters
    ----------
    name : dataset name, ``binary-<name>`` or ``npz:PATH``; or a torch ``Dataset``/``DataLoader`` of
        ``(x, y)`` pairs (:func:`~weightinfo.data.torch_data.from_torch`).
    test : with torch data only: the held-out ``Dataset``/``DataLoader`` (default: a seeded 20 % split).
    root : data folder searched first (file-backed sets); then ``$WEIGHTINFO_DATA``, the
        user cache (``$XDG_CACHE_HOME/weightinfo``) and ``/usr/share/datasets``.
    download : fetch missing files into the user cache (needs internet). Never implied.
    seed : seeds every random split/generation, so a (name, seed) pair is reproducible.
    n_samples : see the module docstring.
    normalize : standardise inputs with the training mean/std (default: images in [0, 1]).

    Raises
    ------
    ValueError : unknown name (message lists the valid ones) or bad arguments.
    FileNotFoundError : (:class:`~weightinfo.data.locate.DatasetNotFoundError`) files
        missing; the message lists every folder searched and how to get the data.

    Examples
    --------
    >>> ds = load_dataset("two-moons", seed=1)
    >>> len(ds), ds.n_test, ds.input_shape, ds.n_classes
    (800, 200, (2,), 2)
    """
    if n_samples is not None and int(n_samples) < 1:
        raise ValueError(f"n_samples must be positive, got {n_samples}")
    if is_torch_data(name):
        if root is not None or download:
            raise ValueError(
                "root= and download= locate dataset files; they do not apply to torch data"
            )
        ds = from_torch(name, test, seed=int(seed))
        if n_samples is not None:
            ds = subsample(ds, int(n_samples), seed=int(seed))
        return standardize(ds) if normalize else ds
    if test is not None:
        raise ValueError("test= is the held-out set of torch data; a named dataset brings its own")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(
            "dataset must be a non-empty name or a torch Dataset/DataLoader; valid names: "
            + _valid_names()
        )
    canon = canonical_name(name)
    binary = canon.startswith("binary-")
    base = canon[len("binary-") :] if binary else canon
    if base.startswith("binary-"):
        raise ValueError(f"{name!r}: 'binary-' may be applied only once")
    ds = _load_base(base, root, download, int(seed), n_samples)
    if n_samples is not None and base not in _GENERATED:
        ds = subsample(ds, int(n_samples), seed=int(seed))
    if binary:
        ds = binarize(ds)
    if normalize:
        ds = standardize(ds)
    _check_two_classes(ds, name)
    return ds


def _check_two_classes(ds: Dataset, name: str) -> None:
    """A training set with one class has nothing to learn (IW = 0): refuse it, naming the dataset."""
    present = torch.unique(ds.y_train)
    if len(present) < 2:
        found = "no samples" if len(present) == 0 else f"samples of class {int(present[0])} only"
        raise ValueError(
            f"dataset {name!r}: the training set has {found}; at least 2 classes with samples "
            "are needed"
        )
