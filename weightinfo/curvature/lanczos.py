"""Lanczos with full re-orthogonalisation, SLQ log-determinants and top eigenvalues.

Lanczos (1950) builds, from a start vector q₁ and products with a symmetric M, an orthonormal Krylov
basis Q_s = [q₁ … q_s] with Q_sᵀ M Q_s = T_s tridiagonal (diagonal α, off-diagonal β). Here every
new vector is re-orthogonalised against the whole basis, twice (Paige 1972; "twice is enough",
Giraud et al. 2005), which keeps Q_s orthonormal to machine precision at the price of storing it
(s × P floats).

Gauss quadrature (Golub & Meurant 1994, "Matrices, moments and quadrature"; Golub & Meurant 2010,
§6) gives for a unit vector q₁ = z/‖z‖ with T_s = U diag(θ) Uᵀ

    zᵀ f(M) z ≈ ‖z‖² Σ_k τ_k² f(θ_k),   τ_k = U[0, k],

exact for polynomials f of degree ≤ 2s − 1 (and exactly zᵀ f(M) z once the Krylov space is
invariant). With f(λ) = ln(λ + δ) and Hutchinson probes z this is the SLQ estimator of Ubaru, Chen &
Saad (2017), SIAM J. Matrix Anal. Appl. 38(4):1075–1099:

    ln det(M + δI) = tr ln(M + δI) ≈ (1/m) Σ_j ‖z_j‖² Σ_k τ_jk² ln(θ_jk + δ)     [nats],

with standard error std/√m over the m probes. Probes are drawn as in ``hutchinson`` (same seeds);
the m Lanczos runs advance in lock step, so each of the s steps costs one pass over the data for all
probes (``chunk`` at a time).

Distributed: probes and start vectors depend only on ``seed`` (the same on every rank) and the products of a
``CurvatureOperator`` are reduced over ranks (``weightinfo._base.distributed``), so every rank runs the same
Lanczos iteration on the union's matrix and gets the same result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .._base.checks import check_positive
from .hutchinson import Estimate, check_n_probes, probe_chunks
from .operators import as_operator

__all__ = ["Tridiagonal", "lanczos", "slq_logdet", "top_eigenvalues"]


@dataclass(frozen=True)
class Tridiagonal:
    """Lanczos output: T = tridiag(beta, alpha, beta) (float64) and optionally the basis Q (P × s).

    ``alpha`` has s entries, ``beta`` s − 1; s < ``n_steps`` when the Krylov space became invariant.
    """

    alpha: torch.Tensor
    beta: torch.Tensor
    basis: torch.Tensor | None = None

    def matrix(self) -> torch.Tensor:
        """The dense s × s tridiagonal matrix T."""
        return torch.diag(self.alpha) + torch.diag(self.beta, 1) + torch.diag(self.beta, -1)

    def ritz(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Ritz values θ (ascending), squared first components τ² of T's eigenvectors (Σ τ² = 1)."""
        theta, U = torch.linalg.eigh(self.matrix())
        return theta, U[0] ** 2


def _lanczos_many(A, Z: torch.Tensor, n_steps: int, keep_basis: bool = False) -> list[Tridiagonal]:
    """Independent Lanczos runs from the columns of Z (n, p) in lock step; one ``matmat`` a step."""
    n, p = Z.shape
    s_max = min(int(n_steps), n)
    norms = Z.norm(dim=0)
    if bool((norms == 0).any()):
        raise ValueError("Lanczos start vector must be non-zero")
    q = (Z / norms).t().contiguous()  # (p, n)
    basis = [q]
    alpha = torch.zeros(p, s_max, dtype=torch.float64)
    beta = torch.zeros(p, max(s_max - 1, 0), dtype=torch.float64)
    length = torch.full((p,), s_max, dtype=torch.long)
    active = torch.ones(p, dtype=torch.bool)
    scale = torch.zeros(p, dtype=torch.float64)
    for j in range(s_max):
        w = A.matmat(q.t()).t().to(torch.float64)  # (p, n); inactive columns are 0 → 0
        a = (q * w).sum(1)
        alpha[:, j] = torch.where(active, a, torch.zeros_like(a))
        Q = torch.stack(basis, dim=1)  # (p, j+1, n)
        for _ in range(2):  # full re-orthogonalisation, twice
            w = w - torch.einsum("pk,pkn->pn", torch.einsum("pkn,pn->pk", Q, w), Q)
        scale = torch.maximum(scale, a.abs())
        if j == s_max - 1:
            break
        b = w.norm(dim=1)
        scale = torch.maximum(scale, b)
        broke = active & (b <= 1e-12 * scale.clamp_min(torch.finfo(torch.float64).tiny))
        length[broke] = j + 1
        active = active & ~broke
        if not bool(active.any()):
            break
        beta[:, j] = torch.where(active, b, torch.zeros_like(b))
        q = torch.where(
            active[:, None], w / b.clamp_min(torch.finfo(torch.float64).tiny)[:, None], 0.0
        )
        basis.append(q)
    out = []
    for c in range(p):
        s = int(length[c])
        Qc = torch.stack([v[c] for v in basis[:s]], dim=1) if keep_basis else None
        out.append(Tridiagonal(alpha[c, :s].clone(), beta[c, : s - 1].clone(), Qc))
    return out


