"""The Hessian of the mean loss, H = ∇²_w (1/N) Σ_i ℓ(f_w(x_i), y_i): its diagonal, or all of it.

Lemma 2.4 of Achille, Paolini & Soatto splits H = G + R into the Gauss–Newton matrix G (= the exact
Fisher for the likelihoods of ``weightinfo._base.likelihoods``; ``products.ggn_vector_product``) and a residual
R = (1/N) Σ_i Σ_j [∇_z ℓ_i]_j ∇²_w z_ij weighted by the output gradients. Unlike G, H can be
indefinite, and diag H can have negative entries.

Methods
-------
``method`` is the algorithm. The result's ``kind`` is always ``"exact"``: the Hessian of the mean loss
takes no expectation over model labels.

``exact``
    rows of H by double backpropagation (Pearlmutter 1994) against unit vectors, batched with
    ``torch.autograd.grad(..., is_grads_batched=True)``: ≈ P/``chunk`` vectorised double-backward
    passes per data batch. Refused above ``EXACT_MAX_PARAMS`` (diagonal) or ``FULL_MAX_PARAMS``
    (full: P² float64 entries) parameters unless ``force=True``.
``hutchinson``
    diag H ≈ (1/m) Σ_j v_j ⊙ H v_j with Rademacher probes (Bekas, Kokiopoulou & Saad 2007),
    unbiased; ``n_probes`` Hessian-vector products, ``chunk`` of them per pass over the data.

Values are float64 and follow the mean-over-samples normalisation; the computation itself runs in
the model's dtype.

Distributed (``weightinfo._base.distributed``): each rank passes its own shard; the exact sums and N are
all-reduced in float64 and the Hutchinson products are those of ``CurvatureOperator`` (reduced, probes from
the same seed on every rank), so every rank gets the Hessian of the union.
"""

from __future__ import annotations

import torch
from torch import nn

from .._base import distributed as dist
from .._base.batches import DEFAULT_BATCH_SIZE
from .._base.checks import check_choice
from .._base.likelihoods import get_loss
from .hutchinson import hutchinson_diagonal
from .products import CurvatureOperator, _FlatModel, unflatten
from .result import Curvature, DenseBlock, DiagBlock

EXACT_MAX_PARAMS = 20_000
FULL_MAX_PARAMS = 5_000
# Subsets of ``vocabulary.STRUCTURES``; ``method`` is the algorithm (``"auto"`` picks one of METHODS).
STRUCTURES = ("diag", "full")
METHODS = ("exact", "hutchinson")

__all__ = ["EXACT_MAX_PARAMS", "FULL_MAX_PARAMS", "exact_hessian", "hessian"]


