"""Mutual information between a uniform index and a Gaussian-mixture observation, by Monte Carlo.

X uniform over N points, Z | X = i ∼ q_i = N(μ_i, Σ_i) (dense Σ_i, float64). Then

    I(X; Z) = (1/N) Σ_i E_{z∼p_i} [ ln q_i(z) − ln (1/N) Σ_j q_j(z) ]                                  (nats)

with p_i = q_i. Every term equals ln N − ln(1 + Σ_{j≠i} q_j(z)/q_i(z)) ≤ ln N, so each estimate is ≤ ln N (the
ceiling, reached when the components do not overlap) and is 0 when all components coincide. The mixture density
is evaluated exactly (all N components, log-sum-exp), so the Monte Carlo average over z is **unbiased**: there is
no log-mean-exp bias because no component is subsampled.

When z is drawn from another law p_i (the real, non-Gaussian channel) and q_i is a Gaussian fitted to it, the
same average is the Barber–Agakov bound ln N + E[ln q(x|z)] with the decoder q(i|z) = q_i(z) / Σ_j q_j(z):
a **lower bound** on I(X; Z) for any q (Barber & Agakov 2003), tight when q(i|z) is the true posterior.

Cost: N² × samples Gaussian log-densities of dimension d (O(d²) each, a triangular solve), chunked so that
intermediate arrays stay near ``_CHUNK_ELEMENTS`` numbers; memory N·d² for the Cholesky factors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "GaussianMixture",
    "SingularCovarianceError",
    "information_terms",
    "mixture_terms",
    "stratified_mean",
]

_CHUNK_ELEMENTS = 2**22
# A Cholesky pivot below this fraction of the largest variance of its covariance counts as singular (float64).
SINGULAR_RTOL = 1e-10


class SingularCovarianceError(ValueError):
    """A component's covariance is (numerically) singular: z | x has no density."""


@dataclass(frozen=True)
class GaussianMixture:
    """N Gaussian components N(μ_i, L_i L_iᵀ) in float64: ``means`` (N, d), ``chol`` (N, d, d), ``logdet`` (N,)."""

    means: torch.Tensor
    chol: torch.Tensor
    logdet: torch.Tensor

    @classmethod
    def from_covariances(
        cls, means: torch.Tensor, covariances: torch.Tensor, what: str
    ) -> GaussianMixture:
        """Factor every Σ_i; raise :class:`SingularCovarianceError` (a ``ValueError`` naming ``what``, the
        example and d) if one is singular: a Cholesky pivot below ``SINGULAR_RTOL`` × its largest variance."""
        means, cov = means.double(), covariances.double()
        n, d = means.shape
        if cov.shape != (n, d, d):
            raise ValueError(
                f"{what}: covariances of shape {tuple(cov.shape)}, expected {(n, d, d)}"
            )
        chol, info = torch.linalg.cholesky_ex(cov)
        scale = cov.diagonal(dim1=1, dim2=2).amax(1)
        pivot = chol.diagonal(dim1=1, dim2=2).square().amin(1)
        bad = (info > 0) | ~(pivot > SINGULAR_RTOL * scale)
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise SingularCovarianceError(
                f"{what} is singular for example {i} (dim z = {d}): no Gaussian density on R^{d}"
            )
        logdet = 2 * chol.diagonal(dim1=1, dim2=2).log().sum(1)
        return cls(means, chol, logdet)

    @property
    def n(self) -> int:
        return int(self.means.shape[0])

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def sample(self, idx: torch.Tensor, draws: int, gen: torch.Generator) -> torch.Tensor:
        """z = μ_i + L_i ε for each i in ``idx``, ``draws`` each: shape (len(idx), draws, d)."""
        eps = torch.randn(
            (len(idx), draws, self.dim),
            generator=gen,
            dtype=torch.float64,
            device=self.means.device,
        )
        return self.means[idx, None, :] + torch.einsum("cde,cse->csd", self.chol[idx], eps)

    def log_densities(self, z: torch.Tensor) -> torch.Tensor:
        """ln q_j(z) for every row of ``z`` (M, d) and every component j: shape (M, N)."""
        n, d = self.n, self.dim
        step = max(1, _CHUNK_ELEMENTS // max(1, n * d))
        out = []
        for s in range(0, z.shape[0], step):
            zc = z[s : s + step]
            diff = (zc.T.unsqueeze(0) - self.means.unsqueeze(2)).contiguous()  # (N, d, m)
            w = torch.linalg.solve_triangular(self.chol, diff, upper=False)
            out.append(
                -0.5 * (w.square().sum(1) + self.logdet[:, None] + d * math.log(2 * math.pi)).T
            )
        return torch.cat(out)


def information_terms(mix: GaussianMixture, z: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """ln q_i(z) − ln (1/N) Σ_j q_j(z) for z (c, S, d) drawn for components ``src`` (c,): shape (c, S).

    Each term is ≤ ln N (up to rounding).
    """
    c, s, d = z.shape
    logq = mix.log_densities(z.reshape(c * s, d)).reshape(c, s, mix.n)
    own = logq.gather(2, src.view(c, 1, 1).expand(c, s, 1)).squeeze(2)
    return own - torch.logsumexp(logq, dim=2) + math.log(mix.n)


def stratified_mean(terms: torch.Tensor) -> tuple[float, float]:
    """Mean of ``terms`` (N, S) and its standard error, stratified by example (every example counted once).

    The estimand averages exactly the N examples, so only the draws are random: se² = Σ_i s_i² / (S N²), s_i²
    the sample variance of example i's S draws. Needs S ≥ 2.
    """
    n, s = terms.shape
    var = terms.var(dim=1, unbiased=True)
    return float(terms.mean()), float(math.sqrt(float(var.sum()) / s) / n)


def mixture_terms(
    mix: GaussianMixture,
    draws: int | None = None,
    gen: torch.Generator | None = None,
    *,
    z: torch.Tensor | None = None,
    bar=None,
    rows: tuple[int, int] | None = None,
) -> torch.Tensor:
    """The terms of :func:`information_terms` for every component: shape (N, S).

    z is drawn from the mixture's own components (``draws`` each, from ``gen``), or given: ``z`` (N, S, d),
    row i drawn for component i.

    ``rows`` = (lo, hi): only the components lo … hi − 1 (shape (hi − lo, S)); drawn z are still drawn for every
    component in order, so the rows get the draws a call on all components gives them; a given ``z`` then holds
    the rows lo … hi − 1 only.
    """
    n = mix.n
    s = int(draws) if z is None else int(z.shape[1])
    step = max(1, _CHUNK_ELEMENTS // max(1, s * n))
    lo, hi = (0, n) if rows is None else rows
    out = []
    for a in range(0, n, step):
        b = min(n, a + step)
        if z is not None and (b <= lo or a >= hi):
            continue
        if z is not None:
            a, b = max(a, lo), min(b, hi)
            idx = torch.arange(a, b, device=mix.means.device)
            zc = z[a - lo : b - lo].double()
        else:
            idx = torch.arange(a, b, device=mix.means.device)
            zc = mix.sample(idx, s, gen)
            if (
                rows is not None
            ):  # every chunk's draws are made (gen in step), only ``rows`` evaluated
                keep = (idx >= lo) & (idx < hi)
                if not bool(keep.any()):
                    continue
                idx, zc = idx[keep], zc[keep]
        out.append(information_terms(mix, zc, idx))
        if bar is not None:
            bar.update(len(idx))
    return torch.cat(out)
