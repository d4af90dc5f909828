"""Closed forms of the quadratic model (fisher_form) against hand formulas, the Gaussian KL and brute force."""

import pytest
import torch
from torch import nn

from tests.iw import cases
from tests.iw.cases import D64
from weightinfo.curvature import Curvature, DenseBlock, DiagBlock, fisher, hessian
from weightinfo.iw.fisher_form import gaussian_optimum
from weightinfo.posterior import DiagGaussian, kl_diag_per_parameter, make_prior


def _weights(model):
    return {k: p.detach().clone() for k, p in model.named_parameters()}


def _gauss_kl(mu, S, w0, lam2):
    """KL(N(mu, S) ‖ N(w0, diag lam2)) by the textbook formula (Achille, Paolini & Soatto 2019, Prop. 2.5)."""
    k = mu.numel()
    d = mu - w0
    return 0.5 * float(
        (torch.diagonal(S) / lam2).sum()
        + (d**2 / lam2).sum()
        - k
        + torch.log(lam2).sum()
        - torch.linalg.slogdet(S)[1]
    )


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3)).double()


def _cls_data(n=12, d=3, c=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=D64), torch.randint(0, c, (n,), generator=g)


def test_linear_gaussian_full_closed_form_and_gibbs_covariance():
    model, X, Y, H = cases.regression()
    lam, beta = 0.7, 0.05
    prior = make_prior(model, prior_scale=lam)
    curv = hessian(model, (X, Y), structure="full", loss="mse")
    assert torch.allclose(curv.blocks[0].matrix, H, rtol=1e-12, atol=1e-12)
    opt = gaussian_optimum(curv, prior, _weights(model), beta)
    w = model.weight.detach()[0]
    h = torch.linalg.eigvalsh(H)
    hand = float(w @ w) / (2 * lam**2) + 0.5 * sum(cases.g(lam**2 * float(x) / beta) for x in h)
    assert opt.nats == pytest.approx(hand, rel=1e-10, abs=1e-10)
    assert opt.kl == pytest.approx(hand, rel=1e-12)
    # Σ* = β (H + β/λ² I)^{-1} = (H/β + I/λ²)^{-1}: the covariance of the Gibbs posterior ∝ P exp(−L_D/β)
    S = opt.covariance()
    gibbs = torch.linalg.inv(H / beta + torch.eye(4, dtype=D64) / lam**2)
    assert torch.allclose(S, gibbs, rtol=1e-10, atol=1e-14)
    assert torch.allclose(opt.posterior_variance["weight"][0], torch.diagonal(gibbs), rtol=1e-10)
    # KL(Q*‖P) from the eigen-form equals the Gaussian KL with Σ*
    lam2 = torch.full((4,), lam**2, dtype=D64)
    assert opt.nats == pytest.approx(_gauss_kl(w, gibbs, 0 * w, lam2), abs=1e-10)
    # ½ tr(HΣ*) = ½ Σ_j β h_j / (h_j + β/λ²)
    assert opt.quadratic_excess == pytest.approx(0.5 * float(torch.trace(H @ gibbs)), rel=1e-12)
    assert sum(float(v.sum()) for v in opt.per_parameter.values()) == pytest.approx(opt.nats, 1e-12)


def test_full_sigma_minimises_quadratic_lagrangian():
    model, X, Y, H = cases.regression(seed=3)
    lam, beta = 1.3, 0.2
    opt = gaussian_optimum(
        hessian(model, (X, Y), structure="full", loss="mse"),
        make_prior(model, prior_scale=lam),
        _weights(model),
        beta,
    )
    w = model.weight.detach()[0]
    lam2 = torch.full((4,), lam**2, dtype=D64)

    def C(S):
        return 0.5 * float(torch.trace(H @ S)) + beta * _gauss_kl(w, S, 0 * w, lam2)

    S = opt.covariance()
    c0 = C(S)
    g = torch.Generator().manual_seed(0)
    for eps in (1e-3, -1e-3):
        assert C(S * (1 + eps)) > c0
        E = torch.randn(4, 4, generator=g, dtype=D64)
        assert C(S + eps * float(torch.diagonal(S).min()) * (E + E.T) / 2) > c0


