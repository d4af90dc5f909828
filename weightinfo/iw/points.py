"""The one Fisher-form pipeline: the curvature and L_D(w*) once, then any number of (β, λ) points on it.

Achille, Paolini & Soatto 2019, Prop. 2.5: under the quadratic model the optimum of the Information Lagrangian
C_β = E_Q[L_D] + β·KL(Q‖P) is a closed form in the curvature H (a mean over samples) and the prior
P = N(w0, diag λ_l²) (``fisher_form.gaussian_optimum``). H and L_D(w*) do not depend on β or λ, so they are
computed once (:func:`fisher_points`, the expensive pass over the data) and every point is then

1. the closed form Σ*, IW at (β, λ) — for a grid of λ (one for every layer) the λ with the smallest
   quadratic-model C_β = L_D(w*) + ½ tr(HΣ*) + β·IW (a PAC-Bayes bound pays ln K nats for a grid of K);
2. E_{Q*}[L_D] by Monte Carlo: ``mc_samples`` weight draws w ∼ Q*, each evaluated on all of the data.

``information`` is this pipeline at one β, ``information_curve`` at many; both accept the result of
:func:`fisher_points` (or a bare ``Curvature``) as ``precomputed`` to skip step 0.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from .._base.checks import check_choice, check_int, check_model, check_positive, named_trainable
from .._base.likelihoods import get_loss
from .._base.mean_loss import mean_loss as _mean_loss
from .._base.mean_loss import with_rest
from ..curvature import fisher, ggn, hessian
from ..curvature.result import Curvature, layer_of
from ..posterior.prior import GaussianPrior, make_prior
from ._subsample import split_for_curvature
from .fisher_form import APPROXIMATIONS, CONVENTIONS, GaussianOptimum, gaussian_optimum
from .result import InformationResult

STRUCTURES = ("diag", "filter", "kfac", "full")
CURVATURES = ("fisher", "ggn", "hessian")
CURVATURE_KINDS = ("exact", "mc")

__all__ = [
    "FisherOptions",
    "FisherPoints",
    "PriorChoice",
    "fisher_points",
    "evaluate",
    "fisher_information",
]


@dataclass(frozen=True)
class FisherOptions:
    """Settings of the Fisher-form estimate, validated once (see ``weightinfo.information`` for each)."""

    structure: str = "diag"
    curvature: str = "fisher"
    loss: str = "cross_entropy"
    convention: str = "corrected"
    approximation: str | None = None
    curvature_kind: str = "exact"
    curvature_samples: int | None = None
    mc_samples: int = 8
    seed: int = 0
    batch_size: int = 256
    progress: bool | None = None

    def __post_init__(self):
        check_choice("structure", self.structure, STRUCTURES)
        check_choice("curvature", self.curvature, CURVATURES)
        check_choice("convention", self.convention, CONVENTIONS)
        if self.approximation not in APPROXIMATIONS:
            raise ValueError(
                f"unknown approximation={self.approximation!r}; expected None or 'small_beta'"
            )
        check_choice("curvature_kind", self.curvature_kind, CURVATURE_KINDS)
        object.__setattr__(self, "loss", get_loss(self.loss).name)
        object.__setattr__(self, "mc_samples", check_int("mc_samples", self.mc_samples, 0))
        if self.curvature_samples is not None:
            k = check_int("curvature_samples", self.curvature_samples, 1)
            object.__setattr__(self, "curvature_samples", k)
        if self.curvature == "hessian" and self.structure == "kfac":
            raise ValueError(
                "curvature='hessian' has no KFAC structure; use structure='diag', 'filter' or 'full', "
                "or curvature='fisher'/'ggn' with structure='kfac'"
            )
        if self.curvature == "hessian" and self.curvature_kind != "exact":
            raise ValueError(
                "curvature_kind='mc' applies to curvature='fisher' or 'ggn', not 'hessian'"
            )

    @property
    def curvature_structure(self) -> str:
        """The structure of H: ``"filter"`` shares σ² per filter of a diagonal H."""
        return "diag" if self.structure == "filter" else self.structure

    def curvature_key(self) -> tuple:
        """Everything that determines H (the seed only where H is random: MC labels or a subset)."""
        seeded = self.curvature_kind == "mc" or self.curvature_samples is not None
        return (
            self.curvature,
            self.curvature_structure,
            self.loss,
            self.curvature_kind,
            self.curvature_samples,
            self.seed if seeded else None,
        )


@dataclass(frozen=True)
class FisherPoints:
    """H and L_D(w*) over N samples: what every (β, λ) point shares. ``passes``: curvature passes made."""

    matrix: Curvature = field(repr=False)  # the computed H (``options.curvature`` names which)
    train_loss: float
    n_samples: int
    options: FisherOptions
    passes: int = 1


def fisher_points(model, data, options: FisherOptions, precomputed=None) -> FisherPoints:
    """The curvature (on all of ``data`` or ``options.curvature_samples`` of it) and L_D(w*) over all of it.

    ``precomputed``: a ``FisherPoints`` of the same model and data (reused after checking its options), or a
    ``Curvature`` of ``data`` (checked against the options; L_D(w*) and N by one forward pass).
    """
    if isinstance(precomputed, FisherPoints):
        if precomputed.options.curvature_key() != options.curvature_key():
            raise ValueError(
                "precomputed curvature does not match: it was computed with "
                f"{_describe(precomputed.options)}, expected {_describe(options)}"
            )
        return FisherPoints(
            precomputed.matrix, precomputed.train_loss, precomputed.n_samples, options, 0
        )
    lossfn = get_loss(options.loss)
    if (
        precomputed is not None
    ):  # its mean_loss may be of other data: L_D by a forward pass, N to check
        train_loss, n = _mean_loss(model, None, data, lossfn, options.batch_size)
        _check_precomputed(precomputed, options, n)
        return FisherPoints(precomputed, train_loss, n, options, 0)
    curv_data, rest = data, None
    if options.curvature_samples is not None:
        curv_data, rest, _ = split_for_curvature(data, options.curvature_samples, options.seed)
    curv = _curvature(
        model,
        curv_data,
        options.curvature,
        options.structure,
        lossfn.name,
        options.seed,
        options.batch_size,
        options.progress,
        options.curvature_kind,
    )
    if curv.mean_loss is not None:  # the curvature pass saw those outputs already
        train_loss, n = curv.mean_loss, curv.n_samples
    else:
        train_loss, n = _mean_loss(model, None, curv_data, lossfn, options.batch_size)
    if (
        options.curvature_samples is not None
    ):  # L_D over all the data: add what the curvature did not see
        # (collective under a process group, also on a rank whose ``rest`` is empty)
        train_loss, n = with_rest(model, train_loss, n, rest, lossfn, options.batch_size)
    return FisherPoints(curv, train_loss, n, options)


def _curvature(model, data, curvature, structure, loss, seed, batch_size, progress, kind="exact"):
    s = "diag" if structure == "filter" else structure
    if curvature == "hessian":
        return hessian(
            model, data, structure=s, method="auto", loss=loss, seed=seed, batch_size=batch_size
        )
    fn = fisher if curvature == "fisher" else ggn
    return fn(
        model, data, kind=kind, structure=s, loss=loss, seed=seed, batch_size=batch_size,
        progress=progress,
    )  # fmt: skip


def _describe(o: FisherOptions) -> str:
    return (
        f"curvature={o.curvature!r} ({o.curvature_kind}), structure={o.curvature_structure!r}, "
        f"loss={o.loss!r}, curvature_samples={o.curvature_samples}, seed={o.seed}"
    )


def _check_precomputed(curv: Curvature, options: FisherOptions, n: int) -> None:
    # The GGN's kind is not checked: its exact and MC forms estimate the same matrix.
    kind = options.curvature_kind if options.curvature == "fisher" else None
    want, problems = options.curvature_structure, []
    if curv.label != options.curvature or (kind is not None and curv.kind != kind):
        problems.append(
            f"it is {curv.label} ({curv.kind}), expected {options.curvature} ({kind or 'any'})"
        )
    if curv.structure != want:
        problems.append(f"structure {curv.structure!r}, expected {want!r}")
    if curv.loss != options.loss:
        problems.append(f"loss {curv.loss!r}, expected {options.loss!r}")
    k = n if options.curvature_samples is None else min(n, options.curvature_samples)
    if curv.n_samples != k:
        problems.append(f"{curv.n_samples} samples, the data have {k}")
    if problems:
        raise ValueError("precomputed curvature does not match: " + "; ".join(problems))


@dataclass(frozen=True)
class PriorChoice:
    """The candidate priors: one (a number, a dict per layer, ``"weights"``) or a grid of λ (one per layer)."""

    priors: list[GaussianPrior]
    grid: list[float] | None = None

    @classmethod
    def make(cls, model, prior_scale, prior_mean="zero", init_state=None) -> PriorChoice:
        grid = None
        if isinstance(prior_scale, (list, tuple)):
            if not prior_scale:
                raise ValueError("prior_scale grid is empty")
            grid = [check_positive("prior_scale", v) for v in prior_scale]
        prior = make_prior(
            model,
            prior_scale=grid[0] if grid else prior_scale,
            prior_mean=prior_mean,
            init_state=init_state,
        )
        if grid is None:
            return cls([prior])
        return cls([prior.with_scale(dict.fromkeys(prior.scale, lam)) for lam in grid], grid)


def fisher_information(
    model,
    data,
    betas,
    options: FisherOptions,
    *,
    prior_scale,
    prior_mean="zero",
    init_state=None,
    precomputed=None,
    stacklevel=2,
) -> tuple[list[InformationResult], FisherPoints]:
    """The whole pipeline: the priors, the shared curvature (or ``precomputed``), then a result per β."""
    check_model(model)
    if prior_scale is None:
        raise ValueError("prior_scale is required (a number, a dict per layer or 'weights')")
    prior = PriorChoice.make(model, prior_scale, prior_mean, init_state)
    points = fisher_points(model, data, options, precomputed)
    results = evaluate(
        model, data, points, betas, prior, prior_mean=prior_mean, stacklevel=stacklevel + 1
    )
    return results, points


def evaluate(
    model, data, points: FisherPoints, betas, prior: PriorChoice, *, prior_mean, stacklevel=2
) -> list[InformationResult]:
    """The ``InformationResult`` at every β in ``betas`` (in that order) on the shared ``points``.

    Warns once (``RuntimeWarning``) when the closed form clamped negative curvature values to 0.
    """
    o = points.options
    weights = {k: p.detach().to(torch.float64) for k, p in named_trainable(model).items()}
    results, warned = [], False
    for beta in betas:
        opts = [
            gaussian_optimum(
                points.matrix,
                p,
                weights,
                beta,
                filter_shared=o.structure == "filter",
                convention=o.convention,
                approximation=o.approximation,
            )
            for p in prior.priors
        ]
        best, extra = _choose(points.train_loss, beta, opts, prior.grid)
        if opts[best].n_negative and not warned:
            _warn_clamped(opts[best], points.matrix, stacklevel + 1)
            warned = True
        results.append(
            _result(model, data, points, opts[best], prior.priors[best], prior_mean, extra)
        )
    return results


def _choose(train_loss, beta, opts: list[GaussianOptimum], grid) -> tuple[int, dict]:
    """Index of the λ with the smallest quadratic-model C_β, and the grid record for ``extra``."""
    if grid is None:
        return 0, {}
    values = [train_loss + o.quadratic_excess + beta * o.nats for o in opts]
    best = min(range(len(grid)), key=values.__getitem__)
    return best, {
        "prior_scale_grid": list(grid),
        "prior_scale_grid_lagrangian_quadratic": values,
        "prior_scale_choice": grid[best],
        "prior_scale_grid_note": "λ picked from a grid of size K: a PAC-Bayes bound must add ln K nats",
    }


def _warn_clamped(opt, curv, stacklevel: int) -> None:
    warnings.warn(
        f"{opt.n_negative} negative {curv.label} value(s) (diagonal entries or eigenvalues: the point "
        "is not a minimum of the quadratic model) were clamped to 0",
        RuntimeWarning,
        stacklevel=stacklevel + 1,
    )


def _result(model, data, points, opt, prior, prior_mean, extra) -> InformationResult:
    """The ``InformationResult`` of a closed-form optimum ``opt``, with its Monte Carlo E_Q[L_D]."""
    o, lossfn = points.options, get_loss(points.options.loss)
    el, el_se = _expected_loss(model, opt, data, lossfn, o)
    return InformationResult(
        nats=opt.nats,
        beta=opt.beta,
        expected_loss=el,
        expected_loss_stderr=el_se,
        train_loss=points.train_loss,
        per_parameter={k: v.detach().cpu() for k, v in opt.per_parameter.items()},
        posterior_variance={k: v.detach().cpu() for k, v in opt.posterior_variance.items()},
        prior_scale=dict(prior.scale),
        method="fisher",
        structure=o.structure,
        curvature=o.curvature,
        loss=lossfn.name,
        convention=o.convention,
        prior_mean=prior_mean if isinstance(prior_mean, str) else "custom",
        n_samples=points.n_samples,
        mc_samples=o.mc_samples,
        seed=int(o.seed),
        expected_loss_quadratic=points.train_loss + opt.quadratic_excess,
        approximation=o.approximation,
        layer_types={name: type(m).__name__ for name, m in model.named_modules()},
        extra={**_extra(points.matrix, opt, prior, points.n_samples), **extra},
    )


def _expected_loss(model, opt, data, lossfn, o: FisherOptions):
    """Monte Carlo E_{w∼Q*}[L_D(w)]: mean over draws and its standard error (NaN when < 2 draws)."""
    if o.mc_samples == 0:
        return math.nan, math.nan
    params = named_trainable(model)
    device = next(iter(params.values())).device
    gen = torch.Generator(device=device).manual_seed(int(o.seed))
    disable = None if o.progress is None else not o.progress
    values = []
    for _ in tqdm(range(o.mc_samples), desc="E_Q[L_D]", disable=disable, leave=False):
        w = {k: v.to(params[k].dtype) for k, v in opt.sample(gen).items()}
        values.append(_mean_loss(model, w, data, lossfn, o.batch_size)[0])
    v = torch.tensor(values, dtype=torch.float64, device="cpu")  # host numbers
    se = float(v.std(unbiased=True) / math.sqrt(len(values))) if len(values) > 1 else math.nan
    return float(v.mean()), se


def _extra(curv, opt, prior, n) -> dict:
    scale_opt: dict[str, list] = {}
    for k, w in opt.mean.items():
        d = (w - prior.mean[k].to(w)).pow(2) + opt.posterior_variance[k]
        scale_opt.setdefault(layer_of(k), []).append(d.reshape(-1))
    return {
        "curvature_quantity": curv.label,
        "curvature_kind": curv.kind,
        "curvature_structure": curv.structure,
        "curvature_trace": curv.trace(),
        "curvature_samples": curv.n_samples,
        "n_clamped": opt.n_negative,
        "kl": opt.kl,
        "mean_term": opt.mean_term,
        "quadratic_excess": opt.quadratic_excess,
        "beta_effective": opt.beta_effective,
        "beta_sum": n * opt.beta,
        "optimal_prior_scale": {
            layer: math.sqrt(float(torch.cat(v).mean())) for layer, v in scale_opt.items()
        },
    }
