"""``certify``: a PAC-Bayes risk certificate for the stochastic (Gibbs) predictor of a network.

Prior P = N(w0, λ² I) (w0 trained on ``prior_data``, given pre-trained as ``prior_state``, or the initial
weights), posterior Q = N(μ, diag σ²) (optimised PBB-style, or the information posterior Q* of
``weightinfo.information``), then the two-step certificate of bounds.md §1.1 on ``bound_data``:
û = MC upper bound on the Gibbs 0-1 risk, then kl⁻¹(û, (KL + ln(2√n/δ_K))/n).

Selection on the bound set is paid for: a grid of K configurations (prior scales λ, and β for the
information posterior), or ``k_union`` ≥ K certificates computed on the same bound set in all, gives each
one δ_K = δ/K (union bound). With K > 1 the grid is screened with ``mc_screen`` draws per point and the
best point is then certified with **fresh** draws, so the MC step keeps its full δ′ (reusing the draws
that picked the minimum would bias û low).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
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

    ``k_union`` certificates share δ (each gets δ/``k_union``); ``grid`` lists the screened grid points
    (λ, β, KL, screening estimate and bound) when the grid had more than one point.
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
    beta: float | None = None
    beta_grid: list | None = None
    k_union: int = 1
    mc_screen: int | None = None
    grid: list = field(default_factory=list)
    learned_prior_scale: float | None = None
    posterior_options: dict | None = None

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


def _grid(value, name: str) -> list[float]:
    grid = list(value) if isinstance(value, (list, tuple)) else [value]
    if not grid:
        raise ValueError(f"{name} grid is empty")
    out = []
    for s in grid:
        s = float(s)
        if not math.isfinite(s) or s <= 0:
            raise ValueError(f"{name} must be > 0, got {s!r}")
        out.append(s)
    return out


def _scales(prior_scale) -> list[float]:
    return _grid(prior_scale, "prior_scale")


def _state_means(model: nn.Module, state, what: str) -> dict[str, torch.Tensor]:
    """The model's trainable parameters taken from the state dict ``state`` (exact copies, model dtype)."""
    params = pf.param_means(model)
    missing = [k for k in params if k not in state]
    if missing:
        raise ValueError(f"{what} lacks parameter(s) {missing[:4]} of the model")
    out = {}
    for k, v in params.items():
        t = torch.as_tensor(state[k]).detach()
        if t.shape != v.shape:
            raise ValueError(
                f"{what}[{k!r}] has shape {tuple(t.shape)}, the model {tuple(v.shape)}"
            )
        out[k] = t.to(v.dtype).clone()
    return out


