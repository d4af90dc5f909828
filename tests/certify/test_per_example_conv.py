"""The per-example MC Gibbs risk on conv nets: a real, independent weight draw per (example, repetition).

Exactness against explicit per-example weight draws, the law of one example's logits against independently
drawn networks, independence across examples (which one draw per batch fails), the error rate against the
standard estimator, refusal of local reparameterisation on conv, determinism, and ``certify`` end to end.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

import weightinfo.certificates as wc
from weightinfo.certificates import _per_example as P
from weightinfo.certificates import risk as R
from weightinfo.data import load_dataset
from weightinfo.models import build_model
from weightinfo.posterior.sampling import find_local_reparam_modules, local_reparam_forward

N = 20_000  # repetitions in the law and independence tests
Z = 5.0  # standard errors allowed


class TinyCNN(nn.Module):
    """conv 3x3 (2 channels) → ReLU → maxpool 2 → linear: 1x6x6 input, 3 classes."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(8, 3)

    @staticmethod
    def pool(h):
        return F.max_pool2d(torch.relu(h), 2).flatten(1)

    def forward(self, x):
        return self.fc(self.pool(self.conv(x)))


def _setup(conv_var=1.0, fc_var=0.01, n=2, seed=0):
    torch.manual_seed(seed)
    model = TinyCNN().double().eval()
    mean = {k: v.detach().clone() for k, v in model.named_parameters()}
    var = {
        k: torch.full_like(v, conv_var if k.startswith("conv") else fc_var) for k, v in mean.items()
    }
    return model, mean, var, torch.randn(n, 1, 6, 6, dtype=torch.float64)


def _logits(model, x, mean, var, seed):
    modules, rest = P.local_cover(model, x, list(var))
    gen = torch.Generator().manual_seed(seed)
    return P.per_example_logits(model, x, mean, var, gen, modules=modules, rest=rest)


def _same_law(a, b) -> bool:
    """Means and covariances of the rows of ``a`` and ``b`` (independent samples) agree within Z SE."""
    n = a.shape[0]
    se_m = ((a.var(0) + b.var(0)) / n).sqrt()
    ok_mean = bool(((a.mean(0) - b.mean(0)).abs() <= Z * se_m).all())
    pa = [(u - u.mean(0))[:, :, None] * (u - u.mean(0))[:, None, :] for u in (a, b)]
    se_c = ((pa[0].var(0) + pa[1].var(0)) / n).sqrt()
    return ok_mean and bool(((pa[0].mean(0) - pa[1].mean(0)).abs() <= Z * se_c).all())


def _uncorrelated(u, v) -> bool:
    """|corr| < Z/√n for every logit of two examples over n joint draws."""
    u, v = u - u.mean(0), v - v.mean(0)
    r = (u * v).mean(0) / (u.std(0) * v.std(0))
    return bool((r.abs() < Z / math.sqrt(u.shape[0])).all())


@pytest.mark.parametrize("fc_var", [0.0, 0.01], ids=["conv_noise_only", "conv_and_fc_noise"])
def test_matches_explicit_per_example_weight_draws(fc_var):
    """Same generator, same draw order: for m = 2 repetitions, each example's weights drawn explicitly, the
    conv part by ``functional_call`` on that one example, the Linear by its exact local reparameterisation."""
    model, mean, var, x = _setup(fc_var=fc_var, n=7)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    gen = torch.Generator().manual_seed(3)
    rest = ["conv.weight", "conv.bias"]
    errs, logits = [], []
    for _ in range(2):
        eps = {
            k: torch.randn((7, *mean[k].shape), generator=gen, dtype=torch.float64) for k in rest
        }
        e_fc = torch.randn((7, 3), generator=gen, dtype=torch.float64)
        for i in range(7):
            w = {k: mean[k] + var[k].sqrt() * eps[k][i] for k in rest}
            if fc_var == 0.0:  # a full weight set for this example, the model run as is
                z = functional_call(model, {**mean, **w}, (x[i : i + 1],))[0]
            else:
                a = TinyCNN.pool(F.conv2d(x[i : i + 1], w["conv.weight"], w["conv.bias"]))
                mu = F.linear(a, mean["fc.weight"], mean["fc.bias"])
                z = (mu + F.linear(a * a, var["fc.weight"], var["fc.bias"]).sqrt() * e_fc[i])[0]
            logits.append(z)
            errs.append(float(z.argmax() != y[i]))
    modules, rest = P.local_cover(model, x, list(var))
    gen = torch.Generator().manual_seed(3)
    z_ours = [
        P.per_example_logits(model, x, mean, var, gen, modules=modules, rest=rest) for _ in "ab"
    ]
    assert torch.allclose(torch.cat(z_ours), torch.stack(logits), rtol=0, atol=1e-10)
    gen = torch.Generator().manual_seed(3)
    assert R.gibbs_error_per_example(model, x, y, mean, var, 2, gen) == (sum(errs) / 14, 14)


