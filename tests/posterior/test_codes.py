"""Prior/posterior codes: construction, validation, and the closed-form KL against Monte Carlo."""

import math

import pytest
import torch
from torch import nn

from weightinfo.posterior import DiagGaussian, g_cost, kl_diag, kl_diag_per_parameter, make_prior


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()


def test_prior_scales_and_means():
    m = _model()
    p = make_prior(m, prior_scale=0.5)
    assert p.scale == {"0": 0.5, "2": 0.5} and p.variance("2.bias") == 0.25
    assert all(float(v.abs().sum()) == 0 for v in p.mean.values())
    init = {k: v.detach() + 1 for k, v in m.named_parameters()}
    p = make_prior(m, prior_scale="weights", prior_mean="init", init_state=init)
    # every weight differs from the init by exactly 1, so λ² = mean (w − w0)² = 1
    assert p.scale == pytest.approx({"0": 1.0, "2": 1.0})
    p = make_prior(m, prior_scale={"0": 0.1, "2": 2.0})
    assert p.variance("0.weight") == pytest.approx(0.01)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"prior_scale": 0.0}, "prior_scale"),
        ({"prior_scale": float("nan")}, "prior_scale"),
        ({"prior_scale": {"0": 1.0}}, "layer"),
        ({"prior_scale": "rms"}, "prior_scale"),
        ({"prior_scale": 1.0, "prior_mean": "init"}, "init"),
        ({"prior_scale": 1.0, "prior_mean": "ones"}, "prior_mean"),
        ({"prior_scale": 1.0, "prior_mean": {"0.weight": torch.zeros(2)}}, "0.weight"),
    ],
)
def test_prior_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_prior(_model(), **kwargs)


def test_kl_closed_form_matches_monte_carlo():
    """KL(Q‖P) = E_Q[ln q(w) − ln p(w)], estimated from 200k draws, within 4 standard errors."""
    m = _model()
    p = make_prior(m, prior_scale={"0": 0.7, "2": 1.3})
    g = torch.Generator().manual_seed(0)
    mean = {k: v.detach().clone() for k, v in m.named_parameters()}
    var = {
        k: torch.rand(v.shape, generator=g, dtype=torch.float64) * 0.2 + 0.01
        for k, v in mean.items()
    }
    q = DiagGaussian(mean, var)
    S = 200_000
    terms = torch.zeros(S, dtype=torch.float64)
    for k in mean:
        eps = torch.randn((S, *mean[k].shape), generator=g, dtype=torch.float64)
        w = mean[k] + var[k].sqrt() * eps
        logq = -0.5 * (eps**2 + torch.log(2 * math.pi * var[k]))
        lam2 = p.variance(k)
        logp = -0.5 * ((w - p.mean[k]) ** 2 / lam2 + math.log(2 * math.pi * lam2))
        terms += (logq - logp).reshape(S, -1).sum(1)
    est, se = float(terms.mean()), float(terms.std() / S**0.5)
    assert abs(est - kl_diag(q, p)) < 4 * se
    per = kl_diag_per_parameter(q, p)
    assert sum(float(v.sum()) for v in per.values()) == pytest.approx(kl_diag(q, p), rel=1e-12)
    assert all(v.shape == mean[k].shape for k, v in per.items())


def test_kl_is_zero_for_q_equal_p_and_sampling_moments():
    m = _model()
    p = make_prior(m, prior_scale=0.3)
    q = DiagGaussian(dict(p.mean), {k: torch.full_like(v, 0.09) for k, v in p.mean.items()})
    assert kl_diag(q, p) == pytest.approx(0.0, abs=1e-12)
    draws = torch.stack(
        [q.sample(torch.Generator().manual_seed(s))["0.weight"] for s in range(4000)]
    )
    assert float(draws.var(0).mean()) == pytest.approx(0.09, rel=0.05)


def test_diag_gaussian_rejects_bad_variances():
    mean = {"w": torch.zeros(3, dtype=torch.float64)}
    with pytest.raises(ValueError, match="w"):
        DiagGaussian(mean, {"w": torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)})
    with pytest.raises(ValueError, match="shape"):
        DiagGaussian(mean, {"w": torch.ones(2, dtype=torch.float64)})


def test_g_cost_limits():
    s = torch.tensor([1e-9, 1e-3, 1.0, 1e6], dtype=torch.float64)
    g = g_cost(s)
    assert float(g[0]) == pytest.approx(0.5e-18, rel=1e-6)  # g(s) ≈ s²/2 in flat directions
    assert float(g[1]) == pytest.approx(math.log1p(1e-3) - 1e-3 / (1 + 1e-3), rel=1e-12)
    assert float(g[3]) == pytest.approx(math.log(1e6) - 1, abs=1e-5)  # ≈ ln s − 1 in sharp ones
