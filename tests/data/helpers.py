"""Helpers for the data tests: tiny fake IDX datasets written into temporary folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from weightinfo.data.idx import write_idx

SPLIT_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def fake_images(n: int, h: int = 4, w: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w), dtype=np.uint8)


def write_fake_split(
    folder: Path, n_train: int = 20, n_test: int = 10, gz: bool = True, side: int = 4
) -> Path:
    """Write the four MNIST-style files (labels cycling 0..9) into ``folder``."""
    folder = Path(folder)
    suffix = ".gz" if gz else ""
    arrays = {
        "train_images": fake_images(n_train, side, side),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": fake_images(n_test, side, side, seed=1),
        "test_labels": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for key, array in arrays.items():
        write_idx(folder / (SPLIT_FILES[key] + suffix), array)
    return folder


def write_fake_subset(folder: Path, per_class: int = 7, side: int = 4) -> Path:
    """Write an ``mnist-10k``-style pair, stored sorted by label like the real one."""
    folder = Path(folder)
    labels = np.repeat(np.arange(10, dtype=np.uint8), per_class)
    images = fake_images(len(labels), side, side)
    images[:, 0, 0] = labels  # lets tests check that images travel with their labels
    write_idx(folder / "images-idx3-ubyte.gz", images)
    write_idx(folder / "labels-idx1-ubyte.gz", labels)
    return folder
