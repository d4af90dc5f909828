"""Gibbs risks of Q = N(μ, diag σ²) by Monte Carlo (Langford & Caruana 2002), bounded cross-entropy, data helpers.

* :func:`gibbs_errors_standard`: m networks w_j ∼ Q, each evaluated on the **whole** set (0-1 loss), batched over
  draws with ``torch.func.vmap`` (a plain loop for models vmap cannot run). Feeds the standard MC bound
  kl⁻¹(L̂_m, ln(1/δ′)/m).
* :func:`gibbs_error_per_example`: an independent weight draw w_{ij} ∼ Q for every (example i, repetition j),
  L̂ = (1/(m·n)) Σ_{j,i} 1[argmax f(x_i; w_{ij}) ≠ y_i], N = m·n. Feeds kl⁻¹(L̂, ln(1/δ′)/(m·n)), which needs the
  m·n terms independent with mean E_Q[ℓ_i]: each example's logits must have exactly the law of f(x_i; w),
  w ∼ Q, and distinct (i, j) independent. Noisy parameters in ``nn.Linear`` layers on 2-D input use the local
  reparameterisation (exact there, per example); every other noisy parameter (conv kernels, ...) gets a real
  draw per example (:mod:`._per_example`: vmap over examples, grouped convolutions). MLPs take the fast
  all-local path. Local reparameterisation on conv feature maps (per-activation noise) is not a weight draw
  and never enters this estimator (:func:`exact_local_modules` refuses it).

Distributed (``weightinfo._base.distributed``): under an initialised process group each rank passes its own
shard of the set; error counts and example counts are all-reduced, so every rank gets the rate on the union
(global n). Whole-network draws w_j come from the shared ``gen`` (the same m networks on every rank: the
result equals the single-process one up to summation order); per-example draws come from
:func:`~weightinfo._base.distributed.rank_generator` (``gen`` advanced identically on every rank, then an
independent stream per rank), so the m·n_global (example, repetition) terms stay independent with mean
E_Q[ℓ_i] and the per-example bound kl⁻¹(L̂, ln(1/δ′)/(m·n_global)) stays valid.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn
from torch.func import functional_call, vmap

from .._base import devices
from .._base import distributed as dist
from .._base.batches import iter_batches
from ..posterior.sampling import local_reparam_forward
from ._per_example import local_cover, per_example_logits

#: p_min of the bounded cross-entropy (PBB class default).
P_MIN = 1e-4


def bounded_ce(z: torch.Tensor, y: torch.Tensor, p_min: float = P_MIN) -> torch.Tensor:
    """Mean of −ln(max(p_y, p_min)) / ln(1/p_min) ∈ [0, 1] (PBB's bounded cross-entropy)."""
    logp = torch.log_softmax(z, dim=-1).gather(-1, y.long().view(-1, 1)).squeeze(-1)
    return (-logp.clamp_min(math.log(p_min))).mean() / math.log(1.0 / p_min)


def as_tensors(data, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(X, Y)`` from a tuple or a DataLoader of ``(x, y)`` batches (concatenated on the CPU)."""
    if data is None:
        raise ValueError(f"{what} is required")
    if isinstance(data, (tuple, list)) and len(data) == 2 and torch.is_tensor(data[0]):
        x, y = data
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{what}: X has {x.shape[0]} rows, Y has {y.shape[0]}")
    else:
        xs, ys = zip(*iter_batches(data, device=torch.device("cpu"), batch_size=1024))
        x, y = torch.cat(xs), torch.cat(ys)
    if x.shape[0] == 0:
        raise ValueError(f"{what} is empty")
    return x, y


def _errors(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (z.argmax(-1) != y).to(torch.float64)


def _stack_draws(mean, std, k: int, gen) -> dict[str, torch.Tensor]:
    out = {}
    for name, mu in mean.items():
        eps = devices.randn((k, *mu.shape), generator=gen, dtype=mu.dtype, device=mu.device)
        out[name] = mu + std[name] * eps
    return out


@torch.no_grad()
def draw_logits(
    model: nn.Module,
    x: torch.Tensor,
    mean: Mapping[str, torch.Tensor],
    std: Mapping[str, torch.Tensor],
    k: int,
    gen: torch.Generator,
    *,
    chunk: int = 64,
) -> torch.Tensor:
    """Logits (k, n, C) of k networks w_j ∼ N(mean, std²), each on all of ``x`` (one draw per network)."""
    outs = []
    for start in range(0, k, chunk):
        c = min(chunk, k - start)
        params = _stack_draws(mean, std, c, gen)
        try:
            z = vmap(lambda p: functional_call(model, p, (x,)))(params)
        except Exception:  # noqa: BLE001 - models vmap cannot run: one draw at a time
            z = torch.stack(
                [
                    functional_call(model, {n: v[i] for n, v in params.items()}, (x,))
                    for i in range(c)
                ]
            )
        outs.append(z)
    return torch.cat(outs)


def gibbs_errors_standard(model, x, y, mean, std, m: int, gen, *, chunk: int = 64) -> torch.Tensor:
    """0-1 error rate of each of m networks w_j ∼ Q on the whole set: a float64 tensor of shape (m,)."""
    errs = []
    for start in range(0, m, chunk):
        z = draw_logits(model, x, mean, std, min(chunk, m - start), gen, chunk=chunk)
        errs.append(_errors(z, y.unsqueeze(0)).sum(dim=1))
    counts = torch.cat(errs)
    if dist.active():  # the same m networks on every rank: Σ of the shards' error counts, global n
        red = dist.reduce_sums({"errors": counts, "n": int(x.shape[0])})
        return red["errors"] / red["n"]
    return counts / x.shape[0]


def exact_local_modules(model: nn.Module, x: torch.Tensor, names) -> list[str]:
    """Linear modules on 2-D input covering every noisy parameter, else ``ValueError`` (conv nets): the
    all-local-reparameterisation path of :func:`gibbs_error_per_example` is exact only for such models."""
    modules, missing = local_cover(model, x, names)
    if missing:
        raise ValueError(
            "the local reparameterisation is exact only for noisy parameters in nn.Linear layers on 2-D "
            f"input, not for {missing[:4]} (per-activation noise on conv feature maps is not a weight "
            "draw); gibbs_error_per_example draws real per-example weights for such parameters."
        )
    return modules


@torch.no_grad()
def gibbs_error_per_example(
    model, x, y, mean, var, m: int, gen, *, batch_size: int = 4096
) -> tuple[float, int]:
    """Mean 0-1 loss over m·n independent (example, repetition) draws, and N = m·n.

    Each (example, repetition) runs the network on an independent w ∼ Q = N(mean, diag var) (parameters not
    in ``var`` keep their value): by the exact local reparameterisation where every noisy parameter is in
    an ``nn.Linear`` on 2-D input (MLPs), otherwise with real per-example draws of the other noisy parameters
    (:func:`._per_example.per_example_logits`). A deterministic function of ``gen``.

    Under a process group every rank draws from its own stream (``distributed.rank_generator``) and the sums
    are reduced: the rate over the union and N = m·n_global."""
    gen = dist.rank_generator(gen)
    modules, rest = local_cover(model, x, list(var))
    total, count = 0.0, 0
    for _ in range(int(m)):
        if rest:
            z = per_example_logits(
                model, x, mean, var, gen, modules=modules, rest=rest, batch_size=batch_size
            )
            total += float(_errors(z, y).sum())
            count += x.shape[0]
            continue
        for start in range(0, x.shape[0], batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            z = local_reparam_forward(model, xb, mean, var, gen, modules=modules)
            total += float(_errors(z, yb).sum())
            count += xb.shape[0]
    if dist.active():
        red = dist.reduce_sums({"total": total, "count": count})
        total, count = red["total"], red["count"]
    return total / count, count


@torch.no_grad()
def mean_network_error(model, x, y, mean) -> float:
    """0-1 error of the posterior-mean network (over the union of the ranks' shards under a process group)."""
    return _rate(_errors(functional_call(model, dict(mean), (x,)), y))


@torch.no_grad()
def majority_vote_error(model, x, y, mean, std, k: int, gen) -> float:
    """0-1 error of the majority vote of k networks w_j ∼ Q (ties: lowest class)."""
    z = draw_logits(model, x, mean, std, k, gen)
    votes = torch.nn.functional.one_hot(z.argmax(-1), z.shape[-1]).sum(0)
    return _rate(_errors(votes.to(torch.float64), y))


def _rate(errors: torch.Tensor) -> float:
    """Mean of a 0/1 vector; under a process group Σ and n are reduced (the union's rate)."""
    if dist.active():
        red = dist.reduce_sums({"e": float(errors.sum()), "n": int(errors.numel())})
        return red["e"] / red["n"]
    return float(errors.mean())
