"""Effective information in the activations and invariance to nuisances (Achille, Paolini & Soatto 2019, §3).

* :mod:`.channel` — the noisy-activation channel x ↦ f_ℓ(x; w* + n), n ∼ N(0, Σ): its mean, weight Jacobian,
  linearised covariance Σ_z = J Σ Jᵀ and weight-sampled activations.
* :mod:`.mixture` — I(X; Z) for X uniform over N points and Gaussian components Z | x, by Monte Carlo.
* :mod:`.effective` — ``effective_information``: I_eff(x; z) = I(X; Z) per layer (Def 3.1, Eq 10), nats.
* :mod:`.nuisances` — differentiable one-parameter nuisances g(x, θ), g(x, 0) = x (translations, rotation,
  scale, brightness, contrast, Gaussian noise, or a callable).
* :mod:`.fisher` — ``activation_fisher`` (Fisher of the noisy activations w.r.t. a nuisance: mean term of
  Prop 3.2 corrected + covariance term) and ``input_fisher`` (F_{z|x}, its trace and log-det per sample).
"""

from .channel import Channel, JacobianMemoryError, posterior_variances
from .effective import EffectiveInformation, effective_information
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
    "JacobianMemoryError",
    "posterior_variances",
    "EffectiveInformation",
    "effective_information",
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
