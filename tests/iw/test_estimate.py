"""The public entry point ``information``: closed forms on exactly quadratic problems, Monte Carlo, maps, errors."""

import math
import warnings

import pytest
import torch
from scipy.optimize import minimize_scalar
from torch import nn

from tests.iw import cases
from tests.iw.cases import D64
from weightinfo.curvature import fisher, hessian
from weightinfo.iw.estimate import information
from weightinfo.iw.result import InformationResult


def _mlp(seed=0, bn=False):
    torch.manual_seed(seed)
    layers = [nn.Linear(3, 5), nn.Tanh()] + ([nn.BatchNorm1d(5)] if bn else []) + [nn.Linear(5, 3)]
    m = nn.Sequential(*layers).double().eval()
    if bn:
        with torch.no_grad():
            m[2].running_var.uniform_(0.5, 2.0)
            m[2].weight.uniform_(0.5, 1.5)
    return m


def _cls_data(n=16, d=3, c=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=D64), torch.randint(0, c, (n,), generator=g)


def _reg_info(model, X, Y, **kw):
    kw = {"beta": 0.05, "prior_scale": 0.7, "curvature": "hessian", "loss": "mse", **kw}
    return information(model, (X, Y), **kw)


@pytest.mark.parametrize("structure", ["diag", "full"])
def test_linear_gaussian_closed_form(structure):
    model, X, Y, H = cases.regression()
    lam, beta = 0.7, 0.05
    r = _reg_info(model, X, Y, structure=structure, mc_samples=0)
    assert isinstance(r, InformationResult)
    w = model.weight.detach()[0]
    h = torch.linalg.eigvalsh(H) if structure == "full" else torch.diagonal(H)
    hand = float(w @ w) / (2 * lam**2) + 0.5 * sum(cases.g(lam**2 * float(x) / beta) for x in h)
    assert r.nats == pytest.approx(hand, rel=1e-8)
    assert r.bits == pytest.approx(hand / math.log(2), rel=1e-8)
    Sigma = torch.linalg.inv(H / beta + torch.eye(4, dtype=D64) / lam**2)  # Gibbs covariance
    if structure == "full":
        assert torch.allclose(r.posterior_variance["weight"][0], torch.diagonal(Sigma), rtol=1e-10)
        excess = 0.5 * float(torch.trace(H @ Sigma))
    else:
        s2 = beta / (torch.diagonal(H) + beta / lam**2)
        assert torch.allclose(r.posterior_variance["weight"][0], s2, rtol=1e-10)
        excess = 0.5 * float((torch.diagonal(H) * s2).sum())
    exact = 0.5 * float(((Y[:, 0] - X @ w) ** 2).mean()) + excess  # E_Q of a quadratic loss
    assert r.train_loss == pytest.approx(0.5 * float(((Y[:, 0] - X @ w) ** 2).mean()), rel=1e-12)
    assert r.expected_loss_quadratic == pytest.approx(exact, abs=1e-10)
    assert math.isnan(r.expected_loss) and math.isnan(r.expected_loss_stderr)
    assert r.lagrangian != r.lagrangian  # NaN without Monte Carlo


@pytest.mark.parametrize("structure", ["diag", "full"])
def test_expected_loss_monte_carlo(structure):
    model, X, Y, _ = cases.regression(seed=5)
    r = _reg_info(model, X, Y, structure=structure, beta=0.5, mc_samples=300, seed=3)
    assert r.expected_loss_stderr > 0
    assert abs(r.expected_loss - r.expected_loss_quadratic) < 4 * r.expected_loss_stderr
    again = _reg_info(model, X, Y, structure=structure, beta=0.5, mc_samples=300, seed=3)
    assert again.expected_loss == r.expected_loss  # private, seeded generator
    one = _reg_info(model, X, Y, structure=structure, mc_samples=1)
    assert math.isfinite(one.expected_loss) and math.isnan(one.expected_loss_stderr)


def test_expected_loss_monte_carlo_kfac():
    """Linear layer with bias, MSE, one sample fitted exactly: quadratic loss and exact KFAC."""
    torch.manual_seed(1)
    model = nn.Linear(3, 2).double()
    X = torch.randn(1, 3, dtype=D64)
    Y = model(X).detach()
    r = information(
        model, (X, Y), beta=0.3, prior_scale=0.5, loss="mse", structure="kfac", mc_samples=400
    )
    assert r.train_loss == pytest.approx(0.0, abs=1e-24)
    assert abs(r.expected_loss - r.expected_loss_quadratic) < 4 * r.expected_loss_stderr
    full = information(
        model, (X, Y), beta=0.3, prior_scale=0.5, loss="mse", structure="full", mc_samples=0
    )
    assert r.expected_loss_quadratic == pytest.approx(full.expected_loss_quadratic, abs=1e-12)


