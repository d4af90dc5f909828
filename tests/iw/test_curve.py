"""``information_curve``: the loss-vs-information curve, one curvature for every β, warm-started variational fits."""

import json
import math

import pytest
import torch
from torch import nn

from weightinfo.iw import points
from weightinfo.iw.curve import InformationCurve, check_betas, information_curve
from weightinfo.iw.estimate import information
from weightinfo.report import to_jsonable

D64 = torch.float64
BETAS = [1e-1, 1e-3, 1e-2, 1e-4]


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 3)).double().eval()


def _data(n=24, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g, dtype=D64), torch.randint(0, 3, (n,), generator=g)


KW = {"prior_scale": 0.5, "mc_samples": 4, "seed": 3, "progress": False}


def test_nats_decrease_and_quadratic_loss_increases_with_beta():
    c = information_curve(_model(), _data(), betas=BETAS, **KW)
    assert isinstance(c, InformationCurve) and len(c) == 4
    assert c.betas == sorted(BETAS)
    nats = c.nats
    quad = [r["expected_loss_quadratic"] for r in c.rows]
    assert all(a > b for a, b in zip(nats, nats[1:]))
    assert all(a < b for a, b in zip(quad, quad[1:]))
    for r in c.rows:
        assert r["bits"] == pytest.approx(r["nats"] / math.log(2))
        assert r["lagrangian"] == pytest.approx(r["expected_loss"] + r["beta"] * r["nats"])
        assert r["expected_loss_quadratic"] >= r["train_loss"]
    assert c.settings["curvature_passes"] == 1 and c.settings["n_samples"] == 24
    assert c.matrix is not None and c.matrix.label == "fisher"


@pytest.mark.filterwarnings("ignore:.*negative hessian:RuntimeWarning")
@pytest.mark.parametrize(
    "structure,curvature", [("diag", "fisher"), ("filter", "ggn"), ("full", "hessian")]
)
def test_fisher_curve_equals_information_per_beta_with_one_curvature(
    monkeypatch, structure, curvature
):
    model, data = _model(), _data()
    calls = []
    real = points._curvature

    def counting(*args, **kwargs):
        calls.append(args[2])
        return real(*args, **kwargs)

    monkeypatch.setattr(points, "_curvature", counting)
    kw = {**KW, "structure": structure, "curvature": curvature}
    c = information_curve(model, data, betas=BETAS, **kw)
    assert len(calls) == 1
    for beta, res in zip(sorted(BETAS), c.results):
        ref = information(model, data, beta=beta, **kw)
        for key in ("nats", "expected_loss", "expected_loss_stderr", "train_loss"):
            assert getattr(res, key) == pytest.approx(getattr(ref, key), abs=1e-10, rel=1e-10)
        assert res.expected_loss_quadratic == pytest.approx(
            ref.expected_loss_quadratic, abs=1e-10, rel=1e-10
        )
        for k, v in ref.per_parameter.items():
            torch.testing.assert_close(res.per_parameter[k], v, atol=1e-10, rtol=1e-10)
            torch.testing.assert_close(
                res.posterior_variance[k], ref.posterior_variance[k], atol=1e-10, rtol=1e-10
            )
        assert res.to_dict() == ref.to_dict()
    assert len(calls) == 1 + len(BETAS)  # one per information() call


def test_clamped_curvature_warns_once_per_curve():
    with pytest.warns(RuntimeWarning, match="negative hessian") as rec:
        information_curve(_model(), _data(), betas=BETAS, curvature="hessian", **KW)
    assert len([w for w in rec if "negative" in str(w.message)]) == 1


