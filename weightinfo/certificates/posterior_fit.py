"""Prior means and PBB-style posterior training (bounds.md §3.1–3.2).

* :func:`train_prior_mean`: the data-dependent prior mean — a copy of the model, re-initialised (``init_state``
  or the layers' own ``reset_parameters`` under the seed, never the given trained weights, which may have seen
  the bound set), trained by ERM (cross-entropy, SGD) on the prior set only.
* :func:`fit_posterior`: Q = N(μ, diag σ²) with μ and ρ = ln σ trained by Adam on a PAC-Bayes objective
  (``fquad``, ``flambda``, ``fclassic``) of the **bounded** cross-entropy, KL(Q‖P) in closed form and n the
  size of the bound set. Linear layers on 2-D input use the local reparameterisation (exact), other
  parameters one weight draw per batch.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ..posterior.sampling import find_local_reparam_modules, local_reparam_forward
from .risk import P_MIN, bounded_ce

OBJECTIVES = ("fquad", "flambda", "fclassic")


def param_means(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}


def train_prior_mean(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    init_state=None,
    epochs: int = 30,
    lr: float = 0.05,
    batch_size: int = 64,
    momentum: float = 0.9,
    seed: int = 0,
) -> dict[str, torch.Tensor]:
    """ERM (cross-entropy, SGD with ``momentum``, constant ``lr``) of a re-initialised copy of ``model``
    on ``data``; returns the eval-mode parameters (the prior mean w0)."""
    from ..train import train

    net = copy.deepcopy(model)
    torch.manual_seed(int(seed))
    if init_state is not None:
        net.load_state_dict(init_state, strict=False)
    else:
        for mod in net.modules():
            if hasattr(mod, "reset_parameters"):
                mod.reset_parameters()
    x, y = data
    gen = torch.Generator().manual_seed(int(seed))
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, generator=gen)
    train(
        net,
        loader,
        epochs=int(epochs),
        lr=lr,
        optimizer="sgd",
        momentum=float(momentum),
        seed=int(seed),
        progress=False,
    )
    return param_means(net.eval())


def kl_gaussian(mean, var, prior_mean, prior_var: float) -> torch.Tensor:
    """KL(N(mean, diag var) ‖ N(prior_mean, prior_var I)) in nats (differentiable, summed)."""
    total = 0.0
    for k, mu in mean.items():
        v = var[k]
        d = mu - prior_mean[k].to(mu.dtype)
        total = (
            total + 0.5 * (math.log(prior_var) - torch.log(v) + (v + d * d) / prior_var - 1.0).sum()
        )
    return total


def objective(
    name: str, loss: torch.Tensor, kl: torch.Tensor, n: int, delta: float
) -> torch.Tensor:
    """PBB training objective with B = KL + ln(2√n/δ) (bounds.md §1.1, §3.1)."""
    b = kl + math.log(2.0 * math.sqrt(n) / delta)
    r = b / (2 * n)
    if name == "fquad":
        return (torch.sqrt(loss + r) + torch.sqrt(r)) ** 2
    if name == "fclassic":
        return loss + torch.sqrt(r)
    if name == "flambda":
        # λ at its closed-form optimum for the current values (treated as a constant), kept in [1/√n, 1].
        lam = 2.0 / (math.sqrt(2 * n * float(loss.detach()) / float(b.detach()) + 1.0) + 1.0)
        lam = min(max(lam, 1.0 / math.sqrt(n)), 1.0)
        return loss / (1 - lam / 2) + b / (n * lam * (1 - lam / 2))
    raise ValueError(f"objective must be one of {OBJECTIVES}, got {name!r}")


def fit_posterior(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    *,
    prior_mean: dict[str, torch.Tensor],
    prior_scale: float,
    init_mean: dict[str, torch.Tensor],
    objective_name: str,
    n_bound: int,
    delta: float,
    epochs: int = 20,
    lr: float = 5e-3,
    batch_size: int = 128,
    seed: int = 0,
    p_min: float = P_MIN,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Train μ (from ``init_mean``) and ρ = ln σ (from ln ``prior_scale``); returns ``(mean, var)``."""
    if objective_name not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective_name!r}")
    x, y = data
    mu = {k: v.detach().clone().float().requires_grad_(True) for k, v in init_mean.items()}
    rho = {k: torch.full_like(v, math.log(prior_scale), requires_grad=True) for k, v in mu.items()}
    modules = find_local_reparam_modules(model, x[:2], mode="exact", names=list(mu))
    opt = torch.optim.Adam([*mu.values(), *rho.values()], lr=lr)
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.Generator().manual_seed(int(seed) + 1)
    prior_var = float(prior_scale) ** 2
    n = x.shape[0]
    model.eval()
    for _ in range(int(epochs)):
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            var = {k: torch.exp(2 * r) for k, r in rho.items()}
            z = local_reparam_forward(model, x[idx], mu, var, noise, modules=modules)
            loss = bounded_ce(z, y[idx], p_min)
            kl = kl_gaussian(mu, var, prior_mean, prior_var)
            f = objective(objective_name, loss, kl, n_bound, delta)
            opt.zero_grad()
            f.backward()
            opt.step()
    mean = {k: v.detach() for k, v in mu.items()}
    var = {k: torch.exp(2 * r.detach()) for k, r in rho.items()}
    return mean, var