def test_diag_closed_form_kl_and_minimum():
    model, X, Y, H = cases.regression(seed=1)
    lam, beta = 0.9, 0.1
    prior = make_prior(model, prior_scale=lam)
    opt = gaussian_optimum(hessian(model, (X, Y), loss="mse"), prior, _weights(model), beta)
    w, h = model.weight.detach()[0], torch.diagonal(H)
    for i in range(4):
        hand = float(w[i]) ** 2 / (2 * lam**2) + 0.5 * cases.g(lam**2 * float(h[i]) / beta)
        assert float(opt.per_parameter["weight"][0, i]) == pytest.approx(hand, rel=1e-10)
    var = opt.posterior_variance["weight"]
    assert torch.allclose(var[0], beta / (h + beta / lam**2), rtol=1e-12)
    # the g-form equals the diagonal Gaussian KL at σ*², per weight
    q = DiagGaussian(_weights(model), {"weight": var})
    assert torch.allclose(kl_diag_per_parameter(q, prior)["weight"], opt.per_parameter["weight"])

    # perturbing any σ_i² up or down increases C_β = ½ Σ H_ii σ_i² + β KL
    def C(v):
        q = DiagGaussian(_weights(model), {"weight": v})
        kl = kl_diag_per_parameter(q, prior)["weight"].sum()
        return float(0.5 * (h * v[0]).sum() + beta * kl)

    c0 = C(var)
    for i in range(4):
        for f in (0.99, 1.01):
            v = var.clone()
            v[0, i] *= f
            assert C(v) > c0


def test_full_with_per_layer_scales_matches_gaussian_kl():
    """Λ = diag λ_l² differs between layers: Σ* = β(H + βΛ^{-1})^{-1} and its KL, against the dense formulas."""
    model = _mlp()
    X, Y = _cls_data()
    scales = {"0": 0.6, "2": 1.7}
    prior = make_prior(model, prior_scale=scales)
    beta = 0.03
    curv = fisher(model, (X, Y), structure="full")
    opt = gaussian_optimum(curv, prior, _weights(model), beta)
    H = curv.blocks[0].matrix
    lam2 = torch.cat(
        [
            torch.full((p.numel(),), scales[k.split(".")[0]] ** 2, dtype=D64)
            for k, p in model.named_parameters()
        ]
    )
    S = beta * torch.linalg.inv(H + beta * torch.diag(1 / lam2))
    assert torch.allclose(opt.covariance(), S, rtol=1e-9, atol=1e-12)
    w = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    assert opt.nats == pytest.approx(_gauss_kl(w, S, 0 * w, lam2), abs=1e-9)
    assert opt.quadratic_excess == pytest.approx(0.5 * float(torch.trace(H @ S)), rel=1e-10)


def test_kfac_equals_full_when_exact():
    """One Linear layer on ONE sample: G ⊗ A is the Fisher exactly, so every output agrees."""
    torch.manual_seed(0)
    model = nn.Linear(3, 4).double()
    X, Y = _cls_data(n=1)
    prior = make_prior(
        model, prior_scale=0.8, prior_mean={k: 0.1 + 0 * p for k, p in model.named_parameters()}
    )
    for beta in (1e-3, 0.1):
        kf = gaussian_optimum(fisher(model, (X, Y), structure="kfac"), prior, _weights(model), beta)
        fu = gaussian_optimum(fisher(model, (X, Y), structure="full"), prior, _weights(model), beta)
        assert kf.nats == pytest.approx(fu.nats, abs=1e-10)
        assert kf.quadratic_excess == pytest.approx(fu.quadratic_excess, abs=1e-10)
        for k in fu.per_parameter:
            assert torch.allclose(kf.per_parameter[k], fu.per_parameter[k], atol=1e-10)
            assert torch.allclose(kf.posterior_variance[k], fu.posterior_variance[k], atol=1e-10)
        assert torch.allclose(kf.covariance(), fu.covariance(), atol=1e-10)


def test_paper_convention_is_corrected_at_half_beta_minus_half_per_weight():
    model, X, Y, _ = cases.regression(seed=2)
    prior = make_prior(model, prior_scale=1.1)
    for structure in ("diag", "full"):
        curv = hessian(model, (X, Y), structure=structure, loss="mse")
        pap = gaussian_optimum(curv, prior, _weights(model), 0.2, convention="paper")
        cor = gaussian_optimum(curv, prior, _weights(model), 0.1)
        assert pap.nats == pytest.approx(cor.nats - 4 / 2, abs=1e-12)
        assert pap.kl == pytest.approx(cor.nats, abs=1e-12)
        assert torch.allclose(pap.posterior_variance["weight"], cor.posterior_variance["weight"])
        assert float(pap.per_parameter["weight"].sum()) == pytest.approx(pap.nats, abs=1e-12)


