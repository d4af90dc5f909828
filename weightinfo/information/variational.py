"""Information in the weights by direct minimisation of the Information Lagrangian over a Gaussian family.

Achille, Paolini & Soatto 2019, Def. 2.1: IW_β = KL(Q*‖P) with Q* = argmin_Q C_β, where (nats; L_D the **mean**
per-sample loss, β **per sample**)

    C_β(Q) = E_{w∼Q}[L_D(w)] + β · KL(Q ‖ P),   Q = N(w*, diag σ²),   P = N(w0, diag λ_l²).

The means stay frozen at the trained weights w*; we learn log σ² — one per weight (``structure="diag"``) or one
per output unit/filter, shared over every axis but the first (``"filter"``; 1-D parameters keep one per entry) —
and optionally log λ_l² per layer (``learn_prior_scale``). Under the quadratic model (paper §1.4–1.5) the optima
are σ_i² = β/(H_ii + β/λ_l²) (diag), σ_f⁻² = mean_{i∈f}(H_ii)/β + 1/λ_l² (filter) and λ_l² = mean_{i∈l}((w_i −
w0_i)² + σ_i²); this estimator needs no curvature and no quadratic model, only the loss.

Optimisation: Adam (betas 0.9, 0.999) on the log-variances, learning rate ``lr`` × ``lr_decay``^epoch; each
minibatch gives one stochastic estimate L̂ + β·KL: KL in closed form, L̂ with one noise draw — the local
reparameterisation (``posterior.sampling``) in the Linear/Conv2d modules picked by ``local_reparam``
(``"exact"``: Linear on 2-D inputs called once, exact per sample, unbiased; ``"all"``: Conv2d too, marginals
only; ``"none"``), one weight draw for the batch (reparameterisation) for all other parameters.
C_β of an epoch is the sample-weighted mean of its minibatch estimates; training stops when
|ΔC_β| < tol·max(1, |C_β|) between two epochs or after ``max_epochs``.

Initial σ² (``init_var``): ``"fisher"`` (default) — the diagonal optimum above with H ≈ diag F, the Monte Carlo
Fisher (one sampled label per input, one pass over the data), averaged per filter for ``"filter"``; ``"weights"``
— Task2Vec's 0.05·Var(filter weights) + 1e-8; or a number (σ² everywhere). ``init_variance`` (σ² per weight,
e.g. the result at a nearby β: warm starts along ``information_curve``) takes precedence where given.

Reproducibility and resume: the data order (for an ``(X, Y)`` tuple, reshuffled every epoch; a DataLoader is read
as it comes) and the noise depend only on (``seed``, epoch). With ``state_path`` the log-variances, Adam state,
epoch and history are written atomically (temporary file + ``os.replace``) after every epoch and on
``KeyboardInterrupt`` (the last completed epoch: a partial epoch is dropped, so a resumed run equals an
uninterrupted one exactly). A later call whose configuration hash (β, λ, structure, seed, loss, parameter
names/shapes/values, optimiser settings, …) matches resumes; a mismatch warns and starts afresh.

``preset="task2vec"`` reproduces the variational Fisher of Task2Vec (Achille et al. ICCV 2019, code
awslabs/aws-cv-task2vec ``variational.py``; paper.md §5.3): per-filter σ² for Conv2d/Linear weights (weight
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

from .._checks import check_choice, check_model, check_positive, named_trainable
from ..curvature._data import iter_batches
from ..curvature._losses import LOSSES, get_loss
from ..curvature.result import layer_of
from ..posterior.gaussian import DiagGaussian, kl_diag_per_parameter
from ..posterior.prior import GaussianPrior, make_prior
from ..posterior.sampling import find_local_reparam_modules, local_reparam_forward, mc_expected_loss
from ._resume import config_hash, epoch_batches, epoch_seed, save_state
from ._resume import snapshot as take_snapshot
from .result import InformationResult

STRUCTURES = ("diag", "filter")
PRESETS = ("task2vec",)
_DEFAULTS = dict(
    max_epochs=50, lr=1e-2, tol=1e-3, init_var="fisher", learn_prior_scale=False,
    local_reparam="exact", input_floor=0.0,
)  # fmt: skip
_TASK2VEC = dict(
    beta=1e-7, max_epochs=2, lr=1e-2, tol=0.0, init_var="weights", learn_prior_scale=True,
    local_reparam="all", input_floor=1e-2,
)  # fmt: skip


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
    mc_samples: int = 8,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool | None = None,
    preset: str | None = None,
    learn_prior_scale: bool | None = None,
    init_var: str | float | None = None,
    init_variance=None,
    lr: float | None = None,
    lr_decay: float = 1.0,
    max_epochs: int | None = None,
    tol: float | None = None,
    local_reparam: str | bool | None = None,
    input_floor: float | None = None,
    state_path: str | os.PathLike | None = None,
    curvature=None,
    convention: str | None = None,
    approximation: str | None = None,
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
    mc_samples : weight draws (each on all the data) for the reported E_Q[L_D] (0: skipped, NaN).
    seed : seeds the initial Fisher, the data order, the noise and the final draws.
    learn_prior_scale : also learn log λ_l² (default False). init_var : ``"fisher"`` | ``"weights"`` | float.
    init_variance : optional warm start ``{name: σ²}`` shaped like the parameters (e.g. the
        ``posterior_variance`` of a fit at a nearby β; averaged per filter); entries missing or not > 0
        fall back to ``init_var``.
    lr, lr_decay : Adam learning rate (1e-2) and its per-epoch factor (1.0). max_epochs (50), tol (1e-3).
    local_reparam : ``"exact"`` (default) | ``"all"`` | ``"none"``; input_floor : added to a² (0).
    state_path : file for interrupt/resume. progress : tqdm bar (None: only on a terminal; False: never).
    curvature : ignored (no curvature is used). convention : ``None``/``"corrected"`` only.

    Returns an ``InformationResult(method="variational")``: ``nats`` = KL(Q*‖P) in closed form,
    ``per_parameter`` from ``kl_diag_per_parameter`` (sums to ``nats``), ``posterior_variance`` = σ*²,
    ``prior_scale`` = λ (learned or given), ``expected_loss`` ± stderr by Monte Carlo under Q* itself
    (weight draws, whatever ``local_reparam`` was used in training), ``train_loss`` = L_D(w*), and
    ``extra["history"]`` (per epoch: objective C_β, expected_loss, kl_nats — epoch means).
    """
    s = _settings(locals())
    check_model(model)
    params = {k: p.detach() for k, p in named_trainable(model).items()}
    names = _variational_names(model, params, preset)
    prior, lam2_init = _prior(model, params, names, s, prior_scale, prior_mean, init_state)
    fam = _Family(params, prior.mean, names, s["structure"], lam2_init, s["learn_prior_scale"])
    groups = [{"params": list(fam.logvar.values())}]
    if s["learn_prior_scale"]:
        groups.append({"params": list(fam.loglam.values())})
    opt = torch.optim.Adam(groups, lr=s["lr"], betas=(0.9, 0.999))
    s["config"] = config_hash(params, prior, names, s, lam2_init, init_variance)
    path = Path(state_path) if state_path is not None else None
    start, history = 0, []
    state = torch.load(path, weights_only=True) if path is not None and path.exists() else None
    if state is not None and state.get("config") == s["config"]:
        fam.load(state)
        opt.load_state_dict(state["optimizer"])
        start, history = int(state["epoch"]), list(state["history"])
        s["init_note"] = state["init_note"]
    else:
        if state is not None:
            warnings.warn(
                f"{path}: saved state has another configuration; starting afresh", stacklevel=2
            )
        s["init_note"] = _init_logvar(fam, model, data, s, init_variance)
    s["resumed_from_epoch"] = start if start else None
    dev = next(iter(params.values())).device
    x0 = next(iter(iter_batches(data, device=dev, batch_size=s["batch_size"])))[0]
    mode = s["local_reparam"]
    mods = () if mode == "none" else find_local_reparam_modules(model, x0, mode=mode, names=names)
    _optimise(model, data, params, fam, opt, s, start, history, mods, path, progress)
    return _result(model, data, params, prior, fam, names, s, history, mods)


