"""certify's option objects, its one-line form and the bad inputs it refuses before any work."""

import dataclasses

import pytest
import torch
from typer.testing import CliRunner

import weightinfo
import weightinfo.certificates as wc
from tests.certify.cases import digits_mlp
from weightinfo import bounds
from weightinfo.certificates import MonteCarloOptions, PosteriorOptions, PriorOptions
from weightinfo.certificates import posterior_fit as pf
from weightinfo.certificates.options import FLAT_KEYWORDS, resolve_options
from weightinfo.checkpoint import save_checkpoint
from weightinfo.cli import app
from weightinfo.data.splits import prior_bound_split
from weightinfo.models import build_model

from .test_certify_pinned import CASES, PINNED, _setup


@pytest.fixture(scope="module")
def digits():
    return digits_mlp(8)


def _small(ds, init, **kw):
    """A quick certificate on the first 300 digits, prior = the initial weights."""
    x, y = ds.x_train[:300], ds.y_train[:300]
    base = dict(
        posterior_data=(x, y),
        bound_data=(x[150:], y[150:]),
        prior="init",
        init_state=init,
        posterior_epochs=1,
        mc_samples=5,
    )
    return {**base, **kw}


# ------------------------------------------------------------------------------- option objects


def test_option_objects_give_the_pinned_certificate_bit_for_bit():
    ds, model, kw = _setup()
    kw = dict(kw)
    prior = PriorOptions(epochs=2, holdout=0, schedule=None, init_state=kw.pop("init_state"))
    posterior = PosteriorOptions(epochs=1)
    mc = MonteCarloOptions(estimator="standard", samples=50)
    c = weightinfo.certify(
        model,
        **kw,
        test_data=(ds.x_test[:100], ds.y_test[:100]),
        prior=prior,
        posterior=posterior,
        mc=mc,
    )
    assert CASES["optimize"]["prior_epochs"] == 2  # the same settings as the pinned flat call
    assert {k: getattr(c, k) for k in PINNED["optimize"]} == PINNED["optimize"]
    assert c.search is None and c.chosen["posterior"] == "optimize"


