"""``weightinfo.information``: how many nats a trained network stores in its weights, and where.

Achille, Paolini & Soatto 2019, Def. 2.1: the information in the weights at level β is
IW_β = KL(Q*‖P) at the minimiser Q* of the Information Lagrangian

    C_β(D; P, Q) = E_{w∼Q}[L_D(w)] + β·KL(Q‖P),

with L_D the **mean** per-sample loss and β **per sample** (β_sum = N·β for a summed loss, β_PAC = N·β in Eq. 3).
P = N(w0, diag λ_l²) (``weightinfo.posterior.make_prior``), Q = N(w*, Σ) around the trained weights w*.

``method="fisher"`` (default) uses the closed form of the quadratic model (Prop. 2.5;
``fisher_form``) with a curvature H: the exact Fisher (labels from the model, Remark 2.6), the Gauss–Newton
matrix, or the Hessian of the mean loss, in the structure ``"diag"`` (one σ² per weight), ``"filter"`` (one σ² per
output unit/filter, as in Task2Vec), ``"kfac"`` (Kronecker-factored) or ``"full"`` (dense). ``method="variational"``
learns Q by minimising C_β directly (``weightinfo.iw.variational``).

Besides IW the result reports E_{Q*}[L_D] by Monte Carlo (``mc_samples`` weight draws, each evaluated on all of
``data``; mean and standard error), its quadratic-model value L_D(w*) + ½ tr(HΣ*), and L_D(w*). Units: nats
(``result.bits`` in bits).
"""

from __future__ import annotations

from torch import nn

from .._base import memory
from .._base.checks import check_choice, check_positive
from .curve import METHODS, information_curve
from .points import CURVATURES, STRUCTURES
from .result import InformationResult
from .variational import VariationalOptions

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
    precomputed=None,
    variational: VariationalOptions | None = None,
    max_memory=None,
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
    precomputed : Fisher method only: a ``weightinfo.iw.points.FisherPoints`` of this model and ``data`` (from
        ``fisher_points``; its curvature options must match) or a ``Curvature`` of ``data``; not recomputed.
    batch_size, progress : batching of ``(X, Y)`` tuples and a progress bar (None: only on a terminal).
    max_memory : Fisher method only: None, or bytes (``"2GB"``) one batch may take; batches are split to fit
        (the same result to float64 rounding), a ``MemoryError`` if one sample does not
        (``weightinfo._base.memory``). Refused for the variational method, whose minibatch is an optimiser
        setting, not a way of summing.
    variational, variational_kwargs : the variational estimator's options, as a ``VariationalOptions`` or as
        its keywords (``max_epochs=``, ``lr=``, ``state_path=``, ...); a ``TypeError`` for ``method="fisher"``.

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
    beta = check_positive("beta", beta)
    if max_memory is not None and method != "fisher":
        raise ValueError(
            "max_memory applies to method='fisher' only: the variational minibatch is an optimiser setting"
        )
    return memory.guarded(
        model,
        data,
        batch_size,
        max_memory,
        lambda d, bs: _information(
            model,
            d,
            beta=beta,
            method=method,
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
            batch_size=bs,
            progress=progress,
            curvature_kind=curvature_kind,
            curvature_samples=curvature_samples,
            precomputed=precomputed,
            variational=variational,
            **variational_kwargs,
        ),
    )


def _information(model, data, *, beta, method, **kwargs) -> InformationResult:
    # One path for one β and many: the curve dispatches, checks the options and runs the pipeline.
    return information_curve(model, data, betas=[beta], method=method, **kwargs).results[0]
