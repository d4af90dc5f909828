"""File-backed image sets in IDX format: Fashion-MNIST and MNIST.

Folders searched (under every root of :func:`weightinfo.data.locate.search_roots`):

* Fashion-MNIST: ``fashion-mnist/`` or torchvision's ``FashionMNIST/raw/`` with
  ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
  ``t10k-labels-idx1-ubyte`` (each ``.gz`` or not). Always the official 60,000/10,000 split.
* MNIST, variant ``"full"``: ``mnist/`` or ``MNIST/raw/`` with the same four file names
  (official 60,000/10,000 split). Variant ``"10k"``: ``mnist-10k/`` with
  ``images-idx3-ubyte.gz`` and ``labels-idx1-ubyte.gz``, 10,000 real digits stored
  *sorted by label*; they are shuffled with ``seed`` and split 8,571 train / 1,429 test
  (test fraction 1/7, as 10k/70k in the official split). ``variant="auto"`` takes the full
  set when found anywhere, otherwise the subset; ``info['variant']`` says which.

Images become float32 ``(N, 1, 28, 28)`` in [0, 1] (pixel / 255); labels int64.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch

from weightinfo.data.dataset import Dataset
from weightinfo.data.idx import read_idx
from weightinfo.data.locate import (
    DatasetNotFoundError,
    download_files,
    find_files,
    not_found_message,
    user_cache_dir,
)
from weightinfo.data.splits import train_test_split

__all__ = ["MNIST_10K_TEST_FRACTION", "load_fashion_mnist", "load_idx_images", "load_mnist"]

#: Test fraction of the 10k MNIST subset (10,000 / 70,000 of the official split).
MNIST_10K_TEST_FRACTION = 1 / 7

SPLIT_STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
SUBSET_STEMS = {"images": "images-idx3-ubyte", "labels": "labels-idx1-ubyte"}

FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"

FASHION_HOW = (
    "  - Debian/Ubuntu: apt-get install dataset-fashion-mnist "
    "(installs /usr/share/datasets/fashion-mnist/)"
)
MNIST_HOW = (
    "  - full MNIST: the four files from http://yann.lecun.com/exdb/mnist/ (or torchvision's\n"
    "    MNIST(download=True)) in <DIR>/mnist/ or <DIR>/MNIST/raw/;\n"
    "  - offline: the 10k real subset as <DIR>/mnist-10k/images-idx3-ubyte.gz and "
    "labels-idx1-ubyte.gz"
)


def load_idx_images(images_path, labels_path, n_classes: int = 10):
    """Read an IDX image file and its label file into ``(x, y)`` tensors.

    ``x``: float32 ``(N, 1, H, W)`` scaled to [0, 1]; ``y``: int64 ``(N,)``. Raises
    ValueError when the files disagree or hold something other than uint8 images / labels.
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{images_path}: expected uint8 images (N, H, W), got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: expected 1-D labels, got shape {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path} holds {len(images)} images but {labels_path} {len(labels)} labels"
        )
    if len(labels) and int(labels.max()) >= n_classes:
        raise ValueError(f"{labels_path}: label {int(labels.max())} >= {n_classes} classes")
    x = torch.from_numpy(images).unsqueeze(1).to(torch.float32).div_(255.0)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def _dataset_from_split(name: str, folder, files, variant: str, seed: int) -> Dataset:
    x_tr, y_tr = load_idx_images(files["train_images"], files["train_labels"])
    x_te, y_te = load_idx_images(files["test_images"], files["test_labels"])
    info = {"variant": variant, "source": str(folder), "seed": int(seed)}
    return Dataset(name, x_tr, y_tr, x_te, y_te, n_classes=10, info=info)


def _download(url: str, subdir: str) -> None:
    dest = user_cache_dir() / subdir
    download_files({stem + ".gz": url + stem + ".gz" for stem in SPLIT_STEMS.values()}, dest)


def load_fashion_mnist(root=None, download: bool = False, seed: int = 0) -> Dataset:
    """Fashion-MNIST, official 60,000/10,000 split (``seed`` is only recorded)."""
    searched: list[str] = []
    subdirs = ["fashion-mnist", os.path.join("FashionMNIST", "raw")]
    found = find_files(subdirs, SPLIT_STEMS, root, searched)
    if found is None and download:
        try:
            _download(FASHION_URL, "fashion-mnist")
        except DatasetNotFoundError as err:
            message = not_found_message(
                "fashion-mnist", searched, SPLIT_STEMS.values(), FASHION_HOW
            )
            raise DatasetNotFoundError(f"{message}\nDownload failed: {err}") from err
        found = find_files(subdirs, SPLIT_STEMS, user_cache_dir())
    if found is None:
        raise DatasetNotFoundError(
            not_found_message("fashion-mnist", searched, SPLIT_STEMS.values(), FASHION_HOW)
        )
    return _dataset_from_split("fashion-mnist", *found, variant="full", seed=seed)


def _load_mnist_10k(folder, files, seed: int) -> Dataset:
    x, y = load_idx_images(files["images"], files["labels"])
    x_tr, y_tr, x_te, y_te = train_test_split(x, y, MNIST_10K_TEST_FRACTION, seed)
    info = {
        "variant": "10k",
        "source": str(folder),
        "seed": int(seed),
        "note": "10k real MNIST subset, shuffled with seed, test fraction 1/7",
    }
    return Dataset("mnist", x_tr, y_tr, x_te, y_te, n_classes=10, info=info)


def load_mnist(root=None, download: bool = False, seed: int = 0, variant: str = "auto") -> Dataset:
    """MNIST: the full official split where available, otherwise the seeded 10k subset.

    ``variant``: ``"auto"`` (full if found anywhere, else 10k), ``"full"`` or ``"10k"``.
    With ``download=True`` a missing full set is fetched into the user cache; if that
    fails and ``variant="auto"``, the 10k subset is used (with a warning) when present.
    """
    if variant not in ("auto", "full", "10k"):
        raise ValueError(f"variant must be 'auto', 'full' or '10k', got {variant!r}")
    searched: list[str] = []
    full_dirs = ["mnist", os.path.join("MNIST", "raw")]
    download_error = None
    if variant in ("auto", "full"):
        found = find_files(full_dirs, SPLIT_STEMS, root, searched)
        if found is None and download:
            try:
                _download(MNIST_URL, "mnist")
                found = find_files(full_dirs, SPLIT_STEMS, user_cache_dir())
            except DatasetNotFoundError as err:
                download_error = err
        if found is not None:
            return _dataset_from_split("mnist", *found, variant="full", seed=seed)
    if variant in ("auto", "10k"):
        found = find_files(["mnist-10k"], SUBSET_STEMS, root, searched)
        if found is not None:
            if download_error is not None:
                warnings.warn(
                    f"full MNIST could not be downloaded ({download_error}); using the 10k subset",
                    stacklevel=3,
                )
            return _load_mnist_10k(*found, seed=seed)
    wanted = list(SPLIT_STEMS.values()) if variant != "10k" else []
    wanted += list(SUBSET_STEMS.values()) if variant != "full" else []
    message = not_found_message("mnist", searched, wanted, MNIST_HOW)
    if download_error is not None:
        raise DatasetNotFoundError(
            f"{message}\nDownload failed: {download_error}"
        ) from download_error
    raise DatasetNotFoundError(message)
