"""KFAC blocks (``weightinfo.curvature.kfac``) against independent references, in float64.

References: the dense Fisher Jᵀ Λ J of a single layer (KFAC is exact there for one sample), KFAC
factors built by hand (layer inputs recorded explicitly, output Jacobians by autograd, Λ as the
autograd Hessian of a loss written here), BackPACK's ``KFLR`` and curvlinops' ``KFACLinearOperator``
(with the scalings documented in the module docstring).
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev
from torch.nn import functional as F

from weightinfo.curvature.kfac import kfac_blocks

DT = torch.float64


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(DT)
    yield
    torch.set_default_dtype(old)


# ---------------------------------------------------------------- references written independently


def nll(loss: str, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood of ONE sample, z of shape (K,)."""
    if loss == "cross_entropy":
        return -torch.log_softmax(z, 0)[y]
    if loss == "bce_with_logits":
        return F.binary_cross_entropy_with_logits(z, y, reduction="sum")
    return 0.5 * ((z - y) ** 2).sum()  # unit-variance Gaussian


def out_hessian(loss: str, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.autograd.functional.hessian(lambda t: nll(loss, t, y), z.detach())


def out_grad(loss: str, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.autograd.functional.jacobian(lambda t: nll(loss, t, y), z.detach())


def make_targets(loss: str, n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    if loss == "cross_entropy":
        return torch.randint(0, k, (n,), generator=gen)
    if loss == "bce_with_logits":
        return torch.randint(0, 2, (n, k), generator=gen).to(DT)
    return torch.randn(n, k, generator=gen)


def kron(block) -> torch.Tensor:
    return torch.kron(block.G, block.A)


def block_by_name(blocks, weight_name):
    return next(b for b in blocks if b.weight_name == weight_name)


def patches(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """Rows (sample, location) of the input patches in weight.reshape(O, -1) order, obtained by
    running the conv configuration itself with an identity kernel (all padding modes)."""
    C, kh, kw = conv.weight.shape[1:]
    d = C * kh * kw
    ident = copy.deepcopy(conv)
    ident.out_channels = d
    ident.weight = nn.Parameter(torch.eye(d).reshape(d, C, kh, kw))
    ident.bias = None
    with torch.no_grad():
        p = ident(x)  # (B, d, O1, O2)
    return p.movedim(1, -1).reshape(-1, d)


def hand_kfac_sequential(model: nn.Sequential, X, Y, loss: str) -> dict[str, tuple]:
    """KFAC factors of every Linear/Conv2d of a Sequential, sample by sample.

    A = mean over rows (sample × position) of ã ãᵀ, G = (1/N) Σ_n Σ_p J_pᵀ Λ_n J_p with J_p the
    Jacobian of the output z_n w.r.t. the layer output at position p (rest of the net by autograd).
    """
    mods = list(model)
    acc: dict[str, list] = {}
    N = X.shape[0]
    for n in range(N):
        h = X[n : n + 1]
        for li, m in enumerate(mods):
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                rows = patches(m, h) if isinstance(m, nn.Conv2d) else h.reshape(-1, h.shape[-1])
                rows = torch.cat([rows, torch.ones(rows.shape[0], 1)], 1)
                s = m(h).detach()
                rest = nn.Sequential(*mods[li + 1 :])
                J = jacrev(lambda t, rest=rest: rest(t.clone()).reshape(-1))(s)  # (K, *s.shape)
                K = J.shape[0]
                if isinstance(m, nn.Conv2d):
                    J = J.reshape(K, s.shape[1], -1).permute(2, 0, 1)  # (P, K, O)
                else:
                    J = J.reshape(K, -1, s.shape[-1]).permute(1, 0, 2)
                z = model(X[n : n + 1]).reshape(-1)
                Lam = out_hessian(loss, z, Y[n])
                Gn = torch.einsum("pko,kl,plq->oq", J, Lam, J)
                a, g, r = acc.get(str(li), (0.0, 0.0, 0))
                acc[str(li)] = (a + rows.T @ rows, g + Gn, r + rows.shape[0])
            h = m(h)
    return {f"{k}.weight": (a / r, g / N) for k, (a, g, r) in acc.items()}


def mlp(gen_seed=0, k=3, inplace=True):
    torch.manual_seed(gen_seed)
    return nn.Sequential(
        nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 5), nn.ReLU(inplace=inplace), nn.Linear(5, k)
    ).eval()


def mlp_problem(loss, n, seed):
    """``mlp()`` with ``n`` inputs and targets for ``loss`` drawn from a generator seeded ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    model = mlp()
    X = torch.randn(n, 4, generator=gen)
    return model, X, make_targets(loss, n, 3, gen)


def cnn(k=3, padding_mode="reflect"):
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(3, 4, (2, 3), stride=2, padding=1, dilation=(1, 2), padding_mode=padding_mode),
        nn.Tanh(),
        nn.Flatten(),
        nn.Linear(4 * 3 * 2, k),
    ).eval()


# ------------------------------------------------------------------------------ single layer


@pytest.mark.parametrize("loss", ["cross_entropy", "bce_with_logits", "mse"])
@pytest.mark.parametrize("kind", ["exact", "empirical"])
def test_single_linear_one_sample_is_exact(loss, kind):
    gen = torch.Generator().manual_seed(3)
    lin = nn.Linear(4, 3)
    X = torch.randn(1, 4, generator=gen)
    Y = make_targets(loss, 1, 3, gen)
    blocks, n = kfac_blocks(lin, (X, Y), loss=loss, kind=kind)
    assert n == 1 and len(blocks) == 1
    b = blocks[0]
    assert (b.weight_name, b.bias_name, b.weight_shape) == ("weight", "bias", lin.weight.shape)

    params = dict(lin.named_parameters())

    def z_of(w, bias):
        return functional_call(lin, {"weight": w, "bias": bias}, (X,))[0]

    Jw, Jb = jacrev(z_of, argnums=(0, 1))(params["weight"], params["bias"])  # (K,O,I), (K,O)
    J = torch.cat([Jw, Jb.unsqueeze(-1)], -1).reshape(3, -1)  # row-major (o, i) with bias column
    z = lin(X)[0]
    if kind == "exact":
        M = out_hessian(loss, z, Y[0])
    else:
        g = out_grad(loss, z, Y[0])
        M = torch.outer(g, g)
    dense = J.T @ M @ J
    torch.testing.assert_close(kron(b), dense, rtol=0, atol=1e-10)


@pytest.mark.parametrize("loss", ["cross_entropy", "bce_with_logits", "mse"])
def test_single_linear_factors_hand_formula(loss):
    gen = torch.Generator().manual_seed(4)
    lin = nn.Linear(5, 3)
    N = 9
    X = torch.randn(N, 5, generator=gen)
    Y = make_targets(loss, N, 3, gen)
    (b,), n = kfac_blocks(lin, (X, Y), loss=loss)
    assert n == N
    A = (
        sum(torch.outer(torch.cat([x, torch.ones(1)]), torch.cat([x, torch.ones(1)])) for x in X)
        / N
    )
    G = sum(out_hessian(loss, lin(X[i : i + 1])[0], Y[i]) for i in range(N)) / N
    torch.testing.assert_close(b.A, A, rtol=0, atol=1e-10)
    torch.testing.assert_close(b.G, G, rtol=0, atol=1e-10)
    if loss == "mse":  # unit-variance Gaussian: Λ = I, so a single layer has G = I exactly
        torch.testing.assert_close(b.G, torch.eye(3), rtol=0, atol=1e-12)
    # empirical: G = mean of ∇ℓ ∇ℓᵀ at the data labels
    (be,), _ = kfac_blocks(lin, (X, Y), loss=loss, kind="empirical")
    Ge = sum(torch.outer(g, g) for g in (out_grad(loss, lin(X[i]), Y[i]) for i in range(N))) / N
    torch.testing.assert_close(be.G, Ge, rtol=0, atol=1e-10)
    torch.testing.assert_close(be.A, A, rtol=0, atol=1e-10)


def test_bias_free_frozen_and_float32():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4, bias=False), nn.Tanh(), nn.Linear(4, 2), nn.Linear(2, 2))
    model[2].bias.requires_grad_(False)
    model[3].weight.requires_grad_(False)  # weight frozen: no block, its bias is left uncovered
    X, Y = torch.randn(6, 3), torch.randint(0, 2, (6,))
    blocks, _ = kfac_blocks(model, (X, Y))
    assert [(b.weight_name, b.bias_name) for b in blocks] == [
        ("0.weight", None),
        ("2.weight", None),
    ]
    assert blocks[0].A.shape == (3, 3) and blocks[1].A.shape == (4, 4)
    torch.testing.assert_close(blocks[0].A, X.T @ X / 6)
    # a float32 model gives float64 factors close to the float64 computation
    b32, _ = kfac_blocks(copy.deepcopy(model).float(), (X.float(), Y))
    for b, c in zip(blocks, b32):
        assert c.A.dtype == DT and c.G.dtype == DT
        torch.testing.assert_close(c.G, b.G, rtol=1e-4, atol=1e-6)


# ----------------------------------------------------------------------------- MLP and CNN


@pytest.mark.parametrize("loss", ["cross_entropy", "bce_with_logits", "mse"])
def test_mlp_factors_hand_formula(loss):
    N = 7
    model, X, Y = mlp_problem(loss, N, seed=5)
    blocks, n = kfac_blocks(model, (X, Y), loss=loss)
    ref = hand_kfac_sequential(model, X, Y, loss)
    assert n == N and [b.weight_name for b in blocks] == list(ref)
    for b in blocks:
        A, G = ref[b.weight_name]
        torch.testing.assert_close(b.A, A, rtol=0, atol=1e-8)
        torch.testing.assert_close(b.G, G, rtol=0, atol=1e-8)
    _check_diag_layout(model, blocks)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_cnn_factors_hand_formula(loss):
    gen = torch.Generator().manual_seed(6)
    model = cnn()
    N = 4
    X = torch.randn(N, 2, 5, 5, generator=gen)
    Y = make_targets(loss, N, 3, gen)
    blocks, _ = kfac_blocks(model, (X, Y), loss=loss)
    ref = hand_kfac_sequential(model, X, Y, loss)
    assert [b.weight_name for b in blocks] == list(ref) == ["0.weight", "2.weight", "5.weight"]
    assert blocks[1].A.shape == (3 * 2 * 3 + 1, 3 * 2 * 3 + 1) and blocks[1].G.shape == (4, 4)
    for b in blocks:
        A, G = ref[b.weight_name]
        torch.testing.assert_close(b.A, A, rtol=0, atol=1e-8)
        torch.testing.assert_close(b.G, G, rtol=0, atol=1e-8)
    _check_diag_layout(model, blocks)


@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
def test_conv_same_padding_factors_hand_formula():
    """padding="same" with even kernels pads asymmetrically; also replicate/circular modes."""
    gen = torch.Generator().manual_seed(15)
    torch.manual_seed(15)
    model = nn.Sequential(
        nn.Conv2d(2, 3, (2, 3), padding="same"),
        nn.Tanh(),
        nn.Conv2d(3, 2, 2, padding="same", padding_mode="circular"),
        nn.Tanh(),
        nn.Conv2d(2, 2, 3, padding=1, padding_mode="replicate", stride=2),
        nn.Flatten(),
    ).eval()
    N = 3
    X = torch.randn(N, 2, 4, 4, generator=gen)
    Y = make_targets("mse", N, 8, gen)
    blocks, _ = kfac_blocks(model, (X, Y), loss="mse")
    ref = hand_kfac_sequential(model, X, Y, "mse")
    for b in blocks:
        A, G = ref[b.weight_name]
        torch.testing.assert_close(b.A, A, rtol=0, atol=1e-10)
        torch.testing.assert_close(b.G, G, rtol=0, atol=1e-10)


def test_conv_single_location_one_sample_is_exact():
    """A Conv2d whose kernel covers the whole image is a Linear layer on the flattened input:
    KFAC is exact for one sample, which pins the (C, kh, kw) order of A's input features."""
    gen = torch.Generator().manual_seed(7)
    conv = nn.Conv2d(2, 3, (2, 3))
    model = nn.Sequential(conv, nn.Flatten()).eval()
    X = torch.randn(1, 2, 2, 3, generator=gen)
    Y = torch.tensor([1])
    (b,), _ = kfac_blocks(model, (X, Y))
    Jw, Jb = jacrev(
        lambda w, c: functional_call(conv, {"weight": w, "bias": c}, (X,)).reshape(-1),
        argnums=(0, 1),
    )(conv.weight, conv.bias)
    J = torch.cat([Jw.reshape(3, 3, -1), Jb.unsqueeze(-1)], -1).reshape(3, -1)
    dense = J.T @ out_hessian("cross_entropy", model(X)[0], Y[0]) @ J
    torch.testing.assert_close(kron(b), dense, rtol=0, atol=1e-10)


def _check_diag_layout(model, blocks):
    diag = {}
    for b in blocks:
        d = b.diag()
        assert list(d) == b.names
        diag.update(d)
        dG, dA = torch.diagonal(b.G), torch.diagonal(b.A)
        # diag(G ⊗ A) = kron(diag G, diag A), reshaped as [weight | bias column]
        full = torch.kron(dG, dA).reshape(len(dG), len(dA))
        torch.testing.assert_close(d[b.weight_name].reshape(len(dG), -1), full[:, :-1])
        torch.testing.assert_close(d[b.bias_name], full[:, -1])
        torch.testing.assert_close(torch.kron(dG, dA), torch.diagonal(kron(b)))
    params = dict(model.named_parameters())
    assert list(diag) == list(params)
    assert all(diag[k].shape == p.shape for k, p in params.items())


# ------------------------------------------------------------------------- weight sharing


def test_linear_on_sequence_expand():
    """Linear on (B, T, D): the T positions are shared (KFAC-expand, A averaged over B·T rows)."""
    gen = torch.Generator().manual_seed(8)
    torch.manual_seed(8)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Flatten(), nn.Linear(5 * 4, 3)).eval()
    N = 4
    X = torch.randn(N, 5, 3, generator=gen)
    Y = make_targets("cross_entropy", N, 3, gen)
    blocks, _ = kfac_blocks(model, (X, Y))
    ref = hand_kfac_sequential(model, X, Y, "cross_entropy")
    for b in blocks:
        A, G = ref[b.weight_name]
        torch.testing.assert_close(b.A, A, rtol=0, atol=1e-10)
        torch.testing.assert_close(b.G, G, rtol=0, atol=1e-10)


class TwoCalls(nn.Module):
    """The same Linear applied to both halves of the input (two calls per forward)."""

    def __init__(self):
        super().__init__()
        self.shared = nn.Linear(3, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        return self.head(self.mix(self.shared(x[:, :3]), self.shared(x[:, 3:])))

    @staticmethod
    def mix(s1, s2):
        return torch.tanh(s1) * torch.sigmoid(s2)


def test_module_called_twice_expand():
    gen = torch.Generator().manual_seed(9)
    torch.manual_seed(9)
    model = TwoCalls().eval()
    N = 5
    X = torch.randn(N, 6, generator=gen)
    Y = make_targets("cross_entropy", N, 3, gen)
    blocks, _ = kfac_blocks(model, (X, Y))
    b = block_by_name(blocks, "shared.weight")
    one = torch.ones(N, 1)
    rows = torch.cat([torch.cat([X[:, :3], one], 1), torch.cat([X[:, 3:], one], 1)])
    torch.testing.assert_close(b.A, rows.T @ rows / (2 * N), rtol=0, atol=1e-12)
    G = torch.zeros(4, 4)
    for n in range(N):
        s1, s2 = model.shared(X[n, :3]), model.shared(X[n, 3:])
        J1, J2 = jacrev(lambda a, c: model.head(model.mix(a, c)), argnums=(0, 1))(s1, s2)
        Lam = out_hessian("cross_entropy", model(X[n : n + 1])[0], Y[n])
        G += J1.T @ Lam @ J1 + J2.T @ Lam @ J2
    torch.testing.assert_close(b.G, G / N, rtol=0, atol=1e-10)


# ------------------------------------------------------------------- peer libraries


@pytest.mark.filterwarnings("ignore:Full backward hook is firing:UserWarning")
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_backpack_kflr(reduction):
    """BackPACK KFLR with CrossEntropyLoss(reduction="mean") has exactly our A (weight part) and G;
    with reduction="sum" its G is N·G."""
    backpack = pytest.importorskip("backpack")
    from backpack.extensions import KFLR

    gen = torch.Generator().manual_seed(10)
    model = mlp(inplace=False)  # BackPACK's hooks do not allow in-place activations
    N = 8
    X = torch.randn(N, 4, generator=gen)
    Y = make_targets("cross_entropy", N, 3, gen)
    blocks, _ = kfac_blocks(model, (X, Y))
    ext = backpack.extend(copy.deepcopy(model))
    lossf = backpack.extend(nn.CrossEntropyLoss(reduction=reduction))
    with backpack.backpack(KFLR()):
        lossf(ext(X), Y).backward()
    scale = {"mean": 1.0, "sum": N}[reduction]
    linears = [(k, m) for k, m in ext.named_children() if isinstance(m, nn.Linear)]
    for b, (name, mod) in zip(blocks, linears, strict=True):
        assert b.weight_name == f"{name}.weight"
        G_bp, A_bp = mod.weight.kflr
        (Gb_bp,) = mod.bias.kflr
        torch.testing.assert_close(G_bp, scale * b.G, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(A_bp, b.A[:-1, :-1], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(Gb_bp, scale * b.G * b.A[-1, -1], rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(
            torch.kron(G_bp, A_bp), scale * torch.kron(b.G, b.A[:-1, :-1]), rtol=1e-10, atol=1e-12
        )


def _curvlinops(model, X, Y, loss_func, fisher_type):
    from curvlinops import KFACLinearOperator

    op = KFACLinearOperator(
        model,
        loss_func,
        [p for p in model.parameters() if p.requires_grad],
        [(X, Y)],
        fisher_type=fisher_type,
        check_deterministic=False,
        separate_weight_and_bias=False,
        kfac_approx="expand",
        num_data=X.shape[0],
    )
    op.compute_kronecker_factors()
    return op._input_covariances, op._gradient_covariances


# scale c with curvlinops' gradient covariance = c · our G, for a 2-d output (N, K)
_CURVLINOPS_SCALE = {
    ("cross_entropy", "sum", "type-2"): lambda N, K: N,
    ("cross_entropy", "sum", "empirical"): lambda N, K: N,
    ("bce_with_logits", "sum", "type-2"): lambda N, K: N,
    ("bce_with_logits", "sum", "empirical"): lambda N, K: N,
    ("mse", "sum", "type-2"): lambda N, K: 2 * N,  # torch's (z − y)², no ½
    ("mse", "sum", "empirical"): lambda N, K: 4 * N,  # ∇(z − y)² = 2(z − y)
    ("cross_entropy", "mean", "type-2"): lambda N, K: 1,
    ("bce_with_logits", "mean", "type-2"): lambda N, K: 1 / K,
    ("mse", "mean", "type-2"): lambda N, K: 2 / K,
    ("mse", "mean", "empirical"): lambda N, K: 4 / K,
}
_TORCH_LOSS = {
    "cross_entropy": nn.CrossEntropyLoss,
    "bce_with_logits": nn.BCEWithLogitsLoss,
    "mse": nn.MSELoss,
}


@pytest.mark.parametrize("key", list(_CURVLINOPS_SCALE), ids=lambda k: "-".join(k))
def test_curvlinops_scaling(key):
    pytest.importorskip("curvlinops")
    loss, reduction, ftype = key
    gen = torch.Generator().manual_seed(11)
    model = mlp(k=3)
    N, K = 6, 3
    X = torch.randn(N, 4, generator=gen)
    Y = make_targets(loss, N, K, gen)
    kind = {"type-2": "exact", "empirical": "empirical"}[ftype]
    blocks, _ = kfac_blocks(model, (X, Y), loss=loss, kind=kind)
    A_cl, G_cl = _curvlinops(model, X, Y, _TORCH_LOSS[loss](reduction=reduction), ftype)
    c = _CURVLINOPS_SCALE[key](N, K)
    for b in blocks:
        mod = b.weight_name.rpartition(".")[0]
        torch.testing.assert_close(A_cl[mod], b.A, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(G_cl[mod], c * b.G, rtol=1e-10, atol=1e-12)


def test_curvlinops_cnn_sequence_and_two_calls():
    """Conv2d (expand), Linear on sequences, and a module called twice (curvlinops sums the input
    covariances of the two calls: 2·A). curvlinops' patch extraction ignores ``padding_mode``
    (always zero padding), so its Conv2d factors differ from ours for reflect padding; ours are
    checked against the module's own padding in ``test_cnn_factors_hand_formula``."""
    pytest.importorskip("curvlinops")
    gen = torch.Generator().manual_seed(12)
    N = 4
    model = cnn(padding_mode="zeros")  # curvlinops 3.0.1 unfolds with zero padding only
    X = torch.randn(N, 2, 5, 5, generator=gen)
    Y = make_targets("cross_entropy", N, 3, gen)
    cases = [(model, X, Y, "cross_entropy", 1.0)]
    torch.manual_seed(12)
    seq = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).eval()
    Xs, Ys = torch.randn(N, 5, 3, generator=gen), torch.randn(N, 5, 2, generator=gen)
    cases.append((seq, Xs, Ys, "mse", 1.0))  # MSE over (N, T, 2): same Fisher as over N·T rows
    Xt = torch.randn(N, 6, generator=gen)
    cases.append(
        (TwoCalls().eval(), Xt, make_targets("cross_entropy", N, 3, gen), "cross_entropy", 2.0)
    )
    for m, x, y, loss, a_scale in cases:
        blocks, _ = kfac_blocks(m, (x, y), loss=loss)
        A_cl, G_cl = _curvlinops(m, x, y, _TORCH_LOSS[loss](reduction="sum"), "type-2")
        g_scale = {"cross_entropy": N, "mse": 2 * N}[loss]
        for b in blocks:
            mod = b.weight_name.rpartition(".")[0]
            a = a_scale if mod == "shared" else 1.0
            torch.testing.assert_close(A_cl[mod], a * b.A, rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(G_cl[mod], g_scale * b.G, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- Monte Carlo


@pytest.mark.parametrize("loss", ["cross_entropy", "bce_with_logits", "mse"])
def test_mc_converges_to_exact_and_is_seeded(loss):
    model, X, Y = mlp_problem(loss, 10, seed=13)
    exact, _ = kfac_blocks(model, (X, Y), loss=loss)

    def rel_err(blocks):
        num = sum(torch.linalg.norm(b.G - e.G) ** 2 for b, e in zip(blocks, exact))
        return float(num.sqrt() / sum(torch.linalg.norm(e.G) ** 2 for e in exact).sqrt())

    errs = {}
    for m in (1, 16, 256):
        mc, _ = kfac_blocks(model, (X, Y), loss=loss, kind="mc", mc_samples=m, seed=1)
        for b, e in zip(mc, exact):
            torch.testing.assert_close(b.A, e.A, rtol=0, atol=0)  # A does not depend on kind
        errs[m] = rel_err(mc)
    assert errs[256] < errs[16] < errs[1], errs
    assert errs[256] < 0.08, errs
    a, _ = kfac_blocks(model, (X, Y), loss=loss, kind="mc", mc_samples=3, seed=5)
    b, _ = kfac_blocks(model, (X, Y), loss=loss, kind="mc", mc_samples=3, seed=5)
    c, _ = kfac_blocks(model, (X, Y), loss=loss, kind="mc", mc_samples=3, seed=6)
    assert all(torch.equal(u.G, v.G) for u, v in zip(a, b))
    assert not all(torch.equal(u.G, v.G) for u, v in zip(a, c))


# --------------------------------------------------------------------- batching and errors


def test_batching_does_not_change_exact_result():
    model, X, Y = mlp_problem("cross_entropy", 9, seed=14)
    whole, n1 = kfac_blocks(model, (X, Y))
    parts, n2 = kfac_blocks(model, [(X[:4], Y[:4]), (X[4:], Y[4:])])
    small, n3 = kfac_blocks(model, (X, Y), batch_size=2, mc_samples=7)  # mc_samples: ignored
    assert n1 == n2 == n3 == 9
    for u, v, w in zip(whole, parts, small):
        torch.testing.assert_close(u.G, w.G, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(u.A, v.A, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(u.G, v.G, rtol=1e-12, atol=1e-14)


def test_bad_input():
    model = mlp()
    X, Y = torch.randn(4, 4), torch.randint(0, 3, (4,))
    with pytest.raises(ValueError, match="kind"):
        kfac_blocks(model, (X, Y), kind="hutchinson")
    with pytest.raises(ValueError, match="loss"):
        kfac_blocks(model, (X, Y), loss="poisson")
    with pytest.raises(ValueError, match="empty"):
        kfac_blocks(model, (X[:0], Y[:0]))
    with pytest.raises(ValueError, match="empty"):
        kfac_blocks(model, [])
    with pytest.raises(ValueError, match="mc_samples"):
        kfac_blocks(model, (X, Y), kind="mc", mc_samples=0)
    with pytest.raises(ValueError, match="mc_samples"):
        kfac_blocks(model, (X, Y), kind="mc", mc_samples=1.5)
    with pytest.raises(ValueError, match="Linear"):
        kfac_blocks(nn.Sequential(nn.LayerNorm(4)), (X, Y))
    with pytest.raises(NotImplementedError, match="grouped"):
        kfac_blocks(
            nn.Sequential(nn.Conv2d(2, 2, 1, groups=2), nn.Flatten()), (X.reshape(4, 2, 1, 2), Y)
        )
    tied = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 4))
    tied[2].weight = tied[0].weight
    with pytest.raises(NotImplementedError, match="tied"):
        kfac_blocks(tied, (X, Y))
    with pytest.raises(ValueError, match="labels"):
        kfac_blocks(model, (X, Y + 5))
