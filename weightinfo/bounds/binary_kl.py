"""Binary KL divergence kl(q‖p) and its inverses, in nats.

    kl(q‖p) = q ln(q/p) + (1 − q) ln((1 − q)/(1 − p)),        with 0·ln 0 = 0,

the KL divergence between Bernoulli(q) and Bernoulli(p). It is +inf at the right limits p = 0 < q and
q < 1 = p. The PAC-Bayes-kl bound (Seeger 2002; Maurer 2004) controls kl(L̂‖L), and a risk certificate is its
**upper inverse** (Seeger 2002; Maurer 2004; Langford & Caruana 2001)

    kl⁻¹(q, c) = sup{p ∈ [q, 1] : kl(q‖p) ≤ c}.

Both inverses are computed by bisection, as in PBB/pacbb ``inv_kl`` (Langford & Caruana 2001), but to an
**absolute** tolerance of 1e−12 (PBB stops at a relative 1e−5), returning the **safe** end of the final
bracket: the upper end for ``kl_inverse_upper``, so kl(q‖result) ≥ c and the certificate is never optimistic
by more than rounding in kl itself; the lower end for ``kl_inverse_lower``. Where kl(q‖·) is steep (p near 1
for the upper inverse, |∂kl/∂p| ≤ 1/(1 − p); p near 0 for the lower one, ≤ 1/p) the bracket is narrowed
further, to 1e−12·(1 − p) resp. 1e−12·p (or float resolution), so that kl at the result is also within
about 1e−12 nats of c. kl is evaluated in a cancellation-free form when p is close to q, so small c are
resolved accurately.
"""

from __future__ import annotations

import math

from . import _validate as V

#: Absolute width of the final bisection bracket.
KL_INVERSE_TOL = 1e-12


def _kl(q: float, p: float) -> float:
    """kl(q‖p) for validated q, p in [0, 1] (no checks)."""
    if p <= 0.0:
        return 0.0 if q == 0.0 else math.inf
    if p >= 1.0:
        return 0.0 if q == 1.0 else math.inf
    if q == 0.0:
        return -math.log1p(-p)
    if q == 1.0:
        return -math.log(p)
    d = p - q
    if abs(d) < 0.5 * min(q, 1.0 - q):
        # q ln(q/p) = −q log1p(d/q); (1−q) ln((1−q)/(1−p)) = −(1−q) log1p(−d/(1−q)): both O(d), sum O(d²).
        val = -q * math.log1p(d / q) - (1.0 - q) * math.log1p(-d / (1.0 - q))
    else:
        val = q * (math.log(q) - math.log(p)) + (1.0 - q) * (math.log1p(-q) - math.log1p(-p))
    return max(val, 0.0)


def kl(q: float, p: float) -> float:
    """Binary KL divergence kl(q‖p) = q ln(q/p) + (1−q) ln((1−q)/(1−p)) in nats, with 0·ln 0 = 0.

    Parameters
    ----------
    q, p : numbers in [0, 1]. ``p`` at the right limits gives ``inf`` (p = 0 < q, or q < 1 = p).

    Examples
    --------
    >>> round(kl(0.028, 0.16095182), 6)
    0.094
    >>> kl(0.0, 0.0), kl(0.3, 1.0)
    (0.0, inf)
    """
    return _kl(V.unit_interval("q", q), V.unit_interval("p", p))


def kl_inverse_upper(q: float, c: float) -> float:
    """kl⁻¹(q, c) = sup{p ∈ [q, 1] : kl(q‖p) ≤ c}, by bisection to absolute tolerance 1e−12·min(1, 1 − p).

    The upper (safe) end of the final bracket is returned: kl(q‖result) ≥ c unless the result is 1.
    ``c = inf`` gives 1. Source: Langford & Caruana 2001; the bisection of PBB's ``inv_kl`` (Pérez-Ortiz et al. 2021), here to 1e-12 and returning the upper end.

    Parameters
    ----------
    q : empirical risk in [0, 1].
    c : kl budget in nats, >= 0 (``inf`` allowed).

    Examples
    --------
    >>> round(kl_inverse_upper(0.0, 0.01), 8), round(kl_inverse_upper(0.028, 0.094), 8)
    (0.00995017, 0.16095182)
    >>> round(kl_inverse_upper(0.5, 0.1), 8)
    0.71287863
    """
    q = V.unit_interval("q", q)
    c = V.nonneg("c", c, allow_inf=True)
    if q == 1.0 or c == math.inf:
        return 1.0
    if c == 0.0:
        return q
    lo, hi = q, 1.0  # invariant: kl(q‖lo) ≤ c < kl(q‖hi)
    while hi - lo > KL_INVERSE_TOL * min(1.0, 1.0 - hi):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if _kl(q, mid) > c:
            hi = mid
        else:
            lo = mid
    return hi


def kl_inverse_lower(q: float, c: float) -> float:
    """inf{p ∈ [0, q] : kl(q‖p) ≤ c}, by bisection to tolerance 1e−12·min(1, p), returning the safe (lower) end.

    A lower confidence bound on a risk (the mirror of :func:`kl_inverse_upper`); ``c = inf`` gives 0.

    Examples
    --------
    >>> round(kl_inverse_lower(0.5, 0.1), 8)
    0.28712137
    >>> kl_inverse_lower(0.0, 3.0)
    0.0
    """
    q = V.unit_interval("q", q)
    c = V.nonneg("c", c, allow_inf=True)
    if q == 0.0 or c == math.inf:
        return 0.0
    if c == 0.0:
        return q
    lo, hi = 0.0, q  # invariant: kl(q‖lo) > c ≥ kl(q‖hi)
    while hi - lo > KL_INVERSE_TOL * min(1.0, lo):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if _kl(q, mid) > c:
            lo = mid
        else:
            hi = mid
    return lo
