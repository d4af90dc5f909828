"""Prior means and PBB-style posterior training (Pérez-Ortiz, Rivasplata, Shawe-Taylor & Szepesvári 2021,
"Tighter risk certificates for neural networks", JMLR 22(227): objectives and protocol).

* :func:`train_prior_mean`: the data-dependent prior mean — a copy of the model, re-initialised (``init_state``
  or the layers' own ``reset_parameters`` under the seed, never the given trained weights, which may have seen
  the bound set), trained by ERM (cross-entropy, SGD) on the prior set only.
* :func:`fit_posterior`: Q = N(μ, diag σ²) with μ and ρ = ln σ trained by Adam (or RMSprop) on a PAC-Bayes
  objective (``fquad``, ``flambda``, ``fclassic``) of a surrogate of the 0-1 loss — PBB's **bounded**
  cross-entropy (default) or Dziugaite & Roy's logistic loss / ln 2 — with KL(Q‖P) in closed form and n the
  size of the bound set. Linear layers on 2-D input use the local reparameterisation (exact), other
  parameters one weight draw per batch. Options for the Dziugaite & Roy (2017, UAI) recipe:
  σ initialised at a multiple of |μ_init| (``sigma_init="abs_w"``), and the prior scale λ set at every step
  to its closed-form optimum (``learn_prior_scale``; the caller then rounds it onto a grid it pays for).

Distributed (``weightinfo._base.distributed``): :func:`fit_posterior` under a process group takes this rank's
shard of the posterior data. Every step each rank draws a minibatch of ⌈batch_size / W⌉ rows of its shard
(its own permutation and its own local-reparameterisation noise, :func:`~weightinfo._base.distributed.rank_seed`),
the surrogate sums and batch sizes are all-reduced into the union's batch loss L̂, the objective is evaluated at
L̂ (its ∂f/∂L̂ identical on every rank), and the data term's gradient ∂f/∂L̂ · Σ_r ∇(Σ ℓ)_r / B is all-reduced
(float64) and added to the KL term's gradient; an epoch lasts until every shard is spent. (μ, ρ) stay identical
on every rank. This is another draw of the same stochastic optimisation as one process on all the data (other
batches and noise), not the same numbers. :func:`train_prior_mean` under a process group takes the whole prior
set on every rank (``certify`` gathers it) and trains data-parallel (:mod:`._prior_parallel`): the same batches
as one process, each rank the gradient of its share of every batch, all-reduced (float64) before each identical
SGD step — the single-process prior up to summation order (not bitwise, so not its hash); with dropout another
draw of the same SGD; a model with BatchNorm is trained whole on every rank as by one process.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .._base import distributed as dist
from .._base.checks import check_momentum
from ..posterior.sampling import find_local_reparam_modules, local_reparam_forward
from ._prior_parallel import data_parallel, train_data_parallel
from .risk import P_MIN, bounded_ce

OBJECTIVES = ("fquad", "flambda", "fclassic")
SURROGATES = ("bounded_ce", "logistic")
SIGMA_INITS = ("prior", "abs_w")
OPTIMIZERS = ("adam", "rmsprop")
#: Smallest initial σ of ``sigma_init="abs_w"`` (|w| is 0 for zero-initialised biases; ln σ must be finite).
SIGMA_FLOOR = 1e-4


def logistic_surrogate(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean of the logistic loss in bits, log₂(1 + Σ_{k≠y} exp(z_k − z_y)) = CE / ln 2.

    For two classes this is log₂(1 + exp(−m)) with the margin m = z_y − z_other: Dziugaite & Roy's
    ``logistic_loss`` divided by ln 2 (Dziugaite & Roy 2017). It equals 1 at m = 0 and upper-bounds the 0-1
    loss (a misclassified example has p_y ≤ 1/2, so −log₂ p_y ≥ 1), tends to 0 for large margins and is
    **unbounded above** (as in D&R): a training surrogate only, the certificate is on the 0-1 loss.
    """
    return torch.nn.functional.cross_entropy(z, y.long()) / math.log(2.0)


def surrogate_loss(
    name: str, z: torch.Tensor, y: torch.Tensor, p_min: float = P_MIN
) -> torch.Tensor:
    """The training surrogate ``name`` (``SURROGATES``) of the 0-1 loss, averaged over the batch."""
    if name == "bounded_ce":
        return bounded_ce(z, y, p_min)
    if name == "logistic":
        return logistic_surrogate(z, y)
    raise ValueError(f"surrogate must be one of {SURROGATES}, got {name!r}")


