"""Upper confidence bounds on the empirical Gibbs risk from Monte Carlo weight samples (Langford & Caruana 2001; per-example draws: Hoeffding 1963, Thm 1).

The empirical Gibbs risk L̂_S(Q) = (1/n) Σᵢ E_{w∼Q} ℓ(w, zᵢ) on the bound set is not computable exactly. With
probability ≥ 1 − δ′ over the Monte Carlo draws (the bound set held fixed), it is at most û below; the final
certificate then holds with probability ≥ 1 − δ − δ′.

**Standard estimator** (Langford & Caruana 2001; D&R 2017, PBB): draw m networks w₁..w_m ∼ Q, evaluate each
on the whole bound set; their risks are i.i.d. in [0, 1] with mean L̂_S(Q), and L̂_m is their mean. By the kl
form of the Chernoff–Hoeffding bound,

    one-sided:  û = kl⁻¹(L̂_m, ln(1/δ′)/m)
    two-sided:  û = kl⁻¹(L̂_m, ln(2/δ′)/m)     (the form D&R and PBB use; for reproducing their numbers)

**Per-example estimator** (option): an independent network for every (example, repetition) pair, m
repetitions over n examples. Given the bound set the N = m·n losses are independent, non-identically
distributed [0, 1] variables with expected mean L̂_S(Q); Hoeffding (1963, Thm 1) in kl form gives

    û = kl⁻¹(L̂, ln(1/δ′)/(m·n)),   L̂ = mean of the N losses

(two-sided: ln(2/δ′)). The draws must be real independent weight draws per example (or have exactly their law
per example): the local reparameterisation trick is exact for mean-field Gaussian linear layers, not for
convolutions, whose weights are shared across positions (``certificates.risk.gibbs_error_per_example`` draws
conv weights per example instead). Risks in [0, 1]; budgets in nats.
"""

from __future__ import annotations

import math

from . import _validate as V
from .binary_kl import kl_inverse_upper


def _log_inv(delta_mc: float, two_sided: bool) -> float:
    return math.log((2.0 if two_sided else 1.0) / delta_mc)


def mc_sample_bound(emp_risk: float, m: int, delta_mc: float, two_sided: bool = False) -> float:
    """Langford–Caruana bound kl⁻¹(L̂_m, ln(1/δ′)/m) on the Gibbs empirical risk from m network samples.

    Parameters
    ----------
    emp_risk : L̂_m, mean risk of the m sampled networks on the whole bound set, in [0, 1].
    m : number of network samples (>= 1).
    delta_mc : δ′ in (0, 1).
    two_sided : use ln(2/δ′) (D&R, PBB) instead of the one-sided ln(1/δ′).

    Examples
    --------
    >>> round(mc_sample_bound(0.02, 150000, 0.01), 6), round(mc_sample_bound(0.02, 150000, 0.01, True), 6)
    (0.021117, 0.021199)
    """
    q = V.unit_interval("emp_risk", emp_risk)
    m = V.count("m", m)
    d = V.confidence("delta_mc", delta_mc)
    return kl_inverse_upper(q, _log_inv(d, bool(two_sided)) / m)


def per_example_mc_bound(
    emp_risk: float, m: int, n: int, delta_mc: float, two_sided: bool = False
) -> float:
    """Per-example estimator bound kl⁻¹(L̂, ln(1/δ′)/(m·n)): independent draws for every example × repetition.

    Parameters
    ----------
    emp_risk : L̂, mean of the m·n per-(example, repetition) losses, in [0, 1].
    m : repetitions (>= 1). n : bound-set size (>= 1). delta_mc : δ′ in (0, 1).
    two_sided : use ln(2/δ′) instead of ln(1/δ′).

    Examples
    --------
    >>> round(per_example_mc_bound(0.02, 1000, 30000, 0.01), 6)
    0.020078
    >>> round(per_example_mc_bound(0.02, 100, 2000, 0.01), 6)
    0.020965
    """
    q = V.unit_interval("emp_risk", emp_risk)
    m = V.count("m", m)
    n = V.count("n", n)
    d = V.confidence("delta_mc", delta_mc)
    return kl_inverse_upper(q, _log_inv(d, bool(two_sided)) / (m * n))