def _optimise(model, data, params, fam, opt, s, epoch, history, mods, path, progress) -> None:
    """Epochs of Adam until convergence or ``max_epochs``; saves the state after each (and on Ctrl-C)."""
    dev = next(iter(params.values())).device
    lossfn = get_loss(s["loss"])
    beta_eff = s["beta"] * s["kl_factor"]
    snapshot = take_snapshot(s, epoch, fam, opt, history) if path is not None else None
    bar = tqdm(
        total=s["max_epochs"],
        initial=min(epoch, s["max_epochs"]),
        desc="variational",
        unit="epoch",
        disable=True if progress is False else None,
        leave=False,
    )
    try:
        while epoch < s["max_epochs"] and not _converged(history, s["tol"]):
            for g in opt.param_groups:
                g["lr"] = s["lr"] * s["lr_decay"] ** epoch
            gen = torch.Generator(device=dev).manual_seed(epoch_seed(s["seed"], epoch, "noise"))
            batches = epoch_batches(data, s["seed"], epoch, s["batch_size"], dev)
            obj, el, kl = _run_epoch(
                fam, opt, model, batches, params, lossfn, beta_eff, gen, mods, s["input_floor"]
            )
            epoch += 1
            history.append({"epoch": epoch, "objective": obj, "expected_loss": el, "kl_nats": kl})
            if path is not None:
                snapshot = take_snapshot(s, epoch, fam, opt, history)
                save_state(path, snapshot)
            bar.update(1)
            bar.set_postfix(C_beta=f"{obj:.6g}")
    except KeyboardInterrupt:
        if path is not None:
            save_state(path, snapshot)
        raise
    finally:
        bar.close()


