"""Whether a recorded architecture fits a dataset, checked before any work.

A checkpoint records its architecture (``name``, ``kwargs``, ``input_shape``, ``n_classes``; see
:mod:`weightinfo.checkpoint`). Measuring or certifying it on a dataset of another input shape would otherwise
end deep inside the first forward pass (``mat1 and mat2 shapes cannot be multiplied``).
"""

from __future__ import annotations

from collections.abc import Mapping


def check_fits(architecture: Mapping, dataset, *, loss: str = "cross_entropy") -> None:
    """Raise ``ValueError`` unless the model described by ``architecture`` takes ``dataset``'s inputs and,
    for a classification likelihood, has an output for every class.

    ``dataset`` needs ``name``, ``input_shape`` and ``n_classes`` (a :class:`weightinfo.data.Dataset`). A
    missing entry in ``architecture`` is not checked.
    """
    shape = tuple(architecture.get("input_shape") or dataset.input_shape)
    if shape != tuple(dataset.input_shape):
        raise ValueError(
            f"the checkpoint's model takes inputs {shape}, dataset {dataset.name!r} has "
            f"{dataset.input_shape}"
        )
    n_out = int(architecture.get("n_classes", dataset.n_classes))
    if n_out < dataset.n_classes and loss == "cross_entropy":
        raise ValueError(
            f"the checkpoint's model has {n_out} outputs, dataset {dataset.name!r} "
            f"{dataset.n_classes} classes"
        )
