"""Bad arguments raise ValueError naming the parameter and the value; no silent NaN, no clipping."""

import math

import pytest

from weightinfo import bounds as B

NAN = float("nan")
OK = dict(emp_risk=0.05, kl=100.0, n=1000, delta=0.05)

# (emp_risk, kl, n, delta)-style bounds, with the smallest n each accepts.
QUADRUPLE = {
    "pac_bayes_kl": (B.pac_bayes_kl, 8),
    "seeger": (B.seeger, 1),
    "quad": (B.quad, 8),
    "lambda_bound": (B.lambda_bound, 8),
    "optimal_lambda": (B.optimal_lambda, 8),
    "classic": (B.classic, 8),
    "mcallester": (B.mcallester, 1),
    "catoni": (B.catoni, 1),
    "catoni_C": (lambda *a: B.catoni(*a, C=1.0), 1),
    "linear": (lambda *a: B.linear(*a, beta_pac=2.0), 1),
    "dziugaite_roy": (lambda *a: B.dziugaite_roy(*a, j=3), 2),
}

BAD = [
    ("emp_risk", -0.01),
    ("emp_risk", 1.5),
    ("emp_risk", NAN),
    ("kl", -1e-9),
    ("kl", NAN),
    ("kl", math.inf),
    ("n", 0),
    ("n", -5),
    ("n", 100.5),
    ("n", math.inf),
    ("delta", 0.0),
    ("delta", 1.0),
    ("delta", -0.1),
    ("delta", 1.5),
    ("delta", NAN),
]


def _call(fn, **kw):
    a = {**OK, **kw}
    return fn(a["emp_risk"], a["kl"], a["n"], a["delta"])


@pytest.mark.parametrize("name", QUADRUPLE)
@pytest.mark.parametrize("param, value", BAD, ids=[f"{p}={v}" for p, v in BAD])
def test_bad_quadruple_raises_naming_parameter(name, param, value):
    fn, _ = QUADRUPLE[name]
    with pytest.raises(ValueError, match=param) as e:
        _call(fn, **{param: value})
    assert repr(value) in str(e.value) or str(value) in str(e.value)


@pytest.mark.parametrize("name", QUADRUPLE)
def test_min_n(name):
    fn, n_min = QUADRUPLE[name]
    assert math.isfinite(_call(fn, n=n_min))
    if n_min > 1:
        with pytest.raises(ValueError, match="n must be >= "):
            _call(fn, n=n_min - 1)


def test_maurer_needs_n_at_least_8():
    for fn in (B.pac_bayes_kl, B.quad, B.classic, B.lambda_bound, B.optimal_lambda):
        with pytest.raises(ValueError, match=r"n must be >= 8.*Maurer.*got 7"):
            fn(0.1, 1.0, 7, 0.05)
    assert B.pac_bayes_kl(0.1, 1.0, 8.0, 0.05) == B.pac_bayes_kl(
        0.1, 1.0, 8, 0.05
    )  # integral float ok


def test_non_numbers_are_type_errors():
    with pytest.raises(TypeError, match="delta"):
        B.pac_bayes_kl(0.1, 1.0, 100, None)
    with pytest.raises(TypeError, match="emp_risk"):
        B.quad("0.1", 1.0, 100, 0.05)
    with pytest.raises(TypeError, match="n must be an integer"):
        B.classic(0.1, 1.0, True, 0.05)


@pytest.mark.parametrize("lam", [0.0, 2.0, -0.5, 2.5, NAN])
def test_lambda_outside_open_interval(lam):
    with pytest.raises(ValueError, match="lam"):
        B.lambda_bound(0.1, 10.0, 1000, 0.05, lam=lam)


@pytest.mark.parametrize("C", [0.0, -1.0, NAN, math.inf])
def test_catoni_C_must_be_positive(C):
    with pytest.raises(ValueError, match="C "):
        B.catoni(0.1, 10.0, 1000, 0.05, C=C)
    with pytest.raises(ValueError, match="alpha"):
        B.catoni(0.1, 10.0, 1000, 0.05, alpha=0.0)


@pytest.mark.parametrize("beta_pac", [0.5, 0.25, 0.0, -3.0, NAN, math.inf])
def test_linear_refuses_beta_pac_at_most_half(beta_pac):
    with pytest.raises(ValueError, match="beta_pac") as e:
        B.linear(0.1, 10.0, 1000, 0.05, beta_pac)
    assert str(beta_pac) in str(e.value)
    assert B.linear(0.1, 10.0, 1000, 0.05, 0.5000001) > 1  # allowed, just vacuous


def test_mcallester_variant():
    with pytest.raises(ValueError, match="variant"):
        B.mcallester(0.1, 10.0, 1000, 0.05, variant="lotfi2022")