def init_sigma(
    init_mean: dict[str, torch.Tensor],
    prior_scale: float,
    mode: str = "prior",
    factor: float = 1.0,
    floor: float = SIGMA_FLOOR,
) -> dict[str, torch.Tensor]:
    """Initial posterior standard deviations: σ = λ (``"prior"``, PBB) or σ = max(factor·|μ_init|, floor)
    elementwise (``"abs_w"``; Dziugaite & Roy 2017 start from the SGD solution w with std 2|w|,
    ``log_post_std_init = log(2|w|)`` in their code)."""
    if mode == "prior":
        return {k: torch.full_like(v, float(prior_scale)) for k, v in init_mean.items()}
    if mode == "abs_w":
        return {k: (float(factor) * v.abs()).clamp_min(float(floor)) for k, v in init_mean.items()}
    raise ValueError(f"sigma_init must be one of {SIGMA_INITS}, got {mode!r}")


def optimal_prior_scale(mean, var, prior_mean) -> float:
    """λ minimising KL(N(μ, diag σ²) ‖ N(w0, λ² I)) over λ: λ² = (1/d) Σᵢ (σᵢ² + (μᵢ − w0ᵢ)²).

    (∂KL/∂λ² = Σᵢ [1/λ² − (σᵢ² + (μᵢ − w0ᵢ)²)/λ⁴] / 2 = 0.) Dziugaite & Roy train λ by gradient descent
    together with (μ, σ) and then round it onto the grid λ = c·exp(−j/b); their 2 ln j term is ignored here
    (it moves the optimum by O(1/d)).
    """
    total, d = 0.0, 0
    for k, mu in mean.items():
        diff = mu.double() - prior_mean[k].double()
        total += float((var[k].double() + diff * diff).sum())
        d += mu.numel()
    return math.sqrt(total / d)


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
    holdout: float = 0.0,
    patience: int = 5,
    schedule: str | None = None,
    info: dict | None = None,
) -> dict[str, torch.Tensor]:
    """ERM (cross-entropy, SGD with ``momentum``, ``lr`` constant or on a ``schedule`` of
    :func:`weightinfo.training.train`) of a re-initialised copy of ``model`` on ``data``; returns the
    eval-mode parameters (the prior mean w0).

    ``holdout`` > 0: early stopping. A seeded random share ``holdout`` of ``data`` is held out; after every
    epoch the held-out 0-1 error is measured, w0 is the weights of the best epoch (the first on ties), and
    training stops after ``patience`` epochs without improvement. ``info`` (a dict), if given, receives
    ``epochs_run``, ``best_epoch`` and ``holdout_error``.

    Under a process group of several ranks (``data`` the whole prior set, the same on every rank; collective)
    the SGD is data-parallel (:mod:`._prior_parallel`): w0 is identical on every rank and equals the
    single-process w0 up to float summation order (so the record's prior-mean hash, of the exact bits,
    generally differs from the single-process one); with dropout it is another draw of the same SGD; models
    with BatchNorm are trained as by one process on every rank.
    """
    from ..training import train

    check_momentum("momentum", momentum)
    net = copy.deepcopy(model)
    torch.manual_seed(int(seed))
    if init_state is not None:
        net.load_state_dict(init_state, strict=False)
    else:
        for mod in net.modules():
            if hasattr(mod, "reset_parameters"):
                mod.reset_parameters()
    x, y = data
    callbacks = []
    if holdout > 0:
        perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(int(seed) + 17))
        n_out = max(1, int(round(float(holdout) * x.shape[0])))
        if n_out >= x.shape[0]:
            raise ValueError(f"prior holdout {holdout} leaves no prior data to train on")
        out_idx, in_idx = perm[:n_out], perm[n_out:]
        keeper = _BestOnHoldout(x[out_idx], y[out_idx], int(patience))
        callbacks.append(keeper)
        x, y = x[in_idx], y[in_idx]
    gen = torch.Generator().manual_seed(int(seed))
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True, generator=gen)
    if data_parallel(net):  # a process group: the same SGD, each rank its share of every batch
        if callbacks:
            keeper.shared = True
        epochs_run = train_data_parallel(
            net, loader, epochs=int(epochs), lr=lr, momentum=float(momentum), schedule=schedule,
            seed=int(seed), callbacks=callbacks,
        )  # fmt: skip
    else:
        result = train(
            net,
            loader,
            epochs=int(epochs),
            lr=lr,
            optimizer="sgd",
            momentum=float(momentum),
            schedule=schedule,
            seed=int(seed),
            progress=False,
            callbacks=callbacks,
        )
        epochs_run = result.epochs_run
    if callbacks:
        net.load_state_dict(keeper.best_state)
    if info is not None:
        info["epochs_run"] = int(epochs_run)
        info["best_epoch"] = keeper.best_epoch if callbacks else int(epochs_run)
        info["holdout_error"] = keeper.best_error if callbacks else None
    return param_means(net.eval())


