"""Fisher information and Gauss–Newton matrix of a model's weights: ``weightinfo.fisher`` / ``weightinfo.ggn``.

The Fisher of the paper (Achille, Paolini & Soatto 2019, Remark 2.6; labels drawn from the model, not the data):

    F = (1/N) Σ_i E_{y∼p_w(·|x_i)}[∇_w log p_w(y|x_i) ∇_w log p_w(y|x_i)ᵀ] = (1/N) Σ_i J_iᵀ Λ(z_i) J_i,

a **mean** over the N samples, with J_i = ∂f_w(x_i)/∂w and Λ the output Hessian of the likelihood
(``weightinfo._base.likelihoods``). ``kind`` chooses how the expectation over y is taken (the same three
values wherever ``kind`` appears; ``weightinfo.curvature.vocabulary``):

* ``"exact"``     every class: Λ = S Sᵀ, one backward pass per column of S (C for C classes);
* ``"mc"``        ``mc_samples`` labels drawn from the model per input, unbiased: E[F_mc] = F;
* ``"empirical"`` the data labels — the *empirical Fisher*, a different object (``kind="empirical"`` on the
  result, displayed as ``empirical_fisher``), never a stand-in for F.

For the three likelihoods offered the exact Fisher equals the generalised Gauss–Newton matrix of the loss,
so ``ggn(...)`` returns the same matrix labelled ``curvature="ggn"``. Sums are accumulated in float64.

Distributed (``weightinfo._base.distributed``): with an initialised process group each rank passes its own
shard and every rank gets the Fisher of the union — per-rank sums all-reduced in float64, divided by the global
N. ``kind="exact"``/``"empirical"`` equal the single-process result on the whole data (to float64 rounding);
for ``kind="mc"`` rank r draws its labels from a generator seeded with ``rank_seed(seed)`` (``seed`` itself on
rank 0), so the result is another unbiased draw and differs from the single-process one within its Monte Carlo
error.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from tqdm.auto import tqdm

from .._base import distributed as dist
from .._base import memory
from .._base.batches import count_batches, iter_batches, rows
from .._base.checks import check_choice, check_model, named_trainable
from .._base.likelihoods import LOSSES, get_loss
from .._base.vmapping import map_samples
from .persample import PerSampleEngine, quiet_vmap
from .result import Curvature, DenseBlock, DiagBlock
from .vocabulary import KINDS

# The structures computed here (a subset of ``vocabulary.STRUCTURES``; "filter" is derived from "diag").
STRUCTURES = ("diag", "kfac", "full")
# Above this many parameters a dense P × P matrix is refused (P² float64 = 800 MB at 10k).
FULL_MAX_PARAMS = 10_000
# Samples of the first batch on which the per-sample engine checks itself against a batch gradient.
_GUARD_SAMPLES = 7  # odd on purpose: unlikely to equal a sequence length or other axis


def fisher(
    model: nn.Module,
    data,
    *,
    kind: str = "exact",
    structure: str = "diag",
    loss: str = "cross_entropy",
    mc_samples: int = 1,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool | None = None,
    max_memory=None,
) -> Curvature:
    """Fisher information of the weights, averaged over the samples of ``data``.

    Parameters
    ----------
    model : an ``nn.Module`` in eval mode (BatchNorm/Dropout in training mode is an error).
    data : a DataLoader of ``(x, y)`` batches or a tuple ``(X, Y)`` (split into ``batch_size`` rows).
    kind : ``"exact"`` | ``"mc"`` | ``"empirical"`` (see module docstring).
    structure : ``"diag"`` (every weight), ``"kfac"`` (Kronecker blocks for Linear/Conv2d, diagonal blocks for
        every other parameter) or ``"full"`` (dense, at most ``FULL_MAX_PARAMS`` parameters).
    loss : ``"cross_entropy"`` | ``"bce_with_logits"`` | ``"mse"`` (unit-variance Gaussian, ℓ = ½‖y − f‖²).
    mc_samples : labels drawn per input for ``kind="mc"``; seed : seeds those draws.
    max_memory : None, or bytes (``"2GB"``) one batch may take: batches are split to fit, a ``MemoryError``
        if one sample does not (``weightinfo._base.memory``); an out-of-memory error on the device restarts
        the computation with half the batch.

    Returns
    -------
    Curvature
        ``.diag`` keyed like ``model.named_parameters()``; ``.trace()``, ``.per_layer()``, ``.logdet(δ)``.

    Examples
    --------
    Logistic regression, where the Fisher is Σ_i p_i(1−p_i) x_i x_iᵀ / N (one sample here):

    >>> import torch, weightinfo
    >>> m = torch.nn.Linear(2, 2, bias=False).double()
    >>> x, y = torch.tensor([[1.0, 2.0]], dtype=torch.float64), torch.tensor([0])
    >>> F = weightinfo.fisher(m, (x, y))
    >>> p = torch.softmax(m(x), 1)[0]
    >>> bool(torch.allclose(F.diag["weight"][0], p[0] * (1 - p[0]) * x[0] ** 2))
    True
    """
    check_choice("kind", kind, KINDS)
    check_choice("structure", structure, STRUCTURES)
    check_choice("loss", loss, LOSSES)
    if kind == "mc" and (int(mc_samples) != mc_samples or mc_samples < 1):
        raise ValueError(f"mc_samples must be a positive integer, got {mc_samples!r}")
    check_model(model)
    return memory.guarded(
        model,
        data,
        batch_size,
        max_memory,
        lambda d, bs: _fisher(model, d, kind, structure, loss, mc_samples, seed, bs, progress),
    )


def _fisher(
    model, data, kind, structure, loss, mc_samples, seed, batch_size, progress
) -> Curvature:
    common = dict(
        kind=kind,
        loss=loss,
        mc_samples=int(mc_samples),
        seed=seed,
        batch_size=batch_size,
        progress=progress,
    )
    mean_loss = None
    if structure == "diag":
        blocks, n, mean_loss = _diag_blocks(model, data, params=None, **common)
    elif structure == "full":
        blocks, n = _full_blocks(model, data, **common)
    else:
        from .kfac import kfac_blocks

        kron, n = kfac_blocks(
            model,
            data,
            loss=loss,
            kind=kind,
            mc_samples=int(mc_samples),
            seed=seed,
            batch_size=batch_size,
        )
        covered = {name for b in kron for name in b.names}
        rest = [k for k in named_trainable(model) if k not in covered]
        blocks = list(kron)
        if rest:
            diag, _, _ = _diag_blocks(model, data, params=rest, **common)
            blocks += diag
    out = _result(
        model,
        "fisher",
        kind,
        structure,
        loss,
        n,
        blocks,
        mc_samples if kind == "mc" else None,
        seed,
    )
    return dataclasses.replace(out, mean_loss=mean_loss)


def ggn(
    model: nn.Module,
    data,
    *,
    kind: str = "exact",
    structure: str = "diag",
    loss: str = "cross_entropy",
    mc_samples: int = 1,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool | None = None,
    max_memory=None,
) -> Curvature:
    """Generalised Gauss–Newton matrix G = (1/N) Σ_i J_iᵀ ∇²_z ℓ(z_i, y_i) J_i of the mean loss.

    For cross-entropy, BCE-with-logits and the unit-variance Gaussian (``mse``) the output Hessian does not
    depend on the label and G equals the exact Fisher (Lemma 2.4 of the paper); ``kind="mc"`` gives its unbiased
    Monte Carlo estimate (``kind`` is ``"exact"`` or ``"mc"``). Same arguments and result as :func:`fisher`,
    labelled ``curvature="ggn"``.
    """
    if kind == "empirical":
        raise ValueError(
            "the GGN has no 'empirical' kind; use fisher(kind='empirical') for the empirical Fisher"
        )
    F = fisher(
        model,
        data,
        kind=kind,
        structure=structure,
        loss=loss,
        mc_samples=mc_samples,
        seed=seed,
        batch_size=batch_size,
        progress=progress,
        max_memory=max_memory,
    )
    return dataclasses.replace(F, curvature="ggn")


def _result(model, curvature, kind, structure, loss, n, blocks, mc_samples, seed) -> Curvature:
    return Curvature(
        curvature=curvature,
        kind=kind,
        structure=structure,
        loss=loss,
        n_samples=n,
        blocks=blocks,
        layer_types={name: type(m).__name__ for name, m in model.named_modules()},
        param_order=list(named_trainable(model)),
        mc_samples=mc_samples,
        seed=seed,
    )


def _directions(lossfn, z, y, kind, mc_samples, gen) -> torch.Tensor:
    """Output directions (R, B, K) whose squared per-sample gradients sum to the requested Fisher."""
    if kind == "exact":
        return lossfn.hessian_sqrt(z).permute(2, 0, 1)
    if kind == "empirical":
        return lossfn.grad(z, y).unsqueeze(0)
    draws = [lossfn.sampled_grad(z, gen) for _ in range(mc_samples)]
    return torch.stack(draws) / mc_samples**0.5


def _batches(model, data, loss, batch_size, progress):
    """Validated batches with a progress bar (``progress=None``: shown only on a terminal)."""
    device = next(model.parameters()).device
    lossfn = get_loss(loss)
    it = iter_batches(data, device=device, batch_size=batch_size)
    total = count_batches(data, batch_size)
    disable = None if progress is None else not progress
    for x, y in tqdm(it, total=total, desc="curvature", unit="batch", disable=disable, leave=False):
        yield lossfn, x, y


def _diag_blocks(model, data, *, params, kind, loss, mc_samples, seed, batch_size, progress):
    engine = PerSampleEngine(model)
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(dist.rank_seed(seed))
    n = 0
    # Σ_i ℓ_i on the model's device (float64), read once after the pass.
    total = torch.zeros((), dtype=torch.float64, device=next(model.parameters()).device)
    for lossfn, x, y in _batches(model, data, loss, batch_size, progress):
        # The engine checks its per-sample gradients against a batch gradient once, on the first batch:
        # give it a few samples only, so that the check's extra backward pass costs almost nothing.
        split = _GUARD_SAMPLES if n == 0 and x.shape[0] > 2 * _GUARD_SAMPLES else x.shape[0]
        for xs, ys in ((x[:split], rows(y, 0, split)), (x[split:], rows(y, split))):
            if xs.shape[0] == 0:
                continue
            with torch.enable_grad(), engine.record(xs.shape[0]):
                z = model(xs)
            lossfn.check_targets(z, ys)
            with torch.no_grad():  # L_D at w* for free: the outputs are here anyway
                total += lossfn.per_sample(z, ys).sum(dtype=torch.float64)
            engine.accumulate(xs, z, _directions(lossfn, z, ys, kind, mc_samples, gen))
        n += x.shape[0]
    keep = params if params is not None else list(engine.sums)
    total = float(total)
    if dist.active():  # each rank summed its shard: the union's sums, the global N
        red = dist.reduce_sums({**{k: engine.sums[k] for k in keep}, "\0n": n, "\0loss": total})
        n, total = red.pop("\0n"), red.pop("\0loss")
        sums = red
    else:
        sums = {k: engine.sums[k] for k in keep}
    return [DiagBlock({k: sums[k] / n for k in keep})], n, total / n


def _full_blocks(model, data, *, kind, loss, mc_samples, seed, batch_size, progress):
    from torch.func import functional_call, jacrev

    params = {k: p.detach() for k, p in named_trainable(model).items()}
    P = sum(p.numel() for p in params.values())
    if P > FULL_MAX_PARAMS:
        raise ValueError(
            f"structure='full' needs a {P}×{P} matrix; refused above {FULL_MAX_PARAMS} parameters. "
            "Use structure='diag' or 'kfac', or the matrix-free estimators."
        )
    names = list(params)
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(dist.rank_seed(seed))
    M = torch.zeros(P, P, dtype=torch.float64, device=next(iter(params.values())).device)

    def f(p, xi):
        return functional_call(model, p, (xi.unsqueeze(0),)).reshape(-1)

    n = 0
    for lossfn, x, y in _batches(model, data, loss, batch_size, progress):
        with torch.no_grad():
            z = model(x)
        lossfn.check_targets(z, y)
        with quiet_vmap():
            jac = map_samples(jacrev(f), in_dims=(None, 0))(params, x)  # name -> (B, K, *shape)
        J = torch.cat([jac[k].reshape(x.shape[0], jac[k].shape[1], -1) for k in names], dim=2).to(
            torch.float64
        )
        D = _directions(lossfn, z, y, kind, mc_samples, gen).to(torch.float64)  # (R, B, K)
        U = torch.einsum("rbk,bkp->brp", D, J).reshape(-1, P)
        M += U.T @ U
        n += x.shape[0]
    if dist.active():
        red = dist.reduce_sums({"M": M, "n": n})
        M, n = red["M"], red["n"]
    shapes = [params[k].shape for k in names]
    return [DenseBlock(names, shapes, M / n)], n
