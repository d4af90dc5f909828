"""The automatic selection of ``certify``: a declared set, screened on the bound set, the chosen candidate
certified with fresh draws, K paid for (issue 9 §1)."""

from __future__ import annotations

import math

import pytest
import torch

import weightinfo
from tests.certify.cases import digits_mlp, split_kwargs
from weightinfo import bounds
from weightinfo.certificates import (
    DEFAULT_SEARCH,
    Candidate,
    MonteCarloOptions,
    verify_certificate,
)
from weightinfo.certificates import _screening as S
from weightinfo.certificates import posterior_fit as pf
from weightinfo.certificates.selection import posterior_epochs_for

#: A small declared set of both families (cheap: 2 posterior epochs).
SMALL_SET = (
    Candidate("information", 0.01, beta=1e-3),
    Candidate("information", 0.03, beta=1e-4),
    Candidate("optimize", 0.03, lr=1e-3, epochs=2),
)
FAST = dict(prior_epochs=3, prior_holdout=0, mc_samples=20)


@pytest.fixture(scope="module")
def setup():
    ds, model, init = digits_mlp(16)
    return ds, model, split_kwargs(ds, init)


@pytest.fixture(scope="module")
def chosen(setup):
    """A certificate chosen from SMALL_SET, with the generators of every risk estimate recorded."""
    _, model, kw = setup
    seeds = []
    original = S.BoundSet.gibbs_risk

    def spy(self, mean, var, m, gen):
        seeds.append((gen.initial_seed(), m))
        return original(self, mean, var, m, gen)

    mp = pytest.MonkeyPatch()
    mp.setattr(S.BoundSet, "gibbs_risk", spy)
    try:
        cert = weightinfo.certify(model, **kw, search=SMALL_SET, **FAST)
    finally:
        mp.undo()
    return cert, seeds


def test_every_candidate_is_screened_and_the_best_is_chosen(chosen):
    cert, _ = chosen
    assert [r["candidate"] for r in cert.grid] == [c.label for c in SMALL_SET]
    best = min(cert.grid, key=lambda r: r["screen_bound"])
    assert Candidate(**cert.chosen).label == best["candidate"]
    assert cert.search == [c.to_dict() for c in SMALL_SET]
    assert cert.record["options"]["search"] == cert.search


def test_the_whole_declared_set_is_paid_for(chosen):
    cert, _ = chosen
    k = len(SMALL_SET)
    assert cert.k_union == k
    again = bounds.certificate(
        cert.empirical_risk,
        cert.kl_nats,
        cert.n_bound,
        cert.m,
        cert.delta / k,
        cert.delta_mc,
        bound="kl",
        per_example=True,
    )
    assert cert.risk_bound == pytest.approx(again.risk_bound, abs=1e-12)
    # ... which is looser than the same terms at δ (a selection that did not pay).
    free = bounds.certificate(
        cert.empirical_risk,
        cert.kl_nats,
        cert.n_bound,
        cert.m,
        cert.delta,
        cert.delta_mc,
        bound="kl",
        per_example=True,
    )
    assert free.risk_bound < cert.risk_bound
    assert verify_certificate(cert.to_dict()).ok
    assert not verify_certificate(dict(cert.to_dict(), k_union=k - 1)).ok


def test_the_chosen_candidate_is_certified_with_fresh_draws(chosen):
    cert, seeds = chosen
    screening, final = seeds[:-1], seeds[-1]
    assert len(screening) == len(SMALL_SET)
    assert final[0] not in {s for s, _ in screening}  # an independent stream
    assert len({s for s, _ in screening}) == len(SMALL_SET)  # and each candidate its own
    assert final[1] == cert.m
    row = next(r for r in cert.grid if r["candidate"] == Candidate(**cert.chosen).label)
    assert cert.empirical_risk != row["screen_emp"]


def test_the_default_set_is_declared_before_any_data():
    # A module constant of frozen candidates: nothing a dataset could change.
    assert isinstance(DEFAULT_SEARCH, tuple) and len(DEFAULT_SEARCH) == 6
    with pytest.raises(AttributeError):
        DEFAULT_SEARCH[0].prior_scale = 1.0
    families = {c.posterior for c in DEFAULT_SEARCH}
    assert families == {"information", "optimize"}  # the information posterior is first-class