class _BestOnHoldout:
    """Early stopping on a held-out part of the prior data: keeps the state of the epoch with the lowest
    held-out 0-1 error and stops after ``patience`` epochs without improvement."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, patience: int):
        self.x, self.y, self.patience = x, y, patience
        self.best_error, self.best_epoch, self.best_state = math.inf, 0, None
        # Data-parallel training (every rank holds all the held-out rows): each rank counts the errors on
        # its share and the counts are all-reduced (collective), so every rank takes the same decision.
        self.shared = False

    @torch.no_grad()
    def on_epoch_end(self, state) -> bool:
        net = state.model
        was_training = net.training
        net.eval()
        x, y = self.x, self.y
        if self.shared:
            lo, hi = dist.shard_bounds(x.shape[0])
            x, y = x[lo:hi], y[lo:hi]
        err = sum(
            float((net(x[i : i + 4096]).argmax(-1) != y[i : i + 4096]).sum())
            for i in range(0, x.shape[0], 4096)
        )
        if self.shared:
            err = dist.reduce_sums({"e": err})["e"]
        err = err / self.x.shape[0]
        net.train(was_training)
        if err < self.best_error:
            self.best_error, self.best_epoch = err, state.epoch
            self.best_state = copy.deepcopy(net.state_dict())
        return state.epoch - self.best_epoch >= self.patience


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
    """PBB training objective with B = KL + ln(2√n/δ) (Maurer 2004; Pérez-Ortiz et al. 2021)."""
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
    surrogate: str = "bounded_ce",
    sigma_init: str = "prior",
    sigma_init_factor: float = 1.0,
    optimizer: str = "adam",
    learn_prior_scale: bool = False,
    prior_scale_range: tuple[float, float] | None = None,
    lr_drop_epoch: int | None = None,
    lr_drop_factor: float = 0.1,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Train μ (from ``init_mean``) and ρ = ln σ (from :func:`init_sigma`); returns ``(mean, var)``.

    surrogate : ``"bounded_ce"`` (PBB, with ``p_min``) or ``"logistic"`` (D&R, :func:`logistic_surrogate`).
    sigma_init, sigma_init_factor : σ = ``prior_scale`` or max(factor·|μ_init|, ``SIGMA_FLOOR``).
    optimizer : ``"adam"`` or ``"rmsprop"`` (D&R: RMSprop, lr 1e-3, ×0.1 after 250 of 1000 epochs; here
        ``lr_drop_epoch`` / ``lr_drop_factor``).
    learn_prior_scale : use, at every step, the KL at λ = :func:`optimal_prior_scale` of the current (μ, σ)
        (detached: by the envelope theorem its gradient through λ vanishes) instead of ``prior_scale``. The
        bound is then valid only for a λ the caller pays for (a fixed grid in a union bound), and
        ``prior_scale_range`` = (lo, hi) clamps it to the range of that grid.
    """
    if objective_name not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective_name!r}")
    for name, value, choices in (
        ("surrogate", surrogate, SURROGATES),
        ("sigma_init", sigma_init, SIGMA_INITS),
        ("optimizer", optimizer, OPTIMIZERS),
    ):
        if value not in choices:
            raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    x, y = data
    mu = {k: v.detach().clone().float().requires_grad_(True) for k, v in init_mean.items()}
    sigma0 = init_sigma(mu, prior_scale, sigma_init, sigma_init_factor)
    rho = {k: s.detach().log().requires_grad_(True) for k, s in sigma0.items()}
    modules = find_local_reparam_modules(model, x[:2], mode="exact", names=list(mu))
    params = [*mu.values(), *rho.values()]
    opt = (
        torch.optim.Adam(params, lr=lr)
        if optimizer == "adam"
        else torch.optim.RMSprop(params, lr=lr)
    )
    gen = torch.Generator().manual_seed(int(seed))
    noise = torch.Generator().manual_seed(int(seed) + 1)
    prior_var = float(prior_scale) ** 2
    n = x.shape[0]
    model.eval()
    if dist.active() and dist.world_size() > 1:
        noise = torch.Generator().manual_seed(dist.rank_seed(int(seed) + 1))
        kw = dict(p_min=p_min, surrogate=surrogate, learn=learn_prior_scale)
        kw.update(prior_scale_range=prior_scale_range, objective_name=objective_name)
        for epoch in range(int(epochs)):
            if lr_drop_epoch is not None and epoch == int(lr_drop_epoch):
                for g in opt.param_groups:
                    g["lr"] = lr * lr_drop_factor
            prior_var = _epoch_distributed(
                model, x, y, mu, rho, opt, gen, noise, modules, prior_mean, prior_var,
                n_bound, delta, batch_size, **kw,
            )  # fmt: skip
        mean = {k: v.detach() for k, v in mu.items()}
        return mean, {k: torch.exp(2 * r.detach()) for k, r in rho.items()}
    for epoch in range(int(epochs)):
        if lr_drop_epoch is not None and epoch == int(lr_drop_epoch):
            for g in opt.param_groups:
                g["lr"] = lr * lr_drop_factor
        perm = torch.randperm(n, generator=gen, device="cpu")  # same order on any device
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            var = {k: torch.exp(2 * r) for k, r in rho.items()}
            z = local_reparam_forward(model, x[idx], mu, var, noise, modules=modules)
            loss = surrogate_loss(surrogate, z, y[idx], p_min)
            if learn_prior_scale:
                with torch.no_grad():
                    lam = optimal_prior_scale(mu, var, prior_mean)
                    if prior_scale_range is not None:
                        lam = min(max(lam, prior_scale_range[0]), prior_scale_range[1])
                    prior_var = lam**2
            kl = kl_gaussian(mu, var, prior_mean, prior_var)
            f = objective(objective_name, loss, kl, n_bound, delta)
            opt.zero_grad()
            f.backward()
            opt.step()
    mean = {k: v.detach() for k, v in mu.items()}
    var = {k: torch.exp(2 * r.detach()) for k, r in rho.items()}
    return mean, var


