"""The :class:`Dataset` container: in-memory train/test tensors plus metadata.

Conventions:

* ``x_*`` are float32 tensors, ``(N, *input_shape)``: images ``(N, 1, H, W)`` in [0, 1]
  (unless standardised on request), vectors ``(N, D)``.
* ``y_*`` are int64 class indices in ``[0, n_classes)`` (usable by ``cross_entropy``
  directly, also for two-class sets).
* ``len(ds)`` is the number of *training* samples; ``subset`` and the index splits
  refer to positions in the training set.
* ``info`` is a JSON-friendly dict of provenance (source path, variant, seed, wrappers
  applied); :meth:`Dataset.to_dict` adds sizes and shapes for checkpoint metadata.
* Loaders are ordinary ``torch.utils.data.DataLoader`` objects over a ``TensorDataset``;
  shuffling uses a generator seeded with ``seed``, never the global RNG.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler, TensorDataset

from weightinfo._base.jsonable import to_jsonable
from weightinfo.data.splits import prior_bound_split

__all__ = ["Dataset", "as_index_tensor"]


def as_index_tensor(indices: Any, n: int) -> torch.Tensor:
    """int64 positions from a list/array/tensor of indices or a boolean mask of length ``n``."""
    idx = torch.as_tensor(np.asarray(indices) if not torch.is_tensor(indices) else indices)
    if idx.dtype == torch.bool:
        if idx.shape != (n,):
            raise ValueError(f"boolean mask must have shape ({n},), got {tuple(idx.shape)}")
        return idx.nonzero().flatten()
    if idx.numel() == 0:
        return torch.zeros(0, dtype=torch.int64)
    if idx.is_floating_point() or idx.is_complex():
        raise TypeError(f"indices must be integers or a boolean mask, got {idx.dtype}")
    idx = idx.flatten().to(torch.int64)
    if idx.min() < -n or idx.max() >= n:
        raise IndexError(f"indices out of range for {n} training samples")
    return idx % n if n else idx


class _IndexSampler(torch.utils.data.Sampler):
    """Yields given positions, reshuffled each epoch by a seeded generator when asked."""

    def __init__(self, indices: torch.Tensor, shuffle: bool, seed: int):
        self.indices = indices
        self.shuffle = shuffle
        self.generator = torch.Generator().manual_seed(int(seed))

    def __iter__(self):
        if self.shuffle:
            order = torch.randperm(len(self.indices), generator=self.generator)
            yield from self.indices[order].tolist()
        else:
            yield from self.indices.tolist()

    def __len__(self) -> int:
        return len(self.indices)


@dataclass(eq=False, repr=False)
class Dataset:
    """Train/test tensors of one dataset with its metadata (see module docstring)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    input_shape: tuple[int, ...] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            x, y = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
            if len(x) != len(y):
                raise ValueError(f"x_{part} and y_{part} differ in length: {len(x)} != {len(y)}")
            if y.dtype != torch.int64 or y.ndim != 1:
                raise TypeError(f"y_{part} must be a 1-D int64 tensor, got {y.dtype} {y.ndim}-D")
            if not x.is_floating_point():
                raise TypeError(f"x_{part} must be floating point, got {x.dtype}")
            if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.n_classes):
                raise ValueError(f"y_{part} has labels outside [0, {self.n_classes})")
        shape = tuple(int(s) for s in self.x_train.shape[1:])
        if self.input_shape is None:
            self.input_shape = shape
        self.input_shape = tuple(int(s) for s in self.input_shape)
        if self.input_shape != shape or tuple(self.x_test.shape[1:]) != shape:
            raise ValueError(
                f"input_shape {self.input_shape} disagrees with x_train {shape} "
                f"/ x_test {tuple(self.x_test.shape[1:])}"
            )

    # ----------------------------------------------------------------- sizes
    def __len__(self) -> int:
        return len(self.y_train)

    @property
    def n_train(self) -> int:
        return len(self.y_train)

    @property
    def n_test(self) -> int:
        return len(self.y_test)

    @property
    def seed(self) -> int | None:
        """The seed that shaped this dataset's split (``info['seed']``), if any."""
        return self.info.get("seed")

    # --------------------------------------------------------------- loaders
    def train_loader(
        self,
        batch_size: int = 128,
        shuffle: bool = True,
        seed: int = 0,
        indices: Any = None,
        drop_last: bool = False,
    ) -> DataLoader:
        """A DataLoader of ``(x, y)`` training batches, optionally restricted to ``indices``.

        Each epoch is reshuffled by a generator seeded once with ``seed``, so the whole
        sequence of epochs is reproducible. Batches are gathered by tensor indexing (one
        ``TensorDataset[list]`` lookup per batch), hence ``loader.batch_size`` is None;
        ``len(loader)`` is the number of batches.
        """
        positions = (
            torch.arange(self.n_train)
            if indices is None
            else as_index_tensor(indices, self.n_train)
        )
        sampler = _IndexSampler(positions, shuffle, seed)
        return self._loader(self.x_train, self.y_train, sampler, batch_size, drop_last)

    def test_loader(self, batch_size: int = 512) -> DataLoader:
        """A DataLoader over the test set, in stored order."""
        data = TensorDataset(self.x_test, self.y_test)
        return self._loader(self.x_test, self.y_test, SequentialSampler(data), batch_size, False)

    @staticmethod
    def _loader(x, y, sampler, batch_size: int, drop_last: bool) -> DataLoader:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        batches = BatchSampler(sampler, batch_size=int(batch_size), drop_last=drop_last)
        return DataLoader(TensorDataset(x, y), sampler=batches, batch_size=None)

    # ------------------------------------------------------- subsets / splits
    def replace(self, **changes: Any) -> Dataset:
        """A copy with some fields changed; ``info`` is deep-copied and updated, not replaced."""
        info = copy.deepcopy(self.info)
        info.update(changes.pop("info", {}))
        fields = {
            "name": self.name,
            "x_train": self.x_train,
            "y_train": self.y_train,
            "x_test": self.x_test,
            "y_test": self.y_test,
            "n_classes": self.n_classes,
            "input_shape": None,
            "info": info,
        }
        fields.update(changes)
        return Dataset(**fields)

    def subset(self, indices: Any) -> Dataset:
        """The same dataset with only the given training samples (the test set is kept)."""
        idx = as_index_tensor(indices, self.n_train)
        history = list(self.info.get("subsets", [])) + [int(len(idx))]
        return self.replace(
            x_train=self.x_train[idx], y_train=self.y_train[idx], info={"subsets": history}
        )

    def prior_bound_split(
        self, prior_fraction: float = 0.5, seed: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Disjoint sorted ``(prior_idx, bound_idx)`` covering the training set.

        See :func:`weightinfo.data.splits.prior_bound_split`: the prior is fitted on
        ``ds.subset(prior_idx)``, the PAC-Bayes bound evaluated on ``ds.subset(bound_idx)``.
        """
        return prior_bound_split(self.n_train, prior_fraction, seed)

    #: Alias of :meth:`prior_bound_split`.
    split = prior_bound_split

    # -------------------------------------------------------------- metadata
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable description (for checkpoint metadata); no tensors."""
        return {
            "name": self.name,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "n_classes": int(self.n_classes),
            "input_shape": list(self.input_shape),
            "seed": to_jsonable(self.info.get("seed"), "seed", default=str),
            "variant": to_jsonable(self.info.get("variant"), "variant", default=str),
            "info": to_jsonable(self.info, "info", default=str),
        }

    def describe(self) -> str:
        """One line for logs, e.g. ``fashion-mnist [full]: 60000 train / 10000 test, ...``."""
        variant = self.info.get("variant")
        tag = f" [{variant}]" if variant else ""
        shape = "x".join(str(s) for s in self.input_shape)
        extras = [f"seed={self.info['seed']}"] if "seed" in self.info else []
        if "label_noise" in self.info:
            extras.append(f"label_noise={self.info['label_noise']['fraction']}")
        extra = (", " + ", ".join(extras)) if extras else ""
        return (
            f"{self.name}{tag}: {self.n_train} train / {self.n_test} test, "
            f"{self.n_classes} classes, input {shape}{extra}"
        )

    def __repr__(self) -> str:
        return f"Dataset({self.describe()})"
