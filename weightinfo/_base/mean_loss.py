"""The mean loss L_D(w) = (1/N) Σ_i ℓ(f_w(x_i), y_i) over a dataset, at the model's weights or at others.

Achille, Paolini & Soatto 2019, Eq. (1): L_D is the **mean** per-sample loss (not the sum), accumulated in
float64.

Distributed (``._base.distributed``): each rank passes its own shard; the sums and counts are all-reduced, so
every rank gets L_D and N of the union (collective: every rank must call).
"""

from __future__ import annotations

import torch
from torch.func import functional_call

from . import distributed as dist
from .batches import iter_batches

__all__ = ["mean_loss", "with_rest"]


def mean_loss(model, params, data, lossfn, batch_size) -> tuple[float, int]:
    """L_D = (1/N) Σ_i ℓ_i at the model's weights (``params=None``) or at ``params``; and N."""
    total, n = _sums(model, params, data, lossfn, batch_size)
    if dist.active():
        red = dist.reduce_sums({"total": total, "n": n})
        total, n = red["total"], red["n"]
    return total / n, n


def with_rest(model, loss: float, n: int, rest, lossfn, batch_size) -> tuple[float, int]:
    """L_D and N over the samples behind (``loss``, ``n``) and those of ``rest`` (None: none on this rank).

    Collective under a process group: every rank calls it, also one whose ``rest`` is None."""
    total, m = (0.0, 0) if rest is None else _sums(model, None, rest, lossfn, batch_size)
    if dist.active():
        red = dist.reduce_sums({"total": total, "m": m})
        total, m = red["total"], red["m"]
    if m == 0:
        return loss, n
    rest_loss = total / m
    return (loss * n + rest_loss * m) / (n + m), n + m


def _sums(model, params, data, lossfn, batch_size) -> tuple[float, int]:
    """This rank's Σ_i ℓ_i (float64) and its number of samples."""
    device = next(model.parameters()).device
    total, n = torch.zeros((), dtype=torch.float64, device=device), 0  # read once, after the pass
    with torch.no_grad():
        for x, y in iter_batches(data, device=device, batch_size=batch_size):
            z = model(x) if params is None else functional_call(model, params, (x,))
            lossfn.check_targets(z, y)
            total += lossfn.per_sample(z, y).to(torch.float64).sum()
            n += x.shape[0]
    return float(total), n
