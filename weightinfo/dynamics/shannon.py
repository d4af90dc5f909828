"""Shannon information in the weights I(w; D) from K training runs (paper.md §1.3, §4, §5.1 Fig 3).

Each run k = 1..K trains on its own dataset D_k and gives a diagonal Gaussian posterior
Q_k(w) = Q(w | D_k) = N(μ_k, diag v_k). With D uniform over the K runs, the marginal of the weights is the
empirical mixture Q̄ = (1/K) Σ_j Q_j, and (paper.md §1.3, Prop 2.3) for **any** distribution R

    E_k KL(Q_k ‖ R) = I(w; k) + KL(Q̄ ‖ R) ≥ I(w; k),       I(w; k) = E_k KL(Q_k ‖ Q̄).         (★)

Estimators (all in nats):

``"mixture"`` — I(w; k) = (1/K) Σ_k E_{w∼Q_k}[ln Q_k(w) − ln (1/K) Σ_j Q_j(w)] by Monte Carlo, ``samples``
  draws per run. The mixture density is exact (log-sum-exp over all K components, float64), log densities are
  accumulated parameter by parameter and in chunks of coordinates, so the dimension can be that of a network.
  Every term equals ln K − ln(1 + Σ_{j≠k} Q_j(w)/Q_k(w)) ≤ ln K: the estimate is ≤ ``ceiling`` = ln K
  (reached when the posteriors do not overlap) and is 0 when they coincide. Given the K posteriors the average
  is unbiased (no component is subsampled). This is the estimator behind the paper's Fig 3 (paper.md §5.1).
  What it measures: the mutual information between the run index and w, i.e. I(w; D) for the *empirical*
  distribution of the K datasets — not for the population π(D). Finite-K bias: it can never exceed ln K, so it
  saturates when I(w; D) ≳ ln K; with K ≫ e^{I} it converges to I(w; D) (fluctuation O(1/√K) from which
  datasets were drawn). If runs differ in seed as well as data, it measures I(w; D, seed) (paper.md §1.3):
  average seeds inside Q(w | D) to get I(w; D).

``"gaussian"`` — R = N(m̄, diag v̄), Q̄ moment-matched: m̄ = (1/K) Σ_k μ_k, v̄ = (1/K) Σ_k (v_k + μ_k²) − m̄².
  Then (1/K) Σ_k (v_k + (μ_k − m̄)²)/v̄ = 1 and the closed form is

      E_k KL(Q_k ‖ R) = ½ Σ_i [ ln v̄_i − (1/K) Σ_k ln v_{k,i} ],

  an **upper bound** on the mixture quantity by (★) (gap KL(Q̄ ‖ R) ≥ 0, zero iff Q̄ is itself that Gaussian).
  Deterministic (stderr 0); it may exceed ln K, in which case ln K is the better bound.

Reference: Achille, Paolini & Soatto (2019) "Where is the information in a deep neural network?", Prop 2.3.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from .._base.checks import check_choice

__all__ = ["PosteriorsError", "ShannonInformation", "shannon_information"]

ESTIMATORS = ("mixture", "gaussian")
_CHUNK_ELEMENTS = 2**22  # samples × K × coordinates per block of log densities
# K × dimension up to which the float64 stacks of means and variances are kept between runs
_CACHE_ELEMENTS = 2**24


class PosteriorsError(ValueError):
    """The posteriors given to :func:`shannon_information` are unusable (K < 2, mismatched names or shapes,
    non-finite values, variances ≤ 0); the message names the run and the parameter."""


@dataclass(frozen=True)
class ShannonInformation:
    """I(w; D) over K runs, nats. ``stderr`` is the Monte Carlo standard error (0 for ``"gaussian"``);
    ``ceiling`` = ln K bounds the true I(w; k) (the mixture estimate never exceeds it)."""

    nats: float
    stderr: float
    estimator: str
    k: int
    samples: int
    dimension: int
    seed: int

    @property
    def ceiling(self) -> float:
        """ln K, nats."""
        return math.log(self.k)

    @property
    def bits(self) -> float:
        return self.nats / math.log(2)

    def to_dict(self) -> dict:
        """JSON-ready: value, standard error, settings and conventions."""
        return {
            "nats": self.nats,
            "stderr": self.stderr,
            "bits": self.bits,
            "estimator": self.estimator,
            "k": self.k,
            "ceiling": self.ceiling,
            "samples": self.samples,
            "dimension": self.dimension,
            "seed": self.seed,
            "units": "nats",
            "quantity": "I(w; run index) = E_k KL(Q_k || (1/K) sum_j Q_j)"
            + (
                " (upper bound: moment-matched diagonal Gaussian)"
                if self.estimator == "gaussian"
                else ""
            ),
        }

    def to_dataframe(self):
        """One row, the scalar fields of :meth:`to_dict` (``nats``, ``stderr``, ``ceiling`` in nats)."""
        from .._base.frames import one_row

        return one_row(self.to_dict())


def _validate(posteriors) -> tuple[list[Mapping], list[Mapping], list[str]]:
    if isinstance(posteriors, Mapping) or not isinstance(posteriors, Sequence):
        raise TypeError("posteriors must be a list of (mean, variance) pairs, one per run")
    if len(posteriors) < 2:
        raise PosteriorsError(f"need K >= 2 runs, got {len(posteriors)}")
    means, variances = [], []
    for k, pair in enumerate(posteriors):
        if not (isinstance(pair, Sequence) and len(pair) == 2):
            raise TypeError(f"posteriors[{k}] must be a (mean, variance) pair of dicts")
        mean, var = pair
        if not (isinstance(mean, Mapping) and isinstance(var, Mapping)):
            raise TypeError(f"posteriors[{k}]: mean and variance must be dicts {{name: tensor}}")
        means.append(mean)
        variances.append(var)
    names = list(means[0])
    if not names:
        raise PosteriorsError("posteriors[0] has no parameters")
    for k, (mean, var) in enumerate(zip(means, variances)):
        for what, d in (("mean", mean), ("variance", var)):
            if set(d) != set(names):
                diff = sorted(set(d) ^ set(names))
                raise PosteriorsError(
                    f"posteriors[{k}] {what}: parameter names differ from run 0's: {diff}"
                )
        for name in names:
            shape = tuple(means[0][name].shape)
            m, v = mean[name], var[name]
            if not (torch.is_tensor(m) and torch.is_tensor(v)):
                raise TypeError(f"posteriors[{k}] {name!r}: mean and variance must be tensors")
            if tuple(m.shape) != shape or tuple(v.shape) != shape:
                raise PosteriorsError(
                    f"posteriors[{k}] {name!r}: shapes {tuple(m.shape)} / {tuple(v.shape)}, run 0 has {shape}"
                )
            if not torch.isfinite(m).all():
                raise PosteriorsError(f"posteriors[{k}] {name!r}: mean is not finite")
            if not torch.isfinite(v).all() or not (v > 0).all():
                raise PosteriorsError(f"posteriors[{k}] {name!r}: variances must be finite and > 0")
    return means, variances, names


def _flat(d: Mapping, name: str, a: int, b: int) -> torch.Tensor:
    return d[name].detach().reshape(-1)[a:b].to(torch.float64)


def _gaussian(means, variances, names) -> float:
    total = 0.0
    for name in names:
        m = torch.stack([_flat(mu, name, 0, None) for mu in means])  # (K, n)
        v = torch.stack([_flat(var, name, 0, None) for var in variances])
        vbar = v.mean(0) + m.var(0, unbiased=False)  # = mean(v + m²) − m̄², without cancellation
        total += 0.5 * float((vbar.log() - v.log().mean(0)).sum())
    return total


def _mixture(means, variances, names, samples: int, seed: int) -> tuple[float, float]:
    """Per run k: ``samples`` draws w ∼ Q_k and f = ln Q_k(w) − ln (1/K) Σ_j Q_j(w) ≤ ln K (float64)."""
    K = len(means)
    device = means[0][names[0]].device
    gen = torch.Generator(device=device).manual_seed(seed)
    # −½ Σ_i ln v_{j,i} per component j (the ln 2π cancels in f)
    const = torch.zeros(K, dtype=torch.float64, device=device)
    for name in names:
        const -= 0.5 * torch.stack([_flat(var, name, 0, None).log().sum() for var in variances])
    sizes = {name: int(means[0][name].numel()) for name in names}
    chunk = max(1, _CHUNK_ELEMENTS // (samples * K))
    blocks = [
        (name, a, min(a + chunk, sizes[name]))
        for name in names
        for a in range(0, sizes[name], chunk)
    ]
    cache: dict | None = {} if K * sum(sizes.values()) <= _CACHE_ELEMENTS else None

    def block(name: str, a: int, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, c) float64 means and variances of coordinates a:b of ``name``."""
        if cache is not None and (name, a) in cache:
            return cache[(name, a)]
        mv = (
            torch.stack([_flat(mu, name, a, b) for mu in means]),
            torch.stack([_flat(var, name, a, b) for var in variances]),
        )
        if cache is not None:
            cache[(name, a)] = mv
        return mv

    f = torch.empty(K, samples, dtype=torch.float64)
    for k in range(K):
        logq = const.expand(samples, K).clone()  # (samples, K): ln Q_j(w_s) up to −(d/2) ln 2π
        for name, a, b in blocks:
            m, v = block(name, a, b)
            eps = torch.randn(samples, b - a, generator=gen, dtype=torch.float64, device=device)
            w = m[k] + v[k].sqrt() * eps  # (samples, c)
            logq -= 0.5 * ((w[:, None, :] - m) ** 2 / v).sum(-1)
        f[k] = (logq[:, k] - torch.logsumexp(logq, dim=1) + math.log(K)).cpu()
    est = float(f.mean())
    if samples >= 2:  # runs are fixed: the error is the within-run spread, (1/K) √(Σ_k var_k / S)
        stderr = math.sqrt(float(f.var(dim=1).sum()) / samples) / K
    else:  # conservative: the total spread also counts the between-run one
        stderr = float(f.std()) / math.sqrt(K)
    return min(est, math.log(K)), stderr


