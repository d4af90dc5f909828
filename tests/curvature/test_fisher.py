"""weightinfo.fisher against the dense reference J_iᵀ(diag p − ppᵀ)J_i built one gradient at a time."""

import pytest
import torch
from torch import nn

import weightinfo
from tests.curvature.cases import dense_fisher, flat_diag, make_case

CASES = [
    "mlp",
    "cnn_bn",
    "grouped_conv",
    "conv_many_positions",
    "mlp_bn1d",
    "residual",
    "attention",
    "attention_seq_first",
    "root_param",
]


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("case", CASES)
def test_exact_diag_and_full_match_dense_reference(case):
    model, X, Y = make_case(case)
    ref = dense_fisher(model, X)
    F = weightinfo.fisher(model, (X, Y), batch_size=5)  # several batches, uneven last batch
    assert list(F.diag) == [n for n, _ in model.named_parameters()]
    for (n, p), v in zip(model.named_parameters(), F.diag.values()):
        assert v.shape == p.shape and v.dtype == torch.float64, n
    assert rel_err(flat_diag(F.diag), torch.diagonal(ref)) <= 1e-8
    full = weightinfo.fisher(model, (X, Y), structure="full", batch_size=5)
    assert rel_err(full.blocks[0].matrix, ref) <= 1e-8
    assert F.trace() == pytest.approx(float(torch.trace(ref)), rel=1e-10)
    assert full.logdet(0.1) == pytest.approx(
        float(torch.logdet(ref + 0.1 * torch.eye(ref.shape[0], dtype=torch.float64))), rel=1e-9
    )


@pytest.mark.parametrize("case", ["mlp", "cnn_bn", "attention", "conv_many_positions"])
def test_empirical_fisher_uses_data_labels(case):
    model, X, Y = make_case(case)
    ref = dense_fisher(model, X, Y, empirical=True)
    F = weightinfo.fisher(model, (X, Y), kind="empirical")
    assert (F.curvature, F.kind, F.label) == ("fisher", "empirical", "empirical_fisher")
    assert rel_err(flat_diag(F.diag), torch.diagonal(ref)) <= 1e-8


def test_mc_fisher_is_unbiased_within_standard_error():
    model, X, Y = make_case("mlp", n=8)
    exact = flat_diag(weightinfo.fisher(model, (X, Y)).diag)
    runs = torch.stack(
        [flat_diag(weightinfo.fisher(model, (X, Y), kind="mc", seed=s).diag) for s in range(300)]
    )
    mean, se = runs.mean(0), runs.std(0) / runs.shape[0] ** 0.5
    z = ((mean - exact) / se.clamp_min(1e-12)).abs()
    assert float(z.max()) < 4.5  # max over 100 entries of |N(0,1)|: exceeds 4.5 with prob. < 1e-3
    assert float(z.mean()) < 1.2  # E|N(0,1)| = 0.80
    # more samples, closer: the error of one estimate with 64 draws beats one with a single draw
    e1 = rel_err(flat_diag(weightinfo.fisher(model, (X, Y), kind="mc", seed=0).diag), exact)
    e64 = rel_err(
        flat_diag(weightinfo.fisher(model, (X, Y), kind="mc", mc_samples=64, seed=0).diag), exact
    )
    assert e64 < e1


def test_mc_is_seeded():
    model, X, Y = make_case("cnn_bn")
    a = weightinfo.fisher(model, (X, Y), kind="mc", mc_samples=3, seed=5)
    b = weightinfo.fisher(model, (X, Y), kind="mc", mc_samples=3, seed=5)
    c = weightinfo.fisher(model, (X, Y), kind="mc", mc_samples=3, seed=6)
    assert torch.equal(flat_diag(a.diag), flat_diag(b.diag))
    assert not torch.equal(flat_diag(a.diag), flat_diag(c.diag))


def test_dataloader_and_tuple_agree():
    model, X, Y = make_case("mlp", n=30)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=7)
    a = flat_diag(weightinfo.fisher(model, loader).diag)
    b = flat_diag(weightinfo.fisher(model, (X, Y)).diag)
    assert rel_err(a, b) <= 1e-12


def test_bce_and_mse_likelihoods():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double().eval()
    X = torch.randn(9, 3, dtype=torch.float64)
    from tests.curvature.cases import dense_jacobians

    J = dense_jacobians(model, X)
    with torch.no_grad():
        p = torch.sigmoid(model(X))
    ref_bce = sum(J[i].T @ torch.diag(p[i] * (1 - p[i])) @ J[i] for i in range(9)) / 9
    ref_mse = sum(J[i].T @ J[i] for i in range(9)) / 9
    Yb = torch.bernoulli(torch.full((9, 2), 0.5, dtype=torch.float64))
    Fb = weightinfo.fisher(model, (X, Yb), loss="bce_with_logits")
    Fm = weightinfo.fisher(model, (X, torch.randn(9, 2, dtype=torch.float64)), loss="mse")
    assert rel_err(flat_diag(Fb.diag), torch.diagonal(ref_bce)) <= 1e-8
    assert rel_err(flat_diag(Fm.diag), torch.diagonal(ref_mse)) <= 1e-8