class _Family:
    """log σ² (per weight or per filter) and log λ_l² of Q = N(w*, diag σ²), P = N(w0, diag λ_l²); float64."""

    def __init__(self, params, w0, names, structure, lam2, learn):
        dev = next(iter(params.values())).device
        self.shape = {n: params[n].shape for n in names}
        self.layer = {n: layer_of(n) for n in names}
        self.d2 = {n: (params[n].double() - w0[n].double()).pow(2) for n in names}
        self.logvar = {
            n: torch.zeros(_lv_shape(self.shape[n], structure), dtype=torch.float64, device=dev)
            for n in names
        }
        self.lam2_init = dict(lam2)
        self.loglam = {
            layer: torch.tensor(math.log(v), dtype=torch.float64, device=dev, requires_grad=learn)
            for layer, v in lam2.items()
        }

    def var(self) -> dict[str, torch.Tensor]:
        return {n: lv.exp().expand(self.shape[n]) for n, lv in self.logvar.items()}

    def lam2(self) -> dict[str, float]:
        return {layer: math.exp(float(v.detach())) for layer, v in self.loglam.items()}

    def kl(self) -> torch.Tensor:
        """Closed-form KL(Q‖P) = Σ_i ½[(σ_i² + (w_i − w0_i)²)/λ² − 1 + ln λ² − ln σ_i²], differentiable."""
        total = 0.0
        for n, lv in self.logvar.items():
            ll = self.loglam[self.layer[n]]
            lv = lv.expand(self.shape[n])
            total = total + 0.5 * ((lv.exp() + self.d2[n]) * torch.exp(-ll) - 1 + ll - lv).sum()
        return total

    def load(self, state) -> None:
        with torch.no_grad():
            for n, v in state["logvar"].items():
                self.logvar[n].copy_(v)
            for layer, v in state["loglam"].items():
                self.loglam[layer].copy_(v)
        for v in self.logvar.values():
            v.requires_grad_(True)


def _run_epoch(fam, opt, model, batches, mean, lossfn, beta_eff, gen, mods, floor):
    """One pass over the minibatches, one Adam step each; returns the sample-weighted means of C_β, L̂, KL."""
    sums, n = [0.0, 0.0, 0.0], 0
    for x, y in batches:
        opt.zero_grad(set_to_none=True)
        z = local_reparam_forward(model, x, mean, fam.var(), gen, modules=mods, input_floor=floor)
        if n == 0:
            lossfn.check_targets(z, y)
        el = lossfn.per_sample(z, y).mean().to(torch.float64)
        kl = fam.kl()
        obj = el + beta_eff * kl
        obj.backward()
        opt.step()
        for i, v in enumerate((obj, el, kl)):
            sums[i] += float(v.detach()) * x.shape[0]
        n += x.shape[0]
    return tuple(v / n for v in sums)


