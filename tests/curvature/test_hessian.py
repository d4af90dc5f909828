"""``hessian()``: exact diagonal/full and Hutchinson diagonal against autograd's dense Hessian."""

from __future__ import annotations

import importlib
import math

import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.utils.data import DataLoader, TensorDataset

from weightinfo._base.likelihoods import get_loss
from weightinfo.curvature.hessian_matrix import exact_hessian, hessian
from weightinfo.curvature.hutchinson import hutchinson_diagonal, hutchinson_trace
from weightinfo.curvature.products import CurvatureOperator, flatten, param_shapes, unflatten
from weightinfo.curvature.result import Curvature, DenseBlock, DiagBlock

hessian_module = importlib.import_module("weightinfo.curvature.hessian_matrix")


class ResBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(3, 4)
        self.f = nn.Linear(4, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        return self.head(torch.tanh(h + self.f(h)))


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double().eval()


def cnn():
    torch.manual_seed(1)
    m = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Tanh(), nn.Flatten(), nn.Linear(32, 3)
    ).double()
    with torch.no_grad():
        m[1].running_mean.uniform_(-0.3, 0.3)
        m[1].running_var.uniform_(0.5, 2.0)
        m[1].weight.uniform_(0.5, 1.5)
    return m.eval()


def resnet():
    torch.manual_seed(2)
    return ResBlock().double().eval()


MODELS = {"mlp": (mlp, (4,)), "cnn": (cnn, (1, 6, 6)), "resnet": (resnet, (3,))}


def data_for(name, loss="cross_entropy", n=10):
    g = torch.Generator().manual_seed(3)
    X = torch.randn(n, *MODELS[name][1], generator=g, dtype=torch.float64)
    if loss == "cross_entropy":
        Y = torch.randint(0, 3, (n,), generator=g)
    else:
        Y = torch.randn(n, 3, generator=g, dtype=torch.float64)
    return X, Y


def dense_hessian(model, X, Y, loss="cross_entropy"):
    lo = get_loss(loss)
    shapes = param_shapes(model)
    theta = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def f(t):
        return lo.per_sample(functional_call(model, unflatten(t, shapes), (X,)), Y).mean()

    return torch.autograd.functional.hessian(f, theta)


def rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet"])
def test_exact_diag_and_full_match_dense(name):
    model = MODELS[name][0]()
    X, Y = data_for(name)
    H = dense_hessian(model, X, Y)
    dl = DataLoader(TensorDataset(X, Y), batch_size=4)
    h = hessian(model, dl, structure="diag", chunk=16)
    assert isinstance(h, Curvature) and isinstance(h.blocks[0], DiagBlock)
    assert rel_err(flatten(h.diag), torch.diagonal(H)) < 1e-8
    assert h.trace() == pytest.approx(float(torch.trace(H)), rel=1e-8)
    full = hessian(model, (X, Y), structure="full", batch_size=3)
    assert isinstance(full.blocks[0], DenseBlock)
    assert rel_err(full.blocks[0].matrix, H) < 1e-8
    assert torch.equal(full.blocks[0].matrix, full.blocks[0].matrix.t())
    assert rel_err(flatten(full.diag), torch.diagonal(H)) < 1e-8


def test_exact_with_mse_and_logistic_regression_equals_fisher():
    model = mlp()
    X, Y = data_for("mlp", "mse")
    H, n = exact_hessian(model, (X, Y), loss="mse")
    assert n == 10 and rel_err(H, dense_hessian(model, X, Y, "mse")) < 1e-8
    torch.manual_seed(5)
    lin = nn.Linear(4, 3).double().eval()
    X, Y = data_for("mlp")
    h = hessian(lin, (X, Y), structure="full")
    F = CurvatureOperator(lin, (X, Y), "fisher").to_dense()
    assert rel_err(h.blocks[0].matrix, F) < 1e-10


