"""Steps 3 and 4 of ``certify``: the Monte Carlo Gibbs risk on the bound set, the screening of the candidates
and the bound at the estimate's upper confidence limit; also the test errors reported beside a certificate.

Each candidate is screened with its own independent stream of draws (:func:`stream`); the chosen one is then
re-estimated with fresh draws, so the Monte Carlo step keeps its full δ′ (reusing the draws that picked the
minimum would bias û low).

Distributed (``weightinfo._base.distributed``): each rank holds its shard of the bound set (and of the test
set); n is the global count, the risks are reduced over the ranks (:mod:`.risk`), so the screening, the
choice and the bound are the same on every rank; K and δ_K do not change.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from .. import bounds
from .._base import distributed as dist
from . import posterior_fit as pf
from . import risk as R
from ._posteriors import kl_to_prior
from .options import MonteCarloOptions, mc_repetitions_for


def stream(*key: int) -> torch.Generator:
    """A torch generator seeded from ``key`` through numpy's SeedSequence (independent streams)."""
    state = np.random.SeedSequence([int(k) for k in key]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


# ---------------------------------------------------------------------------------------------------------
# Steps 3 and 4: the Monte Carlo risk on the bound set, and the bound at its upper confidence limit
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoundSet:
    """The bound set S (n examples) and the confidences the certificate is issued at (δ_K, δ′).

    Under a process group ``x``, ``y`` are this rank's shard and ``n`` the size of the union (collective
    at construction)."""

    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    delta_k: float
    mc: MonteCarloOptions
    n: int = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "n", dist.global_count(int(self.x.shape[0])))

    def gibbs_risk(self, mean, var, m: int, gen: torch.Generator) -> float:
        """L̂: the MC estimate of Q's empirical 0-1 risk on S from ``m`` draws (or repetitions)."""
        if self.mc.estimator == "standard":
            std = {k: v.sqrt() for k, v in var.items()}
            return float(
                R.gibbs_errors_standard(self.model, self.x, self.y, mean, std, m, gen).mean()
            )
        return R.gibbs_error_per_example(self.model, self.x, self.y, mean, var, m, gen)[0]

    def bound(self, emp: float, kl: float, m: int):
        """The two-step certificate kl⁻¹(û, (KL + ln(2√n/δ_K))/n) at û = kl⁻¹(L̂, ln(1/δ′)/m)."""
        per_example = self.mc.estimator == "per_example"
        return bounds.certificate(
            emp,
            kl,
            self.n,
            int(m),
            self.delta_k,
            self.mc.delta_mc,
            bound="kl",
            per_example=per_example,
        )


class Clock:
    """``log`` with the seconds since the start in front of each line (silent without ``log``)."""

    def __init__(self, log):
        self.log, self.t0 = log, time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.log is not None:
            self.log(f"[{time.perf_counter() - self.t0:6.0f} s] {message}")


def select(
    bound_set: BoundSet, posteriors, n_points: int, w0, m_screen: int, mc_seed: int, say=None
):
    """The candidate with the smallest screening bound (``m_screen`` draws each), and the screened rows.

    A single candidate is taken as is, without screening draws."""
    screened, best, best_score = [], None, math.inf
    for j, (cand, mean, var) in enumerate(posteriors):
        kl = kl_to_prior(mean, var, w0, cand.prior_scale)
        if n_points == 1:
            return (cand, mean, var, kl), screened
        emp = bound_set.gibbs_risk(mean, var, m_screen, stream(mc_seed, 1, j))
        score = bound_set.bound(emp, kl, m_screen).risk_bound
        screened.append(
            {
                "prior_scale": cand.prior_scale,
                "beta": cand.beta,
                "kl_nats": kl,
                "screen_emp": emp,
                "screen_bound": score,
                "candidate": cand.label,
            }
        )
        if say is not None:
            say(f"  {cand.label}: KL {kl:.2f} nats, screening bound {score:.4f}")
        if score < best_score:
            best, best_score = (cand, mean, var, kl), score
    return best, screened


def near_learnt_scale(posteriors, grid: list[float], w0):
    """Dziugaite & Roy's learnt λ: one fit; the grid points bracketing the learnt λ are the only ones
    screened (all of the grid is paid for). Returns ``(learnt λ, posteriors, number of points)``."""
    cand, mean, var = next(posteriors)
    learned = pf.optimal_prior_scale(mean, var, w0)
    below = [lam for lam in grid if lam <= learned]
    above = [lam for lam in grid if lam >= learned]
    near = sorted(({max(below)} if below else set()) | ({min(above)} if above else set()))
    return learned, [(replace(cand, prior_scale=lam), mean, var) for lam in near], len(near)


def test_errors(model, test_data, mean, var, mc: MonteCarloOptions, seed: int):
    """Gibbs, posterior-mean and majority-vote test errors (reported, not certified). The Gibbs error is
    estimated with the certificate's estimator: m·n ≥ 10⁵ per-example draws, or the standard networks."""
    if test_data is None:
        return None, None, None
    xt, yt = test_data
    std = {k: v.sqrt() for k, v in var.items()}
    gen = torch.Generator().manual_seed(int(seed) + 7)
    n_test = dist.global_count(len(yt))  # the union of the ranks' test shards
    if mc.estimator == "per_example":
        m = int(mc.samples) if mc.samples is not None else mc_repetitions_for(n_test, 1e5)
        gibbs = R.gibbs_error_per_example(model, xt, yt, mean, var, m, gen)[0]
    else:
        gibbs = float(
            R.gibbs_errors_standard(model, xt, yt, mean, std, mc.draws(n_test), gen).mean()
        )
    return (
        gibbs,
        R.mean_network_error(model, xt, yt, mean),
        R.majority_vote_error(model, xt, yt, mean, std, mc.majority_votes, gen),
    )