def exact_hessian(
    model: nn.Module,
    data,
    *,
    loss: str = "cross_entropy",
    diagonal_only: bool = False,
    chunk: int = 64,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> tuple[torch.Tensor, int]:
    """The exact Hessian of the mean loss as a float64 (P, P) matrix, or its diagonal (P,), and N.

    Rows come from double backpropagation against ``chunk`` unit vectors at a time (no parameter
    limit here: see ``hessian`` for the guarded entry point). The full matrix is symmetrised,
    (H + Hᵀ)/2.

    >>> lin = nn.Linear(2, 1, bias=False).double()
    >>> X = torch.tensor([[1.0, 0.0], [1.0, 2.0]], dtype=torch.float64)
    >>> exact_hessian(lin, (X, torch.zeros(2, 1, dtype=torch.float64)), loss="mse")  # XᵀX / N
    (tensor([[1., 1.],
            [1., 2.]], dtype=torch.float64), 2)
    """
    fm = _FlatModel(model)
    lo = get_loss(loss)
    P = fm.n_params
    chunk = max(1, int(chunk))
    theta = fm.theta()
    out = torch.zeros(P if diagonal_only else (P, P), dtype=torch.float64, device=fm.device)
    n = 0
    for x, y in fm.batches(data, batch_size):
        t = theta.detach().requires_grad_(True)
        with torch.enable_grad():
            z = fm.forward(t, x)
            lo.check_targets(z, y)
            (g,) = torch.autograd.grad(lo.per_sample(z, y).sum(), t, create_graph=True)
            for start in range(0, P, chunk):
                idx = torch.arange(start, min(start + chunk, P), device=fm.device)
                E = torch.zeros(idx.numel(), P, dtype=fm.dtype, device=fm.device)
                E[torch.arange(idx.numel(), device=fm.device), idx] = 1
                rows = _rows(g, t, E)
                if diagonal_only:
                    out[idx] += rows[torch.arange(idx.numel(), device=fm.device), idx].to(
                        torch.float64
                    )
                else:
                    out[idx] += rows.to(torch.float64)
        n += x.shape[0]
    if dist.active():  # each rank summed its shard: the union's sum, the global N
        red = dist.reduce_sums({"out": out, "n": n})
        out, n = red["out"], red["n"]
    out /= n
    if not diagonal_only:
        out = (out + out.t()) / 2
    return out, n


def _rows(g: torch.Tensor, t: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """E ∇g (rows of the Hessian for unit vectors E), vectorised when the graph supports it."""
    if not g.requires_grad:  # loss does not depend on the parameters at second order
        return torch.zeros_like(E)
    try:
        (rows,) = torch.autograd.grad(
            g, t, E, retain_graph=True, is_grads_batched=True, allow_unused=True
        )
    except RuntimeError:  # pragma: no cover - an op without a batching rule: one row at a time
        rows = torch.stack(
            [torch.autograd.grad(g, t, e, retain_graph=True, allow_unused=True)[0] for e in E]
        )
    return torch.zeros_like(E) if rows is None else rows


def hessian(
    model: nn.Module,
    data,
    *,
    structure: str = "diag",
    method: str = "auto",
    loss: str = "cross_entropy",
    n_probes: int = 100,
    seed: int = 0,
    force: bool = False,
    chunk: int = 64,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Curvature:
    """The Hessian of the mean loss as a ``Curvature`` (``curvature="hessian"``, ``kind="exact"``).

    ``structure="diag"`` gives one ``DiagBlock`` over all trainable parameters (``method="exact"``
    or ``"hutchinson"`` with ``n_probes`` probes and ``seed``, recorded as ``n_probes``/``seed``,
    with per-entry standard errors in ``.stderr``; the algorithm used is the result's ``method``; ``"auto"``, the default, is exact up to
    ``EXACT_MAX_PARAMS`` parameters and Hutchinson above);
    ``structure="full"`` one ``DenseBlock`` (exact only). Exact computations above
    ``EXACT_MAX_PARAMS`` (diag) / ``FULL_MAX_PARAMS`` (full) parameters raise ``ValueError`` unless
    ``force=True``.

    >>> lin = nn.Linear(2, 1, bias=False).double()
    >>> X = torch.tensor([[1.0, 0.0], [1.0, 2.0]], dtype=torch.float64)
    >>> h = hessian(lin, (X, torch.zeros(2, 1, dtype=torch.float64)), loss="mse")
    >>> h.diag["weight"], h.trace(), h.n_samples
    (tensor([[1., 2.]], dtype=torch.float64), 3.0, 2)
    """
    check_choice("structure", structure, STRUCTURES)
    check_choice("method", method, METHODS + ("auto",))
    lo = get_loss(loss)
    fm = _FlatModel(model)
    P = fm.n_params
    if method == "auto":
        method = "exact" if P <= EXACT_MAX_PARAMS or structure == "full" else "hutchinson"
    if method == "hutchinson" and structure != "diag":
        raise ValueError("method='hutchinson' estimates the diagonal only; use structure='diag'")
    if method == "exact" and not force:
        limit = EXACT_MAX_PARAMS if structure == "diag" else FULL_MAX_PARAMS
        if P > limit:
            hint = "method='hutchinson'" if structure == "diag" else "structure='diag'"
            raise ValueError(
                f"exact {structure} Hessian of a model with {P} parameters exceeds the limit "
                f"of {limit}; "
                f"use {hint} or pass force=True"
            )
    common = dict(
        curvature="hessian",
        kind="exact",
        structure=structure,
        loss=lo.name,
        layer_types={n: type(m).__name__ for n, m in model.named_modules()},
        param_order=list(fm.names),
    )
    if method == "hutchinson":
        op = CurvatureOperator(model, data, "hessian", loss=lo.name, batch_size=batch_size)
        est = hutchinson_diagonal(op, n_probes=n_probes, seed=seed)
        values = {k: v.clone() for k, v in unflatten(est.value, fm.shapes).items()}
        return Curvature(
            n_samples=int(op.n_samples),
            blocks=[DiagBlock(values)],
            method="hutchinson",
            n_probes=est.n_probes,
            seed=int(seed),
            stderr={k: v.clone() for k, v in unflatten(est.stderr, fm.shapes).items()},
            **common,
        )
    H, n = exact_hessian(
        model,
        data,
        loss=lo.name,
        diagonal_only=structure == "diag",
        chunk=chunk,
        batch_size=batch_size,
    )
    H = H.cpu()
    if structure == "diag":
        block = DiagBlock({k: v.clone() for k, v in unflatten(H, fm.shapes).items()})
    else:
        block = DenseBlock(list(fm.names), [fm.shapes[k] for k in fm.names], H)
    return Curvature(n_samples=n, blocks=[block], method="exact", **common)
