"""Information in the weights by direct minimisation of the Information Lagrangian over a Gaussian family.

Achille, Paolini & Soatto 2019, Def. 2.1: IW_β = KL(Q*‖P) with Q* = argmin_Q C_β, where (nats; L_D the **mean**
per-sample loss, β **per sample**)

    C_β(Q) = E_{w∼Q}[L_D(w)] + β · KL(Q ‖ P),   Q = N(w*, diag σ²),   P = N(w0, diag λ_l²).

The means stay frozen at the trained weights w*; we learn log σ² — one per weight (``structure="diag"``) or one
per output unit/filter, shared over every axis but the first (``"filter"``; 1-D parameters keep one per entry) —
and optionally log λ_l² per layer (``learn_prior_scale``). Under the quadratic model (Achille, Paolini & Soatto 2019, Prop. 2.5) the optima
are σ_i² = β/(H_ii + β/λ_l²) (diag), σ_f⁻² = mean_{i∈f}(H_ii)/β + 1/λ_l² (filter) and λ_l² = mean_{i∈l}((w_i −
w0_i)² + σ_i²); this estimator needs no curvature and no quadratic model, only the loss.

Optimisation: Adam (betas 0.9, 0.999; fused where available) on the log-variances, learning rate ``lr`` (0.1)
× ``lr_decay`` (0.3) per epoch, decayed continuously step by step (an epoch counts at least 32 steps, so that
small datasets do not decay the rate within a few steps). Each minibatch gives one stochastic estimate
Ĉ_β = L̂ + β·KL: KL and its gradient in closed form (``_family``), L̂ with one noise draw — the local
reparameterisation (``posterior.sampling``) in the Linear/Conv2d modules picked by ``local_reparam``
(``"exact"``: Linear on 2-D inputs called once, exact per sample, unbiased; ``"all"``: Conv2d too, marginals
only; ``"none"``), one weight draw for the batch (reparameterisation) for all other parameters. The state is
kept in the parameters' dtype (float32 for a float32 model), sums in float64.

Stopping (``_monitor``): every epoch/``checks_per_epoch`` steps (at least 4) the closed-form KL and the mean
and standard error of the minibatch objectives are recorded; the run stops when, over two consecutive
intervals, |ΔKL| ≤ tol·max(KL, 1 nat) and |ΔĈ_β| is within max(tol·max(1, |Ĉ_β|), 2 standard errors) — i.e.
C_β has stopped changing beyond its Monte Carlo noise and the IW has stopped moving — or after
``max_epochs``. The tolerance is relative to the whole IW: where the mean term ½Σ(w − w0)²/λ² dominates it,
the σ²-dependent part KL_σ (recorded in ``extra["checks"]``) may still move by more; lower ``tol`` to
converge Q itself. Started from the Fisher-form optimum this usually takes under one epoch of data
(``docs/benchmarks_information.md``).

E_Q[L_D] (``mc_samples=None``, default): the mean of the minibatch losses L̂ over the converged stretch of
steps (without convergence, the last epoch's worth), with its standard error — no extra pass; unbiased per
step under ``"exact"``/``"none"``. With ``local_reparam="all"`` (not exact) the default is 8 weight draws,
each on all the data, as is any ``mc_samples=k``. L_D(w*) is taken from the Fisher initialisation pass.

Initial σ² (``init_var``): ``"fisher"`` (default) — the diagonal optimum above with H ≈ diag F, the Monte Carlo
Fisher (one sampled label per input) of ``init_samples`` samples (4096; None: all — a start needs only a rough
curvature, the rest of the data get a forward pass for L_D(w*)), averaged per filter for ``"filter"``; ``"weights"``
— Task2Vec's 0.05·Var(filter weights) + 1e-8; or a number (σ² everywhere). ``init_variance`` (σ² per weight,
e.g. the result at a nearby β: warm starts along ``information_curve``) takes precedence where given.

Reproducibility and resume: the data order (for an ``(X, Y)`` tuple, reshuffled every epoch; a DataLoader is read
as it comes) and the noise depend only on (``seed``, epoch). With ``state_path`` the log-variances, Adam state,
epoch, monitor and history are written atomically (temporary file + ``os.replace``) after every complete epoch
and on ``KeyboardInterrupt`` (the last completed epoch: a partial epoch — also one cut short by convergence,
which a rerun repeats to the same step — is dropped, so a resumed run equals an
uninterrupted one exactly). A later call whose configuration hash (β, λ, structure, seed, loss, parameter
names/shapes/values, optimiser settings, …) matches resumes; a mismatch warns and starts afresh.

Distributed (``weightinfo._base.distributed``): with an initialised process group each rank passes its own shard
and every rank returns the same result for the union. Each optimiser step takes one minibatch per rank — of
⌈``batch_size`` / world_size⌉ rows for an ``(X, Y)`` tuple (each rank permutes its own shard per epoch), so a
step still sees about ``batch_size`` samples; a DataLoader brings its own batches — and all-reduces, in
float64, the per-rank sums of the data term's gradient, its loss and its sample count: the step's gradient is
that of the mean loss over the union of the minibatches, identical on all ranks, so the Adam states, the
monitor and the stopping decisions stay identical. An epoch lasts as many steps as the longest shard has
batches (ranks whose shard is spent contribute nothing to the last steps). The local-reparameterisation noise
and the weight draw of each step use ``rank_seed`` (independent across ranks), so the trajectory is another
draw of the same stochastic optimisation: the result equals the single-process one only within the
optimisation's Monte Carlo spread (the stopping tolerance ``tol`` and the noise of E_Q[L_D]). The Fisher start,
L_D(w*) and the final E_Q[L_D] draws are reduced like ``fisher`` and ``mc_expected_loss``. Only rank 0 writes
``state_path``.

``preset="task2vec"`` reproduces the variational Fisher of Task2Vec (Achille et al. ICCV 2019, code
awslabs/aws-cv-task2vec ``variational.py``): per-filter σ² for Conv2d/Linear weights (weight
ndim ≥ 2) only, σ_f² initialised at 0.05·Var(filter weights) + 1e-8, λ_l² = mean(w²) + 1e-8 learned, means
frozen, loss = CE_mean + β·**2**·KL with β = 1e-7 (the KL counted twice; the returned ``beta`` is the
effective 2β, so that ``lagrangian`` = E_Q[L_D] + beta·nats is what was minimised), local reparameterisation in
every such Conv2d/Linear with the 1e-2 floor added to a² in the variance, Adam lr 1e-2 for log σ² and log λ²,
2 epochs (no tolerance stop). Biases, BatchNorm and other parameters keep zero variance and are excluded from the
KL (listed in ``extra["excluded_parameters"]``; their per-parameter nats are 0). Not reproduced: re-fitting the
classifier (fc) before and during the run, excluding the classifier (``layers[skip:-1]``) from the noisy
layers, BatchNorm in training mode (weightinfo requires eval mode), ``max_samples`` subsampling and the
embedding itself (1/σ_f² is ``1 / posterior_variance``). Explicit arguments override the preset's defaults
(``beta``, ``max_epochs``, ``lr``, …); ``prior_scale`` is replaced by the Task2Vec initial λ and ``structure``
is set to ``"filter"``.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from .._base import distributed as dist
from .._base.batches import count_batches, iter_batches
from .._base.checks import check_model, named_trainable
from .._base.likelihoods import get_loss
from ..curvature.result import layer_of
from ..posterior.gaussian import DiagGaussian, kl_diag_per_parameter
from ..posterior.prior import GaussianPrior, make_prior
from ..posterior.sampling import find_local_reparam_modules, local_reparam_forward, mc_expected_loss
from ._family import Family, Start
from ._family import init_logvar as _init_logvar
from ._monitor import Monitor
from ._resume import epoch_batches, epoch_seed, load_state, save_state, state_fingerprint
from ._resume import snapshot as take_snapshot
from .result import InformationResult
from .variational_options import PRESETS, STRUCTURES, VariationalOptions, VariationalSettings

__all__ = ["variational_information", "VariationalOptions", "PRESETS", "STRUCTURES"]

_PATIENCE = 2
# The learning-rate decay counts epochs of at least this many steps: on a dataset of a few batches a
# per-epoch decay would shrink the rate within a few steps and fake convergence.
_MIN_EPOCH_STEPS = 32
_MIN_CHECK_STEPS = 4  # consecutive check intervals that must pass the convergence rule


def variational_information(
    model: nn.Module,
    data,
    *,
    beta: float | None = None,
    prior_scale=None,
    prior_mean="zero",
    init_state=None,
    structure: str = "diag",
    loss: str = "cross_entropy",
    mc_samples: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool | None = None,
    init_variance=None,
    state_path: str | os.PathLike | None = None,
    curvature=None,
    convention: str | None = None,
    approximation: str | None = None,
    options: VariationalOptions | None = None,
    **option_kwargs,
) -> InformationResult:
    """IW = KL(Q*‖P) with Q* = N(w*, diag σ*²) minimising C_β = E_Q[L_D] + β·KL by stochastic optimisation.

    Parameters (see the module docstring for the method)
    ----------
    model : ``nn.Module`` in eval mode; its weights w* are the frozen means.
    data : DataLoader of ``(x, y)`` or a tuple ``(X, Y)`` (reshuffled per epoch with ``seed``).
    beta : β > 0 per sample (mean loss); with ``preset="task2vec"`` defaults to 1e-7.
    prior_scale, prior_mean, init_state : the prior P (``make_prior``); λ is the initial value if learned.
    structure : ``"diag"`` (σ² per weight) or ``"filter"`` (per output unit/filter).
    loss : ``"cross_entropy"`` | ``"bce_with_logits"`` | ``"mse"`` (ℓ = ½‖y − f‖²).
    mc_samples : None (default): E_Q[L_D] from the running estimate (see the module docstring); k > 0: k weight
        draws, each on all the data; 0: not estimated (NaN).
    seed : seeds the initial Fisher, the data order, the noise and the final draws.
    init_variance : optional warm start ``{name: σ²}`` shaped like the parameters (e.g. the
        ``posterior_variance`` of a fit at a nearby β; averaged per filter); entries missing or not > 0
        fall back to ``init_var``.
    state_path : file for interrupt/resume. progress : tqdm bar (None: only on a terminal; False: never).
    curvature : ignored (no curvature is used). convention : ``None``/``"corrected"`` only.
    options : a ``VariationalOptions``, or its fields as keywords (``option_kwargs``; not both):
        preset : None or ``"task2vec"`` (module docstring);
        learn_prior_scale : also learn log λ_l² (default False). init_var : ``"fisher"`` | ``"weights"`` |
        float; init_samples : samples of the Fisher start (4096; None: all);
        lr, lr_decay : Adam learning rate (0.1) and its factor per epoch (0.3, applied continuously);
        max_epochs (50), tol (3e-3; 0 never stops early), checks_per_epoch (8): the stopping rule;
        local_reparam : ``"exact"`` (default) | ``"all"`` | ``"none"``; input_floor : added to a² (0).
        Unknown keywords raise ``TypeError``.

    Returns an ``InformationResult(method="variational")``: ``nats`` = KL(Q*‖P) in closed form,
    ``per_parameter`` from ``kl_diag_per_parameter`` (sums to ``nats``), ``posterior_variance`` = σ*²,
    ``prior_scale`` = λ (learned or given), ``expected_loss`` ± stderr (``extra["expected_loss_source"]``
    says which estimate), ``train_loss`` = L_D(w*), ``extra["history"]`` (per epoch begun: objective C_β,
    expected_loss, kl_nats — means over its steps; ``steps`` if cut short) and ``extra["checks"]`` (the
    stopping rule's trace: step, samples, kl_nats, objective ± stderr).
    """
    s = VariationalSettings.resolve(
        VariationalOptions.build(options, option_kwargs),
        beta=beta,
        structure=structure,
        loss=loss,
        seed=seed,
        batch_size=batch_size,
        mc_samples=mc_samples,
        prior_mean=prior_mean,
        convention=convention,
        approximation=approximation,
    )
    check_model(model)
    params = {k: p.detach() for k, p in named_trainable(model).items()}
    names = _variational_names(model, params, s.preset)
    prior, lam2_init = _prior(model, params, names, s, prior_scale, prior_mean, init_state)
    fam = Family(params, prior.mean, names, s.structure, lam2_init, s.learn_prior_scale)
    config = state_fingerprint(params, prior, names, s, lam2_init, init_variance)
    run = _Run(s, fam, params, data, config)
    path = Path(state_path) if state_path is not None else None
    start, history = _start(run, model, data, path, init_variance)
    dev = next(iter(params.values())).device
    x0 = next(iter(iter_batches(data, device=dev, batch_size=s.batch_size)))[0]
    mods = ()
    if s.local_reparam != "none":
        mods = find_local_reparam_modules(model, x0, mode=s.local_reparam, names=names)
    _optimise(model, data, run, history, mods, path, progress)
    return _result(model, data, prior, run, names, history, mods, resumed_from=start or None)


class _Run:
    """What changes during a run — the family, its Adam state, the monitor, the epoch, how it started — next
    to the frozen settings ``s`` and the configuration hash ``config`` that ties a resume state to them."""

    def __init__(self, s: VariationalSettings, fam: Family, params, data, config: str):
        self.s, self.fam, self.params, self.config = s, fam, params, config
        groups = [{"params": list(fam.logvar.values())}]
        if s.learn_prior_scale:
            groups.append({"params": list(fam.loglam.values())})
        self.opt = _adam(groups, s.lr)
        self.batch_size = _local_batch_size(s.batch_size)
        self.n_batches = count_batches(data, self.batch_size)
        if dist.active():  # an epoch lasts as many steps as the longest shard has batches
            most = dist.all_reduce_max(-1 if self.n_batches is None else self.n_batches)
            self.n_batches = None if most < 0 else most
        every = None  # checks every fraction of an epoch, at least _MIN_CHECK_STEPS steps apart
        if self.n_batches is not None:
            every = max(_MIN_CHECK_STEPS, -(-self.n_batches // s.checks_per_epoch))
        self.mon = Monitor(s.tol, every, patience=_PATIENCE)
        self.epoch = 0
        self.start: Start | None = None


def _start(run: _Run, model, data, path, init_variance) -> tuple[int, list]:
    """Resume from ``path`` when its configuration matches, else the initial log σ²: (epoch, history)."""
    state = load_state(path)
    if state is not None and state.get("config") == run.config:
        run.fam.load(state)
        run.opt.load_state_dict(state["optimizer"])
        run.mon.load_state_dict(state["monitor"])
        run.start = Start.from_state(state)
        run.epoch = int(state["epoch"])
        return run.epoch, list(state["history"])
    if state is not None:
        warnings.warn(
            f"{path}: saved state has another configuration; starting afresh", stacklevel=3
        )
    run.start = _init_logvar(run.fam, model, data, run.s, init_variance)
    return 0, []


def _optimise(model, data, run: _Run, history, mods, path, progress) -> None:
    """Epochs of Adam until convergence or ``max_epochs``; saves the state after each (and on Ctrl-C)."""
    s, fam, opt, mon = run.s, run.fam, run.opt, run.mon
    dev = next(iter(run.params.values())).device
    lossfn = get_loss(s.loss)
    epoch = run.epoch
    snapshot = take_snapshot(run, epoch, history) if path is not None else None
    bar = tqdm(
        total=s.max_epochs,
        initial=min(epoch, s.max_epochs),
        desc="variational",
        unit="epoch",
        disable=True if progress is False else None,
        leave=False,
    )
    try:
        while epoch < s.max_epochs and not mon.converged():
            noise_seed = dist.rank_seed(epoch_seed(s.seed, epoch, "noise"))
            gen = torch.Generator(device=dev).manual_seed(noise_seed)
            batches = epoch_batches(data, s.seed, epoch, run.batch_size, dev)
            sched = _Schedule(opt, s.lr, s.lr_decay, epoch, run.n_batches or mon.epoch_steps)
            obj, el, kl, steps, done = _run_epoch(
                fam, opt, model, batches, run.params, lossfn, s.beta_effective, gen, mods,
                s.input_floor, mon, sched,
            )  # fmt: skip
            epoch += 1
            row = {"epoch": epoch, "objective": obj, "expected_loss": el, "kl_nats": kl}
            history.append(row)
            if not done:  # stopped inside the epoch by the convergence rule; not saved (see below)
                row["steps"] = steps
                break
            kl_end = fam.kl()
            mon.end_epoch(kl_end, kl_end - fam.mean_term())
            # Only complete epochs are saved: a rerun redoes a partial one and stops at the same step.
            if path is not None:
                snapshot = take_snapshot(run, epoch, history)
                dist.main_only(save_state, path, snapshot)
            bar.update(1)
            bar.set_postfix(C_beta=f"{obj:.6g}", KL=f"{kl:.6g}")
    except KeyboardInterrupt:
        if path is not None and dist.is_main():
            save_state(path, snapshot)
        raise
    finally:
        bar.close()


def _adam(groups, lr):
    """Adam on the log-variances: the fused kernel where this torch has it (one pass per step), else foreach."""
    try:
        return torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), fused=True)
    except (RuntimeError, ValueError, TypeError):
        return torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), foreach=True)


class _Schedule:
    """lr · lr_decay^(epochs done), continuous within an epoch once the epoch's length is known."""

    def __init__(self, opt, lr, decay, epoch, per_epoch):
        self.opt, self.lr, self.decay, self.epoch, self.per_epoch = opt, lr, decay, epoch, per_epoch

    def set(self, step_in_epoch: int) -> None:
        if self.per_epoch:  # time in epochs of at least _MIN_EPOCH_STEPS steps
            unit = max(self.per_epoch, _MIN_EPOCH_STEPS)
            t = (self.epoch * self.per_epoch + step_in_epoch) / unit
        else:
            t = self.epoch
        for g in self.opt.param_groups:
            g["lr"] = self.lr * self.decay**t


def _run_epoch(fam, opt, model, batches, mean, lossfn, beta_eff, gen, mods, floor, mon, sched):
    """One pass over the minibatches, one Adam step each, until the monitor reports convergence.

    Per step: σ² = exp(log σ²) once, a local-reparameterised forward, autograd of the loss only, then the
    closed-form KL gradient added (``Family.add_kl_grad``). Returns the sample-weighted means of Ĉ_β, L̂ and
    KL over the steps taken, the number of steps, and whether the epoch ran to its end.
    """
    if dist.active() and dist.world_size() > 1:
        return _run_epoch_distributed(
            fam, opt, model, batches, mean, lossfn, beta_eff, gen, mods, floor, mon, sched
        )
    sums, n, steps = [0.0, 0.0, 0.0], 0, 0
    for x, y in batches:
        sched.set(steps)
        opt.zero_grad(set_to_none=True)
        var_lv = fam.var_lv()
        z = local_reparam_forward(
            model, x, mean, fam.expand(var_lv), gen, modules=mods, input_floor=floor
        )
        if n == 0:
            lossfn.check_targets(z, y)
        el = lossfn.per_sample(z, y).mean()
        el.backward()
        kl = fam.kl(var_lv)
        fam.add_kl_grad(var_lv, beta_eff)
        opt.step()
        el = float(el.detach())
        obj = el + beta_eff * kl
        for i, v in enumerate((obj, el, kl)):
            sums[i] += v * x.shape[0]
        n += x.shape[0]
        steps += 1
        if mon.step(obj, el, kl, x.shape[0], kl - fam.mean_term()):
            return (*(v / n for v in sums), steps, False)
    return (*(v / n for v in sums), steps, True)


def _local_batch_size(batch_size: int) -> int:
    """Rows per rank and step: ⌈batch_size / world_size⌉ (``batch_size`` without a process group)."""
    return -(-int(batch_size) // dist.world_size())


def _run_epoch_distributed(
    fam, opt, model, batches, mean, lossfn, beta_eff, gen, mods, floor, mon, sched
):
    """``_run_epoch`` under a process group: one minibatch per rank and step, reduced (module docstring).

    Per step every rank all-reduces one float64 buffer [Σ ℓ, n, Σ ∇ℓ over its minibatch] — a rank whose shard
    is spent contributes zeros — and sets the gradient of every state tensor to the union's mean; the epoch ends
    when no rank has a batch left. Collective: all ranks take the same number of steps."""
    state = [p for g in opt.param_groups for p in g["params"]]
    sums, n, steps, first = [0.0, 0.0, 0.0], 0, 0, True
    it = iter(batches)
    while True:
        batch = next(it, None)
        sched.set(steps)
        opt.zero_grad(set_to_none=True)
        var_lv = fam.var_lv()
        loss_sum, n_local = torch.zeros((), dtype=torch.float64), 0
        if batch is not None:
            x, y = batch
            z = local_reparam_forward(
                model, x, mean, fam.expand(var_lv), gen, modules=mods, input_floor=floor
            )
            if first:
                lossfn.check_targets(z, y)
                first = False
            total = lossfn.per_sample(z, y).sum()
            total.backward()
            loss_sum, n_local = total.detach(), x.shape[0]
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in state]
        red = dist.reduce_sums(
            {"loss": loss_sum, "n": n_local, **{str(i): g for i, g in enumerate(grads)}}
        )
        n_step = red["n"]
        if n_step == 0:  # every shard is spent: the epoch is over
            opt.zero_grad(set_to_none=True)
            return (*(v / n for v in sums), steps, True)
        for i, p in enumerate(state):
            p.grad = (red[str(i)] / n_step).to(p.dtype)
        kl = fam.kl(var_lv)
        fam.add_kl_grad(var_lv, beta_eff)
        opt.step()
        el = float(red["loss"]) / n_step
        obj = el + beta_eff * kl
        for i, v in enumerate((obj, el, kl)):
            sums[i] += v * n_step
        n += n_step
        steps += 1
        if mon.step(obj, el, kl, n_step, kl - fam.mean_term()):
            return (*(v / n for v in sums), steps, False)


def _variational_names(model, params, preset) -> list[str]:
    """Parameters that get a variance: all trainable ones, or (Task2Vec) the Conv2d/Linear weights."""
    if preset is None:
        return list(params)
    out = {
        f"{mn}.weight" if mn else "weight"
        for mn, m in model.named_modules()
        if isinstance(m, (nn.Linear, nn.Conv2d)) and m.weight.ndim >= 2
    }
    names = [k for k in params if k in out]
    if not names:
        raise ValueError("preset='task2vec' needs at least one trainable Conv2d/Linear weight")
    return names


def _prior(model, params, names, s, prior_scale, prior_mean, init_state):
    """The prior P (means for every parameter) and the initial λ_l² of the layers that carry noise."""
    layers = list(dict.fromkeys(layer_of(n) for n in names))
    if s.preset:  # Task2Vec: λ_l² = mean over the layer's weights of (w − w0)², + 1e-8
        w0 = make_prior(model, prior_scale=1.0, prior_mean=prior_mean, init_state=init_state).mean
        lam2 = {}
        for layer in layers:
            d = [
                (params[n].double() - w0[n]).pow(2).reshape(-1)
                for n in names
                if layer_of(n) == layer
            ]
            lam2[layer] = float(torch.cat(d).mean()) + 1e-8
        return GaussianPrior(w0, {k: math.sqrt(v) for k, v in lam2.items()}), lam2
    if prior_scale is None:
        raise ValueError("prior_scale is required (a number, a dict per layer or 'weights')")
    prior = make_prior(model, prior_scale=prior_scale, prior_mean=prior_mean, init_state=init_state)
    return prior, {layer: prior.scale[layer] ** 2 for layer in layers}


def _result(model, data, prior, run: _Run, names, history, mods, resumed_from) -> InformationResult:
    s, fam, params, mon = run.s, run.fam, run.params, run.mon
    var = {n: v.detach().double() for n, v in fam.var().items()}  # float64 like every result field
    scale = {k: math.sqrt(v) for k, v in fam.lam2().items()}
    q = DiagGaussian({n: params[n].double() for n in names}, var)
    per = kl_diag_per_parameter(q, GaussianPrior(prior.mean, scale))
    zero = {
        k: torch.zeros(p.shape, dtype=torch.float64, device=p.device) for k, p in params.items()
    }
    e, se, draws, source, train_loss, n = _expected_loss(model, data, run, var)
    converged = mon.converged()
    objective = "E_Q[L_D] + beta * KL(Q||P)"
    if s.preset:
        objective += "; task2vec: CE_mean + beta_argument * 2 * KL, so beta = 2 * beta_argument"
    extra = {"resumed_from_epoch": resumed_from}
    keys = ("preset", "kl_factor", "local_reparam", "input_floor", "lr", "lr_decay")
    extra.update({k: getattr(s, k) for k in keys + ("learn_prior_scale",)})
    extra.update(
        history=history,
        epochs=len(history),
        converged=converged,
        stop_reason="tol" if converged else "max_epochs",
        objective=objective,
        beta_argument=s.beta,
        variational_parameters=list(names),
        excluded_parameters=[k for k in params if k not in var],
        local_reparam_modules=list(mods),
        init_var=run.start.note,
        expected_loss_source=source,
        checks=mon.trace,
        check_every=mon.check_every,
        steps=mon.steps,
        tol=s.tol,
        prior_scale_init={k: math.sqrt(v) for k, v in fam.lam2_init.items()},
    )
    return InformationResult(
        nats=float(sum(v.sum() for v in per.values())),
        beta=s.beta_effective,
        expected_loss=e,
        expected_loss_stderr=se,
        train_loss=train_loss,
        per_parameter={k: per.get(k, zero[k]) for k in params},
        posterior_variance={k: var.get(k, zero[k]) for k in params},
        prior_scale=scale,
        method="variational",
        structure=s.structure,
        curvature="none",
        loss=s.loss,
        convention="corrected",
        prior_mean=s.prior_mean_label,
        n_samples=n,
        mc_samples=draws,
        seed=s.seed,
        layer_types={name: type(m).__name__ for name, m in model.named_modules()},
        extra=extra,
    )


def _expected_loss(model, data, run: _Run, var):
    """E_Q*[L_D] ± se, the draws used, its source and L_D(w*), N (see the module docstring)."""
    s, params = run.s, run.params
    common = dict(loss=s.loss, batch_size=s.batch_size)
    train_loss, n = run.start.train_loss, run.start.n_samples
    if train_loss is None:  # no Fisher pass over all the data to take L_D(w*) from
        train_loss, _, n = mc_expected_loss(model, data, params, {}, mc_samples=1, seed=0, **common)
    draws = s.mc_samples
    if draws is None:  # the running estimate where it is unbiased (see the module docstring)
        draws = 0 if s.local_reparam in ("exact", "none") else 8
        e, se, n_run = run.mon.running() if draws == 0 else (math.nan, math.nan, 0)
        source = f"running mean of the minibatch losses over the last {n_run} samples"
    else:
        e, se, source = math.nan, math.nan, "not estimated (mc_samples=0)"
    if draws > 0:
        v32 = {k: v.to(params[k].dtype) for k, v in var.items()}
        e, se, _ = mc_expected_loss(
            model, data, params, v32, mc_samples=draws, seed=s.seed, **common
        )
        source = f"{draws} weight draws w ~ Q*, each on all {n} samples"
    return e, se, draws, source, train_loss, n