def lanczos(op, v0: torch.Tensor, n_steps: int, *, return_basis: bool = False) -> Tridiagonal:
    """s = min(``n_steps``, P) Lanczos steps from ``v0`` with full re-orthogonalisation (stops early
    if the Krylov space is invariant). Ritz values of T approximate the extreme eigenvalues of M.

    >>> T = lanczos(torch.diag(torch.tensor([1.0, 2.0, 4.0])), torch.ones(3), n_steps=3)
    >>> [round(float(t), 12) for t in T.ritz()[0]]
    [1.0, 2.0, 4.0]
    """
    A = as_operator(op)
    v0 = torch.as_tensor(v0).detach().to(torch.float64).cpu()
    if v0.ndim != 1 or v0.shape[0] != A.shape[0]:
        raise ValueError(
            f"v0 must be a flat vector of length {A.shape[0]}, got shape {tuple(v0.shape)}"
        )
    if int(n_steps) < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps!r}")
    return _lanczos_many(A, v0[:, None], n_steps, keep_basis=return_basis)[0]


def slq_logdet(
    op,
    damping: float,
    n_probes: int = 30,
    n_steps: int = 30,
    seed: int = 0,
    *,
    distribution: str = "rademacher",
    chunk: int = 16,
) -> Estimate:
    """ln det(M + δI) in nats by stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017) ± stderr.

    ``damping`` δ ≥ 0 (> 0 unless M is positive definite); every Ritz value must satisfy θ + δ > 0,
    so an indefinite M (a Hessian away from a minimum) is an error. ``n_steps`` is capped at P.

    >>> est = slq_logdet(2.0 * torch.eye(4), damping=1.0, n_probes=3, n_steps=5)
    >>> round(est.value, 12), est.stderr, round(4 * math.log(3.0), 12)
    (4.394449154672, 0.0, 4.394449154672)
    """
    delta = check_positive("damping", damping, allow_zero=True)
    A = as_operator(op)
    m = check_n_probes(n_probes)
    if int(n_steps) < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps!r}")
    n = A.shape[0]
    samples = []
    for Z in probe_chunks(n, m, distribution, seed, max(1, int(chunk))):
        for z, T in zip(Z.t(), _lanczos_many(A, Z, n_steps)):
            theta, tau2 = T.ritz()
            if float(theta.min()) + delta <= 0:
                raise ValueError(
                    f"M + {delta}·I is not positive definite "
                    f"(Ritz value {float(theta.min()):.3g}); "
                    "increase damping or use a positive semi-definite curvature (GGN/Fisher)"
                )
            samples.append(float(z.dot(z)) * float((tau2 * torch.log(theta + delta)).sum()))
    s = torch.tensor(samples, dtype=torch.float64)
    return Estimate(float(s.mean()), float(s.std(unbiased=True)) / math.sqrt(m), m)


def top_eigenvalues(
    op,
    k: int,
    *,
    which: str = "LA",
    tol: float = 0.0,
    seed: int = 0,
    return_eigenvectors: bool = False,
):
    """The ``k`` largest eigenvalues of M, in descending order (float64), by implicitly restarted
    Lanczos (ARPACK: ``scipy.sparse.linalg.eigsh`` on ``op.to_scipy()``); dense ``eigh`` for
    k ≥ P − 1.

    ``which="LA"`` largest algebraic (default), ``"LM"`` largest magnitude (for an indefinite
    Hessian). With ``return_eigenvectors`` also returns the (P, k) eigenvectors, column j for
    eigenvalue j.

    >>> M = torch.diag(torch.tensor([3.0, -5.0, 1.0, 2.0, 0.5]))
    >>> top_eigenvalues(M, 2).round(decimals=10)
    tensor([3., 2.], dtype=torch.float64)
    >>> top_eigenvalues(M, 1, which="LM").round(decimals=10)
    tensor([-5.], dtype=torch.float64)
    """
    from scipy.sparse.linalg import eigsh

    A = as_operator(op)
    n = A.shape[0]
    if isinstance(k, bool) or int(k) != k or k < 1 or k > n:
        raise ValueError(f"k must be an integer with 1 <= k <= dim = {n}, got {k!r}")
    if which not in ("LA", "LM"):
        raise ValueError(f"unknown which={which!r}; expected 'LA' or 'LM'")
    k = int(k)
    if k >= n - 1 or n <= 3:
        M = A.matmat(torch.eye(n, dtype=torch.float64)).to(torch.float64).cpu()
        vals, vecs = torch.linalg.eigh((M + M.t()) / 2)
        order = torch.argsort(vals if which == "LA" else vals.abs(), descending=True)[:k]
    else:
        v0 = np.random.default_rng(seed).standard_normal(n)
        w, V = eigsh(A.to_scipy(), k=k, which=which, tol=tol, v0=v0)
        vals, vecs = torch.from_numpy(w.copy()), torch.from_numpy(V.copy())
        order = torch.arange(k)
    vals, vecs = vals[order], vecs[:, order]
    desc = torch.argsort(vals, descending=True)
    vals, vecs = vals[desc].to(torch.float64), vecs[:, desc].to(torch.float64)
    return (vals, vecs) if return_eigenvectors else vals
