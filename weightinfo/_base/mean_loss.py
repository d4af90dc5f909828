"""The mean loss L_D(w) = (1/N) Σ_i ℓ(f_w(x_i), y_i) over a dataset, at the model's weights or at others.

Achille, Paolini & Soatto 2019, Eq. (1): L_D is the **mean** per-sample loss (not the sum), accumulated in
float64.
"""

from __future__ import annotations

import torch
from torch.func import functional_call

from .batches import iter_batches

__all__ = ["mean_loss"]


def mean_loss(model, params, data, lossfn, batch_size) -> tuple[float, int]:
    """L_D = (1/N) Σ_i ℓ_i at the model's weights (``params=None``) or at ``params``; and N."""
    device = next(model.parameters()).device
    total, n = 0.0, 0
    with torch.no_grad():
        for x, y in iter_batches(data, device=device, batch_size=batch_size):
            z = model(x) if params is None else functional_call(model, params, (x,))
            lossfn.check_targets(z, y)
            total += float(lossfn.per_sample(z, y).to(torch.float64).sum())
            n += x.shape[0]
    return total / n, n