def test_one_example_has_the_law_of_independent_networks():
    """N repetitions of one example vs N networks w ∼ Q on it: equal means and covariances (Z SE). Local
    reparameterisation on the conv feature maps has another law and fails the same check."""
    model, mean, var, x = _setup()
    x0 = x[:1].expand(N, -1, -1, -1)
    std = {k: v.sqrt() for k, v in var.items()}
    ref = R.draw_logits(model, x[:1], mean, std, N, torch.Generator().manual_seed(1))[:, 0]
    assert _same_law(_logits(model, x0, mean, var, 2), ref)
    conv_local = find_local_reparam_modules(model, x, mode="all", names=var)
    assert "conv" in conv_local
    wrong = local_reparam_forward(
        model, x0, mean, var, torch.Generator().manual_seed(2), modules=conv_local
    )
    assert not _same_law(wrong, ref)


def test_examples_in_a_batch_are_independent():
    """Two examples in the same chunks: uncorrelated logits; one draw per batch (the standard
    reparameterisation) correlates them and fails the same check."""
    model, mean, var, x = _setup()
    z = _logits(model, x.repeat(N, 1, 1, 1), mean, var, 4).view(N, 2, 3)
    assert _uncorrelated(z[:, 0], z[:, 1])
    std = {k: v.sqrt() for k, v in var.items()}
    one_per_batch = R.draw_logits(model, x, mean, std, N, torch.Generator().manual_seed(4))
    assert not _uncorrelated(one_per_batch[:, 0], one_per_batch[:, 1])


def test_error_rate_matches_the_mean_error_of_independent_networks():
    """E[L̂] = E_{w∼Q}[error of w on S]: per-example (m·n = 12 000) vs 2 000 networks, within Z SE."""
    model, mean, var, x = _setup(conv_var=0.05, fc_var=0.01, n=300, seed=1)
    with torch.no_grad():
        y = model(x).argmax(-1)
    y[::3] = torch.arange(100) % 3
    emp, count = R.gibbs_error_per_example(
        model, x, y, mean, var, 40, torch.Generator().manual_seed(5)
    )
    std = {k: v.sqrt() for k, v in var.items()}
    nets = R.gibbs_errors_standard(model, x, y, mean, std, 2000, torch.Generator().manual_seed(6))
    se = math.sqrt(emp * (1 - emp) / count + float(nets.var()) / len(nets))
    assert count == 12_000 and abs(emp - float(nets.mean())) < Z * se
    assert (
        abs(R.mean_network_error(model, x, y, mean) - float(nets.mean())) > Z * se
    )  # noise matters


def test_local_reparameterisation_never_covers_conv(monkeypatch):
    """The all-local path refuses conv nets; the per-example risk of a conv net never calls it, and its
    local modules are nn.Linear only."""
    model, mean, var, x = _setup()
    with pytest.raises(ValueError, match="nn.Linear"):
        R.exact_local_modules(model, x, list(var))
    lenet = build_model("lenet", (1, 8, 8), 10).eval()
    with pytest.raises(ValueError, match="conv1.weight"):
        R.exact_local_modules(
            lenet, torch.randn(2, 1, 8, 8), [k for k, _ in lenet.named_parameters()]
        )
    assert P.local_cover(model, x, list(var)) == (["fc"], ["conv.weight", "conv.bias"])
    with pytest.raises(ValueError, match="only in nn.Linear"):
        P.per_example_logits(model, x, mean, var, None, modules=["conv"], rest=[])

    def refuse(*a, **k):
        raise AssertionError("local_reparam_forward used on a conv net")

    monkeypatch.setattr(R, "local_reparam_forward", refuse)
    y = torch.zeros(2, dtype=torch.long)
    assert 0 <= R.gibbs_error_per_example(model, x, y, mean, var, 3, torch.Generator())[0] <= 1


def test_deterministic_in_the_generator_and_vmap_free_fallback(monkeypatch):
    model, mean, var, x = _setup(n=50)
    a, b, c = (_logits(model, x, mean, var, s) for s in (7, 7, 8))
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert len({tuple(r.tolist()) for r in a}) == 50
    y = torch.zeros(50, dtype=torch.long)
    assert R.gibbs_error_per_example(
        model, x, y, mean, var, 4, torch.Generator().manual_seed(7)
    ) == R.gibbs_error_per_example(model, x, y, mean, var, 4, torch.Generator().manual_seed(7))

    def no_vmap(f):  # a model vmap cannot run: one example at a time on the same draws
        raise RuntimeError("vmap unsupported")

    monkeypatch.setattr(P, "vmap", no_vmap)
    assert torch.allclose(_logits(model, x, mean, var, 7), a, rtol=0, atol=1e-10)


def test_certify_lenet_per_example_end_to_end():
    ds = load_dataset("digits", seed=0)
    torch.manual_seed(0)
    model = build_model("lenet", ds.input_shape, ds.n_classes)
    c = wc.certify(
        model,
        (ds.x_train[:300], ds.y_train[:300]),
        mc="per_example",
        prior_epochs=1,
        posterior_epochs=1,
        mc_samples=2,
    )
    assert c.mc == "per_example" and c.m == 2
    assert 0 <= c.empirical_risk <= c.mc_upper <= c.risk_bound and math.isfinite(c.risk_bound)
    assert wc.verify_certificate(c.to_dict()).ok
