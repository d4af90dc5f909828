"""A plain, seeded training loop for the reference networks, and an evaluation helper.

``train(model, loader, epochs=..., lr=...)`` runs mini-batch SGD or Adam on the mean negative
log-likelihood of one of :data:`LOSSES`, computed by the likelihoods the curvature and information
code use (:mod:`weightinfo._base.likelihoods`): ``cross_entropy`` on integer labels;
``bce_with_logits`` summed over outputs; ``mse`` as ½‖y − z‖² (a unit-variance Gaussian, not torch's
``MSELoss``, which drops the ½ and averages over outputs); for the last two, integer class labels
are one-hot encoded. A checkpoint trained with any of them is therefore measured on the loss it was
trained on. It returns a :class:`TrainResult` with per-epoch
history. All randomness (data order, dropout) comes from ``seed``: the same initial weights, data
and seed give bit-identical final weights on CPU.

Callbacks are any objects with an ``on_batch_end(state)`` and/or ``on_epoch_end(state)`` method
(subclass :class:`Callback` for no-op defaults). ``state`` is a :class:`TrainState`; a hook stops
training by calling ``state.request_stop(reason)`` or by returning ``True``. A stop requested
after a batch ends the epoch early: that partial epoch is still evaluated, recorded and passed to
``on_epoch_end``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ._base.checks import check_choice, check_momentum
from ._base.likelihoods import LOSSES, get_loss, is_class_labels
from ._base.progress import progress_enabled
from .models.modes import eval_mode

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")
SCHEDULES: tuple[str | None, ...] = (None, "cosine", "step", "exponential")


class NonFiniteLossError(ValueError):
    """The training loss became NaN or infinite (the message names the epoch and step)."""


# --------------------------------------------------------------------------------------------
# Losses: mean over the batch of the curvature code's per-sample likelihood, and correct counts.
# --------------------------------------------------------------------------------------------


def _check_loss(loss: str) -> str:
    return check_choice("loss", loss, LOSSES)


def loss_value(name: str, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the per-sample negative log-likelihood ``name``.

    The likelihood is :func:`weightinfo._base.likelihoods.get_loss` ``(name)``, the one the curvature
    and information code measure: its ``check_targets`` validates ``y`` and its ``per_sample`` gives
    ℓ(z_i, y_i). ``cross_entropy`` takes torch's fused mean, the same number, so that checkpoints
    trained before this unification stay bit-for-bit reproducible.
    """
    lik = get_loss(name)
    lik.check_targets(z, y)
    if name == "cross_entropy":
        return F.cross_entropy(z, y.long())
    return lik.per_sample(z, y).mean()


def n_correct(name: str, z: torch.Tensor, y: torch.Tensor) -> float | None:
    """Number of correctly classified samples in the batch, or ``None`` for regression targets.

    Integer class labels (any loss): arg-max. ``bce_with_logits`` with one target per output:
    ``z > 0`` against ``y > 0.5``, averaged over the outputs of each sample.
    """
    c = correct_count(name, z, y)
    return None if c is None else float(c)


