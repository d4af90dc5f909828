"""``certify``: a PAC-Bayes risk certificate for the stochastic (Gibbs) predictor of a network.

Prior P = N(w0, λ² I) (w0 trained on ``prior_data``, given pre-trained as ``prior_state``, or the initial
weights), posterior Q = N(μ, diag σ²) (optimised as in Pérez-Ortiz et al. 2021, or the information posterior Q*
of Achille, Paolini & Soatto 2019, Eq. 8), then the two-step certificate of Dziugaite & Roy 2017 (§3) on
``bound_data``: û = MC upper bound on the Gibbs 0-1 risk (Langford & Caruana 2002), then Maurer's
kl⁻¹(û, (KL + ln(2√n/δ_K))/n) (Maurer 2004).

By default the configuration is chosen from a set declared before any data is seen
(:data:`~weightinfo.certificates.selection.DEFAULT_SEARCH`: information and optimised posteriors at several
λ, β, learning rates). Selection on the bound set is paid for: K candidates (or ``k_union`` ≥ K certificates
computed on the same bound set in all) give each one δ_K = δ/K (union bound). With K > 1 every candidate is
screened with ``mc_screen`` draws and the best is then certified with **fresh** draws, so the MC step keeps
its full δ′ (reusing the draws that picked the minimum would bias û low; :mod:`._screening`).

The options are grouped in :mod:`weightinfo.certificates.options`.

Distributed (``weightinfo._base.distributed``): under an initialised process group each rank passes its own
shard of ``posterior_data``, ``bound_data``, ``test_data`` and ``prior_data`` (or of ``data``, which each rank
then splits with the same seed). The bound set's n is the global count and the Monte Carlo risks are reduced
over the ranks (:mod:`.risk`: whole-network draws shared by seed, per-example draws per rank), so the
screening, the choice, m and the bound are identical on every rank; K and δ_K are unchanged. The optimised
posteriors reduce their data term's gradient every step (:mod:`.posterior_fit`); the information posterior's
Fisher is reduced (its subset of :data:`~.selection.FISHER_EXAMPLES` is split in proportion to the shards);
the prior set is gathered and the prior mean trained data-parallel (:mod:`._prior_parallel`: the
single-process minibatches, each rank the gradient of its share of every batch, all-reduced before each step;
w0 identical on every rank and equal to one process's up to summation order, so its hash differs; dropout
masks per rank; BatchNorm models trained whole on every rank, as one process). The record hashes each sharded set as the union of the shards (total n, a hash of the
shards' hashes).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .. import bounds
from .._base import distributed as dist
from .._base.checks import check_choice, check_finite_tensor, check_model
from .._base.deprecation import renamed_kwargs
from ..bounds.two_step import total_confidence
from . import posterior_fit as pf
from ._posteriors import candidate_posteriors
from ._screening import BoundSet, Clock, near_learnt_scale, select, stream, test_errors
from .inputs import check_disjoint, checked_data, data_sets
from .options import (
    MC_ESTIMATORS,
    POSTERIOR_INITS,
    POSTERIORS,
    PRIORS,
    MonteCarloOptions,
    PosteriorOptions,
    PriorOptions,
    resolve_options,
)
from .record import certificate_record, options_record
from .selection import DEFAULT_SEARCH, FISHER_EXAMPLES, Candidate

__all__ = [
    "MC_ESTIMATORS",
    "POSTERIOR_INITS",
    "POSTERIORS",
    "PRIORS",
    "Certificate",
    "certify",
]


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
    # The declared set chosen among (automatic selection; None for a pinned grid) and the chosen candidate.
    search: list | None = None
    chosen: dict | None = None
    # The prior mean's training: epochs run, best epoch, held-out error (None for a given prior mean).
    prior_training: dict | None = None
    # What is certified, by content (``record.certificate_record``); the CLI adds its own fields.
    record: dict | None = None

    @property
    def confidence(self) -> float:
        return 1.0 - self.delta - self.delta_mc

    def to_dict(self) -> dict:
        d = asdict(self)
        d["prior_scale_grid"] = list(self.prior_scale_grid)
        d["confidence"] = self.confidence
        return d

    def to_dataframe(self):
        """One row, the scalar fields of :meth:`to_dict` (risks and errors are 0-1 fractions, ``kl_nats`` in
        nats, ``kl_bits`` in bits, ``wall_time_s`` in seconds); the screened ``grid`` is
        ``pandas.DataFrame(cert.grid)``."""
        from .._base.frames import one_row

        return one_row(self.to_dict())


def _union_size(k_union, n_points: int) -> int:
    """K of the union bound: the grid size by default, never less."""
    k = n_points if k_union is None else k_union
    if isinstance(k, bool) or int(k) != k or k < n_points:
        raise ValueError(f"k_union must be an integer ≥ the grid size {n_points}, got {k_union!r}")
    return int(k)


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
        check_finite_tensor(f"{what}[{k!r}]", t)
        out[k] = t.to(v.dtype).clone()
    return out


# ---------------------------------------------------------------------------------------------------------
# Step 1: the prior mean w0
# ---------------------------------------------------------------------------------------------------------


def _prior_mean(
    model: nn.Module, p: PriorOptions, prior_data, seed: int, info: dict
) -> dict[str, torch.Tensor]:
    """w0: the given trained state, the prior data's ERM solution (early-stopped on a held-out part of the
    prior data), or the initial weights. ``info`` receives the training's epochs and held-out error."""
    if p.state is not None:
        return _state_means(model, p.state, "prior_state")
    if p.source == "data":
        return pf.train_prior_mean(
            model,
            prior_data,
            init_state=p.init_state,
            epochs=p.epochs,
            lr=p.lr,
            batch_size=p.batch_size,
            momentum=p.momentum,
            seed=seed,
            holdout=p.holdout_for(prior_data[0].shape[0]),
            patience=p.patience,
            schedule=p.schedule,
            info=info,
        )
    return _state_means(model, p.init_state, "init_state")


