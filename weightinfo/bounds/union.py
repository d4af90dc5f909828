"""Union bounds over a prior-scale grid, and Dziugaite & Roy's (2017) bound with a learned prior variance.

A prior picked with the data is paid for by splitting δ over a grid fixed in advance (Dziugaite & Roy
2017, §5); every grid point's bound then holds simultaneously with probability ≥ 1 − δ:

    uniform, K scales:            δ_k = δ / K
    Dziugaite & Roy, j = 1, 2, …: δ_j = 6δ / (π² j²)          (Σ_j δ_j = δ)

D&R's grid of prior **variances** (λ = exp(2·log_prior_std), ``snn/core/network.py``) is λ_j = c·exp(−j/b),
c = 0.1, b = 100 in their code, so j = b·ln(c/λ); at evaluation j is rounded up and down and the smaller bound
is kept (both are covered by the union). Their final bound (Langford & Seeger 2001 form, D&R 2017 Thm 2.2 and
§4; ``approximate_BPAC_bound``) is

    L ≤ kl⁻¹( û, (KL + ln(n/δ_j)) / (n − 1) ) = kl⁻¹( û, (KL + ln(π² n/(6δ)) + 2 ln j) / (n − 1) ),

with KL in **nats** and û the Monte Carlo upper bound on the empirical Gibbs risk (two-sided, m = 150 000,
δ′ = 0.01 in the paper: total confidence 1 − δ − δ′ = 0.965 for δ = 0.025).
"""

from __future__ import annotations

import math

from . import _validate as V
from .binary_kl import kl_inverse_upper

UNION_SCHEMES = ("uniform", "dr")


def union_delta(delta: float, k: int, scheme: str = "uniform") -> float:
    """Confidence left to one grid point: δ/K (``"uniform"``, k = K grid points) or 6δ/(π²k²) (``"dr"``, k = j).

    Examples
    --------
    >>> union_delta(0.05, 10)
    0.005
    >>> round(union_delta(0.025, 500, "dr"), 12)
    6.0793e-08
    """
    d = V.confidence("delta", delta)
    k = V.count("k", k)
    if scheme == "uniform":
        return d / k
    if scheme == "dr":
        return 6.0 * d / (math.pi**2 * k**2)
    raise ValueError(f"scheme must be one of {UNION_SCHEMES}, got {scheme!r}")


def prior_scale_grid(c: float, b: float, j_max: int) -> list[float]:
    """D&R's prior-variance grid λ_j = c·exp(−j/b), j = 1..j_max.

    Examples
    --------
    >>> [round(x, 8) for x in prior_scale_grid(0.1, 100, 3)]
    [0.09900498, 0.09801987, 0.09704455]
    """
    c = V.positive("c", c)
    b = V.positive("b", b)
    j_max = V.count("j_max", j_max)
    return [c * math.exp(-j / b) for j in range(1, j_max + 1)]


def prior_scale_index(lam: float, c: float, b: float) -> float:
    """The continuous grid index j = b·ln(c/λ) of a prior variance λ (round it up and down for a certificate).

    Examples
    --------
    >>> round(prior_scale_index(0.1 * math.exp(-5.0), 0.1, 100), 9)
    500.0
    """
    lam = V.positive("lam", lam)
    return V.positive("b", b) * math.log(V.positive("c", c) / lam)


def dziugaite_roy(emp_risk: float, kl: float, n: int, delta: float, j: int | None = None) -> float:
    """D&R 2017: kl⁻¹(L̂, (KL + ln(n/δ_j))/(n − 1)), δ_j = 6δ/(π²j²) for prior-grid index j (None: δ_j = δ).

    Parameters
    ----------
    emp_risk : L̂ (or its MC upper bound û) in [0, 1]. kl : KL(Q‖P) in nats at the grid variance λ_j.
    n : bound-set size (>= 2; 55 000 for D&R's binary MNIST). delta : δ in (0, 1).
    j : integer grid index >= 1 of the prior variance (:func:`prior_scale_index`), or ``None`` for a
        prior fixed in advance.

    Examples
    --------
    The authors'-code rerun of T-600 (Dziugaite & Roy 2017, Table 1; logged 0.15716 with continuous j):

    >>> round(dziugaite_roy(1 - 0.9691090909090909, 4653.1094, 55000, 0.05, j=500), 5)
    0.15722
    """
    q, k, n, d = V.common(emp_risk, kl, n, delta, min_n=2)
    if j is not None:
        d = union_delta(d, V.count("j", j), "dr")
    return kl_inverse_upper(q, (k + math.log(n / d)) / (n - 1))