def correct_count(name: str, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor | None:
    """:func:`n_correct` as a float64 tensor on ``z``'s device (no host sync), or ``None``."""
    z = z.detach()
    if name == "bce_with_logits" and not is_class_labels(z, y):
        t = y.reshape(z.shape) > 0.5
        return ((z > 0) == t).reshape(z.shape[0], -1).float().mean(1).sum().to(torch.float64)
    if not y.is_floating_point() and y.ndim == 1 and z.ndim == 2:
        return (z.argmax(1) == y).sum().to(torch.float64)
    return None


# --------------------------------------------------------------------------------------------
# Callbacks and results
# --------------------------------------------------------------------------------------------


@dataclass
class TrainState:
    """What a callback sees.

    ``epoch`` is 1-based (the epoch in progress or just finished); ``step`` counts optimizer steps
    taken so far; ``batch`` is the 1-based batch index within the epoch. ``metrics`` holds
    ``loss``/``accuracy``/``lr`` of the last batch in ``on_batch_end`` and the epoch record (see
    :class:`TrainResult`) in ``on_epoch_end``.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    epoch: int = 0
    step: int = 0
    batch: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    stop: bool = False
    stop_reason: str | None = None

    def request_stop(self, reason: str = "stopped by callback") -> None:
        """Ask the loop to stop after the current batch (or epoch, from ``on_epoch_end``)."""
        self.stop = True
        self.stop_reason = reason


class Callback:
    """Optional base class: both hooks do nothing. Return ``True`` from a hook to stop."""

    def on_batch_end(self, state: TrainState) -> bool | None:
        return None

    def on_epoch_end(self, state: TrainState) -> bool | None:
        return None


@dataclass
class TrainResult:
    """Outcome of :func:`train`.

    ``history`` has one dict per epoch run: ``epoch``, ``steps`` (cumulative), ``lr`` (used during
    the epoch), ``train_loss``/``train_accuracy`` (sample-weighted averages over the epoch's
    batches, in training mode), ``eval_loss``/``eval_accuracy`` (``None`` without an
    ``eval_loader``), ``time`` (seconds). ``final`` holds the four metrics of the last epoch.
    """

    history: list[dict[str, Any]]
    final: dict[str, Any]
    epochs_run: int
    steps: int
    stopped_early: bool
    stop_reason: str | None
    total_time: float
    config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return asdict(self)

    def to_dataframe(self):
        """``history`` as a DataFrame, one row per epoch (losses in nats per sample, accuracies in [0, 1],
        ``time`` in seconds)."""
        from ._base.frames import dataframe

        return dataframe(self.history)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def _hook(cb: object, name: str) -> Callable[[TrainState], Any] | None:
    fn = getattr(cb, name, None)
    return fn if callable(fn) else None


def _run_hooks(callbacks: Sequence[object], name: str, state: TrainState) -> None:
    for cb in callbacks:
        fn = _hook(cb, name)
        if fn is not None and fn(state) is True and not state.stop:
            state.request_stop(f"{type(cb).__name__}.{name} returned True")


def _seed_loader(loader: Iterable, seed: int) -> None:
    """Re-seed every ``torch.Generator`` the loader or its (nested) samplers shuffle with."""
    seen: set[int] = set()
    todo = [loader]
    for _ in range(4):  # loader -> batch sampler -> sampler -> wrapped sampler
        nxt = []
        for owner in todo:
            if owner is None or id(owner) in seen:
                continue
            seen.add(id(owner))
            g = getattr(owner, "generator", None)
            if isinstance(g, torch.Generator) and id(g) not in seen:
                g.manual_seed(seed)
                seen.add(id(g))
            nxt += [getattr(owner, "sampler", None), getattr(owner, "batch_sampler", None)]
        todo = nxt


def _make_optimizer(
    name: str, params: list[nn.Parameter], lr: float, momentum: float, weight_decay: float
) -> torch.optim.Optimizer:
    if name == "sgd":
        momentum = check_momentum("momentum", momentum)
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(
        f"unknown optimizer={name!r}; expected one of {', '.join(map(repr, OPTIMIZERS))}"
    )


def _make_schedule(
    name: str | None,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    gamma: float | None,
    step_size: int | None,
) -> torch.optim.lr_scheduler.LRScheduler | None:
    if name is None:
        return None
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        size = step_size if step_size is not None else max(1, epochs // 3)
        g = 0.1 if gamma is None else gamma
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=size, gamma=g)
    if name == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(
            optimizer, gamma=0.9 if gamma is None else gamma
        )
    raise ValueError(f"unknown schedule={name!r}; expected one of {SCHEDULES}")


def _checked(model, loss, epochs, lr, schedule, callbacks) -> tuple[int, tuple, list[nn.Parameter]]:
    """``train``'s arguments checked: (epochs, callbacks, trainable parameters), or an error naming one."""
    _check_loss(loss)
    if isinstance(epochs, bool) or int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    epochs = int(epochs)
    if not (math.isfinite(float(lr)) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule={schedule!r}; expected one of {SCHEDULES}")
    callbacks = tuple(callbacks)
    for cb in callbacks:
        if _hook(cb, "on_batch_end") is None and _hook(cb, "on_epoch_end") is None:
            raise TypeError(f"callback {cb!r} has neither on_batch_end nor on_epoch_end")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no parameter with requires_grad=True")
    return epochs, callbacks, params


def _epochs(
    model, train_loader, eval_loader, opt, scheduler, loss, dev, state, callbacks, epochs, progress
):
    """Up to ``epochs`` epochs (fewer if a callback sets ``state.stop``), each recorded in ``state.history``."""
    from tqdm.auto import tqdm

    bar = tqdm(total=epochs, desc="train", unit="epoch", disable=not progress_enabled(progress))
    try:
        for epoch in range(1, epochs + 1):
            state.epoch = epoch
            record = _train_epoch(model, train_loader, opt, loss, dev, state, callbacks)
            if scheduler is not None:
                scheduler.step()
            if eval_loader is not None:
                ev = evaluate(model, eval_loader, loss, device=dev)
                record["eval_loss"], record["eval_accuracy"] = ev["loss"], ev["accuracy"]
            record["time"] = time.perf_counter() - record.pop("_t0")
            state.history.append(record)
            state.metrics = dict(record)
            _run_hooks(callbacks, "on_epoch_end", state)
            bar.update(1)
            shown = ("train_loss", "eval_accuracy")
            bar.set_postfix({k: f"{record[k]:.4g}" for k in shown if record[k] is not None})
            if state.stop:
                break
    finally:
        bar.close()


def train(
    model: nn.Module,
    train_loader: Iterable,
    *,
    epochs: int,
    lr: float,
    optimizer: str = "sgd",
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    schedule: str | None = None,
    gamma: float | None = None,
    step_size: int | None = None,
    loss: str = "cross_entropy",
    seed: int = 0,
    callbacks: Sequence[object] = (),
    eval_loader: Iterable | None = None,
    progress: bool = True,
    device: str | torch.device | None = None,
) -> TrainResult:
    """Train ``model`` in place on ``train_loader`` (an iterable of ``(x, y)`` batches).

    Parameters
    ----------
    epochs, lr:
        Number of passes over the data (>= 1) and base learning rate (> 0).
    optimizer:
        ``"sgd"`` (with ``momentum``; 0 for plain SGD) or ``"adam"`` (``momentum`` ignored).
    weight_decay:
        L2 penalty coefficient passed to the optimizer.
    schedule:
        Per-epoch learning-rate schedule: ``None`` (constant), ``"cosine"`` (to 0 over
        ``epochs``), ``"step"`` (× ``gamma``, default 0.1, every ``step_size`` epochs, default
        ``epochs // 3``) or ``"exponential"`` (× ``gamma``, default 0.9, every epoch). ``gamma``
        and ``step_size`` are ignored by the other schedules.
    loss:
        One of :data:`LOSSES`.
    seed:
        Seeds a fork of torch's global RNG (restored on return: the caller's RNG state is left as it
        was) and re-seeds any generator of the loader, so data order and dropout masks come from
        ``seed`` alone. The initial weights are the model's own: seed before building it. Bit-identical
        results need the same thread count and CPU kernels too (float sums are not associative).
    callbacks:
        Objects with optional ``on_batch_end(state)`` / ``on_epoch_end(state)`` hooks.
    eval_loader:
        Evaluated (eval mode, no gradients) after each epoch when given.
    progress:
        Show a tqdm bar over epochs; never shown when stderr is not a terminal.
    device:
        Move the model and batches there; default: where the model's parameters are.

    Returns a :class:`TrainResult`. The model is left in eval mode. Raises
    :class:`NonFiniteLossError` (a ``ValueError``) naming the epoch and step if the loss becomes
    NaN/Inf, and ``ValueError`` if the loader yields no samples.
    """
    epochs, callbacks, params = _checked(model, loss, epochs, lr, schedule, callbacks)
    if device is not None:
        model.to(device)
    dev = torch.device(device) if device is not None else params[0].device

    _seed_loader(train_loader, seed)
    opt = _make_optimizer(optimizer, params, float(lr), float(momentum), float(weight_decay))
    scheduler = _make_schedule(schedule, opt, epochs, gamma, step_size)
    config = {
        "epochs": epochs,
        "lr": float(lr),
        "optimizer": optimizer,
        "momentum": float(momentum),
        "weight_decay": float(weight_decay),
        "schedule": schedule,
        "gamma": gamma,
        "step_size": step_size,
        "loss": loss,
        "seed": seed,
        "batch_size": getattr(train_loader, "batch_size", None),
    }
    state = TrainState(model=model, optimizer=opt)
    t_start = time.perf_counter()
    # The run's randomness (dropout masks, any global-RNG draw of a callback or model) comes from
    # ``seed`` alone, in a forked RNG: the caller's global RNG state neither changes the run nor is
    # changed by it (dropout cannot take a generator).
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        try:
            _epochs(model, train_loader, eval_loader, opt, scheduler, loss, dev, state, callbacks,
                    epochs, progress)  # fmt: skip
        finally:
            model.eval()
    last = state.history[-1]
    final = {k: last[k] for k in ("train_loss", "train_accuracy", "eval_loss", "eval_accuracy")}
    return TrainResult(
        history=state.history,
        final=final,
        epochs_run=len(state.history),
        steps=state.step,
        stopped_early=state.stop,
        stop_reason=state.stop_reason,
        total_time=time.perf_counter() - t_start,
        config=config,
    )


def _train_epoch(
    model: nn.Module,
    loader: Iterable,
    opt: torch.optim.Optimizer,
    loss: str,
    device: torch.device,
    state: TrainState,
    callbacks: Sequence[object],
) -> dict[str, Any]:
    """One pass over ``loader``; returns the epoch record (without eval metrics and final time)."""
    t0 = time.perf_counter()
    lr = float(opt.param_groups[0]["lr"])
    model.train()
    total_loss, total_correct, n_seen = 0.0, 0.0, 0
    has_acc = True
    for b, batch in enumerate(loader, start=1):
        x, y = batch[0].to(device), batch[1].to(device)
        if x.shape[0] == 0:
            continue
        state.batch = b
        opt.zero_grad(set_to_none=True)
        out = model(x)
        value = loss_value(loss, out, y)
        if not torch.isfinite(value):
            raise NonFiniteLossError(
                f"training loss is {float(value.detach())} at epoch {state.epoch}, "
                f"step {state.step + 1} (batch {b}); lower the learning rate or check the inputs "
                "for NaN/Inf"
            )
        value.backward()
        opt.step()
        state.step += 1
        n = x.shape[0]
        batch_loss = float(value.detach())
        correct = n_correct(loss, out, y)
        has_acc = has_acc and correct is not None
        total_loss += batch_loss * n
        total_correct += correct or 0.0
        n_seen += n
        state.metrics = {
            "loss": batch_loss,
            "accuracy": None if correct is None else correct / n,
            "lr": lr,
        }
        _run_hooks(callbacks, "on_batch_end", state)
        if state.stop:
            break
    if n_seen == 0:
        raise ValueError(f"train_loader yielded no samples in epoch {state.epoch}")
    return {
        "epoch": state.epoch,
        "steps": state.step,
        "lr": lr,
        "train_loss": total_loss / n_seen,
        "train_accuracy": total_correct / n_seen if has_acc else None,
        "eval_loss": None,
        "eval_accuracy": None,
        "_t0": t0,
    }


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    loss: str = "cross_entropy",
    *,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """Mean loss and accuracy of ``model`` over ``loader``, in eval mode without gradients.

    Returns ``{"loss": float, "accuracy": float | None, "n": int}`` (accuracy ``None`` for
    regression targets). Each module's train/eval flag is restored afterwards. Raises
    ``ValueError`` if the loader yields no samples.
    """
    _check_loss(loss)
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    total_loss, total_correct, n_seen, has_acc = 0.0, 0.0, 0, True
    with eval_mode(model):
        for batch in loader:
            x, y = batch[0].to(device), batch[1].to(device)
            if x.shape[0] == 0:
                continue
            out = model(x)
            n = x.shape[0]
            total_loss += float(loss_value(loss, out, y)) * n
            correct = n_correct(loss, out, y)
            has_acc = has_acc and correct is not None
            total_correct += correct or 0.0
            n_seen += n
    if n_seen == 0:
        raise ValueError("evaluation loader yielded no samples")
    return {
        "loss": total_loss / n_seen,
        "accuracy": total_correct / n_seen if has_acc else None,
        "n": n_seen,
    }
