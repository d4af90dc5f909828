"""certify(prior="data", prior_state=...), the prior-training settings, β grids and the union-bound size."""

import copy

import pytest
import torch

import weightinfo.certificates as wc
from tests.certify.cases import digits_mlp
from weightinfo.certificates import posterior_fit as pf


@pytest.fixture(scope="module")
def setup():
    ds, model, _ = digits_mlp(32)
    pi, bi = ds.prior_bound_split(0.5, 0)
    w0 = pf.train_prior_mean(model, (ds.x_train[pi], ds.y_train[pi]), epochs=5, seed=0)
    kw = dict(
        posterior_data=(ds.x_train, ds.y_train),
        bound_data=(ds.x_train[bi], ds.y_train[bi]),
        prior_indices=pi,
        bound_indices=bi,
        mc="per_example",
        mc_samples=10,
        posterior_epochs=1,
    )
    return ds, model, w0, kw


def _no_training(*args, **kwargs):
    raise AssertionError("certify trained a prior although prior_state was given")


def test_prior_state_is_used_exactly(setup, monkeypatch):
    _, model, w0, kw = setup
    monkeypatch.setattr(pf, "train_prior_mean", _no_training)
    a = wc.certify(model, prior="data", prior_state=w0, **kw)
    # The same weights handed over as a data-free prior mean give the very same certificate.
    b = wc.certify(model, prior="init", init_state=w0, **kw)
    assert a.prior == "data" and b.prior == "init"
    assert (a.risk_bound, a.kl_nats, a.empirical_risk) == (
        b.risk_bound,
        b.kl_nats,
        b.empirical_risk,
    )
    moved = {k: v + 0.01 for k, v in w0.items()}
    c = wc.certify(model, prior="data", prior_state=moved, **kw)
    assert c.kl_nats != a.kl_nats


def _at(model, w0):
    net = copy.deepcopy(model)
    net.load_state_dict(w0, strict=False)
    return net.eval()


def test_prior_state_with_information_posterior_at_the_prior_mean(setup):
    _, model, w0, kw = setup
    net = _at(model, w0)
    big = wc.certify(net, prior="data", prior_state=w0, posterior="information", beta=1e3, **kw)
    # w* = w0 and a β so large that Q* ≈ P: no mean term, (almost) no variance term.
    assert 0 <= big.kl_nats < 1e-3


def test_prior_state_overlap_still_raises(setup):
    _, model, w0, kw = setup
    bad = torch.cat([kw["bound_indices"], kw["prior_indices"][:1]])
    with pytest.raises(ValueError, match="prior_indices and bound_indices"):
        wc.certify(model, prior="data", prior_state=w0, **{**kw, "bound_indices": bad})


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"prior": "init"}, "prior='data'"),
        ({"init_state": "w0"}, "not both"),
        ({"drop": True}, "lacks parameter"),
    ],
)
def test_prior_state_misuse_raises(setup, bad, match):
    _, model, w0, kw = setup
    state = dict(w0)
    if bad.pop("drop", False):
        state.pop(next(iter(state)))
    if bad.get("init_state") == "w0":
        bad["init_state"] = w0
    with pytest.raises(ValueError, match=match):
        wc.certify(model, **{"prior": "data", **bad}, prior_state=state, **kw)


def test_prior_training_settings_reach_the_prior(setup, monkeypatch):
    ds, model, w0, kw = setup
    seen = {}

    def spy(model, data, **settings):
        seen.update(settings, n=int(data[0].shape[0]))
        return w0

    monkeypatch.setattr(pf, "train_prior_mean", spy)
    pi = kw["prior_indices"]
    wc.certify(
        model,
        prior_data=(ds.x_train[pi], ds.y_train[pi]),
        prior_epochs=3,
        prior_lr=0.01,
        prior_batch_size=16,
        prior_momentum=0.5,
        **kw,
    )
    info = seen.pop("info")
    assert isinstance(info, dict)
    assert seen == dict(
        init_state=None,
        epochs=3,
        lr=0.01,
        batch_size=16,
        momentum=0.5,
        seed=0,
        holdout=0.0,  # 72 held-out images < holdout_min: no early stopping
        patience=10,
        schedule="cosine",
        n=len(pi),
    )


def test_prior_momentum_changes_the_prior(setup):
    ds, model, _, kw = setup
    data = (ds.x_train[:200], ds.y_train[:200])
    a = pf.train_prior_mean(model, data, epochs=1, momentum=0.9)
    b = pf.train_prior_mean(model, data, epochs=1, momentum=0.0)
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_beta_and_scale_grid_pays_for_every_point(setup):
    _, model, w0, kw = setup
    grid_kw = dict(
        prior="data",
        prior_state=w0,
        posterior="information",
        beta=[1e-4, 1e-3],
        prior_scale=[0.02, 0.03],
        mc_screen=5,
        **kw,
    )
    net = _at(model, w0)  # the information posterior is centred at the model's weights
    c = wc.certify(net, **grid_kw)
    assert c.risk_bound < 0.5
    assert c.k_union == 4 and c.k_scales == 2 and c.beta_grid == [1e-4, 1e-3]
    assert len(c.grid) == 4 and c.mc_screen == 5
    best = min(c.grid, key=lambda g: g["screen_bound"])
    assert (c.prior_scale, c.beta) == (best["prior_scale"], best["beta"])
    # More certificates on the same bound set: same draws, a larger certificate.
    c10 = wc.certify(net, **grid_kw, k_union=10)
    assert c10.empirical_risk == c.empirical_risk and c10.risk_bound > c.risk_bound
    d = c.to_dict()
    assert d["k_union"] == 4 and len(d["grid"]) == 4


@pytest.mark.parametrize(
    "bad",
    [
        {"k_union": 1, "prior_scale": [0.02, 0.03]},
        {"k_union": 0},
        {"beta": [1e-4, 1e-3]},
        {"beta": [1e-4, -1.0], "posterior": "information"},
        {"mc_screen": 0},
    ],
)
def test_grid_arguments_raise(setup, bad):
    _, model, w0, kw = setup
    with pytest.raises(ValueError):
        wc.certify(model, prior="data", prior_state=w0, **{**kw, **bad})