def test_logistic_regression_closed_form():
    """Binary logistic regression: F = (1/N) Σ p(1-p) x xᵀ (and H = F: the loss is exactly GGN-shaped)."""
    torch.manual_seed(1)
    lin = nn.Linear(4, 1, bias=False).double()
    X = torch.randn(25, 4, dtype=torch.float64)
    Y = torch.bernoulli(torch.full((25, 1), 0.5, dtype=torch.float64))
    with torch.no_grad():
        p = torch.sigmoid(lin(X))[:, 0]
    ref = (X.T * (p * (1 - p))) @ X / 25
    F = weightinfo.fisher(lin, (X, Y), loss="bce_with_logits", structure="full")
    assert rel_err(F.blocks[0].matrix, ref) <= 1e-12
    w = lin.weight.detach().clone().requires_grad_(True)
    H = torch.autograd.functional.hessian(
        lambda w: nn.functional.binary_cross_entropy_with_logits(X @ w.reshape(4, 1), Y), w
    ).reshape(4, 4)
    assert rel_err(H, ref) <= 1e-12


def test_ggn_equals_exact_fisher_and_per_layer_table():
    model, X, Y = make_case("residual")
    F = weightinfo.fisher(model, (X, Y))
    G = weightinfo.ggn(model, (X, Y))
    assert G.curvature == "ggn" and torch.equal(flat_diag(F.diag), flat_diag(G.diag))
    table = F.per_layer()
    assert sum(r["n_params"] for r in table.rows) == sum(p.numel() for p in model.parameters())
    assert sum(r["trace"] for r in table.rows) == pytest.approx(F.trace(), rel=1e-12)
    assert sum(r["share"] for r in table.rows) == pytest.approx(1.0)
    assert {r["layer"]: r["type"] for r in table.rows}["bn"] == "BatchNorm2d"
    d = F.to_dict()
    assert d["normalisation"] == "mean over samples" and d["n_samples"] == X.shape[0]
    assert "bn" in str(table)


def test_weight_tying_is_detected_not_silently_wrong():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)

        def forward(self, x):
            return nn.functional.linear(torch.tanh(self.a(x)), self.a.weight)  # second, hidden use

    model = Tied().double().eval()
    X, Y = torch.randn(6, 3, dtype=torch.float64), torch.randint(0, 3, (6,))
    with pytest.raises(ValueError, match="a.weight"):
        weightinfo.fisher(model, (X, Y))


def test_frozen_parameters_are_excluded():
    model, X, Y = make_case("mlp")
    model[0].weight.requires_grad_(False)
    F = weightinfo.fisher(model, (X, Y))
    assert "0.weight" not in F.diag and "0.bias" in F.diag


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kind": "sampled"}, "kind"),
        ({"structure": "block"}, "structure"),
        ({"loss": "hinge"}, "loss"),
        ({"kind": "mc", "mc_samples": 0}, "mc_samples"),
    ],
)
def test_bad_arguments(kwargs, match):
    model, X, Y = make_case("mlp")
    with pytest.raises(ValueError, match=match):
        weightinfo.fisher(model, (X, Y), **kwargs)


def test_bad_data_and_models():
    model, X, Y = make_case("mlp")
    with pytest.raises(ValueError, match="empty"):
        weightinfo.fisher(model, (X[:0], Y[:0]))
    Xn = X.clone()
    Xn[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        weightinfo.fisher(model, (Xn, Y))
    with pytest.raises(ValueError, match="out of range"):
        weightinfo.fisher(model, (X, Y + 10))
    with torch.no_grad():
        model[0].weight[0, 0] = float("inf")
    with pytest.raises(ValueError, match="0.weight"):
        weightinfo.fisher(model, (X, Y))
    bn, Xb, Yb = make_case("cnn_bn")
    bn.train()
    with pytest.raises(ValueError, match="training mode"):
        weightinfo.fisher(bn, (Xb, Yb))
    with pytest.raises(TypeError):
        weightinfo.fisher("not a model", (X, Y))


def test_full_refuses_large_models():
    model = nn.Linear(200, 100)
    with pytest.raises(ValueError, match="refused"):
        weightinfo.fisher(model, (torch.randn(2, 200), torch.tensor([0, 1])), structure="full")