def test_precomputed_curvature_is_reused_and_checked(monkeypatch):
    model, data = _model(), _data()
    c = information_curve(model, data, betas=[1e-2], **KW)
    monkeypatch.setattr(points, "_curvature", lambda *a, **k: pytest.fail("curvature recomputed"))
    d = information_curve(model, data, betas=[1e-3, 1e-2], precomputed=c.matrix, **KW)
    assert d.results[1].to_dict() == c.results[0].to_dict()
    assert d.settings["curvature_passes"] == 0
    with pytest.raises(ValueError, match="precomputed curvature does not match"):
        information_curve(model, data, betas=[1e-2], precomputed=c.matrix, curvature="ggn", **KW)
    with pytest.raises(ValueError, match="samples"):
        information_curve(
            model, (data[0][:10], data[1][:10]), betas=[1e-2], precomputed=c.matrix, **KW
        )


@pytest.mark.parametrize("betas", [[], [0.0], [1e-3, -1e-3], [math.nan], [math.inf], "1e-3", None])
def test_bad_betas_are_rejected(betas):
    with pytest.raises(ValueError, match="betas"):
        information_curve(_model(), _data(), betas=betas, **KW)


def test_check_betas_sorts_and_dedups():
    assert check_betas([1e-2, 1e-3, 1e-2]) == [1e-3, 1e-2]
    assert check_betas(0.5) == [0.5]


def test_fisher_rejects_unknown_options():
    with pytest.raises(TypeError, match="lr"):
        information_curve(_model(), _data(), betas=[1e-2], lr=0.1, **KW)


def test_to_dict_is_json_ready_and_per_layer_sums():
    c = information_curve(_model(), _data(), betas=[1e-3, 1e-2], **{**KW, "mc_samples": 0})
    d = json.loads(json.dumps(to_jsonable(c.to_dict()), allow_nan=False))
    assert [r["beta"] for r in d["rows"]] == [1e-3, 1e-2]
    assert d["rows"][0]["expected_loss"] is None  # not estimated: NaN → null
    assert d["conventions"]["units"] == "nats"
    assert set(d["rows"][0]) >= {
        "beta",
        "expected_loss",
        "expected_loss_stderr",
        "expected_loss_quadratic",
        "nats",
        "bits",
        "lagrangian",
    }
    for row, layers in zip(d["rows"], d["per_layer"]):
        assert sum(layers["layers"].values()) == pytest.approx(row["nats"])
    assert "IW nats" in str(c)


def test_to_dataframe():
    pytest.importorskip("pandas")
    c = information_curve(_model(), _data(), betas=[1e-3, 1e-2], **KW)
    df = c.to_dataframe()
    assert list(df["beta"]) == [1e-3, 1e-2]


def test_variational_curve_warm_starts_each_beta_from_the_previous_fit():
    torch.manual_seed(0)
    c = information_curve(
        _model(), _data(), betas=[1e-2, 1e-3], method="variational", max_epochs=3, **KW
    )
    assert c.betas == [1e-3, 1e-2]
    assert c.settings["warm_start"] is True and c.matrix is None
    assert all(r.method == "variational" for r in c.results)
    assert "init_variance" in c.results[1].extra["init_var"]
    assert c.results[0].nats > c.results[1].nats  # less information at larger beta


def test_variational_init_variance_starts_a_one_beta_curve_and_is_refused_for_several():
    # information() is the one-β curve, so the curve takes init_variance when there is one β to start.
    model, data, kw = _model(), _data(), {**KW, "method": "variational", "max_epochs": 1}
    start = information(model, data, beta=1e-2, **kw).posterior_variance
    one = information_curve(model, data, betas=[1e-2], init_variance=start, **kw)
    direct = information(model, data, beta=1e-2, init_variance=start, **kw)
    assert one.results[0].extra["init_var"].startswith("init_variance")
    assert one.results[0].nats == direct.nats
    with pytest.raises(TypeError, match="init_variance"):
        information_curve(model, data, betas=[1e-3, 1e-2], init_variance=start, **kw)


