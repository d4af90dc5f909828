"""The Information Lagrangian C_β = E_Q[L_D] + β·KL(Q‖P) of a given Q."""

import json
import math

import pytest
import torch
from torch import nn

from weightinfo.iw.objective import LagrangianResult, lagrangian
from weightinfo.posterior.gaussian import DiagGaussian, kl_diag
from weightinfo.posterior.prior import make_prior
from weightinfo.posterior.sampling import expected_loss

D = torch.float64


def _setup():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).to(D).eval()
    X, Y = torch.randn(40, 4, dtype=D), torch.randint(0, 3, (40,))
    q = DiagGaussian(
        {k: p.detach().clone() for k, p in m.named_parameters()},
        {k: torch.rand(p.shape, dtype=D) * 0.01 + 1e-3 for k, p in m.named_parameters()},
    )
    p = make_prior(m, prior_scale={"0": 0.7, "2": 1.3})
    return m, (X, Y), q, p


def test_value_kl_and_expected_loss():
    m, data, q, p = _setup()
    r = lagrangian(m, data, q, p, beta=0.05, mc_samples=6, seed=3, batch_size=16)
    assert isinstance(r, LagrangianResult)
    assert r.kl_nats == pytest.approx(kl_diag(q, p), rel=1e-14)
    e, se = expected_loss(m, data, q, mc_samples=6, seed=3, batch_size=16)
    assert (r.expected_loss, r.expected_loss_stderr) == (e, se)
    assert r.value == pytest.approx(r.expected_loss + 0.05 * r.kl_nats, rel=1e-14)
    assert r.kl_bits == pytest.approx(r.kl_nats / math.log(2))
    assert r.n_samples == 40 and r.mc_samples == 6
    d = json.loads(json.dumps(r.to_dict()))
    assert d["value"] == pytest.approx(r.value) and d["conventions"]["units"] == "nats"
    with pytest.raises(AttributeError):
        r.beta = 1.0  # frozen


def test_local_reparam_option_is_unbiased():
    m, data, q, p = _setup()
    a = lagrangian(m, data, q, p, beta=0.05, mc_samples=40, seed=1)
    b = lagrangian(m, data, q, p, beta=0.05, mc_samples=40, seed=2, local_reparam=True)
    assert a.kl_nats == b.kl_nats
    se = math.hypot(a.expected_loss_stderr, b.expected_loss_stderr)
    assert abs(a.expected_loss - b.expected_loss) < 4 * se


@pytest.mark.parametrize("beta", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_beta_raises(beta):
    m, data, q, p = _setup()
    with pytest.raises(ValueError, match="beta"):
        lagrangian(m, data, q, p, beta=beta)


def test_keys_must_match_model():
    m, data, q, p = _setup()
    q_small = DiagGaussian({"0.weight": q.mean["0.weight"]}, {"0.weight": q.var["0.weight"]})
    with pytest.raises(ValueError, match="missing"):
        lagrangian(m, data, q_small, p, beta=0.1)
    other = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2)).to(D).eval()
    with pytest.raises(ValueError, match="shape"):
        lagrangian(other, data, q, p, beta=0.1)
