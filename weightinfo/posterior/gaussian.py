"""The post-distribution (posterior code) Q = N(μ, Σ) around trained weights, and its KL to the prior.

``DiagGaussian``: Σ = diag σ² per parameter (σ² shared within an output unit/filter is stored expanded, so every
map stays shaped like its parameter). Closed form, in nats (Achille, Paolini & Soatto 2019, Prop. 2.5):

    KL(Q‖P) = Σ_i ½ [ σ_i²/λ_i² + (μ_i − w0_i)²/λ_i² − 1 + ln(λ_i²/σ_i²) ],

split per parameter so that the "where" map sums exactly to the total.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .prior import GaussianPrior

NATS_PER_BIT = math.log(2.0)


@dataclass(frozen=True)
class DiagGaussian:
    """Q = N(mean, diag var); both dicts keyed like ``model.named_parameters()``, float64."""

    mean: dict[str, torch.Tensor]
    var: dict[str, torch.Tensor]

    def __post_init__(self):
        for k, v in self.var.items():
            if v.shape != self.mean[k].shape:
                raise ValueError(
                    f"variance of {k!r} has shape {tuple(v.shape)}, mean has {tuple(self.mean[k].shape)}"
                )
            if not bool((v > 0).all()) or not bool(torch.isfinite(v).all()):
                raise ValueError(f"variance of {k!r} must be finite and > 0")

    def sample(self, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One draw w ∼ Q (float64), keyed like the parameters."""
        return {
            k: m
            + self.var[k].sqrt()
            * torch.randn(m.shape, generator=generator, dtype=m.dtype, device=m.device)
            for k, m in self.mean.items()
        }


def kl_diag_per_parameter(q: DiagGaussian, p: GaussianPrior) -> dict[str, torch.Tensor]:
    """KL(Q‖P) of each weight in nats, shaped like the parameters; the total is the sum of all entries."""
    out = {}
    for k, mu in q.mean.items():
        lam2 = p.variance(k)
        s2 = q.var[k]
        out[k] = 0.5 * (s2 / lam2 + (mu - p.mean[k]).pow(2) / lam2 - 1.0 + torch.log(lam2 / s2))
    return out


def kl_diag(q: DiagGaussian, p: GaussianPrior) -> float:
    """KL(Q‖P) in nats for a diagonal Q and the per-layer isotropic prior P."""
    return float(sum(v.sum() for v in kl_diag_per_parameter(q, p).values()))


def g_cost(s: torch.Tensor) -> torch.Tensor:
    """g(s) = ln(1+s) − s/(1+s) ≥ 0: twice the information of one direction of relative curvature s = λ²h/β.

    Finite for flat directions (g(s) ≈ s²/2 as s → 0), ≈ ln s − 1 for sharp ones. Computed with ``log1p`` so
    that tiny s keeps full relative precision.

    >>> g_cost(torch.tensor([0.0, 1.0], dtype=torch.float64))
    tensor([0.0000, 0.1931], dtype=torch.float64)
    """
    s = s.clamp_min(0)
    return torch.log1p(s) - s / (1 + s)
