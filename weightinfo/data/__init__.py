"""Offline datasets, seeded splits and dataset wrappers.

Everything here works without internet: file-backed sets (Fashion-MNIST, MNIST) are
looked up in local folders (``root``, ``$WEIGHTINFO_DATA``, the user cache,
``/usr/share/datasets``) and downloaded only on explicit request; the others are bundled
(scikit-learn digits) or generated (MNIST-1D, two moons).

Conventions shared by all modules:

* images are float32 ``(N, 1, H, W)`` in [0, 1]; vectors float32 ``(N, D)``;
  labels int64 class indices, also for two-class problems;
* every random choice takes an explicit ``seed`` and uses its own ``torch.Generator``
  (the global RNG is never consumed), so results are reproducible across runs;
* derived datasets record what was done to them in ``Dataset.info``.

Modules: :mod:`~weightinfo.data.idx` (IDX reader/writer), :mod:`~weightinfo.data.locate`
(search paths, download), :mod:`~weightinfo.data.dataset` (:class:`Dataset`),
:mod:`~weightinfo.data.splits`, :mod:`~weightinfo.data.wrappers`,
:mod:`~weightinfo.data.images`, :mod:`~weightinfo.data.generated`,
:mod:`~weightinfo.data.npz`, :mod:`~weightinfo.data.torch_data` (:func:`from_torch`: a torch ``Dataset`` or
``DataLoader`` as a :class:`Dataset`), :mod:`~weightinfo.data.registry` (:func:`load_dataset`).
"""

from weightinfo.data.dataset import Dataset
from weightinfo.data.idx import read_idx, write_idx
from weightinfo.data.locate import DatasetNotFoundError, search_roots, user_cache_dir
from weightinfo.data.registry import DATASET_NAMES, canonical_name, load_dataset
from weightinfo.data.splits import (
    prior_bound_split,
    seeded_permutation,
    split_indices,
    train_test_split,
)
from weightinfo.data.torch_data import from_torch
from weightinfo.data.wrappers import (
    binarize,
    corrupt_labels,
    corruption_plan,
    first_classes,
    standardize,
    subsample,
)

__all__ = [
    "DATASET_NAMES",
    "Dataset",
    "DatasetNotFoundError",
    "binarize",
    "canonical_name",
    "corrupt_labels",
    "corruption_plan",
    "first_classes",
    "from_torch",
    "load_dataset",
    "prior_bound_split",
    "read_idx",
    "search_roots",
    "seeded_permutation",
    "split_indices",
    "standardize",
    "subsample",
    "train_test_split",
    "user_cache_dir",
    "write_idx",
]
