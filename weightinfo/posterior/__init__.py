"""Gaussian codes for the weights: the prior P = N(w0, diag λ_l²) and the posterior Q = N(w*, Σ), with KL(Q‖P)."""

from .gaussian import NATS_PER_BIT, DiagGaussian, g_cost, kl_diag, kl_diag_per_parameter
from .prior import PRIOR_MEANS, GaussianPrior, make_prior

__all__ = [
    "GaussianPrior",
    "make_prior",
    "PRIOR_MEANS",
    "DiagGaussian",
    "kl_diag",
    "kl_diag_per_parameter",
    "g_cost",
    "NATS_PER_BIT",
]