def test_default_certify_uses_the_default_set_on_any_data(setup):
    ds, model, kw = setup
    small = dict(kw, posterior_data=(ds.x_train[:300], ds.y_train[:300]))
    a = weightinfo.certify(model, **small, **FAST)
    shuffled = dict(small, bound_data=(kw["bound_data"][0], kw["bound_data"][1].flip(0)))
    b = weightinfo.certify(model, **shuffled, **FAST)
    declared = [c.to_dict() for c in DEFAULT_SEARCH]
    assert a.search == b.search == declared and a.k_union == b.k_union == 6
    assert a.mc == "per_example" and len(a.grid) == 6
    assert verify_certificate(a.to_dict()).ok


def test_pinning_a_searched_setting_certifies_that_setting_only(setup):
    _, model, kw = setup
    c = weightinfo.certify(model, **kw, prior_scale=0.03, posterior_epochs=1, **FAST)
    assert c.search is None and c.k_union == 1 and c.grid == [] and c.prior_scale == 0.03


@pytest.mark.parametrize("search", ["auto", SMALL_SET])
def test_a_search_with_a_pinned_setting_is_refused(setup, search):
    _, model, kw = setup
    with pytest.raises(ValueError, match="prior_scale"):
        weightinfo.certify(model, **kw, search=search, prior_scale=0.03, **FAST)


@pytest.mark.parametrize(
    "search, error",
    [([], TypeError), (["information"], TypeError), ("best", ValueError)],
)
def test_bad_search_is_refused(setup, search, error):
    _, model, kw = setup
    with pytest.raises(error):
        weightinfo.certify(model, **kw, search=search, **FAST)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Candidate("laplace", 0.01), "posterior"),
        (lambda: Candidate("information", 0.01), "β"),
        (lambda: Candidate("optimize", 0.0), "prior_scale"),
        (lambda: Candidate("optimize", 0.01, init="zero"), "init"),
    ],
)
def test_bad_candidates_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_k_union_above_the_set_is_honoured(setup):
    _, model, kw = setup
    c = weightinfo.certify(model, **kw, search=SMALL_SET[:2], k_union=10, **FAST)
    assert c.k_union == 10 and verify_certificate(c.to_dict()).ok
    with pytest.raises(ValueError, match="k_union"):
        weightinfo.certify(model, **kw, search=SMALL_SET, k_union=2, **FAST)


def test_declared_size_rules():
    assert posterior_epochs_for(1438) == 20 and posterior_epochs_for(60000) == 4
    assert posterior_epochs_for(10**7) == 1
    mc = MonteCarloOptions()
    assert mc.estimator == "per_example"
    assert mc.draws(719) == 1000 and mc.draws(30000) == math.ceil(1e6 / 30000)
    assert mc.screen_draws(719) == math.ceil(1e5 / 719) and mc.screen_draws(10**6) == 1
    assert MonteCarloOptions(estimator="standard").draws(719) == 1000
    assert MonteCarloOptions(samples=7).screen_draws(719) == 7


def test_early_stopping_keeps_the_best_held_out_epoch():
    ds, model, _ = digits_mlp(16)
    x, y = ds.x_train[:400], ds.y_train[:400]
    noise = torch.randint(0, 10, (400,), generator=torch.Generator().manual_seed(0))
    info = {}
    pf.train_prior_mean(model, (x, noise), epochs=40, holdout=0.25, patience=3, info=info)
    # Random labels: the held-out error cannot keep improving, so training stops early.
    assert info["epochs_run"] < 40 and info["epochs_run"] - info["best_epoch"] == 3
    info = {}
    w = pf.train_prior_mean(model, (x, y), epochs=3, holdout=0.25, patience=5, info=info)
    assert info["epochs_run"] == 3 and 1 <= info["best_epoch"] <= 3
    assert 0 <= info["holdout_error"] < 0.8  # below chance (0.9) after 3 epochs
    assert set(w) == {k for k, _ in model.named_parameters()}
    with pytest.raises(ValueError, match="holdout"):
        pf.train_prior_mean(model, (x[:1], y[:1]), epochs=1, holdout=0.5)


def test_early_stopping_needs_a_large_enough_held_out_part(setup):
    from weightinfo.certificates import PriorOptions

    p = PriorOptions()
    assert p.holdout_for(30000) == 0.1 and p.holdout_for(719) == 0.0
    _, model, kw = setup
    small = dict(FAST, prior_holdout=0.2, prior_holdout_min=50)
    c = weightinfo.certify(model, **kw, search=SMALL_SET[:1], **small)
    assert c.prior_training["holdout_error"] is not None
    assert c.prior_training["best_epoch"] <= c.prior_training["epochs_run"] <= 3
    c = weightinfo.certify(model, **kw, search=SMALL_SET[:1], **FAST)
    assert c.prior_training == {"epochs_run": 3, "best_epoch": 3, "holdout_error": None}
