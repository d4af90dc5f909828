"""The loss-versus-information curve: IW_β and E_{Q*_β}[L_D] over a range of β.

Achille, Paolini & Soatto 2019, Def. 2.1: for each β the optimal code Q*_β minimises
C_β = E_Q[L_D] + β·KL(Q‖P); the pairs (IW_β = KL(Q*_β‖P), E_{Q*_β}[L_D]) trace the trade-off between how many
nats the weights store and how much loss the perturbed network pays — a "rate–distortion" curve, shown for
summed losses in the Information Complexity paper (Achille, Paolini, Mbeng & Soatto 2019, arXiv:1904.03292,
Fig. 2). Large β: wide Q, few nats, high loss; small β: Q collapses on w*, many nats, loss → L_D(w*).

Conventions as everywhere in ``weightinfo.iw``: L_D is the **mean** per-sample loss, β is **per
sample** (β_sum = N·β), information in nats.

``method="fisher"`` runs the Fisher-form pipeline (``weightinfo.iw.points``): the curvature **once**, the closed
form (``gaussian_optimum``) at every β, plus a Monte Carlo E_{Q*}[L_D] with ``mc_samples`` weight draws per β (the same seed at every β: common random
numbers make the curve smooth). Each point equals ``information(..., beta=β)`` exactly. ``method="variational"``
fits ``variational_information`` for each β in ascending order, warm-starting each fit from the previous
posterior variance (``init_variance``). ``information`` is the curve at one β: both share this dispatch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from torch import nn

from .._base.checks import check_choice
from ..curvature.result import Curvature, layer_of
from ..curvature.vocabulary import warn_renamed
from ..posterior.gaussian import NATS_PER_BIT
from .points import CURVATURE_KINDS, CURVATURES, STRUCTURES, FisherOptions, fisher_information
from .result import InformationResult
from .variational import VariationalOptions, variational_information

__all__ = ["InformationCurve", "information_curve", "check_betas", "METHODS"]

METHODS = ("fisher", "variational")

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
    settings : method, structure, curvature, loss, prior, samples, seeds; for the Fisher method the convention,
        approximation, curvature kind/samples and ``curvature_passes``, for the variational one ``warm_start``.
    results : the ``InformationResult`` of each row, same order.
    matrix : the computed curvature H all rows share (a ``Curvature``; Fisher method; None for the variational
        one). Pass it as ``precomputed`` to evaluate more β without recomputing it. (``settings["curvature"]``
        names which matrix it is; ``.curvature`` is the deprecated spelling of this attribute.)
    """

    rows: list[dict]
    settings: dict
    results: list[InformationResult] = field(repr=False, default_factory=list)
    matrix: Curvature | None = field(repr=False, default=None)

    @property
    def curvature(self) -> Curvature | None:
        """Deprecated spelling of :attr:`matrix` (``curvature`` names a matrix everywhere else)."""
        warn_renamed("curvature", "matrix", "InformationCurve attribute")
        return self.matrix

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
        """One row per β, the columns of :data:`ROW_KEYS` (IW in nats, losses in nats per sample)."""
        from .._base.frames import dataframe

        return dataframe(self.rows, columns=list(ROW_KEYS))

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
    prior_scale=None,
    prior_mean="zero",
    init_state=None,
    method: str = "fisher",
    structure: str = "diag",
    curvature: str = "fisher",
    loss: str = "cross_entropy",
    convention: str = "corrected",
    approximation: str | None = None,
    mc_samples: int | None = 8,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool | None = None,
    curvature_kind: str = "exact",
    curvature_samples: int | None = None,
    precomputed=None,
    variational: VariationalOptions | None = None,
    **variational_kwargs,
) -> InformationCurve:
    """IW_β and E_{Q*_β}[L_D] for every β in ``betas`` (sorted ascending, duplicates dropped).

    Arguments are those of :func:`weightinfo.iw.information` (``beta`` replaced by ``betas``), every one of
    them: a λ grid picks its λ per β, ``curvature_kind``/``curvature_samples``/``precomputed`` shape the one
    curvature. ``precomputed`` is a ``FisherPoints`` (``weightinfo.iw.points.fisher_points``) or a curvature
    already computed on ``data`` with the same ``curvature``, ``structure`` and ``loss``; it is then not
    recomputed.

    Cost (Fisher method): one curvature computation, then per β the closed form and ``mc_samples`` passes over
    ``data``. Every point equals ``information(model, data, beta=β, ...)`` with the same arguments. The
    variational method fits every β in turn, each warm-started from the previous posterior variance
    (``init_variance`` is taken only for a single β: it is how ``information`` starts a fit).

    Raises ``ValueError`` naming ``betas`` unless they are all finite and > 0 (and at least one).
    """
    betas = check_betas(betas)
    check_choice("method", method, METHODS)
    common = {
        "prior_scale": prior_scale,
        "prior_mean": prior_mean,
        "init_state": init_state,
        "structure": structure,
        "loss": loss,
        "convention": convention,
        "approximation": approximation,
        "mc_samples": mc_samples,
        "seed": seed,
        "batch_size": batch_size,
        "progress": progress,
    }
    curv = None
    if method == "variational":
        check_variational_call(structure, curvature, curvature_kind, curvature_samples, precomputed)
        results, settings = _variational_curve(
            model, data, betas, common, variational, variational_kwargs
        )
    else:
        options = FisherOptions(
            structure=structure,
            curvature=curvature,
            loss=loss,
            convention=convention,
            approximation=approximation,
            curvature_kind=curvature_kind,
            curvature_samples=curvature_samples,
            mc_samples=8 if mc_samples is None else mc_samples,
            seed=seed,
            batch_size=batch_size,
            progress=progress,
        )
        reject_variational_options(variational, variational_kwargs)
        results, settings, curv = _fisher_curve(model, data, betas, options, precomputed, common)
    return InformationCurve([_row(r) for r in results], _settings(results, settings), results, curv)


