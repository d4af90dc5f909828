"""``weightinfo.information``: how many nats a trained network stores in its weights, and where.

Achille, Paolini & Soatto 2019, Def. 2.1 (reference §1.2): the information in the weights at level β is
IW_β = KL(Q*‖P) at the minimiser Q* of the Information Lagrangian

    C_β(D; P, Q) = E_{w∼Q}[L_D(w)] + β·KL(Q‖P),

with L_D the **mean** per-sample loss and β **per sample** (β_sum = N·β for a summed loss, β_PAC = N·β in Eq. 3).
P = N(w0, diag λ_l²) (``weightinfo.posterior.make_prior``), Q = N(w*, Σ) around the trained weights w*.

``method="fisher"`` (default) uses the closed form of the quadratic model (Prop. 2.5, §1.4–1.5;
``fisher_form``) with a curvature H: the exact Fisher (labels from the model, Remark 2.6), the Gauss–Newton
matrix, or the Hessian of the mean loss, in the structure ``"diag"`` (one σ² per weight), ``"filter"`` (one σ² per
output unit/filter, §1.5), ``"kfac"`` (Kronecker-factored) or ``"full"`` (dense). ``method="variational"``
learns Q by minimising C_β directly (``weightinfo.iw.variational``).

Besides IW the result reports E_{Q*}[L_D] by Monte Carlo (``mc_samples`` weight draws, each evaluated on all of
``data``; mean and standard error), its quadratic-model value L_D(w*) + ½ tr(HΣ*), and L_D(w*). Units: nats
(``result.bits`` in bits).
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn
from tqdm.auto import tqdm

from .._base.checks import check_choice, check_int, check_model, check_positive, named_trainable
from .._base.likelihoods import get_loss
from .._base.mean_loss import mean_loss as _mean_loss
from ..curvature import fisher, ggn, hessian
from ..curvature.result import layer_of
from ..posterior.prior import make_prior
from ._subsample import split_for_curvature
from .fisher_form import APPROXIMATIONS, CONVENTIONS, gaussian_optimum
from .result import InformationResult

METHODS = ("fisher", "variational")
STRUCTURES = ("diag", "filter", "kfac", "full")
CURVATURES = ("fisher", "ggn", "hessian")

__all__ = ["information", "METHODS", "STRUCTURES", "CURVATURES"]


def information(
    model: nn.Module,
    data,
    *,
    beta: float,
    prior_scale=None,
    prior_mean="zero",
    init_state=None,
    method: str = "fisher",
    structure: str = "diag",
    curvature: str = "fisher",
    loss: str = "cross_entropy",
    convention: str = "corrected",
    approximation: str | None = None,
    mc_samples: int | None = None,
    seed: int = 0,
    batch_size: int = 256,
    progress: bool | None = None,
    curvature_kind: str = "exact",
    curvature_samples: int | None = None,
    **variational_kwargs,
) -> InformationResult:
    """Information in the weights of ``model`` trained on ``data``, in nats, with its per-weight map.

    Parameters
    ----------
    model : a trained ``nn.Module`` in eval mode, at (near) a minimum of the mean loss.
    data : a DataLoader of ``(x, y)`` batches or a tuple ``(X, Y)``; L_D and the curvature are means over it.
    beta : β > 0 per sample (mean-loss convention).
    prior_scale, prior_mean, init_state : the prior P, see ``weightinfo.posterior.make_prior``; with
        ``method="fisher"`` a list of numbers is a grid: the λ (same for every layer) with the smallest
        quadratic-model C_β is used and the grid is recorded in ``extra`` (a bound pays ln K for it);
        ``prior_scale`` is required except with the variational ``preset="task2vec"`` (which sets λ itself).
    method : ``"fisher"`` (closed form under the quadratic model) or ``"variational"``.
    structure : ``"diag"`` | ``"filter"`` | ``"kfac"`` | ``"full"``: the covariance family of Q.
    curvature : ``"fisher"`` (exact, model labels) | ``"ggn"`` | ``"hessian"`` (diag/filter/full only; negative
        diagonal entries or eigenvalues are clamped at 0 with a warning, counted in ``extra["n_clamped"]``).
    loss : ``"cross_entropy"`` | ``"bce_with_logits"`` | ``"mse"`` (ℓ = ½‖y − f‖²).
    convention : ``"corrected"`` Σ* = β(H + β/λ² I)^{-1}, or ``"paper"``: the printed Σ* = (β/2)(H + β/(2λ²) I)^{-1}
        and printed Eq. 8 (= corrected IW at β/2 minus k/2; ``fisher_form``).
    approximation : None (exact g-form) or ``"small_beta"`` (g(s) → ln s − 1, i.e. ½ ln|F| + const; refused for a
        singular curvature).
    mc_samples : weight draws w ∼ Q* for E_Q[L_D], each on all of ``data`` (0 skips it: NaN); None (default):
        8 for the Fisher method; the variational method's own default (its running estimate, no extra pass).
        seed : seeds them (private generator) and the Monte Carlo curvature.
    curvature_kind : ``"exact"`` (default) or ``"mc"`` for ``curvature="fisher"``/``"ggn"``: the Monte Carlo
        Fisher with one label drawn from the model per input — unbiased, one backward pass instead of one per
        class (C× cheaper; the IW moves by well under 1% on the benchmark MLP, ``docs/benchmarks_information.md``).
    curvature_samples : None (all of ``data``) or k: the curvature is averaged over k samples only — a seeded
        random subset of an ``(X, Y)`` tuple, the first k of a DataLoader's pass — an unbiased estimate of
        the data's curvature at k/N of the cost; L_D(w*) still covers all N samples (``_subsample``).
    batch_size, progress : batching of ``(X, Y)`` tuples and a progress bar (None: only on a terminal).
    variational_kwargs : passed to the variational estimator (an error for ``method="fisher"``).

    Returns
    -------
    InformationResult
        ``nats``, ``per_parameter`` (sums to ``nats``), ``posterior_variance`` (diag Σ*), expected/train loss, and
        ``extra`` with the curvature trace, the clamped count, KL(Q*‖P), the mean term, β_sum = N·β and the
        λ_l² = mean(w² + σ²) that would make the prior optimal.

    Examples
    --------
    >>> import math, torch
    >>> from weightinfo import information
    >>> lin = torch.nn.Linear(2, 1, bias=False).double()
    >>> X = torch.eye(2, dtype=torch.float64); _ = lin.weight.data.copy_(torch.tensor([[1.0, 0.0]]))
    >>> r = information(lin, (X, lin(X).detach()), beta=0.5, prior_scale=1.0, loss="mse", mc_samples=0)
    >>> round(r.nats, 10) == round(0.5 + 2 * 0.5 * (math.log(2) - 0.5), 10)  # H = I/2, s = 1 per weight
    True
    """
    check_choice("method", method, METHODS)
    check_choice("structure", structure, STRUCTURES)
    check_choice("curvature", curvature, CURVATURES)
    check_choice("convention", convention, CONVENTIONS)
    if approximation not in APPROXIMATIONS:
        raise ValueError(f"unknown approximation={approximation!r}; expected None or 'small_beta'")
    beta = check_positive("beta", beta)
    check_choice("curvature_kind", curvature_kind, ("exact", "mc"))
    if mc_samples is not None:
        mc_samples = check_int("mc_samples", mc_samples, 0)
    lossfn = get_loss(loss)
    check_model(model)
    if prior_scale is None and not (method == "variational" and variational_kwargs.get("preset")):
        raise ValueError("prior_scale is required (a number, a dict per layer or 'weights')")
    if method == "variational":
        if curvature_kind != "exact" or curvature_samples is not None:
            raise ValueError(
                "curvature_kind and curvature_samples apply to method='fisher' (the variational one "
                "uses no curvature)"
            )
        return _variational(
            model,
            data,
            beta=beta,
            prior_scale=prior_scale,
            prior_mean=prior_mean,
            init_state=init_state,
            structure=structure,
            curvature=curvature,
            loss=loss,
            convention=convention,
            approximation=approximation,
            mc_samples=mc_samples,
            seed=seed,
            batch_size=batch_size,
            progress=progress,
            **variational_kwargs,
        )
    mc_samples = 8 if mc_samples is None else int(mc_samples)
    grid = _scale_grid(prior_scale)
    prior = make_prior(
        model,
        prior_scale=grid[0] if grid else prior_scale,
        prior_mean=prior_mean,
        init_state=init_state,
    )
    if variational_kwargs:
        raise TypeError(
            f"unexpected argument(s) {sorted(variational_kwargs)} for method='fisher' "
            "(only method='variational' takes extra options)"
        )
    curv, train_loss, n = curvature_and_loss(
        model, data, curvature, structure, lossfn, seed, batch_size, progress,
        kind=curvature_kind, samples=curvature_samples,
    )  # fmt: skip
    weights = {k: p.detach().to(torch.float64) for k, p in named_trainable(model).items()}

    def optimum(p):
        return gaussian_optimum(
            curv,
            p,
            weights,
            beta,
            filter_shared=structure == "filter",
            convention=convention,
            approximation=approximation,
        )

    grid_info = {}
    if grid:
        # One λ for every layer, the one with the smallest quadratic-model C_β; the curvature is shared.
        priors = [prior.with_scale(dict.fromkeys(prior.scale, lam)) for lam in grid]
        opts = [optimum(p) for p in priors]
        values = [train_loss + o.quadratic_excess + beta * o.nats for o in opts]
        best = min(range(len(grid)), key=values.__getitem__)
        prior, opt = priors[best], opts[best]
        grid_info = {
            "prior_scale_grid": list(grid),
            "prior_scale_grid_lagrangian_quadratic": values,
            "prior_scale_choice": grid[best],
            "prior_scale_grid_note": "λ picked from a grid of size K: a PAC-Bayes bound must add ln K nats",
        }
    else:
        opt = optimum(prior)
    warn_clamped(opt, curv, stacklevel=3)
    return fisher_result(
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
        extra=grid_info,
    )


def warn_clamped(opt, curv, stacklevel: int) -> None:
    """Warn once about negative curvature values that the closed form clamped to 0."""
    if opt.n_negative:
        warnings.warn(
            f"{opt.n_negative} negative {curv.quantity} value(s) (diagonal entries or eigenvalues: the point "
            "is not a minimum of the quadratic model) were clamped to 0",
            RuntimeWarning,
            stacklevel=stacklevel + 1,
        )


def fisher_result(
    model,
    data,
    opt,
    curv,
    prior,
    *,
    beta,
    lossfn,
    train_loss,
    n,
    structure,
    curvature,
    convention,
    approximation,
    prior_mean,
    mc_samples,
    seed,
    batch_size,
    progress,
    extra=None,
) -> InformationResult:
    """The ``InformationResult`` of a Fisher-form optimum ``opt``, with its Monte Carlo E_Q[L_D]."""
    el, el_se = _expected_loss(model, opt, data, lossfn, mc_samples, seed, batch_size, progress)
    return InformationResult(
        nats=opt.nats,
        beta=beta,
        expected_loss=el,
        expected_loss_stderr=el_se,
        train_loss=train_loss,
        per_parameter={k: v.detach().cpu() for k, v in opt.per_parameter.items()},
        posterior_variance={k: v.detach().cpu() for k, v in opt.posterior_variance.items()},
        prior_scale=dict(prior.scale),
        method="fisher",
        structure=structure,
        curvature=curvature,
        loss=lossfn.name,
        convention=convention,
        prior_mean=prior_mean if isinstance(prior_mean, str) else "custom",
        n_samples=n,
        mc_samples=mc_samples,
        seed=int(seed),
        expected_loss_quadratic=train_loss + opt.quadratic_excess,
        approximation=approximation,
        layer_types={name: type(m).__name__ for name, m in model.named_modules()},
        extra={**_extra(curv, opt, prior, n), **(extra or {})},
    )


def _scale_grid(prior_scale) -> list[float] | None:
    """A list/tuple of candidate λ (the Fisher method picks one); None for every other form."""
    if isinstance(prior_scale, (list, tuple)):
        if not prior_scale:
            raise ValueError("prior_scale grid is empty")
        return [check_positive("prior_scale", v) for v in prior_scale]
    return None


def _variational(model, data, **kwargs) -> InformationResult:
    try:
        from .variational import variational_information
    except ModuleNotFoundError as e:
        if e.name not in (f"{__package__}.variational", "variational"):
            raise
        raise NotImplementedError(
            "method='variational' needs weightinfo.iw.variational, which is not available yet; "
            "use method='fisher'"
        ) from e
    return variational_information(model, data, **kwargs)


def curvature_and_loss(
    model,
    data,
    curvature,
    structure,
    lossfn,
    seed,
    batch_size,
    progress,
    kind="exact",
    samples=None,
):
    """The curvature (on all of ``data`` or a subset of ``samples``) and L_D(w*) over all of ``data``.

    L_D comes from the curvature pass's own outputs where it has them (``Curvature.mean_loss``), plus a
    forward pass over the samples it did not see; otherwise from one forward pass. Returns
    ``(curvature, L_D, N)``.
    """
    if curvature == "hessian" and structure == "kfac":
        raise ValueError(
            "curvature='hessian' has no KFAC structure; use structure='diag', 'filter' or 'full', "
            "or curvature='fisher'/'ggn' with structure='kfac'"
        )
    if curvature == "hessian" and kind != "exact":
        raise ValueError(
            "curvature_kind='mc' applies to curvature='fisher' or 'ggn', not 'hessian'"
        )
    curv_data, rest = data, None
    if samples is not None:
        curv_data, rest, _ = split_for_curvature(data, samples, seed)
    curv = _curvature(
        model, curv_data, curvature, structure, lossfn.name, seed, batch_size, progress, kind
    )
    if curv.mean_loss is not None:  # the curvature pass saw those outputs already
        train_loss, n = curv.mean_loss, curv.n_samples
    else:
        train_loss, n = _mean_loss(model, None, curv_data, lossfn, batch_size)
    if rest is not None:  # L_D over all the data: add the samples the curvature did not see
        rest_loss, n_rest = _mean_loss(model, None, rest, lossfn, batch_size)
        train_loss, n = (train_loss * n + rest_loss * n_rest) / (n + n_rest), n + n_rest
    return curv, train_loss, n


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


def _expected_loss(model, opt, data, lossfn, mc_samples, seed, batch_size, progress):
    """Monte Carlo E_{w∼Q*}[L_D(w)]: mean over draws and its standard error (NaN when < 2 draws)."""
    if mc_samples == 0:
        return math.nan, math.nan
    params = named_trainable(model)
    device = next(iter(params.values())).device
    gen = torch.Generator(device=device).manual_seed(int(seed))
    disable = None if progress is None else not progress
    values = []
    for _ in tqdm(range(mc_samples), desc="E_Q[L_D]", disable=disable, leave=False):
        w = {k: v.to(params[k].dtype) for k, v in opt.sample(gen).items()}
        values.append(_mean_loss(model, w, data, lossfn, batch_size)[0])
    v = torch.tensor(values, dtype=torch.float64)
    se = float(v.std(unbiased=True) / math.sqrt(len(values))) if len(values) > 1 else math.nan
    return float(v.mean()), se


def _extra(curv, opt, prior, n) -> dict:
    scale_opt: dict[str, list] = {}
    for k, w in opt.mean.items():
        d = (w - prior.mean[k].to(w)).pow(2) + opt.posterior_variance[k]
        scale_opt.setdefault(layer_of(k), []).append(d.reshape(-1))
    return {
        "curvature_quantity": curv.quantity,
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
