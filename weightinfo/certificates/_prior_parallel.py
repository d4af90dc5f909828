"""Data-parallel training of the prior mean under a process group (:func:`.posterior_fit.train_prior_mean`).

Every rank holds the whole (gathered) prior set, the same re-initialised network and the same DataLoader
(same seeded generator), so every rank sees the same global permutation and the same sequence of minibatches
as one process. For each minibatch of B rows, rank r takes its contiguous share
:func:`~weightinfo._base.distributed.shard_bounds` (B) of the rows and backpropagates the **summed**
cross-entropy over that share only; the ranks' gradients (and loss sums and correct counts) are all-reduced
in **float64** in one buffer, divided by the global B and cast back to the parameters' dtype, and every rank
then takes the same SGD step (same momentum buffers, same learning-rate schedule). The weights therefore stay
bitwise identical on every rank, and equal the single-process run up to the order of float summation
(float32: ~1e-7 relative per step, growing slowly with the number of steps; float64: ~1e-15). The held-out
error of early stopping is counted on each rank's share of the held-out rows and the integer counts are
all-reduced, so the stopping decision and the best epoch are the single-process ones (given equal weights).

Dropout: the masks are drawn per rank, for its own rows, from a forked RNG seeded with
:func:`~weightinfo._base.distributed.rank_seed` (seed) — independent across ranks, but not the masks one
process would draw for the same rows. With dropout the distributed prior is therefore another draw of the same
SGD (still a valid prior: it depends on the prior set and the seed only, never on the bound set), not the
single-process numbers. Models with BatchNorm (or any normalisation layer with batch or running statistics,
``torch.nn.modules.batchnorm._NormBase``) are not trained data-parallel: their train-mode statistics would be
per-rank shares of the batch and their running statistics (used by the held-out error in eval mode) would
differ between ranks; :func:`.posterior_fit.train_prior_mean` then trains the gathered set on every rank as one
process does (identical w0, no speed-up).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .._base import distributed as dist
from ..training import (
    NonFiniteLossError,
    TrainState,
    _checked,
    _make_optimizer,
    _make_schedule,
    _run_hooks,
    _seed_loader,
)


def data_parallel(net: nn.Module) -> bool:
    """Whether the prior of ``net`` is trained data-parallel: under a process group of several ranks and
    without normalisation layers that keep batch statistics (module docstring)."""
    if dist.world_size() <= 1:
        return False
    return not any(isinstance(m, nn.modules.batchnorm._NormBase) for m in net.modules())


def train_data_parallel(
    net: nn.Module,
    loader,
    *,
    epochs: int,
    lr: float,
    momentum: float,
    schedule: str | None,
    seed: int,
    callbacks=(),
) -> int:
    """SGD with ``momentum`` on the mean cross-entropy of every minibatch of ``loader`` (the whole prior set,
    the same on every rank), the gradient summed over the ranks' shares of the batch (collective); the same
    optimizer, schedule and callbacks as :func:`weightinfo.training.train`. Returns the epochs run."""
    epochs, callbacks, params = _checked(net, "cross_entropy", epochs, lr, schedule, callbacks)
    _seed_loader(loader, seed)
    opt = _make_optimizer("sgd", params, float(lr), float(momentum), 0.0)
    scheduler = _make_schedule(schedule, opt, epochs, None, None)
    state = TrainState(model=net, optimizer=opt)
    dev = params[0].device
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(dist.rank_seed(int(seed)))  # dropout masks: independent across ranks
        try:
            for epoch in range(1, epochs + 1):
                state.epoch = epoch
                _epoch(net, loader, opt, params, state)
                if scheduler is not None:
                    scheduler.step()
                _run_hooks(callbacks, "on_epoch_end", state)
                if state.stop:
                    break
        finally:
            net.eval()
    return state.epoch


def _epoch(net, loader, opt, params, state) -> None:
    net.train()
    n_seen = 0
    for b, (x, y) in enumerate(loader, start=1):
        x, y = x.to(params[0].device), y.to(params[0].device)
        n = int(x.shape[0])
        if n == 0:
            continue
        state.batch = b
        lo, hi = dist.shard_bounds(n)
        sums = {"loss": 0.0}
        if hi > lo:
            value = F.cross_entropy(net(x[lo:hi]), y[lo:hi].long(), reduction="sum")
            grads = torch.autograd.grad(value, params, allow_unused=True)
            sums["loss"] = float(value.detach())
        else:
            grads = [None] * len(params)
        sums.update(
            {
                str(i): torch.zeros_like(p) if g is None else g
                for i, (p, g) in enumerate(zip(params, grads))
            }
        )
        red = dist.reduce_sums(sums)
        if not torch.isfinite(torch.tensor(red["loss"])):
            raise NonFiniteLossError(
                f"training loss is {red['loss'] / n} at epoch {state.epoch}, step {state.step + 1} "
                f"(batch {b}); lower the learning rate or check the inputs for NaN/Inf"
            )
        for i, p in enumerate(params):
            p.grad = (red[str(i)] / n).to(dtype=p.dtype, device=p.device)
        opt.step()
        state.step += 1
        n_seen += n
    if n_seen == 0:
        raise ValueError(f"train_loader yielded no samples in epoch {state.epoch}")