def _stream(*key: int) -> torch.Generator:
    """A torch generator seeded from ``key`` through numpy's SeedSequence (independent streams)."""
    state = np.random.SeedSequence([int(k) for k in key]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def certify(
    model: nn.Module,
    *,
    prior_data=None,
    posterior_data,
    bound_data,
    test_data=None,
    prior: str = "data",
    prior_state=None,
    prior_scale: float | list[float] = 0.03,
    posterior: str = "optimize",
    objective: str = "fquad",
    loss: str = "zero_one",
    delta: float = 0.025,
    delta_mc: float = 0.01,
    mc_samples: int = 1000,
    mc: str = "standard",
    seed: int = 0,
    mc_seed: int | None = None,
    mc_screen: int | None = None,
    k_union: int | None = None,
    init_state=None,
    prior_indices=None,
    bound_indices=None,
    posterior_init: str = "prior",
    prior_epochs: int = 30,
    prior_lr: float = 0.05,
    prior_batch_size: int = 64,
    prior_momentum: float = 0.9,
    posterior_epochs: int = 20,
    posterior_lr: float = 5e-3,
    batch_size: int = 128,
    beta: float | list[float] = 1e-3,
    majority_votes: int = 32,
    surrogate: str = "bounded_ce",
    posterior_sigma_init: str = "prior",
    posterior_sigma_factor: float = 1.0,
    posterior_optimizer: str = "adam",
    posterior_lr_drop_epoch: int | None = None,
    learn_prior_scale: bool = False,
) -> Certificate:
    """PAC-Bayes risk certificate of ``model``'s architecture on ``bound_data`` (bounds.md §1, §3.2).

    Data are ``(X, Y)`` tuples or DataLoaders. ``prior_indices`` / ``bound_indices`` (training-set indices)
    are checked to be disjoint; **when data are passed without indices the caller is responsible** for
    ``bound_data`` being independent of ``prior_data`` (and of whatever trained ``prior_state``).
    ``posterior_data`` may be anything (all the data).

    prior : ``"data"`` — w0 = ``prior_state`` if given (a state dict trained on the prior data only; used
        exactly, nothing is trained), else a re-initialised copy of ``model`` (``init_state`` if given)
        trained by ERM on ``prior_data``: SGD, ``prior_momentum``, constant ``prior_lr``,
        ``prior_batch_size``, ``prior_epochs``; ``"init"`` — w0 = ``init_state`` (data-free).
    prior_scale : λ, or a list (grid). posterior : ``"optimize"`` — μ from the prior mean
        (``posterior_init="prior"``, PBB) or the model's weights, σ = λ, trained on ``objective``
        (``fquad``, ``flambda``, ``fclassic``) of the bounded cross-entropy; ``"information"`` — Q* =
        ``information(model, posterior_data, beta=β, prior_scale=λ, prior_mean=w0, method="fisher")`` as is
        (means = ``model``'s weights). ``beta`` may be a list (grid) for the information posterior.
    k_union : number of certificates computed on this bound set that this one is chosen from (default: the
        grid size K = #λ·#β; must be ≥ K). Every grid point is certified at δ/``k_union``.
    mc_screen : MC draws (repetitions) per grid point when K > 1 (default ``mc_samples``); the best point is
        re-estimated with ``mc_samples`` fresh draws. mc_seed : seed of the MC draws (default ``seed``); a
        choice made from one call's numbers must be certified in another call with another ``mc_seed``.
    mc : ``"standard"`` (m networks on the whole bound set) or ``"per_example"`` (a draw per example and
        repetition, N = m·n; Linear layers only). loss : only ``"zero_one"`` is certified.
    surrogate, posterior_sigma_init, posterior_sigma_factor, posterior_optimizer, posterior_lr_drop_epoch :
        options of the optimised posterior (:func:`posterior_fit.fit_posterior`): the training surrogate
        (``"bounded_ce"``, ``"logistic"``), σ at start (``"prior"``: σ = λ; ``"abs_w"``: σ = factor·|μ|,
        Dziugaite & Roy), Adam or RMSprop, and the epoch after which the learning rate drops ×0.1.
    learn_prior_scale : Dziugaite & Roy's learnt λ. One posterior is trained with λ at its closed-form
        optimum (:func:`posterior_fit.optimal_prior_scale`); the grid ``prior_scale`` is the set of
        admissible λ (all of it counts in K, since which point is used depends on the data), and the two grid
        points bracketing the learnt λ are screened, the better one certified.
    """
    t0 = time.perf_counter()
    _check_choice("prior", prior, PRIORS)
    _check_choice("posterior", posterior, POSTERIORS)
    _check_choice("objective", objective, pf.OBJECTIVES)
    _check_choice("mc", mc, MC_ESTIMATORS)
    _check_choice("posterior_init", posterior_init, POSTERIOR_INITS)
    _check_choice("loss", loss, ("zero_one",))
    _check_choice("surrogate", surrogate, pf.SURROGATES)
    _check_choice("posterior_sigma_init", posterior_sigma_init, pf.SIGMA_INITS)
    _check_choice("posterior_optimizer", posterior_optimizer, pf.OPTIMIZERS)
    if learn_prior_scale and posterior != "optimize":
        raise ValueError("learn_prior_scale applies to posterior='optimize' only")
    for name, d in (("delta", delta), ("delta_mc", delta_mc)):
        if not (isinstance(d, (int, float)) and 0 < d < 1):
            raise ValueError(f"{name} must be in (0, 1), got {d!r}")
    for name, v in (("mc_samples", mc_samples), ("mc_screen", mc_screen)):
        if v is not None and (isinstance(v, bool) or int(v) != v or v < 1):
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    grid = _scales(prior_scale)
    if posterior == "optimize" and isinstance(beta, (list, tuple)):
        raise ValueError("a beta grid only applies to posterior='information'")
    betas = _grid(beta, "beta") if posterior == "information" else [None]
    points = [(lam, b) for lam in grid for b in betas]
    k_union = len(points) if k_union is None else k_union
    if isinstance(k_union, bool) or int(k_union) != k_union or k_union < len(points):
        raise ValueError(
            f"k_union must be an integer ≥ the grid size {len(points)}, got {k_union!r}"
        )
    k_union = int(k_union)
    _check_disjoint(prior_indices, bound_indices)
    if prior_state is not None and prior != "data":
        raise ValueError("prior_state is a data-dependent prior mean: use it with prior='data'")
    if prior_state is not None and init_state is not None:
        raise ValueError(
            "pass prior_state (trained prior mean) or init_state (its start), not both"
        )
    if prior == "init" and init_state is None:
        raise ValueError("prior='init' needs the initial weights: pass init_state=")
    model = model.eval()
    xb, yb = R.as_tensors(bound_data, "bound_data")
    xq, yq = R.as_tensors(posterior_data, "posterior_data")
    n = int(xb.shape[0])
    if prior_state is not None:
        w0 = _state_means(model, prior_state, "prior_state")
    elif prior == "data":
        w0 = pf.train_prior_mean(
            model,
            R.as_tensors(prior_data, "prior_data"),
            init_state=init_state,
            epochs=prior_epochs,
            lr=prior_lr,
            batch_size=prior_batch_size,
            momentum=prior_momentum,
            seed=seed,
        )
    else:
        w0 = _state_means(model, init_state, "init_state")
    delta_k = bounds.union_delta(delta, k_union) if k_union > 1 else float(delta)
    mc_seed = int(seed if mc_seed is None else mc_seed)
    m_screen = int(mc_samples if mc_screen is None else mc_screen)

    def estimate(mean, var, m, gen):
        if mc == "standard":
            std = {k: v.sqrt() for k, v in var.items()}
            return float(R.gibbs_errors_standard(model, xb, yb, mean, std, m, gen).mean())
        return R.gibbs_error_per_example(model, xb, yb, mean, var, m, gen)[0]

    def certificate(emp, kl, m):
        per_example = mc == "per_example"
        return bounds.certificate(
            emp, kl, n, int(m), delta_k, delta_mc, bound="kl", per_example=per_example
        )

    candidates = _posteriors(
        model,
        posterior,
        (xq, yq),
        w0,
        points,
        objective=objective,
        n=n,
        delta=delta_k,
        init=posterior_init,
        epochs=posterior_epochs,
        lr=posterior_lr,
        batch_size=batch_size,
        seed=seed,
        fit_options=dict(
            surrogate=surrogate,
            sigma_init=posterior_sigma_init,
            sigma_init_factor=float(posterior_sigma_factor),
            optimizer=posterior_optimizer,
            lr_drop_epoch=posterior_lr_drop_epoch,
        ),
        learn_prior_scale=bool(learn_prior_scale),
    )
    learned = None
    if learn_prior_scale:
        # One fit; the grid points bracketing the learnt λ are the only ones screened (all are paid for).
        _, _, mean, var = next(candidates)
        learned = pf.optimal_prior_scale(mean, var, w0)
        below = [lam for lam in grid if lam <= learned]
        above = [lam for lam in grid if lam >= learned]
        near = sorted(({max(below)} if below else set()) | ({min(above)} if above else set()))
        candidates = [(lam, None, mean, var) for lam in near]
        points = [(lam, None) for lam in near]
    screened, best, best_score = [], None, math.inf
    for j, (lam, b, mean, var) in enumerate(candidates):
        kl = _kl(mean, var, w0, lam)
        if len(points) == 1:
            best = (lam, b, mean, var, kl)
            break
        emp = estimate(mean, var, m_screen, _stream(mc_seed, 1, j))
        score = certificate(emp, kl, m_screen).risk_bound
        screened.append(
            {"prior_scale": lam, "beta": b, "kl_nats": kl, "screen_emp": emp, "screen_bound": score}
        )
        if score < best_score:
            best, best_score = (lam, b, mean, var, kl), score
    lam, b, mean, var, kl = best
    # Fresh draws for the chosen point (the legacy stream seed + 1000 when nothing was chosen).
    gen = torch.Generator().manual_seed(mc_seed + 1000) if len(points) == 1 else _stream(mc_seed, 2)
    res = certificate(estimate(mean, var, mc_samples, gen), kl, mc_samples)
    std = {k: v.sqrt() for k, v in var.items()}
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
        k_scales=len(grid),
        posterior=posterior,
        objective=objective if posterior == "optimize" else None,
        test_error=test[0],
        mean_test_error=test[1],
        majority_vote_test_error=test[2],
        vacuous=res.vacuous,
        wall_time_s=time.perf_counter() - t0,
        beta=b,
        beta_grid=None if posterior == "optimize" else betas,
        k_union=k_union,
        mc_screen=m_screen if len(points) > 1 else None,
        grid=screened,
        learned_prior_scale=learned,
        posterior_options=None
        if posterior != "optimize"
        else dict(
            surrogate=surrogate,
            sigma_init=posterior_sigma_init,
            sigma_factor=float(posterior_sigma_factor),
            optimizer=posterior_optimizer,
            lr=float(posterior_lr),
            epochs=int(posterior_epochs),
            lr_drop_epoch=posterior_lr_drop_epoch,
            learn_prior_scale=bool(learn_prior_scale),
        ),
    )


