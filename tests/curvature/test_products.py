"""GGN (= exact Fisher) and Hessian products against dense references built independently.

References: the Hessian of the flat-parameter mean loss by ``torch.autograd.functional.hessian``;
the GGN by the per-sample loop (1/N) Σ_i J_iᵀ Λ_i J_i with J_i from
``torch.autograd.functional.jacobian``.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.utils.data import DataLoader, TensorDataset

from weightinfo._base.likelihoods import get_loss
from weightinfo.curvature.products import (
    CurvatureOperator,
    MatrixOperator,
    _apply_output_hessian,
    as_operator,
    flatten,
    ggn_vector_product,
    hessian_vector_product,
    param_shapes,
    unflatten,
)

RTOL = 1e-8


# ------------------------------------------------------------------------------------------------
# models, data and dense references
# ------------------------------------------------------------------------------------------------


class ResBlock(nn.Module):
    def __init__(self, d: int = 4, k: int = 3):
        super().__init__()
        self.inp = nn.Linear(3, d)
        self.f1 = nn.Linear(d, d)
        self.f2 = nn.Linear(d, d)
        self.head = nn.Linear(d, k)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        h = torch.tanh(h + self.f2(torch.tanh(self.f1(h))))
        return self.head(h)


def mlp(k: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, k)).double().eval()


def cnn() -> nn.Module:
    torch.manual_seed(1)
    m = nn.Sequential(
        nn.Conv2d(1, 2, 3),
        nn.BatchNorm2d(2),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(2 * 4 * 4, 3),
    ).double()
    bn = m[1]
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 2.0)
    return m.eval()


def resnet() -> nn.Module:
    torch.manual_seed(2)
    return ResBlock().double().eval()


def make_data(model_name: str, loss: str, n: int = 10):
    g = torch.Generator().manual_seed(3)
    shape = {"mlp": (n, 4), "cnn": (n, 1, 6, 6), "resnet": (n, 3)}[model_name]
    X = torch.randn(shape, generator=g, dtype=torch.float64)
    K = 3
    if loss == "cross_entropy":
        Y = torch.randint(0, K, (n,), generator=g)
    elif loss == "bce_with_logits":
        Y = torch.randint(0, 2, (n, K), generator=g).double()
    else:
        Y = torch.randn(n, K, generator=g, dtype=torch.float64)
    return X, Y


MODELS = {"mlp": mlp, "cnn": cnn, "resnet": resnet}


def flat_params(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters() if p.requires_grad])


def dense_hessian(model, X, Y, loss):
    lo = get_loss(loss)
    shapes = param_shapes(model)

    def f(theta):
        z = functional_call(model, unflatten(theta, shapes), (X,))
        return lo.per_sample(z, Y).mean()

    return torch.autograd.functional.hessian(f, flat_params(model))


def dense_ggn(model, X, Y, loss):
    lo = get_loss(loss)
    shapes = param_shapes(model)
    theta = flat_params(model)
    G = torch.zeros(theta.numel(), theta.numel(), dtype=torch.float64)
    for i in range(X.shape[0]):
        xi = X[i : i + 1]

        def f(t, xi=xi):
            return functional_call(model, unflatten(t, shapes), (xi,)).reshape(-1)

        J = torch.autograd.functional.jacobian(f, theta)  # (K, P)
        z = f(theta).reshape(1, -1)
        lam = lo.output_hessian(z)[0]
        G += J.t() @ lam @ J
    return G / X.shape[0]


def assert_rel_close(a, b, rtol=RTOL):
    a, b = a.double(), b.double()
    scale = b.abs().max().clamp_min(1e-300)
    err = (a - b).abs().max()
    assert err <= rtol * scale, f"max abs err {err:.3e} vs scale {scale:.3e}"


def loader(X, Y, bs=4):
    return DataLoader(TensorDataset(X, Y), batch_size=bs)


# ------------------------------------------------------------------------------------------------
# products vs dense references
# ------------------------------------------------------------------------------------------------

CASES = [
    ("mlp", "cross_entropy"),
    ("mlp", "bce_with_logits"),
    ("mlp", "mse"),
    ("cnn", "cross_entropy"),
    ("resnet", "cross_entropy"),
    ("resnet", "mse"),
]


@pytest.mark.parametrize("name,loss", CASES)
def test_ggn_matches_per_sample_jacobian_loop(name, loss):
    model = MODELS[name]()
    X, Y = make_data(name, loss)
    G = dense_ggn(model, X, Y, loss)
    op = CurvatureOperator(model, loader(X, Y), "ggn", loss=loss)  # batches 4, 4, 2
    assert op.shape == (G.shape[0], G.shape[0])
    assert_rel_close(op.to_dense(chunk=32), G)
    assert op.n_samples == X.shape[0]
    v = torch.randn(G.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert_rel_close(op.matvec(v), G @ v)
    # dict interface, exact Fisher alias
    vd = unflatten(v, param_shapes(model))
    out = ggn_vector_product(model, (X, Y), vd, loss=loss, batch_size=3)
    assert list(out) == list(vd) and all(out[k].shape == vd[k].shape for k in vd)
    assert all(t.dtype == torch.float64 for t in out.values())
    assert_rel_close(flatten(out), G @ v)
    fisher = CurvatureOperator(model, (X, Y), "fisher", loss=loss)
    assert_rel_close(fisher.matvec(v), G @ v)


@pytest.mark.parametrize("name,loss", CASES)
def test_hessian_matches_autograd_hessian(name, loss):
    model = MODELS[name]()
    X, Y = make_data(name, loss)
    H = dense_hessian(model, X, Y, loss)
    op = CurvatureOperator(model, loader(X, Y), "hessian", loss=loss)
    assert_rel_close(op.to_dense(chunk=40), H)
    v = torch.randn(H.shape[0], dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert_rel_close(hessian_vector_product(model, (X, Y), v, loss=loss, batch_size=3), H @ v)
    vd = unflatten(v, param_shapes(model))
    out = hessian_vector_product(model, (X, Y), vd, loss=loss)
    assert_rel_close(flatten(out), H @ v)


def test_hessian_differs_from_ggn_off_the_linear_case():
    model = mlp()
    X, Y = make_data("mlp", "cross_entropy")
    H = dense_hessian(model, X, Y, "cross_entropy")
    G = dense_ggn(model, X, Y, "cross_entropy")
    assert (H - G).abs().max() > 1e-3 * G.abs().max()  # the residual of Lemma 2.4 is not zero


def test_logistic_regression_hessian_equals_fisher():
    torch.manual_seed(4)
    model = nn.Linear(5, 4).double().eval()
    g = torch.Generator().manual_seed(5)
    X = torch.randn(12, 5, generator=g, dtype=torch.float64)
    Y = torch.randint(0, 4, (12,), generator=g)
    H = CurvatureOperator(model, (X, Y), "hessian").to_dense()
    F = CurvatureOperator(model, (X, Y), "fisher").to_dense()
    assert_rel_close(H, F, rtol=1e-10)
    assert_rel_close(F, dense_ggn(model, X, Y, "cross_entropy"), rtol=1e-10)


def test_mean_over_samples_convention():
    model = mlp()
    X, Y = make_data("mlp", "cross_entropy")
    v = torch.randn(flat_params(model).numel(), dtype=torch.float64)
    once = ggn_vector_product(model, (X, Y), v)
    twice = ggn_vector_product(model, (torch.cat([X, X]), torch.cat([Y, Y])), v)
    assert_rel_close(twice, once, rtol=1e-12)
    h1 = hessian_vector_product(model, (X, Y), v)
    h2 = hessian_vector_product(model, (torch.cat([X, X]), torch.cat([Y, Y])), v, batch_size=7)
    assert_rel_close(h2, h1, rtol=1e-12)


@pytest.mark.parametrize("curvature", ["ggn", "hessian"])
def test_matmat_equals_columns_and_scipy(curvature):
    model = resnet()
    X, Y = make_data("resnet", "cross_entropy")
    op = CurvatureOperator(model, (X, Y), curvature)
    V = torch.randn(op.shape[0], 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    MV = op.matmat(V)
    cols = torch.stack([op.matvec(V[:, j]) for j in range(5)], dim=1)
    assert_rel_close(MV, cols, rtol=1e-12)
    assert_rel_close(op @ V, MV, rtol=1e-12)
    lin = op.to_scipy()
    assert lin.shape == op.shape
    assert_rel_close(torch.from_numpy(lin @ V[:, 0].numpy()), MV[:, 0], rtol=1e-12)
    assert_rel_close(torch.from_numpy(lin.matmat(V.numpy())), MV, rtol=1e-12)


def test_float32_model_accumulates_in_float64():
    m64 = mlp()
    m32 = mlp().float()
    X, Y = make_data("mlp", "cross_entropy")
    v = torch.randn(flat_params(m64).numel(), dtype=torch.float64)
    out32 = CurvatureOperator(m32, (X.float(), Y), "ggn").matvec(v)
    out64 = CurvatureOperator(m64, (X, Y), "ggn").matvec(v)
    assert out32.dtype == torch.float64
    assert_rel_close(out32, out64, rtol=1e-5)


def test_frozen_parameters_are_excluded():
    model = mlp()
    model[0].bias.requires_grad_(False)
    X, Y = make_data("mlp", "cross_entropy")
    op = CurvatureOperator(model, (X, Y), "hessian")
    assert "0.bias" not in op.param_names
    assert op.shape[0] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    full = dense_hessian(mlp(), X, Y, "cross_entropy")
    keep = torch.ones(full.shape[0], dtype=torch.bool)
    keep[20:25] = False  # 0.weight has 20 entries, then 0.bias (5)
    assert_rel_close(op.to_dense(), full[keep][:, keep])


@pytest.mark.parametrize("loss", ["cross_entropy", "bce_with_logits", "mse"])
def test_output_hessian_closed_forms(loss):
    lo = get_loss(loss)
    g = torch.Generator().manual_seed(6)
    z = torch.randn(5, 3, generator=g, dtype=torch.float64)
    u = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    ref = torch.einsum("bkl,mbl->mbk", lo.output_hessian(z), u)
    assert_rel_close(_apply_output_hessian(lo, z, u), ref, rtol=1e-13)


def test_flatten_unflatten_roundtrip_and_operators():
    model = cnn()
    shapes = param_shapes(model)
    theta = flat_params(model)
    d = unflatten(theta, shapes)
    assert list(d) == [n for n, _ in model.named_parameters()]
    assert torch.equal(flatten(d), theta)
    with pytest.raises(ValueError, match="length"):
        unflatten(theta[:-1], shapes)
    M = torch.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
    assert isinstance(as_operator(M), MatrixOperator)
    assert as_operator(as_operator(M).to_scipy()).matvec(torch.ones(2)).tolist() == [3.0, 4.0]
    with pytest.raises(ValueError, match="square"):
        MatrixOperator(torch.ones(2, 3))


# ------------------------------------------------------------------------------------------------
# bad inputs
# ------------------------------------------------------------------------------------------------


def test_empty_data_raises():
    model = mlp()
    X = torch.zeros(0, 4, dtype=torch.float64)
    Y = torch.zeros(0, dtype=torch.long)
    v = torch.zeros(flat_params(model).numel(), dtype=torch.float64)
    with pytest.raises(ValueError, match="empty"):
        ggn_vector_product(model, (X, Y), v)
    with pytest.raises(ValueError, match="empty"):
        hessian_vector_product(model, [], v)


def test_nan_weights_raise():
    model = mlp()
    with torch.no_grad():
        model[2].weight[0, 0] = math.nan
    X, Y = make_data("mlp", "cross_entropy")
    with pytest.raises(ValueError, match=r"'2\.weight'.*NaN"):
        CurvatureOperator(model, (X, Y), "ggn")


def test_weights_turning_nan_after_construction_raise():
    model = mlp()
    X, Y = make_data("mlp", "cross_entropy")
    op = CurvatureOperator(model, (X, Y), "hessian")
    with torch.no_grad():
        model[0].bias[1] = math.inf
    with pytest.raises(ValueError, match="NaN/Inf"):
        op.matvec(torch.ones(op.shape[0], dtype=torch.float64))


def test_batchnorm_in_training_mode_raises():
    model = cnn().train()
    X, Y = make_data("cnn", "cross_entropy")
    with pytest.raises(ValueError, match="training mode"):
        CurvatureOperator(model, (X, Y), "ggn")


def test_bad_vectors_and_options_raise():
    model = mlp()
    X, Y = make_data("mlp", "cross_entropy")
    P = flat_params(model).numel()
    with pytest.raises(ValueError, match="length P"):
        ggn_vector_product(model, (X, Y), torch.ones(P + 1))
    with pytest.raises(ValueError, match="missing"):
        hessian_vector_product(model, (X, Y), {"0.weight": torch.ones(5, 4)})
    bad = unflatten(torch.ones(P), param_shapes(model))
    bad["0.bias"] = torch.ones(6)
    with pytest.raises(ValueError, match="shape"):
        ggn_vector_product(model, (X, Y), bad)
    with pytest.raises(ValueError, match="curvature"):
        CurvatureOperator(model, (X, Y), "kfac")
    with pytest.raises(ValueError, match="loss"):
        CurvatureOperator(model, (X, Y), "ggn", loss="hinge")
    with pytest.raises(ValueError, match="labels out of range"):
        ggn_vector_product(model, (X, Y + 5), torch.ones(P))
    with pytest.raises(ValueError, match="NaN"):
        hessian_vector_product(model, (X * math.nan, Y), torch.ones(P))
