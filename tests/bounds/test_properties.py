"""Hypothesis property tests: ranges, monotonicity, and kl⁻¹ as the inverse of kl.

Theory (Maurer 2004; Pérez-Ortiz et al. 2021): every bound is non-decreasing in L̂ and KL and non-increasing in δ. In n all forms are
non-increasing — Maurer's (A + ½ ln n)/n, Seeger's, McAllester's, D&R's (KL + ln(n/δ))/(n − 1) (ln n ≥ 1 − 1/n)
and the closed forms all decrease — except Zhou's union-bound Catoni once it is vacuous: for q > 1 the map
a ↦ Φ⁻¹_a(q) decreases, so larger n can raise a bound that is already above 1. It is checked only below 1.
"""

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from weightinfo import bounds as B

SET = settings(max_examples=60, deadline=None)
EPS = 1e-9  # bisection brackets are 1e−12 wide; the Catoni γ search stops at |Δ ln γ| < 1e−10

risk = st.floats(0.0, 1.0)
kls = st.floats(0.0, 2e4)
ns = st.integers(8, 10**7)
deltas = st.floats(1e-8, 0.999)

# name -> callable(emp, kl, n, delta); all take n >= 8 here.
FORMS = {
    "kl": B.pac_bayes_kl,
    "seeger": B.seeger,
    "quad": B.quad,
    "lambda*": B.lambda_bound,
    "lambda=0.7": lambda *a: B.lambda_bound(*a, lam=0.7),
    "classic": B.classic,
    "mcallester": B.mcallester,
    "mcallester_lotfi": lambda *a: B.mcallester(*a, variant="lotfi"),
    "catoni_union": B.catoni,
    "catoni_C=2": lambda *a: B.catoni(*a, C=2.0),
    "linear": lambda *a: B.linear(*a, beta_pac=3.0),
    "dziugaite_roy": lambda *a: B.dziugaite_roy(*a, j=500),
}
KL_INVERSE_FORMS = {"kl", "seeger", "dziugaite_roy"}  # never leave [L̂, 1]


@pytest.mark.parametrize("name", FORMS)
@SET
@given(q=risk, k=kls, n=ns, d=deltas)
def test_range(name, q, k, n, d):
    v = FORMS[name](q, k, n, d)
    assert math.isfinite(v) and v >= q - EPS
    if name in KL_INVERSE_FORMS:
        assert v <= 1.0


@pytest.mark.parametrize("name", FORMS)
@SET
@given(q=st.lists(risk, min_size=2, max_size=2), k=kls, n=ns, d=deltas)
def test_monotone_in_emp_risk(name, q, k, n, d):
    lo, hi = sorted(q)
    assert FORMS[name](lo, k, n, d) <= FORMS[name](hi, k, n, d) + EPS


@pytest.mark.parametrize("name", FORMS)
@SET
@given(q=risk, k=st.lists(kls, min_size=2, max_size=2), n=ns, d=deltas)
def test_monotone_in_kl(name, q, k, n, d):
    lo, hi = sorted(k)
    assert FORMS[name](q, lo, n, d) <= FORMS[name](q, hi, n, d) + EPS


@pytest.mark.parametrize("name", FORMS)
@SET
@given(q=risk, k=kls, n=st.lists(ns, min_size=2, max_size=2), d=deltas)
def test_non_increasing_in_n(name, q, k, n, d):
    small, big = sorted(n)
    a, b = FORMS[name](q, k, small, d), FORMS[name](q, k, big, d)
    if name == "catoni_union":
        assume(a < 1.0)  # see the module docstring
    assert b <= a + EPS


@pytest.mark.parametrize("name", FORMS)
@SET
@given(q=risk, k=kls, n=ns, d=st.lists(deltas, min_size=2, max_size=2))
def test_non_increasing_in_delta(name, q, k, n, d):
    small, big = sorted(d)
    assert FORMS[name](q, k, n, big) <= FORMS[name](q, k, n, small) + EPS


@SET
@given(q=risk, k=kls, n=ns, d=deltas)
def test_orderings(q, k, n, d):
    """kl⁻¹ ≤ f_quad = min_λ f_λ ≤ f_λ; kl⁻¹ ≤ f_classic (Pinsker); Maurer ≤ Seeger for n ≥ 8."""
    kl_ = B.pac_bayes_kl(q, k, n, d)
    fq = B.quad(q, k, n, d)
    assert kl_ <= fq + EPS and kl_ <= B.classic(q, k, n, d) + EPS
    assert fq <= B.lambda_bound(q, k, n, d, lam=0.3) + EPS
    assert B.lambda_bound(q, k, n, d) == pytest.approx(fq, rel=1e-9, abs=1e-12)
    assert 0.0 < B.optimal_lambda(q, k, n, d) <= 1.0
    assert kl_ <= B.seeger(q, k, n, d) + EPS


