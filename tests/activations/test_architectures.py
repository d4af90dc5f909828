"""I_eff and the activation Fisher on any nn.Module: All-CNN and ResNet-18 (eval BatchNorm), attention, in-place
ops, shared modules, and the memory limit of the per-example Jacobians (issue 10 §1)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from weightinfo.activations import (
    JacobianMemoryError,
    activation_fisher,
    effective_information,
)
from weightinfo.activations import channel as channel_mod
from weightinfo.models import build_model

N = 6


def _noise(model, var=1e-3):
    return {k: torch.full_like(p, var) for k, p in model.named_parameters()}


def _images(seed=0):
    return torch.rand(N, 1, 8, 8, generator=torch.Generator().manual_seed(seed))


class _Attention(nn.Module):
    """Embedding, one Transformer encoder layer (self-attention + MLP, LayerNorm), mean-pooled linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.enc = nn.TransformerEncoderLayer(
            d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True
        )
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.enc(self.embed(x)).mean(1))


def _case(name):
    torch.manual_seed(0)
    if name == "allcnn":
        return build_model("allcnn", (1, 8, 8), 10, width=0.05).eval(), _images(), "blocks.4"
    if name == "resnet18":
        return build_model("resnet18", (1, 8, 8), 10, width=0.0625).eval(), _images(), "layer2"
    x = torch.randn(N, 5, 4, generator=torch.Generator().manual_seed(0))
    return _Attention().eval(), x, "enc"


def _check_eff(E, keys):
    for k in keys:
        v, se = E.per_layer[k], E.stderr[k]
        assert math.isfinite(v) and math.isfinite(se)
        assert -3 * se - 1e-9 <= v <= E.ceiling + 1e-9


def _check_fisher(F, keys):
    for k in keys:
        assert math.isfinite(F.mean_term[k]) and math.isfinite(F.covariance_term[k])
        assert F.mean_term[k] >= 0 and F.covariance_term[k] >= 0 and F.per_layer[k] > 0


@pytest.mark.parametrize("name", ["allcnn", "resnet18", "attention"])
def test_effective_information_and_fisher_on_architectures(name):
    """Every parameter noisy (σ² = 1e-3), a middle layer and the output: finite, 0 ≤ I_eff ≤ ln N, F > 0.

    The middle layers of the conv nets end in a ReLU (units exactly 0, zero Jacobian rows), so Σ_z is singular
    there: I_eff raises the named error without activation noise, and the Fisher uses the pseudo-inverse."""
    model, x, mid = _case(name)
    var = _noise(model)
    keys = [mid, "output"]
    nu = 0.0 if name == "attention" else 1e-4
    if nu:
        with pytest.raises(ValueError, match=rf"layer '{mid}'.*singular.*activation_variance"):
            effective_information(model, x, var, mid, samples=4)
    E = effective_information(model, x, var, keys, samples=8, activation_variance=nu)
    _check_eff(E, keys)
    nuisances = ["brightness"] if name == "attention" else ["brightness", "translate-x"]
    for nuisance in nuisances:
        F = activation_fisher(model, (x, torch.zeros(N)), var, nuisance, [mid, None], batch_size=4)
        _check_fisher(F, keys)
        assert F.n_samples == N
    if (
        name == "resnet18"
    ):  # only the weights acting before the layer count: conv1, bn1, layer1, layer2
        n_before = sum(
            p.numel()
            for k, p in model.named_parameters()
            if k.startswith(("conv1", "bn1", "layer1", "layer2"))
        )
        assert F.n_noisy == {"layer2": n_before, "output": sum(v.numel() for v in var.values())}


def test_attention_fisher_scales_with_the_posterior():
    """Attention (math path, forward-over-reverse AD): the mean term scales as 1/c and the covariance term is
    unchanged when Σ is scaled by c (Prop 3.2)."""
    model, x, mid = _case("attention")
    data = (x, torch.zeros(N))
    F1 = activation_fisher(model, data, _noise(model, 1e-3), "brightness", [mid, None])
    F4 = activation_fisher(model, data, _noise(model, 4e-3), "brightness", [mid, None])
    for k in (mid, "output"):
        assert F4.mean_term[k] == pytest.approx(F1.mean_term[k] / 4, rel=1e-6)
        assert F4.covariance_term[k] == pytest.approx(F1.covariance_term[k], rel=1e-6)


def test_chunked_jacobians_give_the_same_numbers(monkeypatch):
    """Chunks of one example (a tiny JACOBIAN_CHUNK_BYTES) change nothing but float32 rounding of the Jacobians."""
    model, x, mid = _case("resnet18")
    var = _noise(model)
    data = (x, torch.zeros(N))
    E = effective_information(model, x, var, "output", samples=8)
    F = activation_fisher(model, data, var, "translate-x", [mid, None])
    monkeypatch.setattr(channel_mod, "JACOBIAN_CHUNK_BYTES", 1)
    E1 = effective_information(model, x, var, "output", samples=8)
    F1 = activation_fisher(model, data, var, "translate-x", [mid, None])
    assert E1.per_layer["output"] == pytest.approx(E.per_layer["output"], rel=1e-6)
    for k in (mid, "output"):
        assert F1.mean_term[k] == pytest.approx(F.mean_term[k], rel=1e-6)
        assert F1.covariance_term[k] == pytest.approx(F.covariance_term[k], rel=1e-6)