def test_options_are_frozen_and_lists_become_tuples():
    p = PriorOptions(scale=[0.01, 0.03])
    assert p.scale == (0.01, 0.03) and p.scales == [0.01, 0.03]
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.momentum = 0.5
    q = PosteriorOptions(source="information", beta=[1e-3, 1e-2])
    assert q.beta == (1e-3, 1e-2) and q.betas == [1e-3, 1e-2]
    assert PosteriorOptions().betas == [None]


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: PriorOptions(momentum=1.5), r"prior_momentum must lie in \[0, 1\)"),
        (lambda: PriorOptions(momentum=-0.1), "prior_momentum"),
        (lambda: PriorOptions(source="zero"), "prior"),
        (lambda: PriorOptions(scale=[]), "prior_scale grid is empty"),
        (lambda: PriorOptions(fraction=1.0), "prior_fraction"),
        (lambda: PriorOptions(lr=0.0), "prior_lr"),
        (lambda: PriorOptions(source="init"), "init_state"),
        (lambda: PosteriorOptions(source="laplace"), "posterior"),
        (lambda: PosteriorOptions(beta=[1e-3, 1e-2]), "beta grid"),
        (lambda: PosteriorOptions(source="information", beta=-1.0), "beta"),
        (lambda: PosteriorOptions(epochs=-1), "posterior_epochs"),
        (
            lambda: PosteriorOptions(source="information", learn_prior_scale=True),
            "learn_prior_scale",
        ),
        (lambda: MonteCarloOptions(estimator="fast"), "mc"),
        (lambda: MonteCarloOptions(samples=0), "mc_samples"),
        (lambda: MonteCarloOptions(delta_mc=1.0), "delta_mc"),
        (lambda: MonteCarloOptions(majority_votes=0), "majority_votes"),
    ],
)
def test_bad_options_raise_naming_the_setting(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_flat_keywords_map_onto_the_objects():
    for key, (group, field) in FLAT_KEYWORDS.items():
        cls = {"prior": PriorOptions, "posterior": PosteriorOptions, "mc": MonteCarloOptions}[group]
        assert field in {f.name for f in dataclasses.fields(cls)}, key
    p, q, m = resolve_options("data", "optimize", "per_example", {"prior_momentum": 0.5})
    assert (p.momentum, q.source, m.estimator) == (0.5, "optimize", "per_example")
    with pytest.raises(TypeError, match="unexpected keyword argument 'prior_momentom'"):
        resolve_options("data", "optimize", "standard", {"prior_momentom": 0.5})
    with pytest.raises(ValueError, match="prior_epochs given both"):
        resolve_options(PriorOptions(), "optimize", "standard", {"prior_epochs": 3})
    with pytest.raises(TypeError, match="PosteriorOptions"):
        resolve_options("data", 3, "standard", {})


def test_one_line_certify_splits_the_data_like_the_cli(digits):
    ds, model, _ = digits
    x, y = ds.x_train[:400], ds.y_train[:400]
    settings = dict(prior_epochs=1, posterior_epochs=1, mc_samples=5)
    c = weightinfo.certify(model, (x, y), **settings)
    pi, bi = prior_bound_split(400, 0.5, 0)
    d = wc.certify(
        model,
        prior_data=(x[pi], y[pi]),
        posterior_data=(x, y),
        bound_data=(x[bi], y[bi]),
        prior_indices=pi,
        bound_indices=bi,
        **settings,
    )
    assert c.n_bound == len(bi) == 200
    assert (c.risk_bound, c.kl_nats, c.empirical_risk) == (
        d.risk_bound,
        d.kl_nats,
        d.empirical_risk,
    )
    with pytest.raises(ValueError, match="not both"):
        wc.certify(model, (x, y), bound_data=(x, y))


# ------------------------------------------------------------------------------- bad input


def test_delta_plus_delta_mc_must_be_below_one(digits):
    ds, model, init = digits
    with pytest.raises(ValueError, match=r"delta \+ delta_mc must be < 1.*delta=0.6, delta_mc=0.6"):
        wc.certify(model, **_small(ds, init, delta=0.6, delta_mc=0.6))
    with pytest.raises(ValueError, match=r"delta \+ delta_mc"):
        bounds.certificate(0.1, 10.0, 1000, 100, 0.6, 0.6)
    assert bounds.two_step.total_confidence(0.025, 0.01) == pytest.approx(0.965)


def test_model_that_does_not_take_the_data_is_refused(digits):
    ds, _, init = digits
    other = build_model("mlp", (2,), ds.n_classes, widths=(8,))
    state = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(ValueError, match=r"does not accept bound_data inputs of shape \(1, 8, 8\)"):
        wc.certify(other, **_small(ds, init, init_state=state))
    few = build_model("mlp", ds.input_shape, 3, widths=(8,))
    state = {k: v.clone() for k, v in few.state_dict().items()}
    with pytest.raises(ValueError, match="bound_data has label 9 but the model has 3 outputs"):
        wc.certify(few, **_small(ds, init, init_state=state))


def test_non_finite_data_and_weights_are_refused(digits):
    ds, model, init = digits
    kw = _small(ds, init)
    x, y = kw["bound_data"]
    x = x.clone()
    x[3, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match=r"bound_data inputs X contains 1 NaN/Inf"):
        wc.certify(model, **{**kw, "bound_data": (x, y)})
    bad = {k: v.clone() for k, v in init.items()}
    first = next(iter(bad))
    bad[first][0] = float("inf")
    with pytest.raises(ValueError, match=rf"init_state\['{first}'\] contains"):
        wc.certify(model, **{**kw, "init_state": bad})
    net = build_model("mlp", ds.input_shape, ds.n_classes, widths=(8,))
    with torch.no_grad():
        next(net.parameters())[0, 0] = float("nan")
    with pytest.raises(ValueError, match="parameter .* contains 1 NaN/Inf"):
        wc.certify(net, **kw)


def test_prior_momentum_must_be_below_one(digits):
    ds, model, _ = digits
    data = (ds.x_train[:50], ds.y_train[:50])
    with pytest.raises(ValueError, match="prior_momentum"):
        wc.certify(model, data, prior_momentum=1.5)
    with pytest.raises(ValueError, match="momentum"):
        pf.train_prior_mean(model, data, epochs=1, momentum=1.0)


# ------------------------------------------------------------------------------- CLI


def _cli(args, tmp_path, monkeypatch):
    monkeypatch.setenv("WEIGHTINFO_CACHE", str(tmp_path / "cache"))
    return CliRunner().invoke(app, ["certify", *args, "--out", str(tmp_path / "out"), "-q"])


@pytest.mark.parametrize(
    "args, match",
    [
        (["--prior-momentum", "1.5"], "--prior-momentum must lie in [0, 1), got 1.5"),
        (["--delta", "0.6", "--delta-mc", "0.6"], "delta + delta_mc must be < 1"),
    ],
)
def test_cli_refuses_bad_settings_before_training(tmp_path, monkeypatch, args, match):
    res = _cli(
        ["--dataset", "digits", "--widths", "8", "--epochs", "1", *args], tmp_path, monkeypatch
    )
    assert res.exit_code == 2, res.output
    assert match in " ".join(res.output.split())
    assert not (tmp_path / "cache").exists()  # nothing was trained


def test_cli_refuses_a_checkpoint_for_another_input_shape(tmp_path, monkeypatch):
    net = build_model("mlp", (2,), 10, widths=(8,))
    arch = {"name": "mlp", "input_shape": [2], "n_classes": 10, "kwargs": {"widths": [8]}}
    ck = save_checkpoint(tmp_path / "moons.pt", net, arch=arch)
    res = _cli(["--checkpoint", str(ck), "--dataset", "digits"], tmp_path, monkeypatch)
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    assert "the checkpoint's model takes inputs (2,), dataset 'digits' has (1, 8, 8)" in out
    assert "mat1" not in out


def test_cli_help_states_units_of_beta_and_prior_scale():
    res = CliRunner().invoke(app, ["certify", "--help"], env={"COLUMNS": "200"})
    text = " ".join(res.output.split())
    assert "β per sample" in text and "mean-loss convention" in text
    assert "λ, the prior's standard deviation" in text and "every layer" in text


def test_certified_risk_keyword_and_its_deprecated_spelling():
    """``risk`` names the certified loss (``loss`` is the training likelihood everywhere else);
    ``loss=`` still works for one release, with a DeprecationWarning naming ``risk=``."""
    import weightinfo

    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="risk"):
        weightinfo.certify(
            model, (torch.zeros(20, 2), torch.zeros(20, dtype=torch.long)), risk="hinge"
        )
    with pytest.warns(DeprecationWarning, match="'risk='"), pytest.raises(ValueError, match="risk"):
        weightinfo.certify(
            model, (torch.zeros(20, 2), torch.zeros(20, dtype=torch.long)), loss="hinge"
        )
