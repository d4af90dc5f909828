"""effective_information: I(X; Z), X uniform over the inputs, Z the noisy-weight activations (Def 3.1, Eq 10).

References: a closed form for Σ_z of a Linear layer, numerical integration of the mixture entropy (dim z = 1), the
limits 0 and ln N, data processing (monotone in the noise), the ceiling ln N, and the estimators against each
other. Numbers measured by these tests (float64, seeds as written):

* 1-D Linear, N = 3: gaussian 0.83354 ± 0.00030 (10⁶ draws per input) vs quadrature 0.83383.
* Linear 2→2, N = 15, σ² = 0.02 (an exactly Gaussian channel): gaussian 1.6775 ± 0.0049, mc 1.6736 ± 0.0068;
  σ² × (0.25, 1, 4, 16) on N = 12 inputs: 2.091, 1.609, 1.062, 0.543 nats.
* tanh MLP 2-16-2, N = 30, σ² = 1e-3 on every weight: gaussian 1.5633 ± 0.0095 (256 draws), mc 1.5557 ± 0.0067
  (512 draws): 0.7 combined stderr apart. At σ² = 1e-1 they part: gaussian 0.1386 ± 0.0056, mc 0.0902 ± 0.0035
  (7 stderr): the linearisation ignores the saturation of tanh; the mc value is a lower bound on the true I.
* Linear 1→3, x = 400 standard-normal quantiles, σ² = 1e-3: gaussian 3.1690 ± 0.0063, Brunel–Nadal with
  h(X) = ½ ln 2πe 3.1696 ± 0.013 (gap 6e-4). Measured outside the tests, same problem: at σ² = 1e-5 the
  empirical ceiling ln 400 = 5.99 bites (gaussian 5.405, BN 5.472); at σ² = 1e-2 p(x|z) concentrates less
  (gaussian 2.033, BN 2.018).
* LeNet on 1×8×8, 4 inputs, σ² = 1e-4 on conv1 and fc1: conv1 (384 units, 156 noisy weights) is refused
  without activation noise; with ν = 1e-2 it gives ln 4 (the 4 components do not overlap in 384 dimensions).
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from scipy import integrate
from torch import nn

import weightinfo
from weightinfo.activations import Channel, EffectiveInformation, effective_information

D64 = torch.float64


def _linear(d_in, d_out, seed=0):
    torch.manual_seed(seed)
    return nn.Linear(d_in, d_out).double().eval()


def _uniform_posterior(model, var):
    return {k: torch.full_like(p, var) for k, p in model.named_parameters()}


def _mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2)).double().eval()


def _one(E, key="output"):
    return E.per_layer[key], E.stderr[key]


# -- the linear layer: an exactly Gaussian channel -----------------------------------------------------------


def test_linear_layer_covariance_is_the_closed_form():
    model = _linear(3, 2)
    g = torch.Generator().manual_seed(1)
    var = {
        "weight": torch.rand(2, 3, generator=g, dtype=D64),
        "bias": torch.rand(2, generator=g, dtype=D64),
    }
    x = torch.randn(5, 3, generator=g, dtype=D64)
    cov = Channel.of(model, var).covariances(x)
    expected = torch.diag_embed(x.square() @ var["weight"].T + var["bias"])
    assert (cov - expected).abs().max() <= 1e-12


def _quadrature_information(x, w, b, vw, vb):
    mu = [w * xi + b for xi in x]
    sd = [math.sqrt(vw * xi**2 + vb) for xi in x]

    def p(z):
        return sum(
            math.exp(-0.5 * ((z - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))
            for m, s in zip(mu, sd)
        ) / len(x)

    lo, hi = min(mu) - 12 * max(sd), max(mu) + 12 * max(sd)
    hz = integrate.quad(
        lambda z: -p(z) * math.log(max(p(z), 1e-300)), lo, hi, limit=400, epsabs=1e-12
    )[0]
    hzx = sum(0.5 * math.log(2 * math.pi * math.e * s**2) for s in sd) / len(x)
    return hz - hzx


def test_gaussian_matches_quadrature():
    model = _linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(1.3)
        model.bias.fill_(0.2)
    vw, vb = 0.04, 0.09
    x = [-1.0, 0.0, 0.5]
    post = {"weight": torch.full((1, 1), vw, dtype=D64), "bias": torch.full((1,), vb, dtype=D64)}
    I, se = _one(
        effective_information(model, torch.tensor(x, dtype=D64)[:, None], post, samples=1_000_000)
    )
    ref = _quadrature_information(x, 1.3, 0.2, vw, vb)
    assert 0.1 < ref < math.log(3) - 0.1  # a case between the two limits
    assert abs(I - ref) <= 3 * se and abs(I - ref) <= 1e-3, (I, se, ref)


def test_far_apart_points_reach_ln_n_and_identical_points_give_zero():
    model = _linear(1, 2)
    post = _uniform_posterior(model, 1e-4)
    far = torch.tensor([[0.0], [100.0], [200.0], [300.0]], dtype=D64)
    I, _ = _one(effective_information(model, far, post))
    assert abs(I - math.log(4)) <= 1e-3
    same = torch.ones(5, 1, dtype=D64)
    E = effective_information(model, same, post)
    I, se = _one(E)
    assert abs(I) <= max(3 * se, 1e-12)
    assert E.ceiling == pytest.approx(math.log(5)) and E.n == 5


def test_never_above_the_ceiling():
    """I ≤ ln N over random small problems (both sampling estimators, noise scales over six decades)."""
    g = torch.Generator().manual_seed(0)
    for k in range(8):
        n = int(torch.randint(2, 7, (1,), generator=g))
        var = float(10 ** (torch.rand(1, generator=g) * 6 - 5))
        model = _mlp(k) if k % 2 else _linear(2, 2, k)
        x = torch.randn(n, 2, generator=g, dtype=D64) * float(torch.rand(1, generator=g) * 3)
        post = _uniform_posterior(model, var)
        for est in ("gaussian", "mc"):
            E = effective_information(model, x, post, estimator=est, samples=16, seed=k)
            assert E.per_layer["output"] <= math.log(n) + 1e-12, (k, est, n, var)


def test_falls_as_the_noise_grows():
    """A multiple c·Σ of the noise degrades the (linear, Gaussian) channel: I falls with c."""
    model = _linear(2, 2)
    x = torch.randn(12, 2, generator=torch.Generator().manual_seed(3), dtype=D64)
    values = []
    for c in (0.25, 1.0, 4.0, 16.0):
        I, se = _one(
            effective_information(model, x, _uniform_posterior(model, 0.01 * c), samples=128)
        )
        values.append((I, se))
    for (a, sa), (b, sb) in zip(values, values[1:]):
        assert a - b > 3 * math.hypot(sa, sb), values


# -- the estimators against each other ----------------------------------------------------------------------


def test_mc_converges_to_gaussian_on_an_exactly_gaussian_channel():
    model = _linear(2, 2)
    x = torch.randn(15, 2, generator=torch.Generator().manual_seed(4), dtype=D64)
    post = _uniform_posterior(model, 0.02)
    g = effective_information(model, x, post, samples=2048)
    m = effective_information(model, x, post, estimator="mc", samples=1024)
    (a, sa), (b, sb) = _one(g), _one(m)
    assert abs(a - b) <= 3 * math.hypot(sa, sb), (a, sa, b, sb)
    assert (g.estimator["output"], m.estimator["output"], m.samples["output"]) == (
        "gaussian",
        "mc",
        1024,
    )


def test_linearised_and_weight_sampled_agree_at_small_noise_and_part_at_large():
    """tanh MLP: at σ² = 1e-3 within 3 combined stderr; at σ² = 1e-1 they part (module docstring numbers)."""
    model = _mlp()
    x = torch.randn(30, 2, generator=torch.Generator().manual_seed(0), dtype=D64)
    for var, agree in ((1e-3, True), (1e-1, False)):
        post = _uniform_posterior(model, var)
        (a, sa) = _one(effective_information(model, x, post, estimator="auto", samples=256))
        (b, sb) = _one(effective_information(model, x, post, estimator="mc", samples=512))
        print(f"σ² = {var:g}: gaussian {a:.4f} ± {sa:.4f}, mc {b:.4f} ± {sb:.4f}")
        assert a <= math.log(30) and b <= math.log(30)
        if agree:
            assert abs(a - b) <= 3 * math.hypot(sa, sb), (a, sa, b, sb)


def _quantile_inputs(n):
    q = (torch.arange(n, dtype=D64) + 0.5) / n
    return (math.sqrt(2) * torch.erfinv(2 * q - 1)).unsqueeze(1)


def test_brunel_nadal_on_an_expansive_linear_layer():
    """Linear 1→3, x ≈ N(0, 1) by quantiles, σ² = 1e-3: finite and close to the gaussian value (gap 6e-4)."""
    model = _linear(1, 3)
    x = _quantile_inputs(400)
    post = _uniform_posterior(model, 1e-3)
    h = 0.5 * math.log(2 * math.pi * math.e)
    bn = effective_information(model, x, post, estimator="brunel-nadal", input_entropy=h)
    g = effective_information(model, x, post)
    assert math.isfinite(bn.per_layer["output"]) and bn.samples["output"] == 0
    print("brunel-nadal", _one(bn), "gaussian", _one(g))
    assert abs(bn.per_layer["output"] - g.per_layer["output"]) < 0.05
    assert bn.to_dict()["input_entropy"] == h


def test_brunel_nadal_refuses_compressive_layers_and_a_missing_input_entropy():
    model = _mlp()
    x = torch.randn(4, 2, dtype=D64)
    post = _uniform_posterior(model, 1e-3)
    with pytest.raises(ValueError, match="input_entropy"):
        effective_information(model, x, post, estimator="brunel-nadal")
    with pytest.raises(ValueError, match="input_entropy"):
        effective_information(model, x, post, input_entropy=1.0)
    squeeze = _linear(3, 2)
    with pytest.raises(ValueError, match=r"dim z = 2 < dim x = 3"):
        effective_information(
            squeeze, torch.randn(4, 3, dtype=D64), _uniform_posterior(squeeze, 1e-3),
            estimator="brunel-nadal", input_entropy=0.0,
        )  # fmt: skip


# -- bad input -------------------------------------------------------------------------------------------------


def test_bad_input_is_named():
    model = _mlp()
    x = torch.randn(4, 2, dtype=D64)
    post = _uniform_posterior(model, 1e-3)
    with pytest.raises(ValueError, match="'nope'"):
        effective_information(model, x, post, layers="nope")
    with pytest.raises(ValueError, match="'fc.weight'"):
        effective_information(model, x, {"fc.weight": torch.ones(2, 2)})
    with pytest.raises(ValueError, match="'0.weight'"):
        effective_information(model, x, {"0.weight": torch.ones(3, 3)})
    bad = x.clone()
    bad[1, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        effective_information(model, (bad, torch.zeros(4)), post)
    with pytest.raises(ValueError, match="empty"):
        effective_information(model, (x[:0], torch.zeros(0)), post)
    with pytest.raises(ValueError, match="estimator"):
        effective_information(model, x, post, estimator="kde")
    with pytest.raises(ValueError, match="samples"):
        effective_information(model, x, post, samples=1)
    with pytest.raises(
        ValueError, match=r"2 draws give a fitted covariance of rank ≤ 1 < dim z = 2.*more samples"
    ):
        effective_information(model, x, post, estimator="mc", samples=2)


# -- real architectures ----------------------------------------------------------------------------------------


def test_lenet_layers():
    """fc1 (120 units, full-rank Σ_z) directly; conv1 (384 units, 156 noisy weights) needs activation noise."""
    torch.manual_seed(0)
    model = weightinfo.build_model("lenet", (1, 8, 8), 10).eval()
    post = {
        k: torch.full_like(p, 1e-4)
        for k, p in model.named_parameters()
        if k.startswith(("conv1", "fc1"))
    }
    x = torch.randn(4, 1, 8, 8)
    E = weightinfo.effective_information(
        model, (x, torch.zeros(4)), post, layers=["fc1"], samples=8
    )
    assert isinstance(E, EffectiveInformation) and E.dims == {"fc1": 120}
    assert 0 < E.per_layer["fc1"] <= E.ceiling
    with pytest.raises(ValueError, match=r"156 noisy weight\(s\) reach it.*activation_variance"):
        effective_information(model, x, post, layers="conv1")
    E = effective_information(
        model, x, post, layers=["conv1", "output"], activation_variance=1e-2, samples=4
    )
    assert E.dims == {"conv1": 384, "output": 10}
    assert E.per_layer["conv1"] == pytest.approx(E.ceiling)  # 384 units, 4 inputs: no overlap
    assert -3 * E.stderr["output"] <= E.per_layer["output"] <= E.ceiling
    json.dumps(E.to_dict())
    assert "conv1" in str(E)


def test_data_forms_and_layer_keys_give_one_answer():
    """A tensor, an (X, Y) tuple and a DataLoader are the same data; None and "output" name the output."""
    from torch.utils.data import DataLoader, TensorDataset

    model = _mlp()
    x = torch.randn(9, 2, generator=torch.Generator().manual_seed(5), dtype=D64)
    post = _uniform_posterior(model, 1e-2)
    loader = DataLoader(TensorDataset(x, torch.zeros(9)), batch_size=4)
    values = [
        effective_information(model, data, post, layers=layers, samples=8).per_layer["output"]
        for data, layers in ((x, None), ((x, torch.zeros(9)), "output"), (loader, [None]))
    ]
    assert values[0] == values[1] == values[2]
    E = effective_information(model, x, post, layers=["0", "output"], samples=8)
    assert list(E.per_layer) == ["0", "output"] and E.dims == {"0": 16, "output": 2}