def _settings(results: list[InformationResult], extra: dict) -> dict:
    """The curve's ``settings``: what every point shares, then the method's own entries."""
    first = results[0]
    prior_scale = extra.pop("prior_scale")
    if isinstance(prior_scale, tuple):
        prior_scale = list(prior_scale)
    elif not isinstance(prior_scale, (str, int, float, list)):
        prior_scale = "custom"
    prior_mean = extra.pop("prior_mean")
    return {
        "method": first.method,
        "structure": extra.pop("structure"),
        "curvature": first.curvature,
        "loss": first.loss,
        "prior_scale": prior_scale,
        "prior_mean": prior_mean if isinstance(prior_mean, str) else "custom",
        "mc_samples": extra.pop("mc_samples"),
        "seed": int(extra.pop("seed")),
        **extra,
        "n_samples": first.n_samples,
        "n_params": first.n_params,
        "prior_scale_per_layer": dict(first.prior_scale),
        "beta_sum_factor": first.n_samples,
    }


def _fisher_curve(model, data, betas, options, precomputed, common):
    """The Fisher-form pipeline (``points``) at every β: one curvature, the closed form per point."""
    results, points = fisher_information(
        model,
        data,
        betas,
        options,
        prior_scale=common["prior_scale"],
        prior_mean=common["prior_mean"],
        init_state=common["init_state"],
        precomputed=precomputed,
        stacklevel=3,
    )
    settings = {
        **{k: common[k] for k in ("prior_scale", "prior_mean", "structure", "seed")},
        "mc_samples": options.mc_samples,
        "convention": options.convention,
        "approximation": options.approximation,
        "curvature_kind": options.curvature_kind,
        "curvature_samples": options.curvature_samples,
        "curvature_passes": points.passes,
    }
    return results, settings, points.matrix


def _variational_curve(model, data, betas, common, options, kw):
    """Per-β variational fits, ascending, each warm-started from the previous posterior variance."""
    if "init_variance" in kw and len(betas) > 1:
        raise TypeError("information_curve sets init_variance itself (warm starts); do not pass it")
    results, prev = [], None
    for beta in betas:
        warm = {}
        if prev is not None:
            warm["init_variance"] = {k: v.clone() for k, v in prev.posterior_variance.items()}
        prev = variational_information(
            model, data, beta=beta, options=options, **common, **kw, **warm
        )
        results.append(prev)
    settings = {
        **{k: common[k] for k in ("prior_scale", "prior_mean", "structure", "seed")},
        "mc_samples": common["mc_samples"],
        "warm_start": True,
    }
    return results, settings


def reject_variational_options(variational, kwargs: dict) -> None:
    """``TypeError`` for the variational estimator's options given to the Fisher method."""
    if variational is not None:
        raise TypeError("variational= options apply to method='variational' only")
    if kwargs:
        raise TypeError(
            f"unexpected argument(s) {sorted(kwargs)} for method='fisher' "
            "(only method='variational' takes extra options)"
        )


def check_variational_call(structure, curvature, curvature_kind, curvature_samples, precomputed):
    """The Fisher-method options that a variational call must leave alone (it uses no curvature)."""
    check_choice("structure", structure, STRUCTURES)
    check_choice("curvature", curvature, CURVATURES)
    check_choice("curvature_kind", curvature_kind, CURVATURE_KINDS)
    if curvature_kind != "exact" or curvature_samples is not None:
        raise ValueError(
            "curvature_kind and curvature_samples apply to method='fisher' (the variational one "
            "uses no curvature)"
        )
    if precomputed is not None:
        raise ValueError("precomputed curvature is only used by method='fisher'")