def test_jacobian_over_the_memory_limit_is_a_named_error(monkeypatch):
    model, x, mid = _case("resnet18")
    var = _noise(model)
    k = sum(v.numel() for v in var.values())
    monkeypatch.setattr(channel_mod, "JACOBIAN_MAX_BYTES", 10 * k * 8 - 1)
    msg = rf"the output: one example's weight Jacobian is dim z × k = 10 × {k}.*fewer parameters"
    with pytest.raises(JacobianMemoryError, match=msg):
        effective_information(model, x, var, None, samples=4)
    with pytest.raises(JacobianMemoryError, match=msg):
        activation_fisher(model, (x, torch.zeros(N)), var, "brightness")
    # a posterior on fewer parameters (the last layer) fits
    fc = {n: v for n, v in var.items() if n.startswith("fc")}
    F = activation_fisher(model, (x, torch.zeros(N)), fc, "brightness")
    assert math.isfinite(F.per_layer["output"])


def test_in_place_op_after_the_layer_does_not_change_it():
    """ReLU(inplace=True) after the measured Linear: the channel sees the Linear's (signed) output."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 6), nn.ReLU(inplace=True), nn.Linear(6, 3)).eval()
    ref = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    ref.load_state_dict(model.state_dict())
    x = torch.randn(N, 5, generator=torch.Generator().manual_seed(1))
    var = {"0.weight": torch.full((6, 5), 1e-2), "0.bias": torch.full((6,), 1e-2)}
    F = activation_fisher(model, (x, torch.zeros(N)), var, "brightness", "0")
    G = activation_fisher(ref, (x, torch.zeros(N)), var, "brightness", "0")
    assert F.per_layer["0"] == pytest.approx(G.per_layer["0"], rel=1e-9)
    E = effective_information(model, x, var, "0", samples=8)
    assert E.per_layer["0"] == effective_information(ref, x, var, "0", samples=8).per_layer["0"]


def test_shared_module_and_batch_statistics_are_named_errors():
    """A module used twice cannot be a layer (the output is fine); BatchNorm without running stats is refused."""

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            return self.lin(torch.tanh(self.lin(x)))

    torch.manual_seed(0)
    model = Twice().eval()
    x = torch.randn(N, 4, generator=torch.Generator().manual_seed(2))
    var = _noise(model, 1e-2)
    with pytest.raises(ValueError, match=r"layer 'lin' must be called exactly once.*2 time"):
        activation_fisher(model, (x, torch.zeros(N)), var, "brightness", "lin")
    F = activation_fisher(model, (x, torch.zeros(N)), var, "brightness")
    _check_fisher(F, ["output"])
    _check_eff(effective_information(model, x, var, samples=8), ["output"])

    bn = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4, track_running_stats=False)).eval()
    with pytest.raises(ValueError, match=r"module '1' \(BatchNorm1d\).*track_running_stats=False"):
        effective_information(bn, x, _noise(bn), samples=4)


@pytest.fixture(scope="module")
def digits_mlp():
    """An MLP (64-32-10) trained 2 epochs on digits, and Q* at β = 1e-4, 1e-3, 1e-2 (prior scale 0.1)."""
    import weightinfo
    from weightinfo.data import load_dataset
    from weightinfo.training import train

    ds = load_dataset("digits")
    torch.manual_seed(0)
    model = build_model("mlp", (1, 8, 8), 10, widths=(32,))
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(ds.x_train, ds.y_train),
        batch_size=64,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    train(model, loader, epochs=2, lr=0.05, progress=False)
    model.eval()
    posts = {
        b: weightinfo.information(
            model, (ds.x_train, ds.y_train), beta=b, prior_scale=0.1, method="fisher", mc_samples=0
        )
        for b in (1e-4, 1e-3, 1e-2)
    }
    return model, ds.x_test[ds.y_test == 3][:32], posts


def test_effective_information_and_fisher_fall_as_beta_grows(digits_mlp):
    """§2: Σ = Q*'s variance grows with β, so I_eff (beyond 3 standard errors) and the activation Fisher's mean
    term (strictly) fall; I_eff ≤ ln N throughout. Test digits of one class (3), so I_eff is below its ceiling."""
    model, x, posts = digits_mlp
    layers = ["layers.0", "output"]
    E = {b: effective_information(model, x, p, layers, samples=64) for b, p in posts.items()}
    F = {
        b: activation_fisher(model, (x, torch.zeros(len(x))), p, "brightness", "layers.0")
        for b, p in posts.items()
    }
    betas = sorted(posts)
    for b in betas:
        for k in layers:
            assert E[b].per_layer[k] <= E[b].ceiling == math.log(len(x))
            assert math.isfinite(E[b].stderr[k])
    for lo, hi in zip(betas, betas[1:]):
        for k in layers:
            gap = E[lo].per_layer[k] - E[hi].per_layer[k]
            assert gap > 3 * math.hypot(E[lo].stderr[k], E[hi].stderr[k]), (lo, hi, k)
        assert F[lo].mean_term["layers.0"] > F[hi].mean_term["layers.0"]
        assert F[lo].per_layer["layers.0"] > F[hi].per_layer["layers.0"]
