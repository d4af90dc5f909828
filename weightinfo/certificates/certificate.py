"""``certify``: a PAC-Bayes risk certificate for the stochastic (Gibbs) predictor of a network.

Prior P = N(w0, λ² I) (w0 trained on ``prior_data`` or the initial weights), posterior Q = N(μ, diag σ²)
(optimised PBB-style, or the information posterior Q* of ``weightinfo.information``), then the two-step
certificate of bounds.md §1.1 on ``bound_data``: û = MC upper bound on the Gibbs 0-1 risk, then
kl⁻¹(û, (KL + ln(2√n/δ))/n). A grid of K prior scales is paid for by a union bound (δ/K each).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .. import bounds
from . import posterior_fit as pf
from . import risk as R

PRIORS = ("data", "init")
POSTERIORS = ("optimize", "information")
MC_ESTIMATORS = ("standard", "per_example")
POSTERIOR_INITS = ("prior", "model")


@dataclass(frozen=True)
class Certificate:
    """A risk certificate: with probability ≥ 1 − δ − δ′ (over the bound set and the MC draws), the
    expected 0-1 risk of the **stochastic (Gibbs) predictor** — draw w ∼ Q, predict with it — is at most
    ``risk_bound``. It says nothing directly about the posterior-mean network or the majority vote (their
    test errors are reported for comparison only). KL in nats (``kl_bits`` in bits); n = bound-set size used.
    """

    risk_bound: float
    empirical_risk: float
    mc_upper: float
    kl_nats: float
    kl_bits: float
    n_bound: int
    m: int
    delta: float
    delta_mc: float
    bound: str
    mc: str
    prior: str
    prior_scale: float
    prior_scale_grid: list
    k_scales: int
    posterior: str
    objective: str | None
    test_error: float | None
    mean_test_error: float | None
    majority_vote_test_error: float | None
    vacuous: bool
    wall_time_s: float

    @property
    def confidence(self) -> float:
        return 1.0 - self.delta - self.delta_mc

    def to_dict(self) -> dict:
        d = asdict(self)
        d["prior_scale_grid"] = list(self.prior_scale_grid)
        d["confidence"] = self.confidence
        return d


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _check_disjoint(prior_indices, bound_indices) -> None:
    if prior_indices is None or bound_indices is None:
        return
    a = torch.as_tensor(prior_indices).reshape(-1).long()
    b = torch.as_tensor(bound_indices).reshape(-1).long()
    common = torch.unique(a[torch.isin(a, b)])
    if common.numel():
        raise ValueError(
            f"prior_indices and bound_indices overlap in {common.numel()} example(s) "
            f"(e.g. {common[:5].tolist()}): the bound set must be independent of the prior"
        )


def _scales(prior_scale) -> list[float]:
    grid = list(prior_scale) if isinstance(prior_scale, (list, tuple)) else [prior_scale]
    if not grid:
        raise ValueError("prior_scale grid is empty")
    out = []
    for s in grid:
        s = float(s)
        if not math.isfinite(s) or s <= 0:
            raise ValueError(f"prior_scale must be > 0, got {s!r}")
        out.append(s)
    return out


def certify(
    model: nn.Module,
    *,
    prior_data,
    posterior_data,
    bound_data,
    test_data=None,
    prior: str = "data",
    prior_scale: float | list[float] = 0.03,
    posterior: str = "optimize",
    objective: str = "fquad",
    loss: str = "zero_one",
    delta: float = 0.025,
    delta_mc: float = 0.01,
    mc_samples: int = 1000,
    mc: str = "standard",
    seed: int = 0,
    init_state=None,
    prior_indices=None,
    bound_indices=None,
    posterior_init: str = "prior",
    prior_epochs: int = 30,
    prior_lr: float = 0.05,
    posterior_epochs: int = 20,
    posterior_lr: float = 5e-3,
    batch_size: int = 128,
    beta: float = 1e-3,
    majority_votes: int = 32,
) -> Certificate:
    """PAC-Bayes risk certificate of ``model``'s architecture on ``bound_data`` (bounds.md §1, §3.2).

    Data are ``(X, Y)`` tuples or DataLoaders. ``prior_indices`` / ``bound_indices`` (training-set indices)
    are checked to be disjoint; **when data are passed without indices the caller is responsible** for
    ``bound_data`` being independent of ``prior_data``. ``posterior_data`` may be anything (all the data).

    prior : ``"data"`` — w0 = a re-initialised copy of ``model`` (``init_state`` if given) trained by ERM on
        ``prior_data``; ``"init"`` — w0 = ``init_state`` (data-free; ``prior_data`` is then unused).
    prior_scale : λ, or a list (grid of K values: each is fitted and certified with δ/K, the best kept).
    posterior : ``"optimize"`` — μ from the prior mean (``posterior_init="prior"``, PBB) or the model's
        weights, σ = λ, trained on ``objective`` (``fquad``, ``flambda``, ``fclassic``) of the bounded
        cross-entropy; ``"information"`` — Q* = ``information(model, posterior_data, beta=beta,
        prior_scale=λ, method="fisher")`` as is (means = ``model``'s weights).
    mc : ``"standard"`` (m networks on the whole bound set) or ``"per_example"`` (a draw per example and
        repetition, N = m·n; Linear layers only). loss : only ``"zero_one"`` is certified.
    """
    t0 = time.perf_counter()
    _check_choice("prior", prior, PRIORS)
    _check_choice("posterior", posterior, POSTERIORS)
    _check_choice("objective", objective, pf.OBJECTIVES)
    _check_choice("mc", mc, MC_ESTIMATORS)
    _check_choice("posterior_init", posterior_init, POSTERIOR_INITS)
    _check_choice("loss", loss, ("zero_one",))
    for name, d in (("delta", delta), ("delta_mc", delta_mc)):
        if not (isinstance(d, (int, float)) and 0 < d < 1):
            raise ValueError(f"{name} must be in (0, 1), got {d!r}")
    if int(mc_samples) != mc_samples or mc_samples < 1:
        raise ValueError(f"mc_samples must be a positive integer, got {mc_samples!r}")
    grid = _scales(prior_scale)
    _check_disjoint(prior_indices, bound_indices)
    if prior == "init" and init_state is None:
        raise ValueError("prior='init' needs the initial weights: pass init_state=")
    model = model.eval()
    xb, yb = R.as_tensors(bound_data, "bound_data")
    xq, yq = R.as_tensors(posterior_data, "posterior_data")
    n = int(xb.shape[0])
    if prior == "data":
        w0 = pf.train_prior_mean(
            model,
            R.as_tensors(prior_data, "prior_data"),
            init_state=init_state,
            epochs=prior_epochs,
            lr=prior_lr,
            seed=seed,
        )
    else:
        params = pf.param_means(model)
        w0 = {k: torch.as_tensor(init_state[k]).detach().to(v.dtype) for k, v in params.items()}
    k_scales = len(grid)
    delta_j = bounds.union_delta(delta, k_scales) if k_scales > 1 else float(delta)
    best = None
    for j, lam in enumerate(grid):
        mean, var = _posterior(
            model,
            posterior,
            (xq, yq),
            w0,
            lam,
            objective,
            n,
            delta_j,
            posterior_init,
            posterior_epochs,
            posterior_lr,
            batch_size,
            seed,
            beta,
        )
        kl = float(
            pf.kl_gaussian(
                {k: v.double() for k, v in mean.items()},
                {k: v.double() for k, v in var.items()},
                {k: v.double() for k, v in w0.items()},
                lam**2,
            )
        )
        gen = torch.Generator().manual_seed(int(seed) + 1000 + j)
        std = {k: v.sqrt() for k, v in var.items()}
        if mc == "standard":
            emp = float(R.gibbs_errors_standard(model, xb, yb, mean, std, mc_samples, gen).mean())
        else:
            emp, _ = R.gibbs_error_per_example(model, xb, yb, mean, var, mc_samples, gen)
        res = bounds.certificate(
            emp,
            kl,
            n,
            int(mc_samples),
            delta_j,
            delta_mc,
            bound="kl",
            per_example=(mc == "per_example"),
        )
        if best is None or res.risk_bound < best[0].risk_bound:
            best = (res, lam, mean, std)
    res, lam, mean, std = best
    test = (None, None, None)
    if test_data is not None:
        xt, yt = R.as_tensors(test_data, "test_data")
        gen = torch.Generator().manual_seed(int(seed) + 7)
        test = (
            float(R.gibbs_errors_standard(model, xt, yt, mean, std, mc_samples, gen).mean()),
            R.mean_network_error(model, xt, yt, mean),
            R.majority_vote_error(model, xt, yt, mean, std, majority_votes, gen),
        )
    return Certificate(
        risk_bound=res.risk_bound,
        empirical_risk=res.emp_risk,
        mc_upper=res.mc_upper,
        kl_nats=res.kl_nats,
        kl_bits=res.kl_bits,
        n_bound=n,
        m=int(mc_samples),
        delta=float(delta),
        delta_mc=float(delta_mc),
        bound="kl (Maurer)",
        mc=mc,
        prior=prior,
        prior_scale=lam,
        prior_scale_grid=grid,
        k_scales=k_scales,
        posterior=posterior,
        objective=objective if posterior == "optimize" else None,
        test_error=test[0],
        mean_test_error=test[1],
        majority_vote_test_error=test[2],
        vacuous=res.vacuous,
        wall_time_s=time.perf_counter() - t0,
    )


def _posterior(model, kind, data, w0, lam, objective, n, delta, init, epochs, lr, bs, seed, beta):
    if kind == "optimize":
        start = w0 if init == "prior" else pf.param_means(model)
        return pf.fit_posterior(
            model,
            data,
            prior_mean=w0,
            prior_scale=lam,
            init_mean=start,
            objective_name=objective,
            n_bound=n,
            delta=delta,
            epochs=epochs,
            lr=lr,
            batch_size=bs,
            seed=seed,
        )
    from ..information import information

    info = information(
        model,
        data,
        beta=beta,
        prior_scale=lam,
        prior_mean={k: v.double() for k, v in w0.items()},
        method="fisher",
        progress=False,
        seed=seed,
    )
    mean = pf.param_means(model)
    var = {k: info.posterior_variance[k].to(v.dtype).clamp_min(1e-30) for k, v in mean.items()}
    return mean, var