def _kl(mean, var, w0, lam) -> float:
    """KL(N(mean, diag var) ‖ N(w0, λ² I)) in nats, in float64."""
    return float(
        pf.kl_gaussian(
            {k: v.double() for k, v in mean.items()},
            {k: v.double() for k, v in var.items()},
            {k: v.double() for k, v in w0.items()},
            lam**2,
        )
    )


def _posteriors(model, kind, data, w0, points, **kw):
    """Yield ``(λ, β, mean, var)`` for every grid point (one curvature per call for the information
    posterior: Σ* = β(F + β/λ² I)⁻¹ for each (λ, β) from the same Fisher diagonal F)."""
    if kind == "optimize":
        for lam, b in points[:1] if kw["learn_prior_scale"] else points:
            start = w0 if kw["init"] == "prior" else pf.param_means(model)
            mean, var = pf.fit_posterior(
                model,
                data,
                prior_mean=w0,
                prior_scale=lam,
                init_mean=start,
                objective_name=kw["objective"],
                n_bound=kw["n"],
                delta=kw["delta"],
                epochs=kw["epochs"],
                lr=kw["lr"],
                batch_size=kw["batch_size"],
                seed=kw["seed"],
                learn_prior_scale=kw["learn_prior_scale"],
                prior_scale_range=(min(lam for lam, _ in points), max(lam for lam, _ in points)),
                **kw["fit_options"],
            )
            yield lam, b, mean, var
        return
    from ..iw import information_curve
    from ..iw.points import FisherOptions, fisher_points

    mean = pf.param_means(model)
    prior_mean = {k: v.double() for k, v in w0.items()}
    # One curvature and L_D(w*) for every (λ, β), computed with the options of the calls below.
    shared = fisher_points(
        model, data, FisherOptions(mc_samples=0, seed=kw["seed"], progress=False)
    )
    for lam in dict.fromkeys(lam for lam, _ in points):
        betas = [b for lam2, b in points if lam2 == lam]
        res = information_curve(
            model,
            data,
            betas=betas,
            prior_scale=lam,
            prior_mean=prior_mean,
            method="fisher",
            mc_samples=0,  # E_Q[L_D] is not needed: the certificate estimates the risk itself
            progress=False,
            seed=kw["seed"],
            precomputed=shared,
        )
        for b in betas:
            post = min(res.results, key=lambda r, b=b: abs(r.beta - b)).posterior_variance
            var = {k: post[k].to(v.dtype).clamp_min(1e-30) for k, v in mean.items()}
            yield lam, b, mean, var
