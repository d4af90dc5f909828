"""Pinned certificates: the same settings and seed give bit-for-bit the values recorded before ``certify`` was
split into option objects and named steps (recorded on commit 38e7d8f with OMP_NUM_THREADS=1).

Since the defaults changed (issue 9: per-example Monte Carlo, an early-stopped prior) the cases name the
former defaults explicitly (``mc="standard"``, ``prior_holdout=0``, ``prior_schedule=None``); screened rows gained a ``candidate``
label, compared apart."""

import pytest

import weightinfo.certificates as wc
from tests.certify.cases import digits_mlp, split_kwargs

CASES = {
    "optimize": dict(
        prior_epochs=2,
        prior_holdout=0,
        prior_schedule=None,
        posterior_epochs=1,
        mc="standard",
        mc_samples=50,
        test="yes",
    ),
    "information_grid": dict(
        prior="init",
        posterior="information",
        prior_scale=[0.01, 0.03],
        beta=[1e-3, 1e-2],
        mc="standard",
        mc_samples=40,
        mc_screen=20,
    ),
    "learnt_per_example": dict(
        prior_epochs=1,
        prior_holdout=0,
        prior_schedule=None,
        posterior_epochs=1,
        prior_scale=[0.01, 0.03, 0.1],
        learn_prior_scale=True,
        mc="per_example",
        mc_samples=5,
        objective="fclassic",
        seed=3,
    ),
}

#: ``Certificate`` fields recorded on the branch base (floats compared with ``==``).
PINNED = {
    "optimize": {
        "risk_bound": 0.7384218492699369,
        "empirical_risk": 0.4632545201668985,
        "mc_upper": 0.6720769370760662,
        "kl_nats": 0.13357365777139008,
        "prior_scale": 0.03,
        "beta": None,
        "test_error": 0.45740000000000003,
        "mean_test_error": 0.39,
        "majority_vote_test_error": 0.39,
        "learned_prior_scale": None,
        "grid": [],
        "k_union": 1,
        "mc_screen": None,
    },
    "information_grid": {
        "risk_bound": 0.9930291170386956,
        "empirical_risk": 0.8728789986091794,
        "mc_upper": 0.9761534725919976,
        "kl_nats": 0.00023121102965362184,
        "prior_scale": 0.03,
        "beta": 0.01,
        "test_error": None,
        "mean_test_error": None,
        "majority_vote_test_error": None,
        "learned_prior_scale": None,
        "grid": [
            {
                "prior_scale": 0.01,
                "beta": 0.001,
                "kl_nats": 0.0002851530663772195,
                "screen_emp": 0.8798331015299027,
                "screen_bound": 0.9994834974571711,
            },
            {
                "prior_scale": 0.01,
                "beta": 0.01,
                "kl_nats": 2.878125531680098e-06,
                "screen_emp": 0.8778859527121001,
                "screen_bound": 0.999406312187056,
            },
            {
                "prior_scale": 0.03,
                "beta": 0.001,
                "kl_nats": 0.02135893793330923,
                "screen_emp": 0.8776773296244784,
                "screen_bound": 0.9994001527132559,
            },
            {
                "prior_scale": 0.03,
                "beta": 0.01,
                "kl_nats": 0.00023121102965362184,
                "screen_emp": 0.864673157162726,
                "screen_bound": 0.998697140381628,
            },
        ],
        "k_union": 4,
        "mc_screen": 20,
    },
    "learnt_per_example": {
        "risk_bound": 0.8822604380963636,
        "empirical_risk": 0.7872044506258693,
        "mc_upper": 0.8074203128581703,
        "kl_nats": 7.899608215901204,
        "prior_scale": 0.01,
        "beta": None,
        "test_error": None,
        "mean_test_error": None,
        "majority_vote_test_error": None,
        "learned_prior_scale": 0.010492044035462594,
        "grid": [
            {
                "prior_scale": 0.01,
                "beta": None,
                "kl_nats": 7.899608215901204,
                "screen_emp": 0.7847009735744089,
                "screen_bound": 0.8803148004471272,
            },
            {
                "prior_scale": 0.03,
                "beta": None,
                "kl_nats": 745.2186307002053,
                "screen_emp": 0.7847009735744089,
                "screen_bound": 0.9996317551815344,
            },
        ],
        "k_union": 3,
        "mc_screen": 5,
    },
}


def _setup():
    ds, model, init = digits_mlp(16)
    return ds, model, split_kwargs(ds, init)


@pytest.mark.parametrize("name", sorted(CASES))
def test_certificate_is_bit_for_bit_the_pinned_one(name):
    ds, model, kw = _setup()
    case = dict(CASES[name])
    if case.pop("test", None):
        kw["test_data"] = (ds.x_test[:100], ds.y_test[:100])
    c = wc.certify(model, **kw, **case)
    got = {k: getattr(c, k) for k in PINNED[name]}
    labels = [row.pop("candidate") for row in got["grid"]]
    assert got == PINNED[name]
    assert all(label.startswith(c.posterior) for label in labels)
