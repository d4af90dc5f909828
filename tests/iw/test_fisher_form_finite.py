"""The closed form refuses (β, λ) where IW is not a finite number instead of returning NaN."""

import math

import pytest
import torch
from torch import nn

from weightinfo import information
from weightinfo.curvature import Curvature, DiagBlock
from weightinfo.iw.fisher_form import gaussian_optimum
from weightinfo.posterior import make_prior
from weightinfo.posterior.prior import GaussianPrior


def _optimum(beta, lam=1.0, h=2.0):
    H = Curvature("fisher", "exact", "diag", "mse", 1, [DiagBlock({"w": torch.tensor([h, 0.0])})])
    P = GaussianPrior({"w": torch.zeros(2, dtype=torch.float64)}, {"": lam})
    return gaussian_optimum(H, P, {"w": torch.ones(2, dtype=torch.float64)}, beta=beta)


def test_subnormal_beta_is_an_error_naming_beta_and_prior_scale():
    assert math.isfinite(_optimum(1e-300).nats)  # tiny but representable: fine
    with pytest.raises(ValueError, match=r"IW is not finite .*beta=.*prior_scale"):
        _optimum(1e-320)


def test_information_raises_instead_of_returning_nan():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    data = (torch.randn(16, 3), torch.randint(0, 2, (16,)))
    with pytest.raises(ValueError, match="beta"):
        information(model, data, beta=1e-320, prior_scale=1.0, mc_samples=0, progress=False)


@pytest.mark.parametrize("lam", [1e-300, 1e-160, 1e160, 1e300])
def test_prior_scale_whose_square_is_not_finite_is_rejected(lam):
    model = nn.Linear(2, 1)
    with pytest.raises(ValueError, match="prior_scale.*out of range"):
        make_prior(model, prior_scale=lam)
    with pytest.raises(ValueError, match=r"prior_scale\['0'\].*out of range"):
        make_prior(nn.Sequential(model), prior_scale={"0": lam})
    prior = make_prior(model, prior_scale=0.1)
    with pytest.raises(ValueError, match="out of range"):
        prior.with_scale({"": lam})


def test_ordinary_prior_scales_still_pass():
    model = nn.Linear(2, 1)
    for lam in (1e-150, 1e-3, 1.0, 1e3, 1e150):
        assert make_prior(model, prior_scale=lam).scale[""] == lam
