"""Every result object has ``to_dataframe()``: a pandas DataFrame whose numbers are the object's own.

The root package's classes with a ``to_dict()`` are results unless listed in :data:`NOT_RESULTS`; with the
result classes that root functions return (:data:`RETURNED`) each must have a case here."""

from __future__ import annotations

import inspect
import math

import pandas as pd
import pytest
import torch
from torch import nn

import weightinfo
from weightinfo.activations.effective import EffectiveInformation
from weightinfo.activations.fisher import ActivationFisher, InputFisher
from weightinfo.bounds import BoundResult
from weightinfo.dynamics import Prop29Information, ShannonExperiment, ShannonInformation
from weightinfo.training import TrainResult

#: Root classes with to_dict() that describe inputs, not results.
NOT_RESULTS = {"Dataset", "GaussianPrior"}
#: Result classes returned by root functions but not exported at the root.
RETURNED = {
    ShannonInformation,
    ActivationFisher,
    InputFisher,
    TrainResult,
    BoundResult,
    ShannonExperiment,
    Prop29Information,
}


def _data(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 5, generator=g), torch.randint(0, 3, (n,), generator=g)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))


def _same_scalars(df, obj):
    """Every column of a one-row frame that names a numeric attribute holds that attribute's value."""
    assert isinstance(df, pd.DataFrame) and len(df) == 1
    checked = 0
    for c in df.columns:
        v = getattr(obj, c, None)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            got = df[c].iloc[0]
            assert (math.isnan(v) and math.isnan(got)) or got == pytest.approx(v, rel=1e-12), c
            checked += 1
    assert checked >= 3


