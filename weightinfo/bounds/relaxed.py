"""Closed-form relaxations of Maurer's bound: f_classic, f_quad and Thiemann's f_λ (PBB objectives).

All three share the complexity term B = KL + ln(2√n/δ) of Maurer's kl bound (n ≥ 8, KL in **nats**) and hold
with probability ≥ 1 − δ for all Q at once (Maurer 2004; Pérez-Ortiz et al. 2021, Eqs. 5–7):

    f_classic = L̂ + √(B/(2n))                              Pinsker relaxation; PBB ``fclassic`` [code]
    f_quad    = (√(L̂ + r) + √r)²,   r = B/(2n)             PBB ``fquad``; Pérez-Ortiz et al. 2021 (JMLR 22)
    f_λ       = L̂/(1 − λ/2) + B/(nλ(1 − λ/2)),  λ ∈ (0,2)  Thiemann, Igel, Wintenberger & Seldin, ALT 2017, Thm 3
    λ*        = 2 / (√(2nL̂/B + 1) + 1)                     minimiser of f_λ (Lotfi ``compute_convexity_bound``)

f_λ holds for all λ ∈ (0, 2) simultaneously, so λ may be chosen after seeing the data. Algebraically
f_λ(λ*) = f_quad: with t = √(2nL̂/B + 1), both equal (B/2n)(t + 1)². Each is looser than kl⁻¹, and may exceed 1
(the plain functions return the value as is; :func:`weightinfo.bounds.certificate` flags it vacuous).
"""

from __future__ import annotations

import math

from . import _validate as V
from .kl_bounds import maurer_complexity


def classic(emp_risk: float, kl: float, n: int, delta: float) -> float:
    """f_classic = L̂ + √((KL + ln(2√n/δ))/(2n)), the Pinsker-relaxed Maurer bound (PBB ``fclassic``).

    Examples
    --------
    >>> round(classic(0.02, 500.0, 30000, 0.025), 6)
    0.112154
    """
    q, k, n, d = V.common(emp_risk, kl, n, delta, maurer=True)
    return q + math.sqrt(maurer_complexity(k, n, d) / (2.0 * n))


def quad(emp_risk: float, kl: float, n: int, delta: float) -> float:
    """f_quad = (√(L̂ + r) + √r)², r = (KL + ln(2√n/δ))/(2n) (PBB ``fquad``; equals min over λ of f_λ).

    Examples
    --------
    >>> round(quad(0.02, 500.0, 30000, 0.025), 6)
    0.068095
    """
    q, k, n, d = V.common(emp_risk, kl, n, delta, maurer=True)
    r = maurer_complexity(k, n, d) / (2.0 * n)
    return (math.sqrt(q + r) + math.sqrt(r)) ** 2


def optimal_lambda(emp_risk: float, kl: float, n: int, delta: float) -> float:
    """λ* = 2/(√(2nL̂/(KL + ln(2√n/δ)) + 1) + 1) ∈ (0, 1], the minimiser of f_λ (1 when L̂ = 0).

    Examples
    --------
    >>> round(optimal_lambda(0.02, 500.0, 30000, 0.025), 4)
    0.7063
    """
    q, k, n, d = V.common(emp_risk, kl, n, delta, maurer=True)
    return 2.0 / (math.sqrt(2.0 * n * q / maurer_complexity(k, n, d) + 1.0) + 1.0)


def lambda_bound(
    emp_risk: float, kl: float, n: int, delta: float, lam: float | None = None
) -> float:
    """Thiemann et al.'s f_λ = L̂/(1 − λ/2) + (KL + ln(2√n/δ))/(nλ(1 − λ/2)), λ ∈ (0, 2).

    Parameters
    ----------
    lam : λ in the open interval (0, 2); ``None`` uses the closed-form optimum :func:`optimal_lambda`
        (then the value equals :func:`quad`).

    Examples
    --------
    >>> round(lambda_bound(0.02, 500.0, 30000, 0.025), 6)
    0.068095
    >>> round(lambda_bound(0.02, 500.0, 30000, 0.025, lam=1.0), 6)
    0.073969
    """
    q, k, n, d = V.common(emp_risk, kl, n, delta, maurer=True)
    if lam is None:
        lam = optimal_lambda(q, k, n, d)
    else:
        lam = V.real("lam", lam)
        if not 0.0 < lam < 2.0:
            raise ValueError(f"lam must lie in the open interval (0, 2), got {lam!r}")
    half = 1.0 - 0.5 * lam
    return q / half + maurer_complexity(k, n, d) / (n * lam * half)
