"""Small float64 problems shared by the curvature tests, and the dense reference computed the obvious way."""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, c: int = 3, n_classes: int = 4):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.head = nn.Linear(c * 4 * 4, n_classes)

    def forward(self, x):
        h = torch.relu(self.bn(self.conv1(x)))
        h = h + self.conv2(h)  # skip connection
        return self.head(torch.relu(h).flatten(1))


class AttentionBlock(nn.Module):
    """Tokens → LayerNorm → multi-head self-attention (+ residual) → mean pool → Linear."""

    def __init__(self, d: int = 4, n_classes: int = 3, batch_first: bool = True):
        super().__init__()
        self.embed = nn.Linear(2, d)
        self.norm = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, num_heads=2, batch_first=batch_first)
        self.batch_first = batch_first
        self.head = nn.Linear(d, n_classes)

    def forward(self, x):  # x: (B, T, 2)
        h = self.norm(self.embed(x))
        q = h if self.batch_first else h.transpose(0, 1)
        a, _ = self.attn(q, q, q, need_weights=False)
        if not self.batch_first:
            a = a.transpose(0, 1)
        return self.head((h + a).mean(1))


class ScaledMLP(nn.Module):
    """A parameter owned by the root module, used directly in forward (whole-model per-sample path)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.temperature = nn.Parameter(torch.tensor(1.3))
        self.out = nn.Linear(4, 3)

    def forward(self, x):
        return self.out(torch.tanh(self.fc(x))) * self.temperature


def _bn_stats(model: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(
                torch.randn(m.running_mean.shape, generator=g, dtype=torch.float64) * 0.1
            )
            m.running_var.copy_(
                torch.rand(m.running_var.shape, generator=g, dtype=torch.float64) + 0.5
            )
            m.weight.data.copy_(
                torch.randn(m.weight.shape, generator=g, dtype=torch.float64) * 0.3 + 1
            )
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g, dtype=torch.float64) * 0.3)
    return model


def make_case(name: str, n: int = 12, seed: int = 0):
    """Return (model in eval mode, float64, X, Y) for one of the named small problems."""
    torch.manual_seed(seed)
    if name == "mlp":
        model = nn.Sequential(
            nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 4)
        )
        X = torch.randn(n, 5)
        C = 4
    elif name == "cnn_bn":
        model = nn.Sequential(
            nn.Conv2d(2, 3, 3, padding=1),
            nn.BatchNorm2d(3),
            nn.ReLU(),
            nn.Conv2d(3, 4, 3, stride=2, groups=1),
            nn.Flatten(),
            nn.Linear(4 * 2 * 2, 3),
        )
        X = torch.randn(n, 2, 6, 6)
        C = 3
    elif name == "grouped_conv":
        model = nn.Sequential(
            nn.Conv2d(4, 4, 3, groups=2, dilation=1, padding=1),
            nn.Tanh(),
            nn.Conv2d(4, 2, 2, stride=2),
            nn.Flatten(),
            nn.Linear(2 * 2 * 2, 3),
        )
        X = torch.randn(n, 4, 4, 4)
        C = 3
    elif name == "mlp_bn1d":
        model = nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
        X = torch.randn(n, 5)
        C = 3
    elif name == "conv_many_positions":
        # ≥ 64 output positions: per-sample gradients from the grouped weight-gradient convolution
        model = nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1, groups=2),
            nn.Tanh(),
            nn.Conv2d(4, 3, 3, stride=1, dilation=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(3, 2, 2, stride=2, bias=False),
            nn.Flatten(),
            nn.Linear(2 * 5 * 5, 3),
        )
        X = torch.randn(n, 2, 10, 10)
        C = 3
    elif name == "residual":
        model = ResidualBlock()
        X = torch.randn(n, 1, 4, 4)
        C = 4
    elif name == "attention":
        model = AttentionBlock()
        X = torch.randn(n, 5, 2)
        C = 3
    elif name == "attention_seq_first":
        model = AttentionBlock(batch_first=False)
        X = torch.randn(n, 5, 2)
        C = 3
    elif name == "root_param":
        model = ScaledMLP()
        X = torch.randn(n, 3)
        C = 3
    else:
        raise KeyError(name)
    model = _bn_stats(model.double()).eval()
    Y = torch.randint(0, C, (n,))
    return model, X.double(), Y


def dense_jacobians(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """J[i, k, :] = ∂f_k(x_i)/∂w, one autograd.grad call per (sample, output): slow and obvious."""
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(X.shape[0]):
        z = model(X[i : i + 1])[0]
        per_k = []
        for k in range(z.shape[0]):
            g = torch.autograd.grad(z[k], params, retain_graph=True, allow_unused=True)
            per_k.append(
                torch.cat(
                    [
                        (torch.zeros_like(p) if gi is None else gi).reshape(-1)
                        for p, gi in zip(params, g)
                    ]
                )
            )
        rows.append(torch.stack(per_k))
    return torch.stack(rows)


def dense_fisher(
    model: nn.Module, X: torch.Tensor, Y: torch.Tensor | None = None, empirical: bool = False
):
    """F = (1/N) Σ_i J_iᵀ (diag p_i − p_i p_iᵀ) J_i (or the empirical Fisher with data labels Y)."""
    J = dense_jacobians(model, X)
    with torch.no_grad():
        p = torch.softmax(model(X), dim=1)
    Fm = torch.zeros(J.shape[2], J.shape[2], dtype=torch.float64)
    for i in range(X.shape[0]):
        if empirical:
            g = p[i] - torch.nn.functional.one_hot(Y[i], p.shape[1]).double()
            Lam = torch.outer(g, g)
        else:
            Lam = torch.diag(p[i]) - torch.outer(p[i], p[i])
        Fm += J[i].T @ Lam @ J[i]
    return Fm / X.shape[0]


def flat_diag(diag: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([v.reshape(-1) for v in diag.values()])


def tanh_mlp_data():
    """A 4-5-3 tanh MLP (float64, eval, seed 0) and 10 random inputs with class labels (seed 1)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double().eval()
    g = torch.Generator().manual_seed(1)
    X = torch.randn(10, 4, generator=g, dtype=torch.float64)
    Y = torch.randint(0, 3, (10,), generator=g)
    return model, (X, Y)
