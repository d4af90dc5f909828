"""Exactly quadratic problems shared by the information tests, and the closed-form g of Eq. 8."""

from __future__ import annotations

import math

import torch
from torch import nn

D64 = torch.float64


def g(s: float) -> float:
    """g(s) = ln(1 + s) − s/(1 + s): the nats one eigen-direction with s = λ²h/β stores (corrected form)."""
    return math.log1p(s) - s / (1 + s)


def regression(d=4, N=30, seed=0):
    """Bias-free linear model at its least-squares optimum: ℓ = ½(y − wᵀx)², H = XᵀX/N exactly."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(N, d, generator=gen, dtype=D64) * torch.linspace(0.3, 2.0, d, dtype=D64)
    y = X @ torch.randn(d, generator=gen, dtype=D64) + 0.3 * torch.randn(
        N, generator=gen, dtype=D64
    )
    w = torch.linalg.lstsq(X, y[:, None]).solution[:, 0]
    model = nn.Linear(d, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(w[None])
    return model, X, y[:, None], X.T @ X / N