def _settings(args: dict) -> dict:
    """Validated settings: the preset's defaults, overridden by every argument given explicitly."""
    preset, conv, structure = args["preset"], args["convention"], args["structure"]
    if preset is not None:
        check_choice("preset", preset, PRESETS)
    if conv not in (None, "corrected"):
        raise ValueError(
            f"convention={conv!r} is not available for method='variational': it minimises C_β directly, "
            "so only the corrected convention (None or 'corrected') applies"
        )
    if args["approximation"] is not None:
        raise ValueError("approximation applies to the Fisher method; use approximation=None")
    if structure in ("kfac", "full"):
        raise ValueError(
            f"structure={structure!r} is not supported by method='variational'; use 'diag' or 'filter'"
        )
    check_choice("structure", structure, STRUCTURES)
    check_choice("loss", args["loss"], LOSSES)
    s = dict(_DEFAULTS, **(_TASK2VEC if preset else {}))
    s.update({k: args[k] for k in _DEFAULTS if args[k] is not None})
    beta = args["beta"] if args["beta"] is not None else s.get("beta")
    if beta is None:
        raise ValueError("beta is required (a finite number > 0, per sample)")
    s["beta"] = check_positive("beta", beta)
    s["kl_factor"] = 2.0 if preset else 1.0
    s["structure"] = "filter" if preset else structure
    s["preset"] = preset
    pm = args["prior_mean"]
    s["prior_mean_label"] = pm if isinstance(pm, str) else "custom"
    lrm = {True: "exact", False: "none"}.get(s["local_reparam"], s["local_reparam"])
    s["local_reparam"] = check_choice("local_reparam", lrm, ("exact", "all", "none"))
    for k, lo in (("max_epochs", 1), ("batch_size", 1), ("mc_samples", 0), ("seed", None)):
        v = s[k] if k in s else args[k]
        if isinstance(v, bool) or int(v) != v or (lo is not None and v < lo):
            raise ValueError(
                f"{k} must be an integer{'' if lo is None else f' >= {lo}'}, got {v!r}"
            )
        s[k] = int(v)
    s["lr"] = check_positive("lr", s["lr"])
    s["lr_decay"] = check_positive("lr_decay", args["lr_decay"])
    s["tol"] = check_positive("tol", s["tol"], allow_zero=True)
    s["input_floor"] = check_positive("input_floor", s["input_floor"], allow_zero=True)
    s["loss"] = args["loss"]
    if isinstance(s["init_var"], str):
        check_choice("init_var", s["init_var"], ("fisher", "weights"))
    else:
        s["init_var"] = check_positive("init_var", s["init_var"])
    return s


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
    if s["preset"]:  # Task2Vec: λ_l² = mean over the layer's weights of (w − w0)², + 1e-8
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


def _lv_shape(shape, structure) -> tuple:
    if structure == "filter" and len(shape) >= 2:
        return (shape[0],) + (1,) * (len(shape) - 1)
    return tuple(shape)


def _per_filter(t: torch.Tensor, lv_shape) -> torch.Tensor:
    """Mean of a parameter-shaped tensor over each filter (identity for per-weight shapes)."""
    if tuple(t.shape) == tuple(lv_shape):
        return t
    return t.reshape(t.shape[0], -1).mean(1).reshape(lv_shape)


def _init_logvar(fam, model, data, s, init_variance) -> str:
    """Set the initial log σ² (see the module docstring); returns a description for ``extra``."""
    iv, lam2, beta_eff = s["init_var"], fam.lam2(), s["beta"] * s["kl_factor"]
    warm = {
        n: v.detach().to(fam.logvar[n]).expand(fam.shape[n])
        for n, v in (init_variance or {}).items()
        if n in fam.logvar and bool((torch.as_tensor(v) > 0).all())
    }
    if iv == "fisher" and len(warm) < len(fam.logvar):
        from ..curvature.fisher import fisher

        F = fisher(
            model, data, kind="mc", mc_samples=1, seed=s["seed"], loss=s["loss"],
            batch_size=s["batch_size"], progress=False,
        ).diag  # fmt: skip
    ref = dict(model.named_parameters())
    for n, lv in fam.logvar.items():
        if n in warm:
            v = _per_filter(warm[n], lv.shape)
        elif iv == "fisher":
            h = _per_filter(F[n].to(lv), lv.shape)
            v = beta_eff / (h + beta_eff / lam2[fam.layer[n]])
        elif iv == "weights":
            v = _per_filter(_weight_var(ref[n].detach().to(lv)), lv.shape)
        else:
            v = torch.full(lv.shape, float(iv), dtype=torch.float64, device=lv.device)
        with torch.no_grad():
            lv.copy_(v.log().reshape(lv.shape))
        lv.requires_grad_(True)
    notes = {
        "fisher": "fisher: beta/(F_ii + beta/lambda^2), Monte Carlo Fisher (1 label per input)",
        "weights": "weights: 0.05*Var(filter weights) + 1e-8 (Task2Vec)",
    }
    note = notes.get(iv, f"constant: {iv!r}") if isinstance(iv, str) else f"constant: {iv!r}"
    return f"init_variance for {sorted(warm)}; else {note}" if warm else note


