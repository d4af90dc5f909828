"""Noisy forward passes: general weight sampling, local reparameterisation, Monte Carlo E_Q[L_D]."""

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from weightinfo.posterior.gaussian import DiagGaussian
from weightinfo.posterior.sampling import (
    expected_loss,
    find_local_reparam_modules,
    local_reparam_forward,
    sample_forward,
)

D = torch.float64


def _cnn():
    torch.manual_seed(0)
    m = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        nn.BatchNorm2d(3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 4 * 4, 5),
        nn.LayerNorm(5),
        nn.Tanh(),
        nn.Linear(5, 3),
    ).to(D)
    with torch.no_grad():
        m[1].running_mean.uniform_(-0.5, 0.5)
        m[1].running_var.uniform_(0.5, 2.0)
    return m.eval()


def _mean(m):
    return {k: p.detach().clone() for k, p in m.named_parameters()}


def test_zero_noise_equals_deterministic_forward():
    m = _cnn()
    x = torch.randn(6, 2, 4, 4, dtype=D)
    mu = _mean(m)
    std = {k: torch.zeros_like(v) for k, v in mu.items()}
    g = torch.Generator().manual_seed(1)
    assert torch.equal(sample_forward(m, x, mu, std, g), m(x))
    var = {k: torch.full_like(v, 1e-30) for k, v in mu.items()}
    for mode in ("exact", "all"):
        mods = find_local_reparam_modules(m, x, mode=mode)
        out = local_reparam_forward(m, x, mu, var, g, modules=mods)
        torch.testing.assert_close(out, m(x), rtol=0, atol=1e-12)
    assert "forward" not in m[0].__dict__ and "forward" not in m[4].__dict__  # restored


def test_probe_picks_exact_modules_only():
    m = _cnn()
    x = torch.randn(2, 2, 4, 4, dtype=D)
    assert find_local_reparam_modules(m, x, mode="exact") == ["4", "7"]
    assert find_local_reparam_modules(m, x, mode="all") == ["0", "4", "7"]
    assert find_local_reparam_modules(m, x, mode="all", names=["0.weight"]) == ["0"]

    class Twice(nn.Module):  # the same Linear twice: independent local noise would be wrong
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(3, 3)
            self.b = nn.Linear(3, 2)

        def forward(self, x):
            return self.b(self.a(self.a(x)))

    assert find_local_reparam_modules(Twice(), torch.randn(2, 3)) == ["b"]
    tied = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    tied[1].weight = tied[0].weight
    assert find_local_reparam_modules(tied, torch.randn(2, 3)) == []


def test_sample_forward_is_differentiable_in_std():
    m = nn.Linear(3, 2).to(D)
    mu = _mean(m)
    std = {k: torch.full_like(v, 0.3, requires_grad=True) for k, v in mu.items()}
    out = sample_forward(m, torch.randn(4, 3, dtype=D), mu, std, torch.Generator().manual_seed(0))
    out.pow(2).sum().backward()
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in std.values())


def _moments(samples):
    """Mean, variance and their standard errors over the first axis (Gaussian SE for the variance)."""
    M = samples.shape[0]
    mean, var = samples.mean(0), samples.var(0)
    return mean, var, (var / M).sqrt(), var * math.sqrt(2 / (M - 1))


@pytest.mark.parametrize("kind", ["linear", "conv"])
def test_local_reparam_matches_weight_sampling_moments(kind):
    torch.manual_seed(3)
    if kind == "linear":
        layer, x = nn.Linear(4, 3).to(D), torch.randn(2, 4, dtype=D)
    else:
        layer, x = nn.Conv2d(2, 2, 3, padding=1).to(D), torch.randn(2, 2, 3, 3, dtype=D)
    mu = _mean(layer)
    var = {k: torch.rand(v.shape, dtype=D) * 0.2 + 0.01 for k, v in mu.items()}
    M, g = 4000, torch.Generator().manual_seed(5)
    # explicit weight draws, one per forward
    std = {k: v.sqrt() for k, v in var.items()}
    explicit = torch.stack([sample_forward(layer, x, mu, std, g) for _ in range(M)])
    # local reparameterisation: M copies of the batch in one call = M independent draws per activation
    xx = x.repeat(M, *([1] * (x.ndim - 1)))
    local = local_reparam_forward(layer, xx, mu, var, g, modules=[""])
    local = local.reshape(M, *explicit.shape[1:])
    # exact moments of one activation: mean = layer(x; μ), var = layer(x²; σ²) incl. the bias variance
    if kind == "linear":
        m_ex, v_ex = (
            F.linear(x, mu["weight"], mu["bias"]),
            F.linear(x**2, var["weight"], var["bias"]),
        )
    else:
        m_ex = F.conv2d(x, mu["weight"], mu["bias"], padding=1)
        v_ex = F.conv2d(x**2, var["weight"], var["bias"], padding=1)
    for s in (explicit, local):
        mean, v, se_m, se_v = _moments(s)
        assert ((mean - m_ex).abs() < 4 * se_m).all()
        assert ((v - v_ex).abs() < 4 * se_v).all()


def _linear_gaussian(seed=0, N=200, d=5):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(N, d, generator=g, dtype=D) * torch.tensor([0.5, 1.0, 2.0, 3.0, 0.2], dtype=D)
    Y = X @ torch.randn(d, 1, generator=g, dtype=D) + 0.3 * torch.randn(N, 1, generator=g, dtype=D)
    m = nn.Linear(d, 1, bias=False).to(D).eval()
    with torch.no_grad():
        m.weight.copy_(torch.linalg.lstsq(X, Y).solution.T + 0.05)
    return m, X, Y


@pytest.mark.parametrize("local", [False, True])
def test_expected_loss_linear_gaussian_exact(local):
    m, X, Y = _linear_gaussian()
    mu = _mean(m)
    s2 = torch.tensor([[0.05, 0.02, 0.01, 0.003, 0.2]], dtype=D)
    q = DiagGaussian(mu, {"weight": s2})
    L_mu = 0.5 * (Y - X @ mu["weight"].T).pow(2).mean()
    exact = float(L_mu + 0.5 * (s2[0] * X.pow(2).mean(0)).sum())
    e, se = expected_loss(
        m, (X, Y), q, loss="mse", mc_samples=200, seed=1, batch_size=64, local_reparam=local
    )
    assert abs(e - exact) < 4 * se
    assert se > 0
    e2, se2 = expected_loss(
        m, (X, Y), q, loss="mse", mc_samples=200, seed=1, batch_size=64, local_reparam=local
    )
    assert (e, se) == (e2, se2)  # seeded


def test_expected_loss_checks():
    m, X, Y = _linear_gaussian()
    q = DiagGaussian({"w": torch.zeros(1, 5, dtype=D)}, {"w": torch.ones(1, 5, dtype=D)})
    with pytest.raises(ValueError, match="'w'"):
        expected_loss(m, (X, Y), q, loss="mse")
    q = DiagGaussian(_mean(m), {"weight": torch.ones(1, 5, dtype=D)})
    with pytest.raises(ValueError, match="mc_samples"):
        expected_loss(m, (X, Y), q, loss="mse", mc_samples=0)
    _, se = expected_loss(m, (X, Y), q, loss="mse", mc_samples=1)
    assert math.isnan(se)
    # One reading of local_reparam for expected_loss and lagrangian: a bool, "exact" or "all".
    for bad in (None, "none", 2):
        with pytest.raises(ValueError, match="local_reparam"):
            expected_loss(m, (X, Y), q, loss="mse", local_reparam=bad)