@SET
@given(q=risk, m=st.lists(st.integers(1, 10**7), min_size=2, max_size=2), d=st.floats(1e-8, 0.999))
def test_mc_bounds(q, m, d):
    few, many = sorted(m)
    one = B.mc_sample_bound(q, many, d)
    assert q <= one <= 1.0
    assert one <= B.mc_sample_bound(q, few, d) + EPS
    assert one <= B.mc_sample_bound(q, many, d, two_sided=True) + EPS
    if few * 1000 >= many:  # more independent losses, smaller MC term
        assert B.per_example_mc_bound(q, few, 1000, d) <= one + EPS
    assert B.per_example_mc_bound(q, 3, many, d) <= B.per_example_mc_bound(q, 3, few, d) + EPS


@pytest.mark.parametrize("name", list(B.BOUNDS))
@settings(max_examples=30, deadline=None)
@given(
    q=risk,
    k=st.floats(0.0, 1e5),
    n=ns,
    m=st.integers(1, 10**6),
    d=st.floats(1e-6, 0.5),
    per=st.booleans(),
)
def test_certificate_in_unit_interval_or_flagged(name, q, k, n, m, d, per):
    opts = {"linear": {"beta_pac": 2.0}, "dziugaite_roy": {"j": 7}}.get(name, {})
    r = B.certificate(q, k, n, m, d, 0.01, bound=name, per_example=per, **opts)
    assert math.isfinite(r.risk_bound) and r.risk_bound >= r.mc_upper - EPS >= q - 2 * EPS
    assert r.vacuous == (r.risk_bound >= 1.0)
    assert 0.0 <= r.risk_bound <= 1.0 or r.vacuous


# --- kl⁻¹ is the inverse of kl ----------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(q=risk, c=st.floats(0.0, 50.0))
def test_kl_of_inverse_is_c(q, c):
    p = B.kl_inverse_upper(q, c)
    assert q <= p <= 1.0
    assume(p < 1.0 and c > 0.0)
    val = B.kl(q, p)
    assert val >= c  # safe end of the bracket
    # 1e−12 bracket, plus one float step at p, worth up to ulp(p)·∂kl/∂p ≤ ulp(p)/(1 − p) nats
    assert val - c <= 1e-11 + 1e-12 * c + 2 * math.ulp(p) / (1.0 - p)
    assert (
        B.kl(q, max(q, p - 2 * B.KL_INVERSE_TOL)) <= c + 1e-12
    )  # p is within 2e−12 of the supremum


@settings(max_examples=300, deadline=None)
@given(q=risk, c=st.floats(0.0, 50.0))
def test_kl_of_lower_inverse_is_c(q, c):
    p = B.kl_inverse_lower(q, c)
    assert 0.0 <= p <= q
    assume(p > 0.0 and c > 0.0)
    assert B.kl(q, p) >= c
    # |∂kl/∂p| ≤ q/p: one float step matters once p is subnormal (c ≳ 700·q)
    assert B.kl(q, p) - c <= 1e-11 + 1e-12 * c + 2 * q * (math.ulp(p) / p)
    assert B.kl(q, min(q, p + 2 * B.KL_INVERSE_TOL)) <= c + 1e-12


@settings(max_examples=300, deadline=None)
@given(q=st.floats(0.0, 1.0), t=st.floats(1e-6, 1.0 - 1e-9))
def test_inverse_of_kl_is_p(q, t):
    p = q + t * (1.0 - q)  # p in (q, 1)
    assume(q < p < 1.0 - 1e-9 and p - q > 1e-7)
    got = B.kl_inverse_upper(q, B.kl(q, p))
    assert got == pytest.approx(p, abs=1e-9)
    lower = q * (1.0 - t)  # a point below q
    assume(0.0 < lower < q and q - lower > 1e-7)
    assert B.kl_inverse_lower(q, B.kl(q, lower)) == pytest.approx(lower, abs=1e-9)


@SET
@given(
    q=st.lists(risk, min_size=2, max_size=2),
    c=st.lists(st.floats(0.0, 50.0), min_size=2, max_size=2),
)
def test_kl_inverse_monotone(q, c):
    (q0, q1), (c0, c1) = sorted(q), sorted(c)
    assert B.kl_inverse_upper(q0, c0) <= B.kl_inverse_upper(q1, c0) + EPS
    assert B.kl_inverse_upper(q0, c0) <= B.kl_inverse_upper(q0, c1) + EPS
    assert B.kl_inverse_lower(q0, c1) <= B.kl_inverse_lower(q0, c0) + EPS
    assert B.kl_inverse_lower(q0, c0) <= B.kl_inverse_upper(q0, c0)
