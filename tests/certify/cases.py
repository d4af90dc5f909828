"""The digits problem the certificate tests share: an MLP at its seeded initial weights and the data split."""

from __future__ import annotations

import torch

from weightinfo.data import load_dataset
from weightinfo.models import build_model


def digits_mlp(width: int):
    """The digits set (split seed 0) and an MLP with one hidden layer of ``width`` units, initialised after
    ``torch.manual_seed(0)``: ``(ds, model, init)`` with ``init`` a copy of its initial state."""
    ds = load_dataset("digits", seed=0)
    torch.manual_seed(0)
    model = build_model("mlp", ds.input_shape, ds.n_classes, widths=(width,))
    init = {k: v.clone() for k, v in model.state_dict().items()}
    return ds, model, init


def split_kwargs(ds, init) -> dict:
    """certify's data keywords for the half/half prior/bound split of ``ds`` (seed 0), prior from ``init``."""
    pi, bi = ds.prior_bound_split(0.5, 0)
    return dict(
        prior_data=(ds.x_train[pi], ds.y_train[pi]),
        posterior_data=(ds.x_train, ds.y_train),
        bound_data=(ds.x_train[bi], ds.y_train[bi]),
        init_state=init,
        prior_indices=pi,
        bound_indices=bi,
    )
