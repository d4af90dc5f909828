"""Effective information in the activations and invariance to nuisances (Achille, Paolini & Soatto 2019, §3).

* :mod:`.channel` — the noisy-activation channel x ↦ f_ℓ(x; w* + n), n ∼ N(0, Σ): its mean, weight Jacobian,
  linearised covariance Σ_z = J Σ Jᵀ and weight-sampled activations.
* :mod:`.mixture` — I(X; Z) for X uniform over N points and Gaussian components Z | x, by Monte Carlo.
* :mod:`.effective` — ``effective_information``: I_eff(x; z) = I(X; Z) per layer (Def 3.1, Eq 10), nats.
"""

from .channel import Channel, posterior_variances
from .effective import EffectiveInformation, effective_information

__all__ = ["Channel", "EffectiveInformation", "effective_information", "posterior_variances"]