def test_paper_convention_offsets_by_half_k():
    model = _mlp()
    X, Y = _cls_data()
    k = sum(p.numel() for p in model.parameters())
    for structure in ("diag", "filter", "kfac", "full"):
        kw = dict(prior_scale=0.9, structure=structure, mc_samples=0)
        pap = information(model, (X, Y), beta=0.02, convention="paper", **kw)
        cor = information(model, (X, Y), beta=0.01, **kw)
        assert pap.nats == pytest.approx(cor.nats - k / 2, abs=1e-9)
        assert pap.convention == "paper" and pap.extra["kl"] == pytest.approx(cor.nats, abs=1e-9)
        assert sum(float(v.sum()) for v in pap.per_parameter.values()) == pytest.approx(
            pap.nats, abs=1e-9
        )


@pytest.mark.parametrize("structure", ["diag", "filter", "kfac", "full"])
def test_maps_sum_and_match_parameters(structure):
    model = _mlp(bn=True)
    X, Y = _cls_data()
    r = information(
        model,
        (X, Y),
        beta=1e-2,
        prior_scale={"0": 0.5, "2": 1.0, "3": 2.0},
        structure=structure,
        mc_samples=2,
    )
    params = dict(model.named_parameters())
    assert list(r.per_parameter) == list(params) == list(r.posterior_variance)
    for k, p in params.items():
        assert r.per_parameter[k].shape == p.shape == r.posterior_variance[k].shape
        assert bool((r.posterior_variance[k] > 0).all())
    assert sum(float(v.sum()) for v in r.per_parameter.values()) == pytest.approx(r.nats, rel=1e-12)
    rows = r.per_layer.rows
    assert sum(row["share"] for row in rows) == pytest.approx(1.0, abs=1e-12)
    assert {row["layer"]: row["type"] for row in rows} == {
        "0": "Linear",
        "2": "BatchNorm1d",
        "3": "Linear",
    }
    assert r.structure == structure and r.n_samples == 16 and r.prior_mean == "zero"
    assert r.extra["curvature_trace"] > 0 and r.extra["n_clamped"] == 0
    d = r.to_dict()
    assert d["nats"] == r.nats and d["mc_samples"] == 2


def test_kfac_equals_full_on_one_sample():
    torch.manual_seed(0)
    model = nn.Linear(3, 4).double()
    X, Y = _cls_data(n=1)
    kw = dict(beta=0.01, prior_scale=0.8, mc_samples=0)
    kf = information(model, (X, Y), structure="kfac", **kw)
    fu = information(model, (X, Y), structure="full", **kw)
    assert kf.nats == pytest.approx(fu.nats, abs=1e-10)
    assert kf.expected_loss_quadratic == pytest.approx(fu.expected_loss_quadratic, abs=1e-10)


def test_filter_structure_is_the_optimum_of_shared_variances():
    """Brute-force min over σ_f² of ½ Σ_{i∈f} H_ii σ² + β Σ_{i∈f} KL_i(σ²) for every output unit."""
    model = _mlp()
    X, Y = _cls_data()
    lam, beta = 0.8, 0.02
    r = information(model, (X, Y), beta=beta, prior_scale=lam, structure="filter", mc_samples=0)
    h = fisher(model, (X, Y)).diag
    for name, p in model.named_parameters():
        hf = h[name].reshape(p.shape[0], -1)
        wf = p.detach().reshape(p.shape[0], -1)
        for f in range(p.shape[0]):

            def C(t, hf=hf[f], wf=wf[f]):
                s2 = math.exp(t)
                kl = 0.5 * (s2 / lam**2 + wf**2 / lam**2 - 1 + math.log(lam**2 / s2))
                return float(0.5 * hf.sum() * s2 + beta * kl.sum())

            t = minimize_scalar(C, bounds=(-30, 5), method="bounded", options={"xatol": 1e-12}).x
            var = r.posterior_variance[name].reshape(p.shape[0], -1)[f]
            assert torch.allclose(var, torch.full_like(var, math.exp(t)), rtol=1e-6)
            s2 = math.exp(t)
            kl = 0.5 * (s2 / lam**2 + wf[f] ** 2 / lam**2 - 1 + math.log(lam**2 / s2))
            assert float(r.per_filter(name)[f]) == pytest.approx(float(kl.sum()), rel=1e-6)


@pytest.mark.parametrize("structure", ["diag", "full"])
def test_logistic_regression_fisher_equals_hessian(structure):
    torch.manual_seed(2)
    model = nn.Linear(3, 4).double()
    X, Y = _cls_data(c=4)
    kw = dict(beta=0.01, prior_scale=1.5, structure=structure, mc_samples=0)
    a = information(model, (X, Y), curvature="fisher", **kw)
    b = information(model, (X, Y), curvature="hessian", **kw)
    c = information(model, (X, Y), curvature="ggn", **kw)
    assert a.nats == pytest.approx(b.nats, abs=1e-10) and a.nats == pytest.approx(c.nats, abs=1e-12)
    assert b.curvature == "hessian" and b.extra["curvature_quantity"] == "hessian"


