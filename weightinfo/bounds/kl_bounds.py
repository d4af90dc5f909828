"""PAC-Bayes-kl bounds: Maurer's refinement (the certificate of PBB/pacbb) and Seeger's original.

With probability ≥ 1 − δ over an i.i.d. bound set of n examples, simultaneously for every posterior Q
(loss in [0, 1], prior P fixed before seeing the bound set; Seeger 2002, Thm 1; Maurer 2004, Thm 5):

    Maurer (2004, arXiv cs/0411099, Thm 5; n ≥ 8):  kl(L̂ ‖ L) ≤ (KL + ln(2√n/δ)) / n
    Seeger (2002, JMLR 3, Thm 1; Langford 2005):    kl(L̂ ‖ L) ≤ (KL + ln((n+1)/δ)) / n

so L ≤ kl⁻¹(L̂, c) with c the right-hand side. L̂ is the empirical Gibbs risk of Q on the bound set, L its
true risk, KL = KL(Q‖P) in **nats**. PBB ``pbb/bounds.py`` and pacbb ``core/bound/KLBound.py`` use Maurer's
constant exactly so [code]. The result is at most 1 (kl⁻¹ never leaves [L̂, 1]); a value of 1 is vacuous.
"""

from __future__ import annotations

import math

from . import _validate as V
from .binary_kl import kl_inverse_upper


def maurer_complexity(kl: float, n: int, delta: float) -> float:
    """KL + ln(2√n/δ), the numerator shared by the Maurer, quad, λ and classic forms (nats; no checks).

    >>> round(maurer_complexity(0.0, 30000, 0.025), 6)  # ln(2·√30000/0.025)
    9.536503
    """
    return kl + math.log(2.0 * math.sqrt(n) / delta)


def pac_bayes_kl(emp_risk: float, kl: float, n: int, delta: float) -> float:
    """Maurer's PAC-Bayes-kl certificate kl⁻¹(L̂, (KL + ln(2√n/δ))/n), n ≥ 8.

    Parameters
    ----------
    emp_risk : L̂, empirical Gibbs risk on the bound set, in [0, 1].
    kl : KL(Q‖P) in nats, >= 0.
    n : size of the bound set actually used (>= 8 for Maurer's constant).
    delta : confidence δ in (0, 1).

    Examples
    --------
    >>> round(pac_bayes_kl(0.02, 500.0, 30000, 0.025), 6)
    0.057311
    """
    q, k, n, d = V.common(emp_risk, kl, n, delta, maurer=True)
    return kl_inverse_upper(q, maurer_complexity(k, n, d) / n)


def seeger(emp_risk: float, kl: float, n: int, delta: float) -> float:
    """Seeger's PAC-Bayes-kl bound kl⁻¹(L̂, (KL + ln((n+1)/δ))/n), n ≥ 1.

    Looser than Maurer's constant for n ≥ 8 (2√n < n + 1) but valid for every n.

    Examples
    --------
    >>> round(seeger(0.02, 500.0, 30000, 0.025), 6)
    0.057526
    """
    q, k, n, d = V.common(emp_risk, kl, n, delta)
    return kl_inverse_upper(q, (k + math.log((n + 1) / d)) / n)