def _fit_kwargs(q: PosteriorOptions, n: int, delta_k: float, seed: int) -> dict:
    """The keywords of :func:`posterior_fit.fit_posterior` shared by every optimised candidate."""
    return dict(
        objective_name=q.objective,
        n_bound=n,
        delta=delta_k,
        epochs=q.epochs,
        lr=q.lr,
        batch_size=q.batch_size,
        seed=seed,
        surrogate=q.surrogate,
        sigma_init=q.sigma_init,
        sigma_init_factor=float(q.sigma_factor),
        optimizer=q.optimizer,
        lr_drop_epoch=q.lr_drop_epoch,
        learn_prior_scale=bool(q.learn_prior_scale),
    )


#: Flat keywords that pin a setting the automatic selection varies (giving one turns the selection off).
SEARCH_KEYWORDS = ("prior_scale", "beta", "posterior_lr", "posterior_epochs", "learn_prior_scale")


def _candidates(search, prior, posterior, options, p: PriorOptions, q: PosteriorOptions):
    """The declared set and whether it is the automatic one: ``search`` itself, :data:`DEFAULT_SEARCH`,
    or the grid the pinned options give (λ × β, in that order)."""
    if search is None:
        pinned = (
            posterior is not None
            or isinstance(prior, PriorOptions)
            or any(k in options for k in SEARCH_KEYWORDS)
        )
        search = "pinned" if pinned else "auto"
    if isinstance(search, str):
        check_choice("search", search, ("auto", "pinned"))
    if search != "pinned":
        given = [k for k in SEARCH_KEYWORDS if k in options]
        if posterior is not None or given:
            raise ValueError(
                f"{', '.join(given) or 'posterior'} is chosen by search={search!r}: give it inside the "
                "candidates, or pin it with search='pinned' (or search=None)"
            )
    if isinstance(search, str):
        if search == "auto":
            return list(DEFAULT_SEARCH), True
        return [
            Candidate(q.source, lam, beta=b, lr=q.lr, epochs=q.epochs, init=q.init)
            for lam in p.scales
            for b in q.betas
        ], False
    cands = list(search)
    if not cands or not all(isinstance(c, Candidate) for c in cands):
        raise TypeError(
            "search must be 'auto', 'pinned', None or a non-empty sequence of Candidate"
        )
    return cands, True


def _posterior_record(q: PosteriorOptions) -> dict | None:
    """``Certificate.posterior_options``: the optimised posterior's settings (None for Q*)."""
    if q.source != "optimize":
        return None
    return dict(
        surrogate=q.surrogate,
        sigma_init=q.sigma_init,
        sigma_factor=float(q.sigma_factor),
        optimizer=q.optimizer,
        lr=float(q.lr),
        epochs=int(q.epochs),
        lr_drop_epoch=q.lr_drop_epoch,
        learn_prior_scale=bool(q.learn_prior_scale),
    )


