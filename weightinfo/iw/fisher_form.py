"""Closed-form Gaussian optimum of the Information Lagrangian under the quadratic (Fisher/Laplace) model.

Achille, Paolini & Soatto 2019, Prop. 2.5 and Remarks 2.6–2.7. With P = N(w0, Λ), Λ = diag λ_l² (one λ per
layer), Q = N(w*, Σ) at a minimum w* of the **mean** loss L_D with curvature H (a mean over samples; the Fisher
F stands in for H, Remark 2.6) and β **per sample**, the quadratic model

    C_β(Σ) = L_D(w*) + ½ tr(HΣ) + β KL(N(w*, Σ) ‖ P)

is minimised by the **corrected** optimum Σ* = β (H + β Λ^{-1})^{-1}, and the information in the weights is, in nats,

    IW = KL(Q*‖P) = Σ_i (w*_i − w0_i)²/(2λ_i²) + ½ Σ_j g(s_j),   g(s) = ln(1+s) − s/(1+s),

with s_j the eigenvalues of Λ^{1/2} H Λ^{1/2} / β (s = λ²h/β for a per-layer λ; the eigen-form of Prop. 2.5). Per structure:

* ``DiagBlock`` (mean field): σ_i² = β/(H_ii + β/λ_l²), IW_i = (w_i − w0_i)²/(2λ_l²) + ½ g(λ_l² H_ii/β).
  With ``filter_shared`` (one σ² per output unit/filter f: all axes but the first; 1-D/0-D parameters per
  entry; as in Task2Vec, Achille et al. 2019, and Critical Learning Periods, Achille, Rovere & Soatto 2019), the exact optimum within that family is
  σ_f^{-2} = mean_{i∈f}(H_ii)/β + 1/λ², and every weight of f costs (w_i − w0_i)²/(2λ²) + ½ g(λ² mean_f(H)/β).
* ``DenseBlock`` (full): M = Λ^{1/2} H Λ^{1/2} = U diag(m) Uᵀ, s = m/β; per weight
  IW_i = (w_i − w0_i)²/(2λ_i²) + ½ Σ_j g(s_j) U_ij² (the diagonal of ½ g(M/β): sums exactly to the total, does not
  depend on the order of the parameters nor on the eigenbasis); diag Σ*_i = β λ_i² Σ_j U_ij²/(m_j + β).
* ``KronBlock`` (KFAC, H ≈ G ⊗ A, one λ per layer): G = U_G diag(g) U_Gᵀ, A = U_A diag(a) U_Aᵀ, eigenvalues
  h_pq = g_p a_q (clamped ≥ 0); per weight (row-major out × in[+bias column last])
  IW = mean term + ½ (U_G∘U_G) g(λ² h/β) (U_A∘U_A)ᵀ, diag Σ* = (U_G∘U_G) [β/(h + β/λ²)] (U_A∘U_A)ᵀ.

Expected loss under the quadratic model: E_{Q*} L_D = L_D(w*) + ½ tr(HΣ*), with
½ tr(HΣ*) = ½ Σ_j β m_j/(m_j + β) = ½ Σ_j β h_j/(h_j + β/λ²) (``quadratic_excess``).

Conventions (binding box of the reference):

* ``convention="paper"``: the paper's printed Σ*_paper = (β/2)(H + β/(2λ²) I)^{-1}, i.e. the corrected optimum at
  β/2 (Taylor term written without its ½), and its printed Eq. 8, which equals the corrected IW at β/2 **minus k/2**
  (k parameters; the printed Eq. 8 misses a constant −k/2). Per weight: IW_i^paper = IW_i^corrected(β/2) − ½. The
  reported nats can then be negative; ``GaussianOptimum.kl`` keeps the true KL(Q*_paper‖P) = IW^corrected(β/2).
* ``approximation="small_beta"`` (all s ≫ 1, as in the paper's Eq. 8): g(s) is replaced by ln s − 1, giving
  IW ≈ ½ Σ_j ln(λ² h_j/β) − k/2 + ‖w* − w0‖²/(2λ²) ≈ ½ ln|F| + const. It is refused (``ValueError`` naming the
  parameter) when some h ≤ 0, where ½ ln|F| → −∞. Σ* is not approximated.

A β so small (or λ so large) that λ²h/β overflows float64 gives no finite IW: ``gaussian_optimum`` raises
``ValueError`` naming ``beta`` and ``prior_scale`` instead of returning NaN.

Negative curvature (a Hessian at a non-convex point, or roundoff in an eigendecomposition) is clamped at 0;
``n_negative`` counts the clamped diagonal entries / eigenvalues (eigenvalues only below −P·ε·max|h|).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .._base.checks import check_choice, check_positive
from ..curvature.result import Curvature, DenseBlock, DiagBlock, KronBlock
from ..posterior.gaussian import g_cost
from ..posterior.prior import GaussianPrior

CONVENTIONS = ("corrected", "paper")
APPROXIMATIONS = (None, "small_beta")

__all__ = ["CONVENTIONS", "APPROXIMATIONS", "GaussianOptimum", "gaussian_optimum", "direction_cost"]


def direction_cost(s: torch.Tensor, approximation: str | None = None) -> torch.Tensor:
    """Twice the nats of one direction of relative curvature s = λ²h/β: g(s), or ln s − 1 (``"small_beta"``).

    >>> direction_cost(torch.tensor([1.0, math.e ** 2], dtype=torch.float64), "small_beta")
    tensor([-1.,  1.], dtype=torch.float64)
    """
    if approximation is None:
        return g_cost(s)
    return torch.log(s) - 1.0


def _tol(values: torch.Tensor) -> float:
    """Roundoff level of an eigendecomposition: n·ε·max|value|."""
    if values.numel() == 0:
        return 0.0
    return float(values.abs().max()) * values.numel() * torch.finfo(values.dtype).eps


def _singular(name: str, n: int) -> ValueError:
    return ValueError(
        f"approximation='small_beta' needs a non-singular curvature, but parameter {name!r} has {n} "
        "direction(s) with zero curvature (½ ln|F| → −∞); use approximation=None (the exact g-form)"
    )


class _DiagPart:
    """A ``DiagBlock`` (optionally one σ² per output filter)."""

    def __init__(self, block, prior, beta, filter_shared, approximation, device):
        self.names = list(block.values)
        self.per, self.approx, self.var = {}, {}, {}
        self.excess, self.n_negative = 0.0, 0
        for name, h in block.values.items():
            h = h.to(device=device, dtype=torch.float64)
            self.n_negative += int((h < 0).sum())
            h = h.clamp_min(0)
            hh = h
            if filter_shared and h.ndim > 1:
                hh = (
                    h.reshape(h.shape[0], -1)
                    .mean(1)
                    .reshape(-1, *([1] * (h.ndim - 1)))
                    .expand_as(h)
                )
            lam2 = prior.variance(name)
            s = lam2 * hh / beta
            if approximation is not None:
                if bool((hh <= 0).any()):
                    raise _singular(name, int((hh <= 0).sum()))
                self.approx[name] = 0.5 * direction_cost(s, approximation)
            self.per[name] = 0.5 * g_cost(s)
            self.var[name] = beta / (hh + beta / lam2)
            self.excess += 0.5 * float((h * self.var[name]).sum())

    def noise(self, gen):
        return {
            k: v.sqrt() * torch.randn(v.shape, generator=gen, dtype=v.dtype, device=v.device)
            for k, v in self.var.items()
        }

    def cov(self):
        return torch.diag(torch.cat([self.var[k].reshape(-1) for k in self.names]))


class _DensePart:
    """A ``DenseBlock``: exact eigen-form over all its parameters, Λ = diag λ_i² per layer."""

    def __init__(self, block, prior, beta, approximation, device):
        self.names, self.shapes = list(block.names), [torch.Size(s) for s in block.shapes]
        H = block.matrix.to(device=device, dtype=torch.float64)
        lam2 = torch.cat(
            [
                torch.full((math.prod(s),), prior.variance(n), dtype=torch.float64, device=device)
                for n, s in zip(self.names, self.shapes)
            ]
        )
        sq = lam2.sqrt()
        m, U = torch.linalg.eigh(sq[:, None] * ((H + H.T) / 2) * sq[None, :])
        tol = _tol(m)
        self.n_negative = int((m < -tol).sum())
        m = m.clamp_min(0)
        U2 = U.pow(2)
        per = 0.5 * U2 @ g_cost(m / beta)
        approx = None
        if approximation is not None:
            if bool((m <= tol).any()):
                raise _singular(", ".join(self.names), int((m <= tol).sum()))
            approx = 0.5 * U2 @ direction_cost(m / beta, approximation)
        var = beta * lam2 * (U2 @ (1.0 / (m + beta)))
        self.excess = 0.5 * float((beta * m / (m + beta)).sum())
        self.factor = sq[:, None] * U * (beta / (m + beta)).sqrt()[None, :]  # Σ* = factor factorᵀ
        self.per, self.var = self._split(per), self._split(var)
        self.approx = self._split(approx) if approx is not None else {}

    def _split(self, flat):
        out, i = {}, 0
        for n, s in zip(self.names, self.shapes):
            k = math.prod(s)
            out[n] = flat[i : i + k].reshape(s)
            i += k
        return out

    def noise(self, gen):
        f = self.factor
        z = torch.randn(f.shape[1], generator=gen, dtype=f.dtype, device=f.device)
        return self._split(f @ z)

    def cov(self):
        return self.factor @ self.factor.T


class _KronPart:
    """A ``KronBlock`` H ≈ G ⊗ A (row-major W: out × in[+bias column last]), one λ for the layer."""

    def __init__(self, block, prior, beta, approximation, device):
        self.block = block
        self.names = block.names
        lam2 = prior.variance(block.weight_name)
        if block.bias_name and prior.variance(block.bias_name) != lam2:
            raise ValueError(
                f"KFAC block of {block.weight_name!r}: weight and bias need one prior scale"
            )
        a, UA = torch.linalg.eigh(block.A.to(device=device, dtype=torch.float64))
        g, UG = torch.linalg.eigh(block.G.to(device=device, dtype=torch.float64))
        self.n_negative = int((a < -_tol(a)).sum()) + int((g < -_tol(g)).sum())
        h = torch.outer(g.clamp_min(0), a.clamp_min(0))  # eigenvalues of G ⊗ A
        UG2, UA2 = UG.pow(2), UA.pow(2)
        s = lam2 * h / beta
        if approximation is not None:
            bad = h <= _tol(h)
            if bool(bad.any()):
                raise _singular(block.weight_name, int(bad.sum()))
            self.approx = self._split(0.5 * UG2 @ direction_cost(s, approximation) @ UA2.T)
        else:
            self.approx = {}
        ve = beta / (h + beta / lam2)  # variance along each eigen-direction of G ⊗ A
        self.per = self._split(0.5 * UG2 @ g_cost(s) @ UA2.T)
        self.var = self._split(UG2 @ ve @ UA2.T)
        self.excess = 0.5 * float((beta * h / (h + beta / lam2)).sum())
        self.UG, self.UA, self.std = UG, UA, ve.sqrt()

    def _split(self, mat):
        b = self.block
        if b.bias_name:
            return {b.weight_name: mat[:, :-1].reshape(b.weight_shape), b.bias_name: mat[:, -1]}
        return {b.weight_name: mat.reshape(b.weight_shape)}

    def noise(self, gen):
        z = torch.randn(self.std.shape, generator=gen, dtype=self.std.dtype, device=self.std.device)
        return self._split(self.UG @ (z * self.std) @ self.UA.T)

    def cov(self):
        K = torch.kron(self.UG, self.UA)
        C = (K * self.std.pow(2).reshape(-1)[None, :]) @ K.T  # row-major (out, in[+1])
        n_in = self.UA.shape[0]
        idx = torch.arange(C.shape[0], device=C.device).reshape(-1, n_in)
        perm = torch.cat([idx[:, :-1].reshape(-1), idx[:, -1]]) if self.block.bias_name else idx
        perm = perm.reshape(-1)
        return C[perm][:, perm]


@dataclass(frozen=True)
class GaussianOptimum:
    """The optimal Gaussian code Q* = N(w*, Σ*) and its information, in nats.

    Attributes
    ----------
    nats : IW under the chosen ``convention``/``approximation`` (see module docstring).
    per_parameter : nats per weight, shaped like each parameter; sums to ``nats``.
    posterior_variance : diag Σ* per weight.
    kl : the exact KL(Q*‖P) of the Gaussian actually used (= ``nats`` for the corrected exact form).
    quadratic_excess : ½ tr(HΣ*), so E_{Q*} L_D ≈ L_D(w*) + quadratic_excess.
    mean_term : Σ_i (w*_i − w0_i)²/(2λ_i²), the β-independent part of IW (its β → ∞ limit).
    beta : β per sample as given; beta_effective : β (corrected) or β/2 (paper).
    n_negative : negative curvature values clamped at 0.
    """

    nats: float
    per_parameter: dict[str, torch.Tensor] = field(repr=False)
    posterior_variance: dict[str, torch.Tensor] = field(repr=False)
    kl: float
    quadratic_excess: float
    mean_term: float
    beta: float
    beta_effective: float
    convention: str
    approximation: str | None
    n_negative: int
    mean: dict[str, torch.Tensor] = field(repr=False)
    _parts: list = field(repr=False, default_factory=list)

    def sample(self, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One draw w ∼ Q* (float64), keyed like the parameters."""
        out = dict(self.mean)
        for part in self._parts:
            for k, v in part.noise(generator).items():
                out[k] = self.mean[k] + v
        return out

    def covariance(self) -> torch.Tensor:
        """Σ* as a dense (k, k) matrix over the flattened parameters, in ``per_parameter`` order (small models)."""
        offsets, i = {}, 0
        for k, v in self.mean.items():
            offsets[k] = torch.arange(i, i + v.numel())
            i += v.numel()
        S = torch.zeros(i, i, dtype=torch.float64)
        for part in self._parts:
            idx = torch.cat([offsets[n] for n in part.names])
            S[idx[:, None], idx[None, :]] = part.cov().cpu()
        return S