def test_small_beta_approximation_and_singular_refusal():
    model, X, Y, H = cases.regression(seed=4)
    lam, beta = 2.0, 1e-3
    prior = make_prior(model, prior_scale=lam)
    curv = hessian(model, (X, Y), structure="full", loss="mse")
    opt = gaussian_optimum(curv, prior, _weights(model), beta, approximation="small_beta")
    w = model.weight.detach()[0]
    h = torch.linalg.eigvalsh(H)
    hand = 0.5 * float(torch.log(lam**2 * h / beta).sum()) - 4 / 2 + float(w @ w) / (2 * lam**2)
    assert opt.nats == pytest.approx(hand, rel=1e-10)
    assert float(opt.per_parameter["weight"].sum()) == pytest.approx(opt.nats, rel=1e-12)
    assert opt.kl > opt.nats  # ln s − 1 < g(s)
    # fewer samples than weights: XᵀX/N is singular, ½ ln|F| = −∞
    model, X, Y, _ = cases.regression(d=5, N=3)
    prior = make_prior(model, prior_scale=lam)
    for structure in ("diag", "full"):
        curv = hessian(
            model,
            (X * torch.tensor([1.0, 1, 1, 1, 0], dtype=D64), Y),
            structure=structure,
            loss="mse",
        )
        with pytest.raises(ValueError, match="'weight'"):
            gaussian_optimum(curv, prior, _weights(model), beta, approximation="small_beta")
        assert gaussian_optimum(curv, prior, _weights(model), beta).nats > 0


def test_negative_curvature_is_clamped_and_counted():
    curv = Curvature(
        "hessian",
        "exact",
        "diag",
        "mse",
        1,
        [DiagBlock({"w": torch.tensor([-1.0, 2.0], dtype=D64)})],
    )
    curv_d = Curvature(
        "hessian",
        "exact",
        "full",
        "mse",
        1,
        [DenseBlock(["w"], [torch.Size([2])], torch.diag(torch.tensor([-1.0, 2.0], dtype=D64)))],
    )
    from weightinfo.posterior import GaussianPrior

    prior = GaussianPrior({"w": torch.zeros(2, dtype=D64)}, {"": 1.0})
    w = {"w": torch.tensor([0.5, 0.5], dtype=D64)}
    a = gaussian_optimum(curv, prior, w, 0.5)
    b = gaussian_optimum(curv_d, prior, w, 0.5)
    assert a.n_negative == b.n_negative == 1
    assert a.nats == pytest.approx(b.nats, abs=1e-14)
    assert a.nats == pytest.approx(0.25 + 0.5 * cases.g(4.0), abs=1e-14)
    assert float(a.posterior_variance["w"][0]) == pytest.approx(1.0)  # flat direction: σ² = λ²


def test_bad_inputs():
    model, X, Y, _ = cases.regression()
    curv = hessian(model, (X, Y), loss="mse")
    prior = make_prior(model, prior_scale=1.0)
    for beta in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="beta"):
            gaussian_optimum(curv, prior, _weights(model), beta)
    with pytest.raises(ValueError, match="convention"):
        gaussian_optimum(curv, prior, _weights(model), 1.0, convention="printed")
    with pytest.raises(ValueError, match="approximation"):
        gaussian_optimum(curv, prior, _weights(model), 1.0, approximation="large_beta")
    with pytest.raises(ValueError, match="missing"):
        gaussian_optimum(curv, prior, {"other": torch.zeros(1, dtype=D64)}, 1.0)
    full = hessian(model, (X, Y), structure="full", loss="mse")
    with pytest.raises(ValueError, match="diagonal"):
        gaussian_optimum(full, prior, _weights(model), 1.0, filter_shared=True)


@pytest.mark.parametrize("structure", ["diag", "kfac", "full"])
def test_samples_have_the_optimal_covariance(structure):
    """Draws w ∼ Q* (the Monte Carlo path) have mean w* and covariance Σ*, within 5 standard errors."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2).double()
    X, Y = _cls_data(n=5, c=2)
    opt = gaussian_optimum(
        fisher(model, (X, Y), structure=structure),
        make_prior(model, prior_scale=0.5),
        _weights(model),
        0.05,
    )
    gen = torch.Generator().manual_seed(0)
    n = 4000
    W = torch.stack(
        [torch.cat([v.reshape(-1) for v in opt.sample(gen).values()]) for _ in range(n)]
    )
    mu = torch.cat([v.reshape(-1) for v in _weights(model).values()])
    C = opt.covariance()
    d = torch.diagonal(C)
    assert bool(((W.mean(0) - mu).abs() <= 5 * (d / n).sqrt()).all())
    emp = (W - mu).T @ (W - mu) / n
    se = ((d[:, None] * d[None, :] + C**2) / n).sqrt()
    assert bool(((emp - C).abs() <= 5 * se).all())
    assert torch.allclose(d, torch.cat([v.reshape(-1) for v in opt.posterior_variance.values()]))