@pytest.mark.parametrize(
    "call, param",
    [
        (lambda: B.mc_sample_bound(-0.1, 10, 0.01), "emp_risk"),
        (lambda: B.mc_sample_bound(NAN, 10, 0.01), "emp_risk"),
        (lambda: B.mc_sample_bound(0.1, 0, 0.01), "m"),
        (lambda: B.mc_sample_bound(0.1, 2.5, 0.01), "m"),
        (lambda: B.mc_sample_bound(0.1, 10, 0.0), "delta_mc"),
        (lambda: B.mc_sample_bound(0.1, 10, 1.0), "delta_mc"),
        (lambda: B.per_example_mc_bound(0.1, 0, 100, 0.01), "m"),
        (lambda: B.per_example_mc_bound(0.1, 10, 0, 0.01), "n"),
        (lambda: B.per_example_mc_bound(0.1, 10, 100, NAN), "delta_mc"),
        (lambda: B.per_example_mc_bound(1.01, 10, 100, 0.5), "emp_risk"),
        (lambda: B.kl(-0.1, 0.5), "q"),
        (lambda: B.kl(0.5, 1.1), "p"),
        (lambda: B.kl(0.5, NAN), "p"),
        (lambda: B.kl_inverse_upper(1.2, 0.1), "q"),
        (lambda: B.kl_inverse_upper(0.2, -0.1), "c"),
        (lambda: B.kl_inverse_upper(0.2, NAN), "c"),
        (lambda: B.kl_inverse_lower(NAN, 0.1), "q"),
        (lambda: B.kl_inverse_lower(0.2, -1.0), "c"),
        (lambda: B.union_delta(0.0, 3), "delta"),
        (lambda: B.union_delta(0.05, 0), "k"),
        (lambda: B.union_delta(0.05, 3, scheme="geometric"), "scheme"),
        (lambda: B.prior_scale_grid(0.0, 100, 10), "c"),
        (lambda: B.prior_scale_grid(0.1, -1, 10), "b"),
        (lambda: B.prior_scale_grid(0.1, 100, 0), "j_max"),
        (lambda: B.prior_scale_index(-1.0, 0.1, 100), "lam"),
        (lambda: B.dziugaite_roy(0.1, 10.0, 1000, 0.05, j=0), "j"),
        (lambda: B.dziugaite_roy(0.1, 10.0, 1000, 0.05, j=2.5), "j"),
        (lambda: B.certificate(0.1, 10.0, 1000, 100, 0.05, 0.01, bound="pinsker"), "bound"),
        (lambda: B.certificate(1.1, 10.0, 1000, 100, 0.05, 0.01), "emp_risk_mc"),
        (lambda: B.certificate(0.1, -1.0, 1000, 100, 0.05, 0.01), "kl"),
        (lambda: B.certificate(0.1, 10.0, 1000, 0, 0.05, 0.01), "m"),
        (lambda: B.certificate(0.1, 10.0, 1000, 100, 0.05, 0.0), "delta_mc"),
        (lambda: B.certificate(0.1, 10.0, 1000, 100, 1.0, 0.01), "delta"),
        (lambda: B.certificate(0.1, 10.0, 5, 100, 0.05, 0.01), "n"),
        (
            lambda: B.certificate(0.1, 10.0, 1000, 100, 0.05, 0.01, bound="linear", beta_pac=0.5),
            "beta_pac",
        ),
        (lambda: B.certificate(0.1, 10.0, 1000, 100, 0.05, 0.01, bound="lambda", lam=2.0), "lam"),
        (lambda: B.certificate(0.1, 10.0, 1000, 100, 0.05, 0.01, bound="catoni", C=0.0), "C"),
    ],
)
def test_other_bad_arguments(call, param):
    with pytest.raises(ValueError, match=rf"\b{param}\b"):
        call()


def test_right_limits_and_edges_of_kl():
    assert B.kl(0.0, 0.0) == 0.0 and B.kl(1.0, 1.0) == 0.0
    assert B.kl(0.2, 0.0) == math.inf and B.kl(0.2, 1.0) == math.inf
    assert B.kl(0.0, 0.5) == pytest.approx(math.log(2)) and B.kl(1.0, 0.5) == pytest.approx(
        math.log(2)
    )
    assert B.kl_inverse_upper(0.3, math.inf) == 1.0 and B.kl_inverse_lower(0.3, math.inf) == 0.0
    assert B.kl_inverse_upper(0.3, 0.0) == 0.3 and B.kl_inverse_lower(0.3, 0.0) == 0.3
    assert B.kl_inverse_upper(1.0, 5.0) == 1.0 and B.kl_inverse_lower(0.0, 5.0) == 0.0
    assert B.kl_inverse_upper(0.0, 1e6) == 1.0 or B.kl_inverse_upper(0.0, 1e6) > 1 - 1e-12