def test_monotone_in_beta_and_large_beta_limit():
    model = _mlp()
    X, Y = _cls_data()
    init = {k: 0.5 * p.detach() for k, p in model.named_parameters()}
    kw = dict(prior_scale=0.6, prior_mean="init", init_state=init, mc_samples=0)
    mean_term = sum(float((0.5 * p.detach()).pow(2).sum()) for p in model.parameters()) / (2 * 0.36)
    for structure in ("diag", "full"):
        nats = [
            information(model, (X, Y), beta=b, structure=structure, **kw).nats
            for b in (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
        ]
        assert all(x > y for x, y in zip(nats, nats[1:]))
        big = information(model, (X, Y), beta=1e12, structure=structure, **kw)
        assert big.nats == pytest.approx(mean_term, rel=1e-9)
        assert big.prior_mean == "init" and big.extra["mean_term"] == pytest.approx(
            mean_term, rel=1e-12
        )


def test_small_beta_label_and_singular_refusal():
    model, X, Y, H = cases.regression()
    r = _reg_info(
        model, X, Y, structure="full", approximation="small_beta", beta=1e-3, mc_samples=0
    )
    w = model.weight.detach()[0]
    hand = (
        0.5 * float(torch.log(0.49 * torch.linalg.eigvalsh(H) / 1e-3).sum())
        - 2
        + float(w @ w) / 0.98
    )
    assert r.approximation == "small_beta" and r.nats == pytest.approx(hand, rel=1e-10)
    assert r.to_dict()["approximation"] == "small_beta"
    model = _mlp()  # 38 weights, 4 samples: F has rank ≤ 8
    X, Y = _cls_data(n=4)
    with pytest.raises(ValueError, match="small_beta"):
        information(
            model, (X, Y), beta=1e-3, prior_scale=1.0, structure="full", approximation="small_beta"
        )


def test_negative_hessian_diagonal_is_clamped_with_warning():
    model = _mlp(seed=4)
    X, Y = _cls_data(seed=2)
    raw = hessian(model, (X, Y)).diag
    n_neg = sum(int((v < 0).sum()) for v in raw.values())
    assert n_neg > 0
    with pytest.warns(RuntimeWarning, match=f"{n_neg} negative"):
        r = information(
            model, (X, Y), beta=1e-2, prior_scale=1.0, curvature="hessian", mc_samples=0
        )
    assert r.extra["n_clamped"] == n_neg
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        information(model, (X, Y), beta=1e-2, prior_scale=1.0, mc_samples=0)  # the Fisher is PSD


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"beta": 0.0}, "beta"),
        ({"beta": -1.0}, "beta"),
        ({"beta": float("nan")}, "beta"),
        ({"prior_scale": 0.0}, "prior_scale"),
        ({"prior_scale": -2.0}, "prior_scale"),
        ({"method": "laplace"}, "method"),
        ({"structure": "block"}, "structure"),
        ({"convention": "printed"}, "convention"),
        ({"curvature": "empirical"}, "curvature"),
        ({"approximation": "large_beta"}, "approximation"),
        ({"loss": "hinge"}, "loss"),
        ({"mc_samples": -1}, "mc_samples"),
        ({"curvature": "hessian", "structure": "kfac"}, "kfac|KFAC"),
    ],
)
def test_bad_input(kwargs, match):
    model = _mlp()
    X, Y = _cls_data()
    kw = {"beta": 0.1, "prior_scale": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        information(model, (X, Y), **kw)


def test_nan_weights_and_extra_arguments():
    model = _mlp()
    X, Y = _cls_data()
    with pytest.raises(TypeError, match="lr"):
        information(model, (X, Y), beta=0.1, prior_scale=1.0, lr=0.1)
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="0.weight"):
        information(model, (X, Y), beta=0.1, prior_scale=1.0)


def test_prior_scale_grid_picks_the_smallest_lagrangian():
    model = _mlp()
    X, Y = _cls_data()
    grid = [0.01, 0.1, 1.0, 10.0]
    r = information(model, (X, Y), beta=0.05, prior_scale=grid, mc_samples=0)
    singles = [information(model, (X, Y), beta=0.05, prior_scale=lam, mc_samples=0) for lam in grid]
    values = [s.expected_loss_quadratic + 0.05 * s.nats for s in singles]
    best = min(range(len(grid)), key=values.__getitem__)
    assert r.extra["prior_scale_choice"] == grid[best]
    assert r.nats == pytest.approx(singles[best].nats, rel=1e-12)
    assert r.extra["prior_scale_grid_lagrangian_quadratic"] == pytest.approx(values, rel=1e-12)
    assert set(r.prior_scale.values()) == {grid[best]}
    with pytest.raises(ValueError, match="prior_scale"):
        information(model, (X, Y), beta=0.05, prior_scale=[0.1, -1.0])