def gaussian_optimum(
    matrix: Curvature,
    prior: GaussianPrior,
    weights: dict[str, torch.Tensor],
    beta: float,
    *,
    filter_shared: bool = False,
    convention: str = "corrected",
    approximation: str | None = None,
) -> GaussianOptimum:
    """Σ* and IW = KL(Q*‖P) in nats from a curvature H (mean over samples) and the prior P (module docstring).

    ``weights`` are the trained w* keyed like ``model.named_parameters()``; every one must be covered by exactly
    one block of ``matrix`` (the computed curvature H). ``filter_shared`` shares σ² per output filter (diagonal blocks only).

    >>> from weightinfo.curvature import Curvature, DiagBlock
    >>> H = Curvature("fisher", "exact", "diag", "mse", 1, [DiagBlock({"w": torch.tensor([2.0])})])
    >>> P = GaussianPrior({"w": torch.zeros(1, dtype=torch.float64)}, {"": 1.0})
    >>> opt = gaussian_optimum(H, P, {"w": torch.ones(1, dtype=torch.float64)}, beta=1.0)
    >>> round(opt.nats, 6), round(0.5 + 0.5 * (math.log(3) - 2 / 3), 6)  # ½w²/λ² + ½ g(λ²h/β)
    (0.715973, 0.715973)
    >>> opt.posterior_variance["w"]  # β/(h + β/λ²)
    tensor([0.3333], dtype=torch.float64)
    """
    beta = check_positive("beta", beta)
    check_choice("convention", convention, CONVENTIONS)
    if approximation not in APPROXIMATIONS:
        raise ValueError(f"unknown approximation={approximation!r}; expected None or 'small_beta'")
    b = beta if convention == "corrected" else beta / 2
    device = next(iter(weights.values())).device
    parts = []
    for block in matrix.blocks:
        if isinstance(block, DiagBlock):
            parts.append(_DiagPart(block, prior, b, filter_shared, approximation, device))
        elif filter_shared:
            raise ValueError("filter-shared variances need a diagonal curvature (structure='diag')")
        elif isinstance(block, DenseBlock):
            parts.append(_DensePart(block, prior, b, approximation, device))
        elif isinstance(block, KronBlock):
            parts.append(_KronPart(block, prior, b, approximation, device))
        else:
            raise TypeError(f"unknown curvature block {type(block).__name__}")
    owner = {}
    for part in parts:
        for n in part.names:
            if n in owner:
                raise ValueError(f"parameter {n!r} is covered by two curvature blocks")
            owner[n] = part
    missing = [k for k in weights if k not in owner]
    if missing or len(owner) != len(weights):
        raise ValueError(
            f"curvature and weights disagree: missing {missing}, extra {sorted(set(owner) - set(weights))}"
        )
    mean = {k: w.detach().to(torch.float64) for k, w in weights.items()}
    shift = 0.5 if convention == "paper" else 0.0
    per, var, kl, mean_total = {}, {}, 0.0, 0.0
    for k, w in mean.items():
        part = owner[k]
        mt = (w - prior.mean[k].to(w)).pow(2) / (2 * prior.variance(k))
        mean_total += float(mt.sum())
        kl += float((mt + part.per[k]).sum())
        per[k] = (mt + (part.approx[k] if approximation else part.per[k]) - shift).reshape(w.shape)
        var[k] = part.var[k].reshape(w.shape)
    nats = float(sum(v.sum() for v in per.values()))
    if not (math.isfinite(nats) and math.isfinite(kl)):
        lam = ", ".join(f"{k or '<root>'} {v:g}" for k, v in prior.scale.items())
        raise ValueError(
            f"IW is not finite ({nats}) at beta={beta:g} with prior_scale {lam}: the relative curvature "
            "λ²h/β overflows float64; use a larger beta or a smaller prior_scale"
        )
    return GaussianOptimum(
        nats=nats,
        per_parameter=per,
        posterior_variance=var,
        kl=kl,
        quadratic_excess=float(sum(p.excess for p in parts)),
        mean_term=mean_total,
        beta=beta,
        beta_effective=b,
        convention=convention,
        approximation=approximation,
        n_negative=int(sum(p.n_negative for p in parts)),
        mean=mean,
        _parts=parts,
    )
