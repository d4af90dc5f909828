"""The posterior of every candidate of a declared set, built in the candidates' order.

* ``optimize`` candidates: Q = N(μ, diag σ²) trained on a PAC-Bayes objective (:func:`posterior_fit.fit_posterior`,
  Pérez-Ortiz et al. 2021) from the prior mean or the model's weights.
* ``information`` candidates: Q* = N(w*, β(F + β/λ² I)⁻¹) (Achille, Paolini & Soatto 2019, Eq. 8) with w* the
  model's weights or the prior mean; one diagonal Fisher F per centre serves every (λ, β).
"""

from __future__ import annotations

import copy

import torch

from .._base import distributed as dist
from . import posterior_fit as pf
from .selection import Candidate, posterior_epochs_for


def kl_to_prior(mean, var, w0, lam) -> float:
    """KL(N(mean, diag var) ‖ N(w0, λ² I)) in nats, in float64."""
    return float(
        pf.kl_gaussian(
            {k: v.double() for k, v in mean.items()},
            {k: v.double() for k, v in var.items()},
            {k: v.double() for k, v in w0.items()},
            lam**2,
        )
    )


def _centred(model, w0):
    """A copy of ``model`` with its parameters set to the prior mean w0."""
    net = copy.deepcopy(model)
    with torch.no_grad():
        for k, p in net.named_parameters():
            if k in w0:
                p.copy_(w0[k].to(p.dtype))
    return net.eval()


class _Information:
    """Q* for (centre, λ, β), one Fisher per centre and one ``information_curve`` per (centre, λ)."""

    def __init__(self, model, data, w0, betas_of, seed: int, fisher_data):
        self.model, self.data, self.w0, self.seed = model, data, w0, seed
        self.betas_of = betas_of  # (init, λ) -> every β the candidates ask for, in their order
        self.fisher_data = fisher_data if fisher_data is not None else data
        self.shared, self.curves = {}, {}

    def __call__(self, init: str, lam: float, beta: float):
        from ..iw import information_curve
        from ..iw.points import FisherOptions, fisher_points

        net = self.model if init == "model" else _centred(self.model, self.w0)
        if init not in self.shared:
            self.shared[init] = fisher_points(
                net, self.fisher_data, FisherOptions(mc_samples=0, seed=self.seed, progress=False)
            )
        key = (init, lam)
        if key not in self.curves:
            self.curves[key] = information_curve(
                net,
                self.fisher_data,
                betas=self.betas_of[key],
                prior_scale=lam,
                prior_mean={k: v.double() for k, v in self.w0.items()},
                method="fisher",
                mc_samples=0,  # E_Q[L_D] is not needed: the certificate estimates the risk itself
                progress=False,
                seed=self.seed,
                precomputed=self.shared[init],
            )
        mean = pf.param_means(net)
        res = self.curves[key]
        post = min(res.results, key=lambda r: abs(r.beta - beta)).posterior_variance
        var = {k: post[k].to(v.dtype).clamp_min(1e-30) for k, v in mean.items()}
        return mean, var


def candidate_posteriors(
    model, candidates: list[Candidate], data, w0, *, fit: dict, fisher_data=None, lam_range=None
):
    """Yield ``(candidate, mean, var)`` for every candidate, in order.

    ``fit``: the keywords of :func:`posterior_fit.fit_posterior` shared by the optimised candidates
    (objective, n_bound, δ, batch size, seed, surrogate options, ``learn_prior_scale``); a candidate's own
    ``lr`` / ``epochs`` override them (epochs left open: :func:`posterior_epochs_for` of the data size).
    ``fisher_data``: the examples of the information posterior's Fisher (default ``data``).
    """
    betas_of: dict = {}
    for c in candidates:
        if c.posterior == "information":
            betas_of.setdefault((c.init, c.prior_scale), []).append(c.beta)
    info = _Information(model, data, w0, betas_of, fit["seed"], fisher_data)
    n_data = dist.global_count(data[0].shape[0])  # the union of the ranks' shards
    for c in candidates:
        if c.posterior == "information":
            yield (c, *info(c.init, c.prior_scale, c.beta))
            continue
        kw = dict(fit)
        if c.lr is not None:
            kw["lr"] = c.lr
        kw["epochs"] = posterior_epochs_for(n_data) if c.epochs is None else c.epochs
        start = w0 if c.init == "prior" else pf.param_means(model)
        lo_hi = lam_range or (c.prior_scale, c.prior_scale)
        mean, var = pf.fit_posterior(
            model,
            data,
            prior_mean=w0,
            prior_scale=c.prior_scale,
            init_mean=start,
            prior_scale_range=lo_hi,
            **kw,
        )
        yield c, mean, var