def _cases():
    X, Y = _data()
    model = _model()
    cases = {}

    F = weightinfo.fisher(model, (X, Y), structure="diag", progress=False)

    def curvature(df):
        assert list(df["layer"]) == ["0", "2"] and df["trace"].sum() == pytest.approx(F.trace())
        assert df["n_params"].sum() == F.n_params
        d = F.diag
        assert df["trace"].iloc[0] == pytest.approx(float(d["0.weight"].sum() + d["0.bias"].sum()))

    cases["Curvature"] = (F, curvature)

    est = weightinfo.hutchinson_trace(torch.diag(torch.tensor([1.0, 2.0, 3.0])), n_probes=4)
    cases["Estimate"] = (est, lambda df: _same_scalars(df, est))
    dia = weightinfo.hutchinson_diagonal(torch.diag(torch.tensor([1.0, 2.0])), n_probes=3)

    def diagonal(df):
        assert list(df["index"]) == [0, 1] and list(df["value"]) == dia.value.tolist()
        assert list(df["stderr"]) == dia.stderr.tolist() and set(df["n_probes"]) == {3}

    cases["Estimate (tensor)"] = (dia, diagonal)

    res = weightinfo.information(model, (X, Y), beta=1e-3, prior_scale=0.1, mc_samples=2,
                                 progress=False)  # fmt: skip

    def information(df):
        assert df["nats"].sum() == pytest.approx(res.nats, rel=1e-9)
        assert df["n_params"].sum() == res.n_params
        assert df["bits"].sum() == pytest.approx(res.bits, rel=1e-9)
        assert df["share"].sum() == pytest.approx(1.0)

    cases["InformationResult"] = (res, information)

    curve = weightinfo.information_curve(model, (X, Y), betas=[1e-3, 1e-2], prior_scale=0.1,
                                         mc_samples=0, progress=False)  # fmt: skip

    def curve_check(df):
        assert list(df["beta"]) == curve.betas and list(df["nats"]) == curve.nats

    cases["InformationCurve"] = (curve, curve_check)

    prior = weightinfo.make_prior(model, prior_scale=0.1)
    mean = {k: p.detach().double() for k, p in model.named_parameters()}
    post = weightinfo.DiagGaussian(mean, {k: torch.full_like(v, 1e-4) for k, v in mean.items()})
    lag = weightinfo.lagrangian(model, (X, Y), post, prior, 1e-3, mc_samples=2)
    cases["LagrangianResult"] = (lag, lambda df: _same_scalars(df, lag))

    tr = weightinfo.Tracker((X, Y), quantities="trace,layer_trace,loss")
    recs = [tr.step(model, epoch=1), tr.step(model, epoch=2)]

    def tracker(df):
        assert list(df["epoch"]) == [1, 2] and list(df["trace"]) == [r["trace"] for r in recs]
        assert list(df["layer_trace/2"]) == [r["layer_trace"]["2"] for r in recs]
        assert list(df["loss"]) == [r["loss"] for r in recs]

    cases["Tracker"] = (tr, tracker)

    eff = EffectiveInformation(
        per_layer={"0": 1.5, "2": 0.5}, stderr={"0": 0.1, "2": float("nan")},
        estimator={"0": "mc", "2": "gaussian"}, dims={"0": 4, "2": 3}, samples={"0": 8, "2": 0}, n=24,
    )  # fmt: skip

    def effective(df):
        assert list(df["nats"]) == [1.5, 0.5] and list(df["bits"]) == list(eff.bits.values())
        assert list(df["dim"]) == [4, 3] and df["stderr"].iloc[0] == 0.1

    cases["EffectiveInformation"] = (eff, effective)

    af = ActivationFisher(
        nuisance="brightness", mean_term={"0": 2.0, "output": 1.0},
        covariance_term={"0": 0.5, "output": 0.25}, mean_term_stderr={"0": 0.1, "output": 0.1},
        covariance_term_stderr={"0": 0.01, "output": 0.01}, stderr={"0": 0.2, "output": 0.1},
        method={"0": "dense", "output": "dense"}, dim={"0": 4, "output": 3},
        n_noisy={"0": 20, "output": 35}, n_samples=8, jitter=0.0,
    )  # fmt: skip

    def activation(df):
        assert list(df["fisher"]) == list(af.per_layer.values()) == [2.5, 1.25]
        assert list(df["mean_term"]) == [2.0, 1.0] and list(df["n_noisy"]) == [20, 35]

    cases["ActivationFisher"] = (af, activation)

    inp = InputFisher(layer="0", trace=torch.tensor([1.0, 2.0], dtype=torch.float64),
                      logdet=torch.tensor([-1.0, float("-inf")], dtype=torch.float64),
                      logdet_defined=True, dim_z=4, dim_x=5, n_noisy=20, method="dense", jitter=0.0)  # fmt: skip

    def input_fisher(df):
        assert list(df["trace"]) == [1.0, 2.0] and df["logdet"].iloc[1] == float("-inf")
        assert df["trace"].mean() == inp.mean_trace

    cases["InputFisher"] = (inp, input_fisher)

    fields = {f.name: None for f in __import__("dataclasses").fields(weightinfo.Certificate)}
    fields.update(
        risk_bound=0.3, empirical_risk=0.1, mc_upper=0.12, kl_nats=50.0, kl_bits=50 / math.log(2),
        n_bound=1000, m=100, delta=0.025, delta_mc=0.01, bound="kl", mc="network", prior="init",
        prior_scale=0.03, prior_scale_grid=[0.03], k_scales=1, posterior="information",
        vacuous=False, wall_time_s=1.5, k_union=1, grid=[{"prior_scale": 0.03}],
    )  # fmt: skip
    cert = weightinfo.Certificate(**fields)

    def certificate(df):
        _same_scalars(df, cert)
        assert df["confidence"].iloc[0] == cert.confidence and "grid" not in df

    cases["Certificate"] = (cert, certificate)

    means = [{"w": torch.zeros(3) + k} for k in range(3)]
    runs = [(m, {"w": torch.ones(3)}) for m in means]
    sh = weightinfo.shannon_information(runs, "gaussian")
    cases["ShannonInformation"] = (sh, lambda df: _same_scalars(df, sh))

    X2, Y2 = _data(16)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X2, Y2), batch_size=8)
    tres = weightinfo.train(_model(), loader, epochs=2, lr=0.1, progress=False)

    def train_result(df):
        assert list(df["epoch"]) == [1, 2]
        assert list(df["train_loss"]) == [h["train_loss"] for h in tres.history]

    cases["TrainResult"] = (tres, train_result)

    br = BoundResult(risk_bound=0.4, mc_upper=0.2, emp_risk=0.18, kl_nats=10.0, n=500, m=50,
                     delta=0.025, delta_mc=0.01, bound="kl")  # fmt: skip
    cases["BoundResult"] = (br, lambda df: _same_scalars(df, br))
    se = ShannonExperiment(per_seed=0.5, per_seed_stderr=0.01, per_seed_values=(0.4, 0.6),
                           seed_averaged=0.45, seed_averaged_stderr=0.02, joint=0.9, joint_stderr=0.03,
                           estimator="mixture", k=4, seeds=(0, 1), samples=8, dimension=10, seed=0)  # fmt: skip
    cases["ShannonExperiment"] = (se, lambda df: _same_scalars(df, se))
    p29 = Prop29Information(nats=3.0, stderr=0.5, entropy=5.0, terms=(2.0, 2.0), beta=1e-3, d=2,
                            dimension=10)  # fmt: skip
    cases["Prop29Information"] = (p29, lambda df: _same_scalars(df, p29))
    return cases


@pytest.fixture(scope="module")
def cases():
    return _cases()


def test_every_result_class_is_covered(cases):
    covered = {type(obj) for obj, _ in cases.values()}
    roots = {
        o
        for n in weightinfo.__all__
        if inspect.isclass(o := getattr(weightinfo, n))
        and (hasattr(o, "to_dict") or hasattr(o, "to_dataframe"))
        and n not in NOT_RESULTS
    }
    missing = {c.__name__ for c in (roots | RETURNED) - covered}
    assert not missing, f"result classes without a to_dataframe case: {missing}"


@pytest.mark.parametrize(
    "name",
    ["Curvature", "Estimate", "Estimate (tensor)", "InformationResult", "InformationCurve",
     "Tracker", "EffectiveInformation", "ActivationFisher", "InputFisher", "Certificate",
     "ShannonInformation", "TrainResult", "BoundResult", "ShannonExperiment", "Prop29Information",
     "LagrangianResult"],
)  # fmt: skip
def test_to_dataframe_numbers_are_the_attributes(cases, name):
    obj, check = cases[name]
    df = obj.to_dataframe()
    assert isinstance(df, pd.DataFrame) and len(df) > 0
    check(df)