@pytest.mark.parametrize(
    "options",
    [
        {"curvature_kind": "mc"},
        {"curvature_samples": 10},
        {"prior_scale": [0.05, 0.5, 5.0]},
        {"curvature_kind": "mc", "curvature_samples": 10, "prior_scale": [0.05, 0.5, 5.0]},
        {"convention": "paper", "structure": "filter"},
    ],
)
def test_every_information_option_works_for_a_curve(monkeypatch, options):
    """One pipeline: each point of the curve is ``information(beta=b)`` exactly, from one curvature."""
    model, data = _model(), _data()
    calls = []
    real = points._curvature
    monkeypatch.setattr(points, "_curvature", lambda *a, **k: calls.append(1) or real(*a, **k))
    kw = {**KW, **options}
    c = information_curve(model, data, betas=BETAS, **kw)
    assert len(calls) == 1 and c.settings["curvature_passes"] == 1
    for beta, res in zip(sorted(BETAS), c.results):
        ref = information(model, data, beta=beta, **kw)
        assert res.to_dict() == ref.to_dict()  # exact: the same floats, not approximately
        for k, v in ref.per_parameter.items():
            assert torch.equal(res.per_parameter[k], v)
            assert torch.equal(res.posterior_variance[k], ref.posterior_variance[k])
    if "prior_scale" in options:  # the λ is chosen per β, recorded in each point
        assert c.settings["prior_scale"] == options["prior_scale"]
        assert all(r.extra["prior_scale_grid"] == options["prior_scale"] for r in c.results)
    assert c.settings["curvature_kind"] == kw.get("curvature_kind", "exact")


def test_fisher_points_are_shared_by_information_and_the_curve(monkeypatch):
    from weightinfo.iw.points import FisherOptions, fisher_points

    model, data = _model(), _data()
    kw = {**KW, "curvature_kind": "mc"}
    pts = fisher_points(model, data, FisherOptions(curvature_kind="mc", seed=3))
    monkeypatch.setattr(points, "_curvature", lambda *a, **k: pytest.fail("curvature recomputed"))
    monkeypatch.setattr(points, "_mean_loss", lambda *a, **k: pytest.fail("L_D recomputed"))
    one = information(model, data, beta=1e-2, precomputed=pts, **{**kw, "mc_samples": 0})
    c = information_curve(
        model, data, betas=[1e-3, 1e-2], precomputed=pts, **{**kw, "mc_samples": 0}
    )
    same = {k: v for k, v in one.to_dict().items() if k not in ("expected_loss", "lagrangian")}
    assert {k: c.results[1].to_dict()[k] for k in same} == same  # E_Q[L_D] not estimated: NaN
    assert one.train_loss == pts.train_loss and c.settings["curvature_passes"] == 0
    with pytest.raises(ValueError, match="precomputed curvature does not match"):
        information(model, data, beta=1e-2, precomputed=pts, **KW)  # exact, not the MC Fisher
    with pytest.raises(ValueError, match="precomputed"):
        information(model, data, beta=1e-2, precomputed=pts, method="variational", **KW)


def test_variational_curve_takes_an_options_object():
    from weightinfo.iw import VariationalOptions

    kw = {**KW, "mc_samples": 0}
    a = information_curve(
        _model(), _data(), betas=[1e-3, 1e-2], method="variational", max_epochs=2, **kw
    )
    b = information_curve(
        _model(), _data(), betas=[1e-3, 1e-2], method="variational",
        variational=VariationalOptions(max_epochs=2), **kw,
    )  # fmt: skip
    for r, q in zip(a.results, b.results):
        assert r.nats == q.nats and r.extra["history"] == q.extra["history"]
    with pytest.raises(TypeError, match="variational"):
        information_curve(_model(), _data(), betas=[1e-3], variational=VariationalOptions(), **KW)


def test_curve_matrix_attribute_and_its_deprecated_spelling():
    """``InformationCurve.matrix`` holds the computed curvature; ``.curvature`` (a matrix *name* elsewhere)
    still answers for one release with a DeprecationWarning naming ``matrix``."""
    c = information_curve(_model(), _data(), betas=[1e-3], **KW)
    assert c.matrix is not None and c.matrix.label == "fisher"
    with pytest.warns(DeprecationWarning, match="'matrix'"):
        assert c.curvature is c.matrix