def test_metadata():
    model = cnn()
    X, Y = data_for("cnn")
    h = hessian(model, (X, Y))
    names = [n for n, _ in model.named_parameters()]
    assert (h.curvature, h.kind, h.structure, h.loss, h.n_samples) == (
        "hessian",
        "exact",
        "diag",
        "cross_entropy",
        10,
    )
    assert h.param_order == names and list(h.diag) == names
    assert all(h.diag[k].shape == p.shape for k, p in model.named_parameters())
    assert h.layer_types["1"] == "BatchNorm2d" and h.layer_types["0"] == "Conv2d"
    assert h.mc_samples is None and h.seed is None
    assert {r["layer"] for r in h.per_layer().rows} == {"0", "1", "4"}
    assert h.to_dict()["curvature"] == "hessian" and h.method == "exact"


def test_hutchinson_diag_within_three_standard_errors():
    model = resnet()
    X, Y = data_for("resnet")
    d = torch.diagonal(dense_hessian(model, X, Y))
    h = hessian(model, (X, Y), method="hutchinson", n_probes=64, seed=3)
    assert (h.kind, h.method, h.n_probes, h.seed) == ("exact", "hutchinson", 64, 3)
    # the same probes through the generic estimator give the standard errors
    op = CurvatureOperator(model, (X, Y), "hessian")
    est = hutchinson_diagonal(op, n_probes=64, seed=3)
    torch.testing.assert_close(flatten(h.diag), est.value, rtol=1e-12, atol=1e-14)
    z = (est.value - d).abs() / est.stderr.clamp_min(1e-300)
    assert float((z <= 3).double().mean()) >= 0.95 and float(z.max()) < 4.5
    more = hutchinson_diagonal(op, n_probes=256, seed=4)
    assert float((more.stderr / est.stderr).median()) == pytest.approx(0.5, rel=0.2)
    # the diagonal's sum is the Hutchinson trace estimate with the same probes
    tr = hutchinson_trace(op, n_probes=64, seed=3)
    assert tr.value == pytest.approx(float(est.value.sum()), rel=1e-10)
    assert abs(tr.value - float(d.sum())) <= 3 * tr.stderr


def test_parameter_limit_and_force(monkeypatch):
    model = mlp()
    X, Y = data_for("mlp")
    monkeypatch.setattr(hessian_module, "EXACT_MAX_PARAMS", 10)
    monkeypatch.setattr(hessian_module, "FULL_MAX_PARAMS", 10)
    with pytest.raises(ValueError, match="force=True"):
        hessian(model, (X, Y), method="exact")
    with pytest.raises(ValueError, match="limit of 10"):
        hessian(model, (X, Y), structure="full")
    h = hessian(model, (X, Y), method="exact", force=True)
    assert h.n_params == 43 and h.method == "exact"
    auto = hessian(model, (X, Y), n_probes=4)  # the default is the estimator above the limit
    assert auto.method == "hutchinson" and auto.stderr is not None
    assert {k: v.shape for k, v in auto.stderr.items()} == {
        k: v.shape for k, v in auto.diag.items()
    }
    hessian(model, (X, Y), method="hutchinson", n_probes=4)  # no limit for the estimator


def test_bad_inputs_raise():
    model = mlp()
    X, Y = data_for("mlp")
    with pytest.raises(ValueError, match="hutchinson"):
        hessian(model, (X, Y), structure="full", method="hutchinson")
    with pytest.raises(ValueError, match="structure"):
        hessian(model, (X, Y), structure="kfac")
    with pytest.raises(ValueError, match="method"):
        hessian(model, (X, Y), method="mc")
    with pytest.raises(ValueError, match="n_probes"):
        hessian(model, (X, Y), method="hutchinson", n_probes=1)
    with pytest.raises(ValueError, match="empty"):
        hessian(model, (X[:0], Y[:0]))
    with pytest.raises(ValueError, match="empty"):
        hessian(model, [], method="hutchinson", n_probes=2)
    bn = cnn().train()
    with pytest.raises(ValueError, match="training mode"):
        hessian(bn, data_for("cnn"))
    with torch.no_grad():
        model[0].weight[1, 2] = math.nan
    with pytest.raises(ValueError, match=r"'0\.weight'"):
        hessian(model, (X, Y))