def _weight_var(w: torch.Tensor) -> torch.Tensor:
    """Task2Vec's 0.05·Var(filter weights) + 1e-8 per filter (per whole vector for ≤1-D), parameter-shaped."""
    rows = w.reshape(w.shape[0], -1) if w.ndim >= 2 else w.reshape(1, -1)
    v = 0.05 * rows.var(dim=1, correction=1 if rows.shape[1] > 1 else 0) + 1e-8
    return (
        v.reshape((-1,) + (1,) * (w.ndim - 1)).expand(w.shape) if w.ndim >= 2 else v.expand(w.shape)
    )


def _converged(history, tol) -> bool:
    if len(history) < 2:
        return False
    c1, c0 = history[-1]["objective"], history[-2]["objective"]
    return abs(c1 - c0) < tol * max(1.0, abs(c1))


def _result(model, data, params, prior, fam, names, s, history, mods) -> InformationResult:
    var = {n: v.detach().clone() for n, v in fam.var().items()}
    scale = {k: math.sqrt(v) for k, v in fam.lam2().items()}
    q = DiagGaussian({n: params[n].double() for n in names}, var)
    per = kl_diag_per_parameter(q, GaussianPrior(prior.mean, scale))
    zero = {
        k: torch.zeros(p.shape, dtype=torch.float64, device=p.device) for k, p in params.items()
    }
    common = dict(loss=s["loss"], batch_size=s["batch_size"])
    train_loss, _, n = mc_expected_loss(model, data, params, {}, mc_samples=1, seed=0, **common)
    e, se = float("nan"), float("nan")
    if s["mc_samples"] > 0:
        e, se, _ = mc_expected_loss(
            model, data, params, var, mc_samples=s["mc_samples"], seed=s["seed"], **common
        )
    converged = _converged(history, s["tol"])
    objective = "E_Q[L_D] + beta * KL(Q||P)"
    if s["preset"]:
        objective += "; task2vec: CE_mean + beta_argument * 2 * KL, so beta = 2 * beta_argument"
    keys = ("resumed_from_epoch", "preset", "kl_factor", "local_reparam", "input_floor", "lr")
    extra = {k: s[k] for k in keys + ("lr_decay", "learn_prior_scale")}
    extra.update(
        history=history,
        epochs=len(history),
        converged=converged,
        stop_reason="tol" if converged else "max_epochs",
        objective=objective,
        beta_argument=s["beta"],
        variational_parameters=list(names),
        excluded_parameters=[k for k in params if k not in var],
        local_reparam_modules=list(mods),
        init_var=s["init_note"],
        prior_scale_init={k: math.sqrt(v) for k, v in fam.lam2_init.items()},
    )
    return InformationResult(
        nats=float(sum(v.sum() for v in per.values())),
        beta=s["beta"] * s["kl_factor"],
        expected_loss=e,
        expected_loss_stderr=se,
        train_loss=train_loss,
        per_parameter={k: per.get(k, zero[k]) for k in params},
        posterior_variance={k: var.get(k, zero[k]) for k in params},
        prior_scale=scale,
        method="variational",
        structure=s["structure"],
        curvature="none",
        loss=s["loss"],
        convention="corrected",
        prior_mean=s["prior_mean_label"],
        n_samples=n,
        mc_samples=s["mc_samples"],
        seed=s["seed"],
        layer_types={name: type(m).__name__ for name, m in model.named_modules()},
        extra=extra,
    )
