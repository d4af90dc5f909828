"""The two-step certificate and its BoundResult record."""

import dataclasses
import json
import math

import pytest

from weightinfo import bounds as B


def test_two_step_composition_for_every_bound():
    emp, kl, n, m, d, dmc = 0.03, 250.0, 20000, 5000, 0.025, 0.01
    extra = {"linear": {"beta_pac": 4.0}, "dziugaite_roy": {"j": 500}, "lambda": {"lam": 0.5}}
    for name, fn in B.BOUNDS.items():
        opts = extra.get(name, {})
        for per_example, u in (
            (False, B.mc_sample_bound(emp, m, dmc)),
            (True, B.per_example_mc_bound(emp, m, n, dmc)),
        ):
            r = B.certificate(emp, kl, n, m, d, dmc, bound=name, per_example=per_example, **opts)
            assert r.mc_upper == u
            assert r.risk_bound == fn(u, kl, n, d, **opts)
            assert r.estimator == ("per_example" if per_example else "network")
            assert r.bound == name and r.options == opts
            assert r.risk_bound >= u >= emp


def test_defaults_and_record():
    r = B.certificate(0.02, 500.0, 30000, 150000, 0.025, 0.01)
    assert r.bound == "kl" and r.estimator == "network" and not r.two_sided
    # one-sided by default (Langford & Caruana 2001)
    assert r.mc_upper == pytest.approx(0.021117, abs=1e-6)
    assert r.risk_bound == B.pac_bayes_kl(r.mc_upper, 500.0, 30000, 0.025)
    assert r.kl_nats == 500.0 and r.kl_bits == pytest.approx(500.0 / math.log(2))
    assert (r.n, r.m, r.delta, r.delta_mc, r.emp_risk) == (30000, 150000, 0.025, 0.01, 0.02)
    assert r.confidence == pytest.approx(0.965) and not r.vacuous
    d = json.loads(json.dumps(r.to_dict()))
    for key in (
        "risk_bound",
        "mc_upper",
        "emp_risk",
        "kl_nats",
        "kl_bits",
        "n",
        "m",
        "delta",
        "delta_mc",
    ):
        assert d[key] == pytest.approx(getattr(r, key))
    assert d["bound"] == "kl" and d["vacuous"] is False and d["estimator"] == "network"
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.risk_bound = 0.0


def test_vacuous_is_flagged_not_clipped():
    r = B.certificate(0.4, 5000.0, 1000, 100, 0.05, 0.05, bound="quad")
    assert r.risk_bound > 1 and r.vacuous and r.to_dict()["vacuous"] is True
    assert r.risk_bound == B.quad(r.mc_upper, 5000.0, 1000, 0.05)
    k = B.certificate(0.4, 50000.0, 1000, 100, 0.05, 0.05)  # kl⁻¹ saturates at exactly 1: vacuous
    assert k.risk_bound == 1.0 and k.vacuous
    near = B.certificate(0.4, 5000.0, 1000, 100, 0.05, 0.05)  # 0.9997...: useless, but below 1
    assert 0.999 < near.risk_bound < 1 and not near.vacuous


def test_per_example_is_tighter_at_equal_compute():
    """Per-example Monte Carlo (Hoeffding 1963, Thm 1): n = 2 000, m = 100 per-example draws vs 100 networks."""
    a = B.certificate(0.02, 0.0, 2000, 100, 0.025, 0.01, per_example=True)
    b = B.certificate(0.02, 0.0, 2000, 100, 0.025, 0.01)
    assert a.mc_upper == pytest.approx(0.020965, abs=1e-6)
    assert b.mc_upper == pytest.approx(0.094069, abs=1e-6)
    assert a.risk_bound < b.risk_bound


def test_two_sided_reproduces_published_mc_step():
    r = B.certificate(0.02, 0.0, 30000, 10000, 0.025, 0.01, two_sided=True)
    assert r.two_sided and r.mc_upper == pytest.approx(0.024901, abs=1e-6)


@pytest.mark.parametrize("delta, delta_mc", [(0.6, 0.6), (0.5, 0.5), (0.9, 0.2)])
def test_delta_plus_delta_mc_below_one(delta, delta_mc):
    # 1 − δ − δ′ ≤ 0 would issue a certificate "with probability ≥ −0.2".
    with pytest.raises(ValueError, match=rf"delta \+ delta_mc must be < 1.*delta={delta}"):
        B.certificate(0.02, 500.0, 30000, 1000, delta, delta_mc)
    r = B.certificate(0.02, 500.0, 30000, 1000, 0.5, 0.49)
    assert r.confidence == pytest.approx(0.01)
    assert B.two_step.total_confidence(0.5, 0.49) == pytest.approx(0.01)
