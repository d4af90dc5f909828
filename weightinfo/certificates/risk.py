"""Gibbs risks of Q = N(μ, diag σ²) by Monte Carlo (Langford & Caruana 2002), bounded cross-entropy, data helpers.

* :func:`gibbs_errors_standard`: m networks w_j ∼ Q, each evaluated on the **whole** set (0-1 loss), batched over
  draws with ``torch.func.vmap`` (a plain loop for models vmap cannot run). Feeds the standard MC bound
  kl⁻¹(L̂_m, ln(1/δ′)/m).
* :func:`gibbs_error_per_example`: an independent weight draw for every (example, repetition); with the local
  reparameterisation in ``nn.Linear`` layers on 2-D input this is exact (each example's output has exactly its
  law under Q, and examples are independent). Feeds kl⁻¹(L̂, ln(1/δ′)/(m·n)). Models with noisy parameters
  outside such layers (conv nets) raise ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn
from torch.func import functional_call, vmap

from .._base.batches import iter_batches
from ..posterior.sampling import find_local_reparam_modules, local_reparam_forward

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
        eps = torch.randn((k, *mu.shape), generator=gen, dtype=mu.dtype, device=mu.device)
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
        errs.append(_errors(z, y.unsqueeze(0)).mean(dim=1))
    return torch.cat(errs)


def exact_local_modules(model: nn.Module, x: torch.Tensor, names) -> list[str]:
    """Linear modules on 2-D input covering every noisy parameter, else ``ValueError``."""
    modules = find_local_reparam_modules(model, x[:2], mode="exact", names=names)
    covered = set()
    for mn in modules:
        covered.update(
            f"{mn}.{k}" if mn else k for k, _ in model.get_submodule(mn).named_parameters()
        )
    missing = [n for n in names if n not in covered]
    if missing:
        raise ValueError(
            "mc='per_example' needs every noisy parameter in an nn.Linear layer on 2-D input (the local "
            f"reparameterisation is exact only there); not so for {missing[:4]}. Use mc='standard' for "
            "convolutional networks."
        )
    return modules


@torch.no_grad()
def gibbs_error_per_example(
    model, x, y, mean, var, m: int, gen, *, batch_size: int = 4096
) -> tuple[float, int]:
    """Mean 0-1 loss over m·n independent (example, repetition) draws, and N = m·n."""
    modules = exact_local_modules(model, x, list(var))
    total, count = 0.0, 0
    for _ in range(int(m)):
        for start in range(0, x.shape[0], batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            z = local_reparam_forward(model, xb, mean, var, gen, modules=modules)
            total += float(_errors(z, yb).sum())
            count += xb.shape[0]
    return total / count, count


@torch.no_grad()
def mean_network_error(model, x, y, mean) -> float:
    """0-1 error of the posterior-mean network."""
    return float(_errors(functional_call(model, dict(mean), (x,)), y).mean())


@torch.no_grad()
def majority_vote_error(model, x, y, mean, std, k: int, gen) -> float:
    """0-1 error of the majority vote of k networks w_j ∼ Q (ties: lowest class)."""
    z = draw_logits(model, x, mean, std, k, gen)
    votes = torch.nn.functional.one_hot(z.argmax(-1), z.shape[-1]).sum(0)
    return float(_errors(votes.to(torch.float64), y).mean())
