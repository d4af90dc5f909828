"""Effective information in the activations and invariance to nuisances (Achille, Paolini & Soatto 2019, §3).

* :mod:`.channel` — the noisy-activation channel x ↦ f_ℓ(x; w* + n), n ∼ N(0, Σ): its mean, weight Jacobian,
  linearised covariance Σ_z = J Σ Jᵀ and weight-sampled activations.
"""

from .channel import Channel, posterior_variances
from .fisher import (
    ActivationFisher,
    InfiniteFisherError,
    InputFisher,
    activation_fisher,
    input_fisher,
)
from .nuisances import NUISANCES, NuisanceError, check_nuisance, get_nuisance

__all__ = [
    "Channel",
    "posterior_variances",
    "ActivationFisher",
    "InfiniteFisherError",
    "InputFisher",
    "activation_fisher",
    "input_fisher",
    "NUISANCES",
    "NuisanceError",
    "check_nuisance",
    "get_nuisance",
]
