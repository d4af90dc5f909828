"""Derivatives of the linearised channel (:func:`linearised`, :func:`reaching`) and the
Fisher information of a batch of Gaussians N(μ, Σ_z), Σ_z = A Aᵀ (A = J Σ^{1/2}, dim z × k), in float64.

For a one-parameter family, F = μ̇ᵀ Σ_z⁻¹ μ̇ (mean term) + ½ tr(Σ_z⁻¹ Σ̇ Σ_z⁻¹ Σ̇) (covariance term) with
Σ̇ = Ȧ Aᵀ + A Ȧᵀ. Three solvers share one interface (``quad(V)`` = Vᵀ M V per example, ``cov_term(Ȧ)``), M the
inverse of the (regularised) covariance:

* ``"exact"``: eigendecomposition of the dense d × d matrix Σ_z. With ``jitter`` = 0, M is the pseudo-inverse on
  the range of Σ_z (eigenvalues > ``RANK_RTOL`` · the largest); a direction with a part outside the range
  (relative norm > ``RANGE_RTOL``) has infinite Fisher: :class:`InfiniteFisherError`. With ``jitter`` = ε > 0,
  M = (Σ_z + λI)⁻¹, λ = ε · tr(Σ_z)/d (ε relative to the mean eigenvalue, so scale-free).
* ``"lowrank"``: the same (Σ_z + λI)⁻¹ through the k × k matrix (Woodbury): M = (I − A (λI + AᵀA)⁻¹ Aᵀ)/λ, and
  tr((MΣ̇)²) = tr(C²) with C = Wᵀ M U, Σ̇ = U Wᵀ, U = [Ȧ, A], W = [A, Ȧ] (2k × 2k). Exact algebra (equal to
  ``"exact"`` with the same jitter to rounding), O(d k²) instead of O(d³): for wide layers with few noisy
  weights. Needs ``jitter`` > 0 (Σ_z has rank ≤ k < d there).
* ``"diag"``: Σ_z replaced by its diagonal (correlations between units dropped), O(d k): an approximation, exact
  when Σ_z is diagonal (a Linear layer whose own weights are the noisy ones, diagonal posterior).
"""

from __future__ import annotations

import torch
from torch.func import jacrev, jvp

from .._base.vmapping import map_samples
from .channel import Channel

RANK_RTOL = 1e-10
RANGE_RTOL = 1e-5
METHODS = ("auto", "exact", "lowrank", "diag")


class InfiniteFisherError(ValueError):
    """The nuisance (or input) direction moves the activations outside the support of the degenerate channel
    (Σ_z singular, jitter = 0): the Fisher information is infinite."""


def choose_method(method: str, d: int, k: int, jitter: float) -> str:
    """``"auto"``: the cheaper of the two exact solvers, ``"lowrank"`` when jitter > 0 and 2k < d (O(d k²)
    against O(d³)), else ``"exact"``. Never the ``"diag"`` approximation."""
    if method != "auto":
        return method
    return "lowrank" if (jitter > 0 and 2 * k < d) else "exact"


def _check_range(off: torch.Tensor, total: torch.Tensor, what: str, where: str) -> None:
    bad = off > (RANGE_RTOL**2) * total
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        ratio = float((off[i] / total[i]).sqrt())
        raise InfiniteFisherError(
            f"{where}: the {what} has a part outside the range of the singular Σ_z (example {i}, relative norm "
            f"{ratio:.3g}): the Fisher information is infinite. The posterior noise does not cover this "
            "direction; pass jitter > 0 for a finite, jitter-dependent value"
        )


