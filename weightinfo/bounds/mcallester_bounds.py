"""McAllester's bounds: the 1999 square-root bound and the 2013 linear bound (the paper's Eq. 3).

Both hold with probability ≥ 1 − δ over n i.i.d. examples, for all Q at once, loss in [0, 1], KL in **nats**.

McAllester 1999 (COLT, "PAC-Bayesian model averaging"), original form with the "+2" (McAllester 1999, Thm 1):

    L ≤ L̂ + √((KL + ln(1/δ) + ln n + 2) / (2n − 1))

Lotfi et al. 2022 (``compute_mcallester_bound`` in ``pactl/bounds/get_pac_bounds.py``) drop the "+2":
√((KL − ln δ + ln n)/(2n − 1)); available as ``variant="lotfi"``, for comparison with their numbers only.

McAllester 2013 ("A PAC-Bayesian tutorial with a dropout bound", arXiv 1307.2118, Thm 2), as used by Achille,
Paolini & Soatto 2019 ("Where is the information in a deep neural network?", Eq. 3): for a
β_PAC > ½ **fixed before seeing the data** (or paid for by a union bound over a grid: pass δ/K),

    L ≤ 1/(1 − 1/(2β_PAC)) · [ L̂ + (β_PAC/n) (KL + ln(1/δ)) ]

With a per-sample Lagrangian multiplier β (weightinfo's convention), β_PAC = n·β. Both forms may exceed 1:
the plain functions return the value as is.
"""

from __future__ import annotations

import math

from . import _validate as V

MCALLESTER_VARIANTS = ("original", "lotfi")


def mcallester(
    emp_risk: float, kl: float, n: int, delta: float, *, variant: str = "original"
) -> float:
    """McAllester 1999: L̂ + √((KL + ln(1/δ) + ln n + 2)/(2n − 1)).

    Parameters
    ----------
    variant : ``"original"`` (McAllester 1999, with the +2) or ``"lotfi"`` (Lotfi et al. 2022 code, no +2).

    Examples
    --------
    >>> round(mcallester(0.02, 500.0, 30000, 0.025), 6)
    0.112737
    >>> round(mcallester(0.02, 500.0, 30000, 0.025, variant="lotfi"), 6)
    0.112557
    """
    q, k, n, d = V.common(emp_risk, kl, n, delta)
    if variant not in MCALLESTER_VARIANTS:
        raise ValueError(f"variant must be one of {MCALLESTER_VARIANTS}, got {variant!r}")
    extra = 2.0 if variant == "original" else 0.0
    return q + math.sqrt((k + math.log(1.0 / d) + math.log(n) + extra) / (2.0 * n - 1.0))


def linear(emp_risk: float, kl: float, n: int, delta: float, beta_pac: float) -> float:
    """McAllester 2013 linear bound (Eq. 3): (L̂ + (β_PAC/n)(KL + ln(1/δ))) / (1 − 1/(2β_PAC)), β_PAC > ½.

    Parameters
    ----------
    beta_pac : β_PAC > ½, fixed a priori (β_PAC = n·β for a per-sample multiplier β).

    Examples
    --------
    >>> round(linear(0.02, 500.0, 30000, 0.025, beta_pac=2.0), 6)
    0.071439
    >>> linear(0.02, 500.0, 30000, 0.025, beta_pac=30000.0) > 1  # β_PAC = n·β with β = 1: vacuous
    True
    """
    q, k, n, d = V.common(emp_risk, kl, n, delta)
    b = V.real("beta_pac", beta_pac)
    if not (0.5 < b < math.inf):
        raise ValueError(
            f"beta_pac must be a finite number > 1/2 (McAllester 2013), got {beta_pac!r}"
        )
    return (q + (b / n) * (k + math.log(1.0 / d))) / (1.0 - 1.0 / (2.0 * b))
