"""Dziugaite & Roy options of the optimised posterior: logistic surrogate, σ = |w| start, learnt λ."""

import math

import pytest
import torch

import weightinfo.certificates as wc
from tests.certify.cases import digits_mlp
from weightinfo.certificates import posterior_fit as pf


def test_logistic_surrogate_value_and_range():
    m = torch.tensor([-3.0, -0.5, 0.0, 0.5, 3.0, 30.0])
    z = torch.stack([torch.zeros_like(m), m], dim=1)  # class 1, margin m = z_1 − z_0
    y = torch.ones(len(m), dtype=torch.long)
    per = torch.stack([pf.logistic_surrogate(z[i : i + 1], y[i : i + 1]) for i in range(len(m))])
    # log₂(1 + e^{−m}): 1 at m = 0, ≥ the 0-1 loss, → 0 for large margins, unbounded for m → −∞.
    assert torch.allclose(per, torch.log2(1 + torch.exp(-m)), atol=1e-6)
    assert per[2].item() == pytest.approx(1.0)
    assert torch.all(per >= (m <= 0).float()) and torch.all(per >= 0)
    assert per[-1].item() < 1e-12 and per[0].item() > 1
    # Multiclass: CE / ln 2, ≥ 1 whenever the argmax is wrong.
    z3 = torch.tensor([[2.0, 1.0, -1.0], [0.0, 0.2, 0.1]])
    y3 = torch.tensor([0, 0])
    ce = torch.nn.functional.cross_entropy(z3, y3, reduction="none") / math.log(2)
    assert pf.logistic_surrogate(z3, y3).item() == pytest.approx(ce.mean().item())
    assert ce[1].item() >= 1
    assert pf.surrogate_loss("logistic", z3, y3).item() == pytest.approx(ce.mean().item())
    with pytest.raises(ValueError, match="surrogate"):
        pf.surrogate_loss("hinge", z3, y3)


def test_abs_w_sigma_init_is_abs_w_clamped():
    w = {"a": torch.tensor([0.5, -0.02, 0.0, 1e-7]), "b": torch.tensor([[-3.0]])}
    s = pf.init_sigma(w, 0.03, "abs_w")
    assert torch.equal(s["a"], torch.tensor([0.5, 0.02, pf.SIGMA_FLOOR, pf.SIGMA_FLOOR]))
    assert torch.equal(s["b"], torch.tensor([[3.0]]))
    s2 = pf.init_sigma(w, 0.03, "abs_w", factor=2.0)
    assert torch.allclose(s2["a"][:2], torch.tensor([1.0, 0.04]))
    assert torch.equal(pf.init_sigma(w, 0.03, "prior")["a"], torch.full((4,), 0.03))
    with pytest.raises(ValueError, match="sigma_init"):
        pf.init_sigma(w, 0.03, "ones")


def test_optimal_prior_scale_minimises_kl():
    g = torch.Generator().manual_seed(0)
    mean = {"w": torch.randn(50, generator=g) * 0.1, "b": torch.randn(5, generator=g) * 0.1}
    var = {k: torch.rand(v.shape, generator=g) * 0.01 + 1e-4 for k, v in mean.items()}
    w0 = {k: torch.zeros_like(v) for k, v in mean.items()}
    lam = pf.optimal_prior_scale(mean, var, w0)
    kl = [float(pf.kl_gaussian(mean, var, w0, (lam * f) ** 2)) for f in (0.9, 1.0, 1.1)]
    assert kl[1] < kl[0] and kl[1] < kl[2]


@pytest.fixture(scope="module")
def digits():
    return digits_mlp(16)


def test_fit_posterior_abs_w_start_without_training(digits):
    ds, model, init = digits
    w = pf.param_means(model)
    mean, var = pf.fit_posterior(
        model,
        (ds.x_train, ds.y_train),
        prior_mean=w,
        prior_scale=0.03,
        init_mean=w,
        objective_name="fclassic",
        n_bound=100,
        delta=0.025,
        epochs=0,
        surrogate="logistic",
        sigma_init="abs_w",
        optimizer="rmsprop",
    )
    for k in w:
        assert torch.allclose(var[k].sqrt(), w[k].abs().clamp_min(pf.SIGMA_FLOOR), rtol=1e-5)
        assert torch.equal(mean[k], w[k])


def test_certify_learnt_prior_scale_dr_recipe(digits):
    ds, model, init = digits
    grid = [0.1 * math.exp(-j / 100) for j in range(0, 500)]
    # The same data for fitting and bounding, prior at the initial weights, λ learnt on the grid.
    common = dict(
        posterior_data=(ds.x_train, ds.y_train),
        bound_data=(ds.x_train, ds.y_train),
        prior="init",
        init_state=init,
        prior_scale=grid,
        learn_prior_scale=True,
    )
    c = wc.certify(
        model,
        **common,
        posterior_init="model",
        objective="fclassic",
        surrogate="logistic",
        posterior_sigma_init="abs_w",
        posterior_optimizer="rmsprop",
        posterior_lr=1e-3,
        posterior_epochs=1,
        mc="per_example",
        mc_samples=5,
        k_union=510,
    )
    assert c.k_union == 510 and c.k_scales == 500 and c.learned_prior_scale is not None
    # The certified λ is a grid point next to the learnt one.
    i = grid.index(c.prior_scale)
    assert grid[min(i + 1, 499)] <= c.learned_prior_scale * (1 + 1e-12) or i == 499
    assert grid[max(i - 1, 0)] >= c.learned_prior_scale * (1 - 1e-12) or i == 0
    assert len(c.grid) <= 2 and c.posterior_options["surrogate"] == "logistic"
    assert 0 <= c.empirical_risk <= c.mc_upper <= c.risk_bound <= 1
    with pytest.raises(ValueError, match="k_union"):
        wc.certify(model, **common, k_union=10)