@renamed_kwargs(loss="risk")
def certify(
    model: nn.Module,
    data=None,
    *,
    prior_data=None,
    posterior_data=None,
    bound_data=None,
    test_data=None,
    prior: str | PriorOptions | None = None,
    posterior: str | PosteriorOptions | None = None,
    mc: str | MonteCarloOptions | None = None,
    search=None,
    risk: str = "zero_one",
    delta: float = 0.025,
    seed: int = 0,
    k_union: int | None = None,
    prior_indices=None,
    bound_indices=None,
    log=None,
    **options,
) -> Certificate:
    """PAC-Bayes risk certificate of ``model``'s architecture on the bound set (Pérez-Ortiz et al. 2021;
    Dziugaite & Roy 2017), valid with probability ≥ 1 − δ − δ′.

    ``certify(model, data)`` splits ``data`` at random (``prior.fraction``, ``seed``) into a prior set and a
    bound set and fits the posterior on all of it. Otherwise pass ``posterior_data`` and ``bound_data``
    (and ``prior_data`` for a trained prior). Data are ``(X, Y)`` tuples or DataLoaders. ``prior_indices`` /
    ``bound_indices`` (training-set indices) are checked to be disjoint; **when data are passed without
    indices the caller is responsible** for ``bound_data`` being independent of ``prior_data`` (and of
    whatever trained ``prior_state``). ``posterior_data`` may be anything (all the data).

    search : the configurations chosen among. ``None`` (default): the declared set
        :data:`~weightinfo.certificates.selection.DEFAULT_SEARCH` (information and optimised posteriors at
        several λ, β and learning rates; K = 6) unless a setting it varies is pinned (``posterior=``, a
        ``PriorOptions``, or any of :data:`SEARCH_KEYWORDS`), then the grid of the pinned options.
        ``"auto"`` / ``"pinned"`` force either; or a sequence of
        :class:`~weightinfo.certificates.selection.Candidate` (a set of your own, declared before the data).
        Every candidate is paid for: each is certified at δ/K.
    prior, posterior, mc : a :class:`PriorOptions`, :class:`PosteriorOptions`, :class:`MonteCarloOptions`,
        or just their source or estimator (``"data"``/``"init"``, ``"optimize"``/``"information"``,
        ``"per_example"``/``"standard"``; defaults ``"data"``, ``"optimize"``, ``"per_example"``)
        completed by flat keywords (``**options``): ``prior_scale``, ``prior_state``, ``init_state``,
        ``prior_fraction``, ``prior_epochs``, ``prior_lr``, ``prior_batch_size``, ``prior_momentum``,
        ``prior_holdout``, ``prior_patience``; ``objective``, ``posterior_init``, ``posterior_epochs``,
        ``posterior_lr``, ``batch_size``, ``beta``, ``surrogate``, ``posterior_sigma_init``,
        ``posterior_sigma_factor``, ``posterior_optimizer``, ``posterior_lr_drop_epoch``,
        ``learn_prior_scale``; ``mc_samples``, ``mc_screen``, ``delta_mc``, ``mc_seed``, ``majority_votes``
        (see :data:`options.FLAT_KEYWORDS`).
    delta : δ of the PAC-Bayes step (δ + δ′ < 1). risk : the loss whose risk is certified; only ``"zero_one"`` (``loss=`` is its deprecated spelling:
        ``loss`` names the training likelihood everywhere else).
    k_union : number of certificates computed on this bound set that this one is chosen from (default: the
        number of candidates K; must be ≥ K). Every candidate is certified at δ/``k_union``.
    log : a callable given one line per step (prior, each candidate, the final estimate) with its time, to
        follow a long run where no progress bar shows (the CLI prints them on stderr); default silent.

    Steps: the data are checked against the model; (1) the prior mean w0 (early-stopped on a held-out
    part of the prior data); (2) the posterior of every candidate; (3) each candidate is screened on the
    bound set when there are several; (4) the chosen one's risk is estimated with **fresh** draws and
    bounded. A learnt λ (``learn_prior_scale``) fits one posterior with λ at its closed-form optimum; the two
    grid points bracketing it are screened.
    """
    t0 = time.perf_counter()
    p, q, mco = resolve_options(
        "data" if prior is None else prior,
        "optimize" if posterior is None else posterior,
        "per_example" if mc is None else mc,
        options,
    )
    check_choice("risk", risk, ("zero_one",))
    total_confidence(delta, mco.delta_mc)  # δ and δ′ in (0, 1), δ + δ′ < 1
    cands, auto = _candidates(search, prior, posterior, options, p, q)
    k_union = _union_size(k_union, len(cands))
    prior_data, posterior_data, bound_data, prior_indices, bound_indices = data_sets(
        data,
        prior_data,
        posterior_data,
        bound_data,
        (prior_indices, bound_indices),
        p.fraction,
        seed,
    )
    check_disjoint(prior_indices, bound_indices)
    model = model.eval()
    check_model(model)
    xb, yb = checked_data(model, bound_data, "bound_data")
    xq, yq = checked_data(model, posterior_data, "posterior_data")
    prior_xy = checked_data(model, prior_data, "prior_data") if p.trains else None
    if prior_xy is not None and dist.world_size() > 1:  # the whole prior set on every rank (one w0)
        prior_xy = tuple(dist.all_gather_rows(t) for t in prior_xy)
    test = None if test_data is None else checked_data(model, test_data, "test_data")

    say = Clock(log)
    prior_info: dict = {}
    if p.trains:
        say(f"prior mean: training on {prior_xy[0].shape[0]} examples (at most {p.epochs} epochs)")
    w0 = _prior_mean(model, p, prior_xy, seed, prior_info)  # step 1
    if prior_info:
        say(f"prior mean trained: {prior_info['epochs_run']} epochs")
    delta_k = bounds.union_delta(delta, k_union) if k_union > 1 else float(delta)
    bound_set = BoundSet(model, xb, yb, delta_k, mco)
    mc_seed = int(seed if mco.seed is None else mco.seed)
    m_screen = mco.screen_draws(bound_set.n)
    m = mco.draws(bound_set.n)
    grid = sorted({c.prior_scale for c in cands}) if auto else p.scales
    fisher_data = _fisher_subset(xq, yq, seed) if auto else None
    todo = cands[:1] if q.learn_prior_scale else cands
    posteriors = candidate_posteriors(  # step 2
        model,
        todo,
        (xq, yq),
        w0,
        fit=_fit_kwargs(q, bound_set.n, delta_k, seed),
        fisher_data=fisher_data,
        lam_range=(min(grid), max(grid)),
    )
    n_points, learned = len(cands), None
    if q.learn_prior_scale:
        learned, posteriors, n_points = near_learnt_scale(posteriors, grid, w0)
    say(f"{n_points} candidate(s), union bound over K = {k_union}; screening with m = {m_screen}")
    (cand, mean, var, kl), screened = select(  # step 3
        bound_set, posteriors, n_points, w0, m_screen, mc_seed, say
    )
    say(f"chosen {cand.label}; final Monte Carlo estimate with m = {m} fresh draws")
    # Step 4 with fresh draws (the legacy stream seed + 1000 when nothing was chosen).
    gen = torch.Generator().manual_seed(mc_seed + 1000) if n_points == 1 else stream(mc_seed, 2)
    res = bound_set.bound(bound_set.gibbs_risk(mean, var, m, gen), kl, m)
    if test is not None:
        say(f"bound {res.risk_bound:.4f}; test errors on {test[0].shape[0]} examples")
    errors = test_errors(model, test, mean, var, mco, seed)
    say("done")
    betas = sorted({c.beta for c in cands if c.beta is not None}) if auto else q.betas
    return Certificate(
        risk_bound=res.risk_bound,
        empirical_risk=res.emp_risk,
        mc_upper=res.mc_upper,
        kl_nats=res.kl_nats,
        kl_bits=res.kl_bits,
        n_bound=bound_set.n,
        m=int(m),
        delta=float(delta),
        delta_mc=float(mco.delta_mc),
        bound="kl (Maurer)",
        mc=mco.estimator,
        prior=p.source,
        prior_scale=cand.prior_scale,
        prior_scale_grid=grid,
        k_scales=len(grid),
        posterior=cand.posterior,
        objective=q.objective if cand.posterior == "optimize" else None,
        test_error=errors[0],
        mean_test_error=errors[1],
        majority_vote_test_error=errors[2],
        vacuous=res.vacuous,
        wall_time_s=time.perf_counter() - t0,
        beta=cand.beta,
        beta_grid=None if not auto and q.source == "optimize" else betas,
        k_union=k_union,
        mc_screen=m_screen if n_points > 1 else None,
        grid=screened,
        learned_prior_scale=learned,
        posterior_options=_posterior_record(q) if cand.posterior == "optimize" else None,
        search=[c.to_dict() for c in cands] if auto else None,
        chosen=cand.to_dict(),
        prior_training=prior_info or None,
        record=certificate_record(
            model,
            {"prior": prior_xy, "posterior": (xq, yq), "bound": (xb, yb), "test": test},
            {"prior": prior_indices, "bound": bound_indices},
            w0,
            mean,
            var,
            options_record(
                p,
                q,
                mco,
                delta=float(delta),
                risk=risk,
                seed=int(seed),
                k_union=k_union,
                search=[c.to_dict() for c in cands],
            ),
            sharded=("posterior", "bound", "test"),
        ),
    )


def _fisher_subset(x, y, seed: int):
    """At most :data:`FISHER_EXAMPLES` posterior-set examples (seeded) for the information posterior's Fisher.

    Under a process group (collective): at most that many over all ranks, each rank taking its share in
    proportion to its shard (own seed per rank)."""
    k, seed = FISHER_EXAMPLES, int(seed) + 29
    if dist.world_size() > 1:
        if dist.global_count(x.shape[0]) <= k:
            return x, y
        k, seed = dist.local_share(k, x.shape[0]), dist.rank_seed(seed)
    if x.shape[0] <= k:
        return x, y
    idx = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    idx = idx[:k]
    return x[idx], y[idx]