def _epoch_distributed(
    model, x, y, mu, rho, opt, gen, noise, modules, prior_mean, prior_var, n_bound, delta,
    batch_size, *, p_min, surrogate, learn, prior_scale_range, objective_name,
) -> float:  # fmt: skip
    """One epoch of :func:`fit_posterior` under a process group (module docstring); returns λ²."""
    params = [*mu.values(), *rho.values()]
    local = -(-int(batch_size) // dist.world_size())
    perm = torch.randperm(x.shape[0], generator=gen)
    steps = dist.all_reduce_max(-(-x.shape[0] // local))
    for step in range(steps):
        idx = perm[step * local : (step + 1) * local]
        var = {k: torch.exp(2 * r) for k, r in rho.items()}
        total = None
        if len(idx):
            z = local_reparam_forward(model, x[idx], mu, var, noise, modules=modules)
            total = surrogate_loss(surrogate, z, y[idx], p_min) * len(idx)
        red = dist.reduce_sums({"s": 0.0 if total is None else float(total), "b": len(idx)})
        if learn:
            with torch.no_grad():
                lam = optimal_prior_scale(mu, var, prior_mean)
                if prior_scale_range is not None:
                    lam = min(max(lam, prior_scale_range[0]), prior_scale_range[1])
                prior_var = lam**2
        kl = kl_gaussian(mu, var, prior_mean, prior_var)
        loss = torch.tensor(red["s"] / red["b"], dtype=kl.dtype, requires_grad=True)
        f = objective(objective_name, loss, kl, n_bound, delta)
        opt.zero_grad()
        f.backward(retain_graph=True)  # the KL term's gradient, and ∂f/∂L̂ in loss.grad
        if total is None:
            grads = [torch.zeros_like(p) for p in params]
        else:
            coef = float(loss.grad) / red["b"]
            grads = torch.autograd.grad(total * coef, params, allow_unused=True)
            grads = [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]
        red = dist.reduce_sums({str(i): g for i, g in enumerate(grads)})
        for i, p in enumerate(params):
            p.grad = p.grad + red[str(i)].to(p.dtype)
        opt.step()
    return prior_var