def shannon_information(
    posteriors: Sequence[tuple[Mapping[str, torch.Tensor], Mapping[str, torch.Tensor]]],
    estimator: str = "mixture",
    *,
    samples: int = 16,
    seed: int = 0,
) -> ShannonInformation:
    """I(w; D) ≈ E_k KL(Q_k ‖ Q̄) from K runs' posteriors Q_k = N(mean_k, diag variance_k).

    ``posteriors``: a list of (mean, variance) pairs, one per run, each a dict {parameter name: tensor}, all with
    the same names and shapes. ``estimator``: ``"mixture"`` (Monte Carlo against the empirical mixture, ≤ ln K,
    ``samples`` draws per run, seeded by ``seed``) or ``"gaussian"`` (closed form against the moment-matched
    diagonal Gaussian: an upper bound on the mixture value). See the module docstring for formulas and biases.
    """
    check_choice("estimator", estimator, ESTIMATORS)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be an integer >= 1, got {samples!r}")
    means, variances, names = _validate(posteriors)
    dim = sum(means[0][n].numel() for n in names)
    if estimator == "gaussian":
        nats, stderr, samples = _gaussian(means, variances, names), 0.0, 0
    else:
        nats, stderr = _mixture(means, variances, names, samples, seed)
    return ShannonInformation(nats, stderr, estimator, len(means), samples, dim, seed)
