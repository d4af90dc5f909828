"""Step 0 of :func:`weightinfo.certify`: the data sets, checked against the model before any work.

A certificate is only as good as its bound set's independence from the prior (Dziugaite & Roy 2017, §3), so
overlapping training-set indices are refused; non-finite data and data the model cannot take are refused
with a message naming the data set, before the prior is trained.
"""

from __future__ import annotations

import torch
from torch import nn

from .._base.checks import check_finite_tensor
from ..data.splits import prior_bound_split
from . import risk as R


def check_disjoint(prior_indices, bound_indices) -> None:
    """Refuse a bound set that shares training-set indices with the prior set (when both are given)."""
    if prior_indices is None or bound_indices is None:
        return
    a = torch.as_tensor(prior_indices).reshape(-1).long()
    b = torch.as_tensor(bound_indices).reshape(-1).long()
    common = torch.unique(a[torch.isin(a, b)])
    if common.numel():
        raise ValueError(
            f"prior_indices and bound_indices overlap in {common.numel()} example(s) "
            f"(e.g. {common[:5].tolist()}): the bound set must be independent of the prior"
        )


def data_sets(data, prior_data, posterior_data, bound_data, indices, fraction: float, seed: int):
    """``(prior_data, posterior_data, bound_data, prior_indices, bound_indices)``.

    With ``data`` (``certify(model, data)``) the prior set and the bound set are a seeded random split of it
    (``prior_bound_split(n, fraction, seed)``) and the posterior is fitted on all of it; otherwise the sets
    and ``indices`` are returned as given."""
    if data is None:
        if posterior_data is None or bound_data is None:
            raise ValueError(
                "certify needs data=(X, Y) (split into prior and bound sets) or posterior_data= and "
                "bound_data="
            )
        return prior_data, posterior_data, bound_data, *indices
    if any(d is not None for d in (prior_data, posterior_data, bound_data)):
        raise ValueError(
            "pass data (split into prior and bound sets) or prior_data/posterior_data/bound_data, "
            "not both"
        )
    x, y = R.as_tensors(data, "data")
    pi, bi = prior_bound_split(int(x.shape[0]), fraction, seed)
    return (x[pi], y[pi]), (x, y), (x[bi], y[bi]), pi, bi


def checked_data(model: nn.Module, data, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, Y)`` of ``data`` on ``model``'s device, once they are finite and ``model`` takes X and has an
    output for every label."""
    x, y = R.as_tensors(data, what)
    check_finite_tensor(f"{what} inputs X", x)
    check_finite_tensor(f"{what} targets Y", y)
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            out = model(x[:1].to(device))
    except RuntimeError as e:
        msg = str(e).strip().splitlines()[0]
        raise ValueError(
            f"the model does not accept {what} inputs of shape {tuple(x.shape[1:])}: {msg}"
        ) from e
    if not y.is_floating_point() and y.numel() and int(y.max()) >= out.shape[-1]:
        raise ValueError(
            f"{what} has label {int(y.max())} but the model has {out.shape[-1]} outputs"
        )
    return x.to(device), y.to(device)  # checked on the host, computed on the model's device