class Solver:
    """M = Σ_z⁺ or (Σ_z + λI)⁻¹ for a batch ``A`` (n, d, k), float64."""

    def __init__(self, A: torch.Tensor, method: str, jitter: float, where: str) -> None:
        self.A, self.method, self.jitter, self.where = A, method, float(jitter), where
        n, d, _ = A.shape
        self.trace = (A * A).sum((1, 2))
        if bool((self.trace <= 0).any()):
            i = int((self.trace <= 0).nonzero()[0, 0])
            raise ValueError(
                f"{where}: Σ_z(x) = 0 for example {i} of the batch: no posterior noise reaches these activations"
            )
        self.lam = self.jitter * self.trace / d  # (n,)
        if method == "exact":
            evals, self.Q = torch.linalg.eigh(A @ A.mT)
            if self.jitter > 0:
                self.inv = 1.0 / (evals.clamp_min(0) + self.lam[:, None])
                self.off = None
            else:
                on = evals > RANK_RTOL * evals[:, -1:].clamp_min(0)
                self.inv = torch.where(on, 1.0 / torch.where(on, evals, 1.0), 0.0)
                self.off = ~on if bool((~on).any()) else None
        elif method == "lowrank":
            if self.jitter <= 0:
                raise ValueError(
                    "method='lowrank' needs jitter > 0 ((Σ_z + λI)⁻¹ through the k × k matrix)"
                )
            eye = torch.eye(A.shape[2], dtype=A.dtype, device=A.device)
            self.chol = torch.linalg.cholesky(self.lam[:, None, None] * eye + A.mT @ A)
        elif method == "diag":
            s = (A * A).sum(2)
            if self.jitter > 0:
                self.inv, self.off = 1.0 / (s + self.lam[:, None]), None
            else:
                on = s > RANK_RTOL * s.amax(1, keepdim=True)
                self.inv = torch.where(on, 1.0 / torch.where(on, s, 1.0), 0.0)
                self.off = ~on if bool((~on).any()) else None
        else:
            raise ValueError(
                f"unknown method={method!r}; expected one of {', '.join(map(repr, METHODS))}"
            )

    def _minv(self, V: torch.Tensor) -> torch.Tensor:
        """M V for V (n, d, m) (lowrank only)."""
        AtV = self.A.mT @ V
        return (V - self.A @ torch.cholesky_solve(AtV, self.chol)) / self.lam[:, None, None]

    def quad(self, V: torch.Tensor, what: str) -> torch.Tensor:
        """Vᵀ M V per example, (n, m, m), for V (n, d, m); raises if V leaves the range (jitter = 0)."""
        if self.method == "lowrank":
            return V.mT @ self._minv(V)
        Y = self.Q.mT @ V if self.method == "exact" else V
        if self.off is not None:
            off = (Y * Y * self.off[:, :, None]).sum((1, 2))
            _check_range(off, (Y * Y).sum((1, 2)), what, self.where)
        return Y.mT @ (self.inv[:, :, None] * Y)

    def cov_term(self, Ad: torch.Tensor) -> torch.Tensor:
        """½ tr(M Σ̇ M Σ̇) per example, Σ̇ = Ȧ Aᵀ + A Ȧᵀ; raises if Σ̇ leaves the range (jitter = 0)."""
        A = self.A
        if self.method == "lowrank":
            U, W = torch.cat([Ad, A], 2), torch.cat([A, Ad], 2)
            C = W.mT @ self._minv(U)
            return 0.5 * (C * C.mT).sum((1, 2))
        if self.method == "diag":
            T = 2.0 * (A * Ad).sum(2)
            if self.off is not None:
                _check_range(
                    (T * T * self.off).sum(1), (T * T).sum(1), "covariance derivative", self.where
                )
            return 0.5 * ((T * self.inv) ** 2).sum(1)
        B, Bd = self.Q.mT @ A, self.Q.mT @ Ad
        T = Bd @ B.mT + B @ Bd.mT  # Σ̇ in the eigenbasis of Σ_z
        if self.off is not None:
            mixed = self.off[:, :, None] ^ self.off[:, None, :]
            _check_range(
                (T * T * mixed).sum((1, 2)),
                (T * T).sum((1, 2)),
                "covariance derivative",
                self.where,
            )
        return 0.5 * (self.inv[:, :, None] * self.inv[:, None, :] * T * T).sum((1, 2))


def linearised(ch: Channel, x: torch.Tensor, v: torch.Tensor | None):
    """A = J Σ^{1/2} (n, d, k) float64; with a tangent ``v`` also μ̇ (n, d) and Ȧ (n, d, k)."""
    w = ch.noisy_means()
    scale = {k: ch.var[k].reshape(-1).double().sqrt() for k in w}

    def mean(xi):
        return ch._forward(w, xi.unsqueeze(0)).squeeze(0)

    def jac(xi):
        j = jacrev(lambda ww: ch._forward(ww, xi.unsqueeze(0)).squeeze(0))(w)
        return torch.cat([j[k].reshape(j[k].shape[0], -1).double() * scale[k] for k in w], 1)

    if v is None:
        return map_samples(jac)(x)

    def one(xi, vi):
        mu_dot = jvp(mean, (xi,), (vi,))[1]
        A, A_dot = jvp(jac, (xi,), (vi,))
        return mu_dot.double(), A, A_dot

    return map_samples(one, (0, 0))(x, v)


def reaching(ch: Channel, x: torch.Tensor, where: str) -> Channel:
    """The channel restricted to the noisy parameters the layer's output depends on (structurally: the others
    give all-zero columns of J)."""
    w = {k: v.clone().requires_grad_(True) for k, v in ch.noisy_means().items()}
    with torch.enable_grad():
        out = ch._forward(w, x[:1])
        grads = (
            torch.autograd.grad(out.sum(), list(w.values()), allow_unused=True)
            if out.requires_grad
            else [None] * len(w)
        )
    keep = {k: ch.var[k] for k, g in zip(w, grads) if g is not None}
    if not keep:
        raise ValueError(
            f"{where}: no noisy parameter of the posterior acts before this layer, so Σ_z = 0 (no noise reaches "
            f"it); noisy parameters: {', '.join(ch.var)}"
        )
    return Channel(ch.model, ch.layer, keep)
