"""Argument checks shared by the bound functions (pure Python, no torch).

Every check raises ``ValueError`` naming the parameter and the offending value (``TypeError`` when the object
is not a real number at all), so a bound never returns a silent NaN.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

# Maurer's constant ln(2√n/δ) is proved for n ≥ 8 (Maurer 2004, arXiv cs/0411099).
MAURER_MIN_N = 8


def real(name: str, value) -> float:
    """``value`` as a float; ``TypeError`` if it is not a real number, ``ValueError`` if it is NaN."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    v = float(value)
    if math.isnan(v):
        raise ValueError(f"{name} must not be NaN, got {value!r}")
    return v


def unit_interval(name: str, value) -> float:
    """A loss or risk in [0, 1]."""
    v = real(name, value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value!r}")
    return v


def confidence(name: str, value) -> float:
    """A confidence parameter δ in the open interval (0, 1)."""
    v = real(name, value)
    if not 0.0 < v < 1.0:
        raise ValueError(f"{name} must lie in the open interval (0, 1), got {value!r}")
    return v


def divergence(name: str, value) -> float:
    """A KL divergence in nats: finite and >= 0."""
    v = real(name, value)
    if not (0.0 <= v < math.inf):
        raise ValueError(f"{name} must be a finite number >= 0 (nats), got {value!r}")
    return v


def nonneg(name: str, value, *, allow_inf: bool = False) -> float:
    """A number >= 0 (``+inf`` allowed on request)."""
    v = real(name, value)
    if v < 0.0 or (v == math.inf and not allow_inf):
        kind = "a number >= 0" if allow_inf else "a finite number >= 0"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return v


def positive(name: str, value) -> float:
    """A finite number > 0."""
    v = real(name, value)
    if not (0.0 < v < math.inf):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def count(name: str, value, minimum: int = 1, why: str = "") -> int:
    """An integer-valued count >= ``minimum`` (ints, numpy integers or integral floats)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, Integral):
        v = int(value)
    elif isinstance(value, Real) and math.isfinite(float(value)) and float(value).is_integer():
        v = int(float(value))
    elif isinstance(value, Real):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    else:
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}{why}, got {value!r}")
    return v


def maurer_n(value) -> int:
    """The bound-set size for Maurer's constant ln(2√n/δ), valid only for n >= 8."""
    return count("n", value, MAURER_MIN_N, " (Maurer's constant ln(2*sqrt(n)/delta) needs n >= 8)")


def common(emp_risk, kl, n, delta, *, maurer: bool = False, min_n: int = 1):
    """Check the usual (L̂, KL, n, δ) quadruple; returns the validated values."""
    q = unit_interval("emp_risk", emp_risk)
    k = divergence("kl", kl)
    nn = maurer_n(n) if maurer else count("n", n, min_n)
    d = confidence("delta", delta)
    return q, k, nn, d
