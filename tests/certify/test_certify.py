"""PAC-Bayes certificates on digits with a small MLP (weightinfo.certify)."""

import json

import pytest
import torch

import weightinfo.certificates as wc
from tests.certify.cases import digits_mlp, split_kwargs
from tests.cli_helpers import SMALL, ok


@pytest.fixture(scope="module")
def setup():
    ds, model, init = digits_mlp(32)
    kw = dict(
        split_kwargs(ds, init),
        test_data=(ds.x_test, ds.y_test),
        prior_epochs=20,
        posterior_epochs=5,
        mc_samples=200,
    )
    return ds, model, kw


@pytest.fixture(scope="module")
def standard(setup):
    _, model, kw = setup
    return wc.certify(model, **kw, mc="standard")


def test_data_prior_optimized_posterior_is_non_vacuous(standard):
    c = standard
    assert 0 <= c.empirical_risk <= c.mc_upper <= c.risk_bound
    assert not c.vacuous and c.risk_bound < 0.3  # measured ≈ 0.13
    assert c.n_bound == 719 and c.m == 200 and c.k_scales == 1
    assert c.kl_bits == pytest.approx(c.kl_nats / 0.6931471805599453)
    assert 0 <= c.test_error < 0.2 and 0 <= c.mean_test_error < 0.2
    assert 0 <= c.majority_vote_test_error < 0.2
    d = c.to_dict()
    json.dumps(d)
    assert d["risk_bound"] == c.risk_bound and d["confidence"] == pytest.approx(0.965)


def test_root_entry_point_without_test_data(setup):
    import weightinfo

    _, model, kw = setup
    c = weightinfo.certify(
        model, **{**kw, "posterior_epochs": 1, "mc_samples": 20, "test_data": None}
    )
    assert c.test_error is None and c.risk_bound <= 1


def test_per_example_has_tighter_mc_gap(setup, standard):
    _, model, kw = setup
    c = wc.certify(model, **kw, mc="per_example")
    assert c.mc == "per_example"
    assert c.mc_upper - c.empirical_risk < standard.mc_upper - standard.empirical_risk
    assert c.risk_bound < standard.risk_bound


def test_information_posterior_runs(setup):
    ds, model, kw = setup
    c = wc.certify(model, **{**kw, "mc_samples": 20}, posterior="information")
    assert c.posterior == "information" and c.objective is None
    assert c.kl_nats > 0 and 0 <= c.empirical_risk <= c.risk_bound <= 1


def test_prior_scale_grid_pays_union_bound(setup):
    _, model, kw = setup
    c = wc.certify(
        model, **{**kw, "mc_samples": 20, "posterior_epochs": 1}, prior_scale=[0.01, 0.03]
    )
    assert c.k_scales == 2 and c.prior_scale in (0.01, 0.03)


def test_overlapping_indices_raise(setup):
    _, model, kw = setup
    with pytest.raises(ValueError, match="prior_indices and bound_indices"):
        wc.certify(
            model,
            **{**kw, "bound_indices": torch.cat([kw["bound_indices"], kw["prior_indices"][:1]])},
        )


@pytest.mark.parametrize(
    "bad",
    [
        {"delta": 0.0},
        {"delta": 1.5},
        {"delta_mc": 1.0},
        {"objective": "fnope"},
        {"prior": "zero"},
        {"posterior": "laplace"},
        {"mc": "fast"},
    ],
)
def test_bad_arguments_raise(setup, bad):
    _, model, kw = setup
    with pytest.raises(ValueError):
        wc.certify(model, **{**kw, **bad})


@pytest.mark.usefixtures("isolated_cache")
def test_cli_writes_certificate(tmp_path):
    out = tmp_path / "out"
    res = ok("certify", *SMALL, "--mc-samples", 20, "--posterior-epochs", 2, "--out", out, "-q")
    assert "risk bound" in res.stdout
    d = json.loads((out / "certificate.json").read_text())
    assert set(d) == set(wc.Certificate.__dataclass_fields__) | {"confidence", "made_by"}
    assert "weightinfo certify --out" in d["made_by"]["command"] and d["made_by"]["commit"]
    assert (out / "certificate.png").read_bytes()[:4] == b"\x89PNG"
