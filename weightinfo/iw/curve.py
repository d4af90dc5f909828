"""The loss-versus-information curve: IW_β and E_{Q*_β}[L_D] over a range of β.

Achille, Paolini & Soatto 2019, Def. 2.1 (reference §1.2): for each β the optimal code Q*_β minimises
C_β = E_Q[L_D] + β·KL(Q‖P); the pairs (IW_β = KL(Q*_β‖P), E_{Q*_β}[L_D]) trace the trade-off between how many
nats the weights store and how much loss the perturbed network pays — a "rate–distortion" curve, shown for
summed losses in the Information Complexity paper (1904.03292, Fig. 2; reference §5.4). Large β: wide Q, few
nats, high loss; small β: Q collapses on w*, many nats, loss → L_D(w*).

Conventions as everywhere in ``weightinfo.iw``: L_D is the **mean** per-sample loss, β is **per
sample** (β_sum = N·β), information in nats.

``method="fisher"`` computes the curvature **once** and evaluates the closed form (``gaussian_optimum``) at every
β, plus a Monte Carlo E_{Q*}[L_D] with ``mc_samples`` weight draws per β (the same seed at every β: common random
numbers make the curve smooth). Each point equals ``information(..., beta=β)`` exactly. ``method="variational"``
calls ``information(..., method="variational")`` for each β in ascending order, warm-starting each fit from the
previous posterior variance when the variational estimator accepts ``init_variance``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

from .._base.checks import check_choice, check_int, check_model, named_trainable
from .._base.likelihoods import get_loss
from .._base.mean_loss import mean_loss as _mean_loss
from ..curvature.result import Curvature, layer_of
from ..posterior.gaussian import NATS_PER_BIT
from ..posterior.prior import make_prior
from . import estimate
from .estimate import CURVATURES, METHODS, STRUCTURES, information
from .fisher_form import APPROXIMATIONS, CONVENTIONS, gaussian_optimum
from .result import InformationResult

__all__ = ["InformationCurve", "information_curve", "check_betas"]

#: Columns of ``InformationCurve.rows``.
ROW_KEYS = (
    "beta",
    "expected_loss",
    "expected_loss_stderr",
    "expected_loss_quadratic",
    "train_loss",
    "nats",
    "bits",
    "lagrangian",
)


def check_betas(betas) -> list[float]:
    """The β values as floats sorted ascending without duplicates; ``ValueError`` naming ``betas`` unless
    every value is a finite number > 0 and there is at least one."""
    if isinstance(betas, (int, float)) and not isinstance(betas, bool):
        betas = [betas]
    if isinstance(betas, (str, bytes)) or not isinstance(betas, Iterable):
        raise ValueError(f"betas must be a sequence of numbers > 0, got {betas!r}")
    out = []
    for b in betas:
        try:
            v = float(b)
        except (TypeError, ValueError):
            raise ValueError(f"betas must hold finite numbers > 0, got {b!r}") from None
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"betas must hold finite numbers > 0, got {b!r}")
        out.append(v)
    if not out:
        raise ValueError("betas must hold at least one value")
    return sorted(set(out))


@dataclass(frozen=True)
class InformationCurve:
    """IW and E_Q[L_D] at several β (ascending), with the full ``InformationResult`` of each point.

    Attributes
    ----------
    rows : one dict per β with ``beta, expected_loss, expected_loss_stderr, expected_loss_quadratic, train_loss,
        nats, bits, lagrangian`` (C_β = E_Q[L_D] + β·IW). NaN where a value was not estimated.
    settings : method, structure, curvature, loss, convention, prior, samples, seeds and, for the variational
        method, ``warm_start`` (bool) and a ``note`` when it could not be used.
    results : the ``InformationResult`` of each row, same order.
    curvature : the curvature all rows share (Fisher method; None for the variational one). Pass it as
        ``precomputed`` to evaluate more β without recomputing it.
    """

    rows: list[dict]
    settings: dict
    results: list[InformationResult] = field(repr=False, default_factory=list)
    curvature: Curvature | None = field(repr=False, default=None)

    @property
    def betas(self) -> list[float]:
        return [r["beta"] for r in self.rows]

    @property
    def nats(self) -> list[float]:
        return [r["nats"] for r in self.rows]

    @property
    def expected_loss(self) -> list[float]:
        return [r["expected_loss"] for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def per_layer(self) -> list[dict]:
        """Nats per layer at each β: ``[{"beta": β, "layers": {layer: nats}}]``."""
        out = []
        for r in self.results:
            layers: dict[str, float] = {}
            for name, v in r.per_parameter.items():
                layer = layer_of(name)
                layers[layer] = layers.get(layer, 0.0) + float(v.sum())
            out.append({"beta": r.beta, "layers": layers})
        return out

    def to_dict(self) -> dict:
        """JSON-ready: settings, conventions, the rows and the per-layer nats at each β."""
        return {
            "settings": dict(self.settings),
            "conventions": {
                "units": "nats",
                "loss": "mean per-sample loss L_D",
                "beta": "per sample (beta_sum = N*beta, beta_PAC = N*beta)",
                "curvature": "mean over samples",
                "lagrangian": "C_beta = E_Q[L_D] + beta * IW",
            },
            "rows": [
                {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
                for r in self.rows
            ],
            "per_layer": self.per_layer(),
        }

    def to_dataframe(self):
        try:
            import pandas as pd
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("to_dataframe() needs pandas: pip install pandas") from e
        return pd.DataFrame(self.rows, columns=list(ROW_KEYS))

    def __str__(self) -> str:
        head = f"{'beta':>10} {'IW nats':>12} {'E_Q[L_D]':>10} {'± se':>8} {'quadratic':>10} {'C_beta':>10}"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            cells = [
                _cell(r["beta"], 10, ".3g"),
                _cell(r["nats"], 12, ".6g"),
                _cell(r["expected_loss"], 10, ".4g"),
                _cell(r["expected_loss_stderr"], 8, ".2g"),
                _cell(r["expected_loss_quadratic"], 10, ".4g"),
                _cell(r["lagrangian"], 10, ".4g"),
            ]
            lines.append(" ".join(cells))
        return "\n".join(lines)


def _cell(v, width: int, spec: str) -> str:
    v = _num(v)
    return f"{'-':>{width}}" if math.isnan(v) else f"{v:>{width}{spec}}"


def _num(v) -> float:
    return math.nan if v is None else float(v)


def _row(r: InformationResult) -> dict:
    return {
        "beta": r.beta,
        "expected_loss": r.expected_loss,
        "expected_loss_stderr": r.expected_loss_stderr,
        "expected_loss_quadratic": _num(r.expected_loss_quadratic),
        "train_loss": r.train_loss,
        "nats": r.nats,
        "bits": r.nats / NATS_PER_BIT,
        "lagrangian": r.lagrangian,
    }


def information_curve(
    model: nn.Module,
    data,
    *,
    betas,
    prior_scale,
    prior_mean="zero",
    init_state=None,
    method: str = "fisher",
    structure: str = "diag",
    curvature: str = "fisher",
    loss: str = "cross_entropy",
    mc_samples: int = 8,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool | None = None,
    precomputed: Curvature | None = None,
    **kw,
) -> InformationCurve:
    """IW_β and E_{Q*_β}[L_D] for every β in ``betas`` (sorted ascending, duplicates dropped).

    Arguments are those of :func:`weightinfo.iw.information` (``beta`` replaced by ``betas``);
    ``convention`` and ``approximation`` go in ``kw`` for the Fisher method, the variational estimator's
    options for ``method="variational"``. ``precomputed`` (Fisher method only) is a curvature already computed on
    ``data`` with the same ``curvature``, ``structure`` and ``loss``; it is then not recomputed.

    Cost (Fisher method): one curvature computation, then per β the closed form and ``mc_samples`` passes over
    ``data``. Every point equals ``information(model, data, beta=β, ...)`` with the same arguments.

    Raises ``ValueError`` naming ``betas`` unless they are all finite and > 0 (and at least one).
    """
    betas = check_betas(betas)
    check_choice("method", method, METHODS)
    check_choice("structure", structure, STRUCTURES)
    check_choice("curvature", curvature, CURVATURES)
    settings = {
        "method": method,
        "structure": structure,
        "curvature": curvature,
        "loss": get_loss(loss).name,
        "prior_scale": prior_scale if isinstance(prior_scale, (str, int, float)) else "custom",
        "prior_mean": prior_mean if isinstance(prior_mean, str) else "custom",
        "mc_samples": int(mc_samples),
        "seed": int(seed),
    }
    common = {
        "prior_scale": prior_scale,
        "prior_mean": prior_mean,
        "init_state": init_state,
        "structure": structure,
        "curvature": curvature,
        "loss": loss,
        "mc_samples": mc_samples,
        "seed": seed,
        "batch_size": batch_size,
        "progress": progress,
    }
    curv = None
    if method == "variational":
        if precomputed is not None:
            raise ValueError("precomputed curvature is only used by method='fisher'")
        results = _variational_curve(model, data, betas, settings, common, kw)
    else:
        results, curv = _fisher_curve(model, data, betas, precomputed, common, kw)
        settings["convention"] = results[0].convention
        settings["approximation"] = results[0].approximation
        settings["curvature_passes"] = 0 if precomputed is not None else 1
    first = results[0]
    settings.update(
        curvature=first.curvature,
        n_samples=first.n_samples,
        n_params=first.n_params,
        prior_scale_per_layer=dict(first.prior_scale),
        beta_sum_factor=first.n_samples,
    )
    return InformationCurve([_row(r) for r in results], settings, results, curv)


def _variational_curve(model, data, betas, settings, common, kw) -> list[InformationResult]:
    """Per-β variational fits, ascending, each warm-started from the previous posterior variance if the
    estimator takes ``init_variance``."""
    try:
        from . import variational
    except ModuleNotFoundError as e:
        if e.name not in (f"{__package__}.variational", "variational"):
            raise
        raise NotImplementedError(
            "method='variational' needs weightinfo.iw.variational, which is not available yet; "
            "use method='fisher'"
        ) from e
    params = inspect.signature(variational.variational_information).parameters
    warm = "init_variance" in params
    if "init_variance" in kw:
        raise TypeError("information_curve sets init_variance itself (warm starts); do not pass it")
    settings["warm_start"] = warm
    if not warm:
        settings["note"] = (
            "variational_information takes no init_variance: every beta was fitted from a cold start"
        )
    results, prev = [], None
    for beta in betas:
        extra = dict(kw)
        if warm and prev is not None:
            extra["init_variance"] = {k: v.clone() for k, v in prev.posterior_variance.items()}
        prev = information(model, data, beta=beta, method="variational", **common, **extra)
        results.append(prev)
    return results


def _fisher_curve(model, data, betas, precomputed, common, kw):
    """One curvature, the closed form at every β: the steps of ``information(method="fisher")``."""
    convention = kw.pop("convention", "corrected")
    approximation = kw.pop("approximation", None)
    if kw:
        raise TypeError(
            f"unexpected argument(s) {sorted(kw)} for method='fisher' "
            "(only method='variational' takes extra options)"
        )
    structure, curvature, loss = common["structure"], common["curvature"], common["loss"]
    seed, batch_size, progress = common["seed"], common["batch_size"], common["progress"]
    check_choice("convention", convention, CONVENTIONS)
    if approximation not in APPROXIMATIONS:
        raise ValueError(f"unknown approximation={approximation!r}; expected None or 'small_beta'")
    mc_samples = check_int("mc_samples", common["mc_samples"], 0)
    lossfn = get_loss(loss)
    check_model(model)
    prior_mean = common["prior_mean"]
    prior = make_prior(
        model,
        prior_scale=common["prior_scale"],
        prior_mean=prior_mean,
        init_state=common["init_state"],
    )
    if precomputed is None:
        curv, train_loss, n = estimate.curvature_and_loss(
            model, data, curvature, structure, lossfn, seed, batch_size, progress
        )
    else:  # its mean_loss may be of other data: L_D by a forward pass, which also gives N to check
        train_loss, n = _mean_loss(model, None, data, lossfn, batch_size)
        curv = precomputed
        _check_precomputed(curv, curvature, structure, lossfn.name, n)
    weights = {k: p.detach().to(torch.float64) for k, p in named_trainable(model).items()}
    results, warned = [], False
    for beta in betas:
        opt = gaussian_optimum(
            curv,
            prior,
            weights,
            beta,
            filter_shared=structure == "filter",
            convention=convention,
            approximation=approximation,
        )
        if not warned:
            estimate.warn_clamped(opt, curv, stacklevel=3)
            warned = bool(opt.n_negative)
        results.append(
            estimate.fisher_result(
                model,
                data,
                opt,
                curv,
                prior,
                beta=beta,
                lossfn=lossfn,
                train_loss=train_loss,
                n=n,
                structure=structure,
                curvature=curvature,
                convention=convention,
                approximation=approximation,
                prior_mean=prior_mean,
                mc_samples=mc_samples,
                seed=seed,
                batch_size=batch_size,
                progress=progress,
            )
        )
    return results, curv


_QUANTITY = {"fisher": ("fisher", "exact"), "ggn": ("ggn", None), "hessian": ("hessian", None)}


def _check_precomputed(curv: Curvature, curvature: str, structure: str, loss: str, n: int) -> None:
    quantity, kind = _QUANTITY[curvature]
    want = "diag" if structure == "filter" else structure
    problems = []
    if curv.quantity != quantity or (kind is not None and curv.kind != kind):
        problems.append(
            f"it is {curv.quantity} ({curv.kind}), expected {quantity} ({kind or 'any'})"
        )
    if curv.structure != want:
        problems.append(f"structure {curv.structure!r}, expected {want!r}")
    if curv.loss != loss:
        problems.append(f"loss {curv.loss!r}, expected {loss!r}")
    if curv.n_samples != n:
        problems.append(f"{curv.n_samples} samples, the data have {n}")
    if problems:
        raise ValueError("precomputed curvature does not match: " + "; ".join(problems))
