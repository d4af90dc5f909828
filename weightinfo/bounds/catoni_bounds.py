"""Catoni's bound, for a fixed C and with Zhou et al.'s union bound over the temperature γ = nC.

Catoni (2007, "PAC-Bayesian supervised classification", arXiv 0712.0248, Thm 1.2.6): for a fixed C > 0, with
probability ≥ 1 − δ, for all Q at once (loss in [0, 1], KL in **nats**),

    L ≤ Φ⁻¹_C( L̂ + (KL + ln(1/δ)) / (nC) ) = (1 − exp(−C L̂ − (KL + ln(1/δ))/n)) / (1 − e^{−C}),

with Φ⁻¹_a(q) = (1 − e^{−a q})/(1 − e^{−a}). C must not depend on the data.

Zhou, Veitch, Austern, Adams & Orbanz 2019 (ICLR; ``pac_bayes_bound_opt`` in wendazhou/nnet-compression-
generalization ``nnet/compression/bounds.py``, copied into Lotfi et al.'s ``pactl/bounds/get_pac_bounds.py``)
pay for choosing γ = nC after seeing the data with a union bound over the geometric grid γ_k = (1 + α)^k,
k ∈ ℕ, weights ∝ 1/(k + 2)², rounding γ to the grid at the cost of the factor (1 + α):

    L ≤ min_{γ ≥ 1} Φ⁻¹_{γ/n}( L̂ + ((1 + α)/γ) · (KL + ln(1/ε) + 2 ln(2 + ln γ / ln(1 + α))) ),

with α = 1e−4 and ε = δ here (Zhou use ε = 0.05). The minimum over g = ln γ ∈ [0, ln n + 10] is found by a
1001-point grid followed by golden-section refinement to |Δg| < 1e−10 (Zhou call ``scipy.optimize.
minimize_scalar`` from the bracket (0, 4 + ln n)); the value is a valid bound at whichever γ is returned.

Monotonicity: non-decreasing in L̂ and KL, non-increasing in δ. In n it is non-increasing while the bound is
below 1 (Φ⁻¹_a(q) grows with a = C for q < 1), but for q > 1 (a vacuous bound) larger n can *raise* it.
The value may exceed 1 and is returned as is.
"""

from __future__ import annotations

import math

from . import _validate as V

_GRID_POINTS = 1001
_G_TOL = 1e-10
_INVPHI = (math.sqrt(5.0) - 1.0) / 2.0


def _inv_phi(a: float, q: float) -> float:
    """Φ⁻¹_a(q) = (1 − e^{−aq})/(1 − e^{−a}) = expm1(−aq)/expm1(−a)."""
    return math.expm1(-a * q) / math.expm1(-a)


def _zhou(q: float, k: float, n: int, eps: float, alpha: float) -> float:
    inv_log_alpha = 1.0 / math.log1p(alpha)
    log_inv_eps = math.log(1.0 / eps)

    def f(g: float) -> float:
        gamma = math.exp(g)
        arg = q + ((1.0 + alpha) / gamma) * (
            k + log_inv_eps + 2.0 * math.log(2.0 + g * inv_log_alpha)
        )
        return _inv_phi(gamma / n, arg)

    g_max = math.log(n) + 10.0
    grid = [g_max * i / (_GRID_POINTS - 1) for i in range(_GRID_POINTS)]
    vals = [f(g) for g in grid]
    i = min(range(_GRID_POINTS), key=vals.__getitem__)
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, _GRID_POINTS - 1)]
    best = vals[i]
    # Golden-section search on the bracket around the grid minimum.
    c, d = b - _INVPHI * (b - a), a + _INVPHI * (b - a)
    fc, fd = f(c), f(d)
    while b - a > _G_TOL:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - _INVPHI * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + _INVPHI * (b - a)
            fd = f(d)
    return min(best, fc, fd)


def catoni(
    emp_risk: float,
    kl: float,
    n: int,
    delta: float,
    C: float | None = None,
    *,
    alpha: float = 1e-4,
) -> float:
    """Catoni's bound at a fixed ``C``, or (``C=None``) Zhou et al.'s union over γ = nC with ε = δ.

    Parameters
    ----------
    emp_risk : L̂ in [0, 1]. kl : KL(Q‖P) in nats. n : bound-set size (>= 1). delta : δ in (0, 1).
    C : fixed Catoni parameter > 0 chosen before seeing the data; ``None`` optimises γ = nC under Zhou's
        union bound (α = ``alpha``, ε = δ).
    alpha : grid ratio of Zhou's union bound, > 0 (default 1e−4, as in their code).

    Examples
    --------
    >>> round(catoni(0.02, 500.0, 30000, 0.025), 6)
    0.058143
    >>> round(catoni(0.02, 500.0, 30000, 0.025, C=0.5), 6)
    0.067182
    """
    q, k, n, d = V.common(emp_risk, kl, n, delta)
    if C is None:
        return _zhou(q, k, n, d, V.positive("alpha", alpha))
    c = V.positive("C", C)
    return math.expm1(-c * q - (k + math.log(1.0 / d)) / n) / math.expm1(-c)
