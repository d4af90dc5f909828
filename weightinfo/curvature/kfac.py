"""Kronecker-factored approximate curvature (KFAC) of ``nn.Linear`` and ``nn.Conv2d`` layers.

The Fisher of a model with likelihood ℓ (``weightinfo._base.likelihoods``) is the **mean** over
samples

    F = (1/N) Σ_n J_nᵀ Λ_n J_n,   Λ_n = ∇²_z ℓ(z_n) = E_{y∼p(·|z_n)}[∇_z ℓ ∇_z ℓᵀ],

and KFAC (Martens & Grosse 2015, "Optimizing neural networks with Kronecker-factored approximate
curvature", ICML) approximates the block of one layer s = W ã by a Kronecker product. W is the
weight as an out × in matrix (Conv2d ``(O, C, kh, kw)``: O × C·kh·kw, i.e. ``weight.reshape(O,
-1)``) and ã = [a; 1] the layer input, with a trailing 1 when the (trainable) bias is folded in as
the last input column. In the row-major convention of ``KronBlock``, F[(o,i),(o',i')] ≈ G[o,o']
A[i,i'] with

    A = (1/(N R)) Σ_n Σ_r ã_{n,r} ã_{n,r}ᵀ                       (in[+1]) × (in[+1]),
    G = (1/N) Σ_n Σ_r Σ_c g_{n,r,c} g_{n,r,c}ᵀ,                  out × out,
    g_{n,r,c} = (∂z_n/∂s_{n,r})ᵀ u_{n,c},

where r runs over the R positions at which the weight is applied to sample n and the vectors
u_{n,c} ∈ R^K (K numbers of model output per sample) depend on ``kind``:

* ``"exact"``: the columns of S_n with S_n S_nᵀ = Λ_n (``Loss.hessian_sqrt``), so that
  Σ_c u uᵀ = Λ_n. This is the type-2 Fisher, equal to the generalised Gauss–Newton matrix for the
  three losses;
* ``"mc"``: u_{n,c} = ∇_z ℓ(z_n, ỹ_{n,c}) for ``mc_samples`` labels ỹ drawn from the model
  (``Loss.sampled_grad``); G is further divided by ``mc_samples`` and is unbiased for the exact G;
* ``"empirical"``: one column, u_n = ∇_z ℓ(z_n, y_n) at the data label (empirical Fisher).

g is the output gradient of the **per-sample** loss ℓ_n (not of a batch mean), so G ⊗ A
approximates the mean Fisher F in nats per (weight unit)²; A carries the units of the layer input
squared, G those of (nats / layer output)². With these normalisations KFAC is exact for a single
``Linear`` layer on one sample (N = R = 1): there J = I_K ⊗ ãᵀ and Jᵀ Λ J = Λ ⊗ ã ãᵀ = G ⊗ A.

Weight sharing (R > 1) follows **KFAC-expand** (Grosse & Martens 2016, "A Kronecker-factored
approximate Fisher matrix for convolution layers", ICML; Eschenhagen et al. 2023 for general
linear weight-sharing layers): each shared position counts like an extra sample in A (averaged)
and its output gradient is summed into G. The positions are

* Conv2d: the O1·O2 output locations (unfolded patches, with the module's padding, padding mode,
  stride, dilation and ``padding="same"``);
* Linear on inputs (B, ..., D): every position of the ``...`` dimensions (the T tokens of a
  (B, T, D) sequence);
* a module called several times in one forward pass: every position of every call.

A is therefore divided by the total number of input rows (N·R).

Scope: one block per ``nn.Linear`` / ``nn.Conv2d`` module whose weight is trainable; its bias is
folded in only if it is trainable too. Parameters of other modules (and the bias of a layer with a
frozen weight) are **not** covered: the caller covers them with another structure. Grouped
convolutions (``groups > 1``) and a parameter shared by two different modules raise
``NotImplementedError``. The model must treat samples independently (eval mode, ``check_model``).
For ``kind="mc"`` the labels are drawn batch after batch, ``mc_samples`` draws per batch, from one
``torch.Generator`` seeded with ``seed``: reproducible for the same data order and batching.

Distributed (``weightinfo._base.distributed``): each rank passes its own shard; Σ ã ãᵀ, the row count,
Σ g gᵀ and N are all-reduced in float64, so every rank gets the factors of the union (equal to the
single-process ones for ``"exact"``/``"empirical"``; ``"mc"`` draws with ``rank_seed(seed)`` per rank).

Relation to curvlinops' ``KFACLinearOperator`` (3.0.1, ``kfac_approx="expand"``,
``separate_weight_and_bias=False``), checked in the tests: its ``_input_covariances`` equal A, and
its ``_gradient_covariances`` for a 2-d model output (N, K) with ``reduction="sum"`` are N·G for
cross-entropy and BCE, 2N·G for ``MSELoss`` type-2 and MC (torch's squared error has no ½) and 4N·G
for the empirical MSE Fisher; with ``reduction="mean"`` they are further divided by N, and for
``MSELoss``/``BCEWithLogitsLoss`` also by K. For a module called c times per forward curvlinops
sums the per-call input covariances (c·A). BackPACK's ``KFLR`` (``CrossEntropyLoss`` with
``reduction="mean"``) gives exactly A (weight part) and G. The factors are computed here with
hooks, so neither library is a runtime dependency.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn
from torch.nn import functional as F

from .._base import distributed as dist
from .._base.batches import DEFAULT_BATCH_SIZE, iter_batches
from .._base.checks import check_choice, check_model
from .._base.likelihoods import get_loss
from .result import KronBlock
from .vocabulary import KINDS

_SUPPORTED = (nn.Linear, nn.Conv2d)


class _Layer:
    """Running sums of one layer: Σ ã ãᵀ (with its row count) and Σ g gᵀ, in float64."""

    def __init__(self, name: str, module: nn.Module, weight_name: str, bias_name: str | None):
        self.name, self.module = name, module
        self.weight_name, self.bias_name = weight_name, bias_name
        self.A_sum: torch.Tensor | None = None
        self.rows = 0
        self.G_sum: torch.Tensor | None = None

    def input_rows(self, x: torch.Tensor) -> torch.Tensor:
        """Layer input as rows ã (one per sample and shared position), shape (rows, in[+1])."""
        m = self.module
        if isinstance(m, nn.Conv2d):
            if m.padding_mode == "zeros":
                x = F.pad(x, m._reversed_padding_repeated_twice)
            else:
                x = F.pad(x, m._reversed_padding_repeated_twice, mode=m.padding_mode)
            # (B, C·kh·kw, L), channel-major like weight.reshape(O, -1); rows = (b, location).
            patches = F.unfold(x, m.kernel_size, dilation=m.dilation, stride=m.stride)
            rows = patches.transpose(1, 2).reshape(-1, patches.shape[1])
        else:
            rows = x.reshape(-1, x.shape[-1])
        rows = rows.detach().to(torch.float64)
        if self.bias_name is not None:
            rows = torch.cat([rows, rows.new_ones(rows.shape[0], 1)], dim=1)
        return rows

    def add_input(self, x: torch.Tensor) -> None:
        rows = self.input_rows(x)
        aat = rows.T @ rows
        self.A_sum = aat if self.A_sum is None else self.A_sum + aat
        self.rows += rows.shape[0]

    def add_grad_output(self, g: torch.Tensor) -> None:
        if isinstance(self.module, nn.Conv2d):  # (B, O, O1, O2) -> rows (b, o1, o2)
            g = g.movedim(1, -1)
        g = g.detach().reshape(-1, g.shape[-1]).to(torch.float64)
        ggt = g.T @ g
        self.G_sum = ggt if self.G_sum is None else self.G_sum + ggt


def _layers(model: nn.Module) -> list[_Layer]:
    """One ``_Layer`` per Linear/Conv2d with a trainable weight (``named_parameters`` names)."""
    names = {id(p): n for n, p in model.named_parameters()}
    seen: dict[int, str] = {}
    layers = []
    for mod_name, m in model.named_modules():
        if not isinstance(m, _SUPPORTED) or not m.weight.requires_grad:
            continue
        if isinstance(m, nn.Conv2d) and m.groups != 1:
            raise NotImplementedError(
                f"layer {mod_name!r}: KFAC of grouped convolutions (groups={m.groups}) "
                "is not supported"
            )
        params = [m.weight] + ([m.bias] if m.bias is not None and m.bias.requires_grad else [])
        for p in params:
            if id(p) in seen:
                raise NotImplementedError(
                    f"layer {mod_name!r} shares parameter {seen[id(p)]!r} with another module; "
                    "KFAC of parameters tied across modules is not supported"
                )
            seen[id(p)] = names[id(p)]
        bias_name = names[id(params[1])] if len(params) == 2 else None
        layers.append(_Layer(mod_name, m, names[id(m.weight)], bias_name))
    return layers


def _forward_hook(layer: _Layer, module, inputs, output):
    layer.add_input(inputs[0])
    if output.requires_grad:
        # A tensor hook (not a module backward hook) also sees the gradient w.r.t. the layer output
        # when a following activation modifies that output in place (pytorch issue 61519).
        output.register_hook(layer.add_grad_output)


def kfac_blocks(
    model: nn.Module,
    data,
    *,
    loss: str = "cross_entropy",
    kind: str = "exact",
    mc_samples: int = 1,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> tuple[list[KronBlock], int]:
    """KFAC blocks G ⊗ A of every trainable ``nn.Linear`` / ``nn.Conv2d`` layer, and the count N.

    See the module docstring for the formulas (Martens & Grosse 2015; KFAC-expand of Grosse &
    Martens 2016 for convolutions and other weight sharing). The blocks approximate the **mean**
    Fisher (1/N) Σ_n J_nᵀ Λ_n J_n of the likelihood ``loss``, in float64, keyed by the model's
    parameter names.

    Parameters
    ----------
    model : the network, in eval mode; called once per batch of ``data``.
    data : ``(X, Y)`` tensors or an iterable of ``(x, y)`` batches (``iter_batches``).
    loss : ``"cross_entropy"``, ``"bce_with_logits"`` or ``"mse"`` (unit-variance Gaussian, Λ = I).
    kind : ``"exact"`` (type-2 Fisher = GGN, one backward pass per column of Λ's square root),
        ``"mc"`` (``mc_samples`` sampled labels per input, seeded by ``seed``) or ``"empirical"``.
    mc_samples : labels drawn per input for ``kind="mc"`` (ignored by the other kinds).
    seed : seed of the label sampler (``kind="mc"`` only).
    batch_size : rows per batch when ``data`` is an ``(X, Y)`` tuple. The result does not depend
        on it except through the order of the ``kind="mc"`` draws.

    Returns
    -------
    (blocks, N) : one ``KronBlock`` per layer, in ``model.named_modules()`` order, and the number
        of samples N.

    Raises
    ------
    ValueError : unknown ``loss``/``kind``, bad ``mc_samples``, empty or malformed data, or a
        model without a trainable Linear/Conv2d layer.
    NotImplementedError : grouped convolutions, parameters tied across modules.
    """
    check_model(model)
    check_choice("kind", kind, KINDS)
    lik = get_loss(loss)
    if kind == "mc":
        if isinstance(mc_samples, bool) or int(mc_samples) != mc_samples or mc_samples < 1:
            raise ValueError(f"mc_samples must be a positive integer, got {mc_samples!r}")
        mc_samples = int(mc_samples)
    else:
        mc_samples = 1  # ignored by the deterministic kinds, as in ``fisher``
    layers = _layers(model)
    if not layers:
        raise ValueError(
            "model has no nn.Linear / nn.Conv2d layer with a trainable weight: nothing for KFAC"
        )
    weights = [lay.module.weight for lay in layers]
    device = weights[0].device
    generator = None
    if kind == "mc":
        generator = torch.Generator(device=device).manual_seed(dist.rank_seed(int(seed)))

    handles = [lay.module.register_forward_hook(partial(_forward_hook, lay)) for lay in layers]
    n = 0
    try:
        for x, y in iter_batches(data, device=device, batch_size=batch_size):
            with torch.enable_grad():
                z = model(x)
                lik.check_targets(z, y)
                B = z.shape[0]
                zf = z.reshape(B, -1)
                if kind == "exact":
                    S = lik.hessian_sqrt(z).to(zf.dtype)  # (B, K, R): Λ = S Sᵀ
                    columns = [S[:, :, c] for c in range(S.shape[2])]
                elif kind == "mc":
                    columns = [
                        lik.sampled_grad(z, generator).to(zf.dtype) for _ in range(mc_samples)
                    ]
                else:
                    columns = [lik.grad(z, y).to(zf.dtype)]
                for c, u in enumerate(columns):
                    # Backpropagating u through the batch gives every sample its own (∂z_n/∂s)ᵀ u_n,
                    # since samples do not interact; the layer hooks collect those output gradients.
                    torch.autograd.grad(
                        zf,
                        weights,
                        grad_outputs=u,
                        retain_graph=c < len(columns) - 1,
                        allow_unused=True,
                    )
            n += B
    finally:
        for h in handles:
            h.remove()

    if dist.active():  # each rank summed its shard: reduce to the union's sums and counts
        sums: dict = {"n": n}
        for i, lay in enumerate(layers):
            d_in = lay.module.weight[0].numel() + (lay.bias_name is not None)
            d_out = lay.module.weight.shape[0]
            zA = torch.zeros(d_in, d_in, dtype=torch.float64, device=device)
            zG = torch.zeros(d_out, d_out, dtype=torch.float64, device=device)
            sums[f"A{i}"] = zA if lay.A_sum is None else lay.A_sum
            sums[f"G{i}"] = zG if lay.G_sum is None else lay.G_sum
            sums[f"r{i}"] = lay.rows
        red = dist.reduce_sums(sums)
        n = red["n"]
        for i, lay in enumerate(layers):
            lay.rows = red[f"r{i}"]
            lay.A_sum = red[f"A{i}"] if lay.rows else None
            lay.G_sum = red[f"G{i}"]

    blocks = []
    for lay in layers:
        d_in = lay.module.weight[0].numel() + (lay.bias_name is not None)
        d_out = lay.module.weight.shape[0]
        A = (
            lay.A_sum / lay.rows
            if lay.A_sum is not None
            else torch.zeros(d_in, d_in, dtype=torch.float64, device=device)
        )
        G = (
            lay.G_sum / (n * mc_samples)
            if lay.G_sum is not None
            else torch.zeros(d_out, d_out, dtype=torch.float64, device=device)
        )
        blocks.append(
            KronBlock(
                weight_name=lay.weight_name,
                bias_name=lay.bias_name,
                weight_shape=lay.module.weight.shape,
                A=A.to(device),
                G=G.to(device),
            )
        )
    return blocks, n
