"""Shannon information in the weights from a resampling experiment, and Prop 2.9 (paper.md §1.3, §4, §5.1).

:func:`shannon_experiment` draws K datasets D_k = ``make_dataset(rng)``, trains S seeds on each
(``train_fn(make_model(seed_s), D_k, seed_s)``), builds a Gaussian posterior Q_{k,s} = N(μ_{k,s}, diag v_{k,s})
per run with ``posterior_fn(model, D_k)`` and reports three numbers (nats). The seed values seed_s are the same
for every dataset, so "seed s" means the same training randomness across datasets:

* ``per_seed`` — I(w; D | seed): for each seed s, I over the K runs that used it,
  I_s = (1/K) Σ_k KL(Q_{k,s} ‖ (1/K) Σ_j Q_{j,s}) (``shannon_information`` on those K posteriors), averaged over s.
  It conditions on the seed: the seed's randomness is not counted as noise of Q(w | D).
* ``seed_averaged`` — I(w; D) with the seed marginalised, the quantity paper.md §1.3 asks for ("randomness of
  training must be averaged inside Q(w|D)"): Q(w | D_k) = Q_k := (1/S) Σ_s Q_{k,s}, Q̄ = (1/(KS)) Σ_{j,s} Q_{j,s},

      I(w; D) = (1/K) Σ_k E_{w∼Q_k} [ ln (1/S) Σ_s Q_{k,s}(w) − ln (1/(KS)) Σ_{j,s} Q_{j,s}(w) ],

  by Monte Carlo (a mixture of mixtures; stratified: ``samples`` draws from every Q_{k,s}); every term is ≤ ln K.
* ``joint`` — I(w; D, seed): all K·S runs as separate components (``shannon_information`` on all of them; ≤ ln KS).
  This is what the paper's Fig 3 toy estimator computes (paper.md §1.3, §5.1: it "conditions on the seed and
  therefore measures I(w; D, seed)"); [A]'s rebuild shows it and the seed-averaged value can move in opposite
  directions, hence a library reports both.

Relations (seed independent of D): I(w; D, seed) = I(w; D) + I(w; seed | D) = I(w; D | seed) + I(w; seed), and
I(w; D | seed) ≥ I(w; D) since I(seed; w | D) = I(seed; w, D) ≥ I(seed; w). So joint ≥ per_seed ≥ seed_averaged,
up to Monte Carlo and finite-K error (with S = 1 all three coincide). Finite K: the mixture estimates are those of
the empirical distribution of the K datasets, ≤ ln K (see :mod:`.shannon`).

``estimator="gaussian"``: per_seed and joint use the moment-matched Gaussian upper bound of
``shannon_information``; for seed_averaged each Q_k (a mixture) is first moment-matched to a diagonal Gaussian,
which makes it an approximation, not a bound.

:func:`prop29_information` — Prop 2.9 (corrected, paper.md §4), dense, for small models:

    I(w; D) ≈ H(D) − E_D ½ ln( (2πeβ)^d / |∇_D w*ᵀ F(w*) ∇_D w*| ),   ∇_D w* = −H⁻¹ ∂_D ∇_w L_D(w*),

with the dataset parameterised by d ≤ dim w numbers θ, w ∼ N(w*(θ), β F⁻¹), H the Hessian of L at w*.
It is the small-β (concentrated posterior) limit of I(w; θ): for the linear-Gaussian case the exact value is
½ ln|I + ∇wᵀ(βF⁻¹)⁻¹∇w Σ_θ| and the formula drops the "I +" (an under-estimate by ½ ln|I + (Σ_θ JᵀFJ/β)⁻¹|).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from .._base.checks import check_choice
from .shannon import ESTIMATORS, _flat, _validate, shannon_information

__all__ = [
    "ShannonExperiment",
    "fisher_posterior",
    "shannon_experiment",
    "seed_averaged_information",
    "Prop29Information",
    "prop29_information",
]

_CHUNK_ELEMENTS = 2**22


@dataclass(frozen=True)
class ShannonExperiment:
    """Result of :func:`shannon_experiment` (nats). ``per_seed`` = I(w; D | seed) (mean over seeds of
    ``per_seed_values``), ``seed_averaged`` = I(w; D), ``joint`` = I(w; D, seed); ``*_stderr`` are Monte Carlo
    standard errors given the runs (0 for ``"gaussian"``). ``k`` datasets, ``seeds`` the training seeds."""

    per_seed: float
    per_seed_stderr: float
    per_seed_values: tuple[float, ...]
    seed_averaged: float
    seed_averaged_stderr: float
    joint: float
    joint_stderr: float
    estimator: str
    k: int
    seeds: tuple[int, ...]
    samples: int
    dimension: int
    seed: int

    @property
    def ceiling(self) -> float:
        """ln K: bounds per_seed and seed_averaged (mixture estimator)."""
        return math.log(self.k)

    def to_dict(self) -> dict:
        return {
            "per_seed": self.per_seed,
            "per_seed_stderr": self.per_seed_stderr,
            "per_seed_values": list(self.per_seed_values),
            "seed_averaged": self.seed_averaged,
            "seed_averaged_stderr": self.seed_averaged_stderr,
            "joint": self.joint,
            "joint_stderr": self.joint_stderr,
            "estimator": self.estimator,
            "k": self.k,
            "seeds": list(self.seeds),
            "ceiling": self.ceiling,
            "samples": self.samples,
            "dimension": self.dimension,
            "seed": self.seed,
            "units": "nats",
            "quantities": {
                "per_seed": "I(w; D | seed) = mean_s E_k KL(Q_{k,s} || (1/K) sum_j Q_{j,s})",
                "seed_averaged": "I(w; D) = E_k KL(Q_k || (1/K) sum_j Q_j), Q_k = (1/S) sum_s Q_{k,s}",
                "joint": "I(w; D, seed) = E_{k,s} KL(Q_{k,s} || (1/(KS)) sum_{j,t} Q_{j,t})",
            },
        }

    def to_dataframe(self):
        """One row, the scalar fields of :meth:`to_dict` (information in nats)."""
        from .._base.frames import one_row

        return one_row(self.to_dict())


def fisher_posterior(
    *, beta: float, prior_scale, loss: str = "cross_entropy", **information_kwargs
) -> Callable:
    """``posterior_fn`` for :func:`shannon_experiment`: the Fisher-form posterior of
    ``weightinfo.information(model, data, beta=β, prior_scale=λ, method="fisher", mc_samples=0)``:
    mean = the trained weights, variance = its ``posterior_variance`` (diag Σ*)."""
    from ..iw import information

    def posterior(model, data):
        r = information(
            model,
            data,
            beta=beta,
            prior_scale=prior_scale,
            loss=loss,
            method="fisher",
            mc_samples=0,
            **information_kwargs,
        )
        var = {k: v.detach().cpu() for k, v in r.posterior_variance.items()}
        mean = {n: p.detach().cpu().clone() for n, p in model.named_parameters() if n in var}
        return mean, var

    return posterior


def seed_averaged_information(
    posteriors: Sequence[Sequence[tuple[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor]]]],
    *,
    samples: int = 16,
    seed: int = 0,
) -> tuple[float, float]:
    """I(w; D) with Q(w | D_k) = (1/S) Σ_s Q_{k,s}: ``posteriors[k][s]`` = (mean, variance) of run (k, s).

    Monte Carlo, ``samples`` draws from every Q_{k,s}; returns (nats, stderr), nats ≤ ln K. With S = 1 this is
    the ``"mixture"`` estimator of ``shannon_information``.
    """
    K = len(posteriors)
    if K < 2:
        raise ValueError(f"need K >= 2 datasets, got {K}")
    S = len(posteriors[0])
    if S < 1 or any(len(row) != S for row in posteriors):
        raise ValueError(
            "posteriors must be K rows of the same number S >= 1 of (mean, variance) pairs"
        )
    means, variances, names = _validate([pair for row in posteriors for pair in row])
    KS = K * S
    device = means[0][names[0]].device
    gen = torch.Generator(device=device).manual_seed(seed)
    const = torch.zeros(KS, dtype=torch.float64, device=device)
    for name in names:
        const -= 0.5 * torch.stack([_flat(v, name, 0, None).log().sum() for v in variances])
    sizes = {name: int(means[0][name].numel()) for name in names}
    n_draws = S * samples  # draws per dataset, ``samples`` from each of its S components
    chunk = max(1, _CHUNK_ELEMENTS // (n_draws * KS))
    blocks = [(n, a, min(a + chunk, sizes[n])) for n in names for a in range(0, sizes[n], chunk)]
    small = KS * sum(sizes.values()) <= 2**24
    cache: dict = {}

    def block(name, a, b):
        if (name, a) in cache:
            return cache[(name, a)]
        mv = (
            torch.stack([_flat(mu, name, a, b) for mu in means]),
            torch.stack([_flat(v, name, a, b) for v in variances]),
        )
        if small:
            cache[(name, a)] = mv
        return mv

    f = torch.empty(K, S, samples, dtype=torch.float64)
    for k in range(K):
        logq = const.expand(n_draws, KS).clone()
        own = slice(k * S, (k + 1) * S)
        for name, a, b in blocks:
            m, v = block(name, a, b)
            eps = torch.randn(S, samples, b - a, generator=gen, dtype=torch.float64, device=device)
            w = (m[own, None, :] + v[own, None, :].sqrt() * eps).reshape(n_draws, b - a)
            logq -= 0.5 * ((w[:, None, :] - m) ** 2 / v).sum(-1)
        term = (
            torch.logsumexp(logq[:, own], dim=1)
            - math.log(S)
            - torch.logsumexp(logq, dim=1)
            + math.log(KS)
        )
        f[k] = term.reshape(S, samples).cpu()
    est = float(f.mean())
    if samples >= 2:  # stratified over (k, s): se² = Σ_{k,s} var_{k,s} / (samples (KS)²)
        stderr = math.sqrt(float(f.var(dim=2).sum()) / samples) / KS
    else:
        stderr = float(f.std()) / math.sqrt(KS)
    return min(est, math.log(K)), stderr


def _moment_matched(row) -> tuple[dict, dict]:
    """Diagonal Gaussian with the mean and variance of the mixture (1/S) Σ_s N(μ_s, diag v_s)."""
    mean, var = {}, {}
    for name in row[0][0]:
        m = torch.stack([mu[name].detach().to(torch.float64) for mu, _ in row])
        v = torch.stack([va[name].detach().to(torch.float64) for _, va in row])
        mean[name] = m.mean(0)
        var[name] = v.mean(0) + m.var(0, unbiased=False)
    return mean, var


def shannon_experiment(
    make_dataset: Callable[[torch.Generator], object],
    make_model: Callable[[int], torch.nn.Module],
    train_fn: Callable[[torch.nn.Module, object, int], torch.nn.Module],
    *,
    n_datasets: int,
    seeds_per_dataset: int = 1,
    posterior_fn: Callable[[torch.nn.Module, object], tuple[dict, dict]] | None = None,
    beta: float | None = None,
    prior_scale=None,
    loss: str = "cross_entropy",
    estimator: str = "mixture",
    samples: int = 16,
    seed: int = 0,
) -> ShannonExperiment:
    """Resample datasets, train, and estimate I(w; D | seed), I(w; D) and I(w; D, seed) (module docstring).

    ``make_dataset(rng)`` → data (e.g. ``(X, Y)``), called K = ``n_datasets`` times with one ``torch.Generator``
    seeded by ``seed``. Training seeds are ``seed + s``, s < ``seeds_per_dataset``, the same for every dataset:
    each run is ``train_fn(make_model(seed_s), data, seed_s)`` → trained model. ``posterior_fn(model, data)`` →
    (mean, variance) dicts {name: tensor}; default :func:`fisher_posterior` with ``beta``, ``prior_scale``,
    ``loss`` (then both are required). ``samples`` Monte Carlo draws per run, seeded by ``seed``.
    """
    check_choice("estimator", estimator, ESTIMATORS)
    for name, value, low in (
        ("n_datasets", n_datasets, 2),
        ("seeds_per_dataset", seeds_per_dataset, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if posterior_fn is None:
        if beta is None or prior_scale is None:
            raise ValueError("the default (Fisher) posterior_fn needs beta and prior_scale")
        posterior_fn = fisher_posterior(beta=beta, prior_scale=prior_scale, loss=loss)
    K, S = n_datasets, seeds_per_dataset
    seeds = tuple(seed + s for s in range(S))
    rng = torch.Generator().manual_seed(seed)
    runs: list[list] = []
    for _ in range(K):
        data = make_dataset(rng)
        row = []
        for s in seeds:
            model = train_fn(make_model(s), data, s)
            mean, var = posterior_fn(model, data)
            row.append((dict(mean), dict(var)))
        runs.append(row)

    per = [  # independent Monte Carlo draws per seed (Monte Carlo seed ``seed + s``)
        shannon_information(
            [runs[k][s] for k in range(K)], estimator, samples=samples, seed=seed + s
        )
        for s in range(S)
    ]
    per_values = tuple(r.nats for r in per)
    per_seed = sum(per_values) / S
    per_stderr = math.sqrt(sum(r.stderr**2 for r in per)) / S
    if S == 1:
        joint, joint_se = per[0].nats, per[0].stderr
        avg, avg_se = joint, joint_se
    else:
        j = shannon_information(
            [p for row in runs for p in row], estimator, samples=samples, seed=seed
        )
        joint, joint_se = j.nats, j.stderr
        if estimator == "mixture":
            avg, avg_se = seed_averaged_information(runs, samples=samples, seed=seed)
        else:
            g = shannon_information([_moment_matched(row) for row in runs], "gaussian")
            avg, avg_se = g.nats, 0.0
    return ShannonExperiment(
        per_seed=per_seed,
        per_seed_stderr=per_stderr,
        per_seed_values=per_values,
        seed_averaged=avg,
        seed_averaged_stderr=avg_se,
        joint=joint,
        joint_stderr=joint_se,
        estimator=estimator,
        k=K,
        seeds=seeds,
        samples=per[0].samples,
        dimension=per[0].dimension,
        seed=seed,
    )


@dataclass(frozen=True)
class Prop29Information:
    """Prop 2.9 estimate (nats): ``nats`` = ``entropy`` − mean of ``terms``, terms_i = ½ ln((2πeβ)^d / |JᵀFJ|)
    at the i-th dataset; ``stderr`` is the standard error of that mean over the n datasets (0 if n = 1)."""

    nats: float
    stderr: float
    entropy: float
    terms: tuple[float, ...]
    beta: float
    d: int
    dimension: int

    def to_dict(self) -> dict:
        return {
            "nats": self.nats,
            "stderr": self.stderr,
            "entropy": self.entropy,
            "mean_term": sum(self.terms) / len(self.terms),
            "n_datasets": len(self.terms),
            "beta": self.beta,
            "d": self.d,
            "dimension": self.dimension,
            "units": "nats",
            "quantity": "H(D) - E_D 1/2 ln((2 pi e beta)^d / |J^T F J|), J = -H^-1 d_D grad_w L",
        }

    def to_dataframe(self):
        """One row, the scalar fields of :meth:`to_dict` (information in nats)."""
        from .._base.frames import one_row

        return one_row(self.to_dict())


def prop29_information(
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    points: Sequence[tuple[torch.Tensor, torch.Tensor]],
    *,
    beta: float,
    entropy: float,
    fisher: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> Prop29Information:
    """Prop 2.9 (corrected): I(w; D) ≈ H(D) − E_D ½ ln((2πeβ)^d / |∇_D w*ᵀ F ∇_D w*|), dense (small models).

    ``loss(w, theta)`` → scalar L_D(w): the training loss as a function of the flat weights w (p,) and of the d
    numbers θ (d,) that parameterise the dataset, written with torch operations (``torch.func`` differentiates
    it; wrap a module with ``torch.func.functional_call``). ``points``: samples (θ_i, w*_i) of D ∼ π with their
    trained endpoints (minimisers of L); E_D is their average. ∇_D w* = −H⁻¹ ∂_θ ∇_w L at (w*, θ) (implicit
    differentiation, H = ∇²_w L dense). ``fisher(w, theta)`` → F (p, p) in the same (mean-loss) convention as
    β, the posterior being N(w*, β F⁻¹); default F = H (exact for a Gaussian likelihood at a zero-residual or
    linear model). ``entropy`` = H(D) = h(θ) in nats, from the caller. Needs d ≤ p and |JᵀFJ| > 0.
    Valid when the posterior is concentrated relative to the spread of w* (small β), see the module docstring.
    """
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be finite and > 0, got {beta!r}")
    if len(points) < 1:
        raise ValueError("points must hold at least one (theta, w_star) pair")
    grad_w = torch.func.grad(loss, argnums=0)
    terms = []
    d = p = 0
    for i, (theta, w) in enumerate(points):
        theta = theta.detach().reshape(-1).to(torch.float64)
        w = w.detach().reshape(-1).to(torch.float64)
        d, p = theta.numel(), w.numel()
        if d > p:
            raise ValueError(f"Prop 2.9 needs d <= dim w: d = {d}, dim w = {p}")
        H = torch.func.hessian(loss, argnums=0)(w, theta)
        M = torch.func.jacfwd(grad_w, argnums=1)(w, theta)  # (p, d) = ∂_θ ∇_w L
        J = -torch.linalg.solve(H, M)
        F = H if fisher is None else fisher(w, theta).to(torch.float64)
        sign, logdet = torch.linalg.slogdet(J.T @ F @ J)
        if sign <= 0 or not torch.isfinite(logdet):
            raise ValueError(f"points[{i}]: |J^T F J| is not > 0 (d = {d}, dim w = {p})")
        terms.append(0.5 * (d * math.log(2 * math.pi * math.e * beta) - float(logdet)))
    n = len(terms)
    mean = sum(terms) / n
    stderr = 0.0 if n < 2 else math.sqrt(sum((t - mean) ** 2 for t in terms) / (n - 1) / n)
    return Prop29Information(
        entropy - mean, stderr, float(entropy), tuple(terms), float(beta), d, p
    )
