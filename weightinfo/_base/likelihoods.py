"""Likelihoods behind the Fisher: what a loss says about the model's output distribution.

Every loss is the negative log-likelihood of one sample, ℓ(z, y) = −log p(y | z), with z = f_w(x) the model
output flattened to K numbers per sample. The Fisher of the weights is then

    F = (1/N) Σ_i J_iᵀ Λ(z_i) J_i,   Λ(z) = E_{y∼p(·|z)}[∇_z ℓ ∇_z ℓᵀ] = ∇²_z ℓ(z, y),   J_i = ∂z_i/∂w,

(the last equality holds for the three exponential-family likelihoods below; it is why the exact Fisher and the
Gauss–Newton matrix coincide for them). Each loss provides

* ``hessian_sqrt(z)`` – S with Λ = S Sᵀ, shape (B, K, R): R backward passes give the *exact* Fisher;
* ``sampled_grad(z, gen)`` – ∇_z ℓ(z, ỹ) with ỹ drawn from the model: unbiased for Λ (MC Fisher);
* ``grad(z, y)`` – ∇_z ℓ(z, y) at the data label (empirical Fisher, a different object).

Conventions:
``cross_entropy``  p = softmax(z), y an integer class; Λ = diag p − p pᵀ.
``bce_with_logits`` independent Bernoulli per output, p = σ(z), y ∈ {0, 1} (float); Λ = diag p(1 − p).
``mse``            Gaussian with **unit variance**, ℓ = ½‖y − z‖² (+ const); Λ = I. torch's ``MSELoss`` (no ½,
                   mean over outputs) is a rescaling of this: its Gauss–Newton matrix is (2/K)·F.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

LOSSES = ("cross_entropy", "bce_with_logits", "mse")


class Loss:
    """Base class: the negative log-likelihood ℓ(z, y) of one sample (mean over the batch in ``value``)."""

    name = ""

    def check_targets(
        self, z: torch.Tensor, y: torch.Tensor
    ) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def per_sample(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def output_hessian(self, z: torch.Tensor) -> torch.Tensor:
        """Λ(z) = ∇²_z ℓ, shape (B, K, K)."""
        S = self.hessian_sqrt(z)
        return S @ S.transpose(1, 2)

    def hessian_sqrt(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def sampled_grad(
        self, z: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def grad(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """∇_z ℓ(z, y) per sample, shape (B, K)."""
        z = z.detach().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(self.per_sample(z, y).sum(), z)
        return g.reshape(z.shape[0], -1)


class CrossEntropy(Loss):
    name = "cross_entropy"

    def check_targets(self, z, y):
        if z.ndim != 2:
            raise ValueError(
                f"cross_entropy expects logits of shape (batch, classes), got {tuple(z.shape)}"
            )
        if y.dtype.is_floating_point or y.ndim != 1:
            raise ValueError("cross_entropy expects integer class labels of shape (batch,)")
        C = z.shape[1]
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= C):
            raise ValueError(
                f"labels out of range: found {int(y.min())}..{int(y.max())} for {C} classes"
            )

    def per_sample(self, z, y):
        return F.cross_entropy(z, y, reduction="none")

    def hessian_sqrt(self, z):
        # S[:, :, c] = √p_c (e_c − p):  Σ_c p_c (e_c − p)(e_c − p)ᵀ = diag p − p pᵀ.
        p = torch.softmax(z.detach(), dim=1)
        eye = torch.eye(p.shape[1], dtype=p.dtype, device=p.device)
        return (eye.unsqueeze(0) - p.unsqueeze(2)) * p.sqrt().unsqueeze(1)

    def sampled_grad(self, z, generator):
        p = torch.softmax(z.detach(), dim=1)
        y = torch.multinomial(p, 1, generator=generator).squeeze(1)
        return p - F.one_hot(y, p.shape[1]).to(p.dtype)

    def grad(self, z, y):
        p = torch.softmax(z.detach(), dim=1)
        return p - F.one_hot(y, p.shape[1]).to(p.dtype)


class BCEWithLogits(Loss):
    name = "bce_with_logits"

    def check_targets(self, z, y):
        if y.shape != z.shape:
            raise ValueError(
                f"bce_with_logits expects targets shaped like the output {tuple(z.shape)}, got {tuple(y.shape)}"
            )
        if y.numel() and (float(y.min()) < 0 or float(y.max()) > 1):
            raise ValueError("bce_with_logits targets must lie in [0, 1]")

    def per_sample(self, z, y):
        return (
            F.binary_cross_entropy_with_logits(z, y.to(z.dtype), reduction="none")
            .reshape(z.shape[0], -1)
            .sum(1)
        )

    def hessian_sqrt(self, z):
        p = torch.sigmoid(z.detach()).reshape(z.shape[0], -1)
        return torch.diag_embed((p * (1 - p)).sqrt())

    def sampled_grad(self, z, generator):
        p = torch.sigmoid(z.detach()).reshape(z.shape[0], -1)
        y = torch.bernoulli(p, generator=generator)
        return p - y

    def grad(self, z, y):
        p = torch.sigmoid(z.detach()).reshape(z.shape[0], -1)
        return p - y.reshape(p.shape).to(p.dtype)


class GaussianMSE(Loss):
    name = "mse"

    def check_targets(self, z, y):
        if y.shape != z.shape:
            raise ValueError(
                f"mse expects targets shaped like the output {tuple(z.shape)}, got {tuple(y.shape)}"
            )

    def per_sample(self, z, y):
        return 0.5 * (z - y.to(z.dtype)).pow(2).reshape(z.shape[0], -1).sum(1)

    def hessian_sqrt(self, z):
        B, K = z.shape[0], z[0].numel()
        eye = torch.eye(K, dtype=z.dtype, device=z.device)
        return eye.expand(B, K, K)

    def sampled_grad(self, z, generator):
        # ỹ = z + ε with ε ~ N(0, I): ∇_z ℓ(z, ỹ) = z − ỹ = −ε.
        z2 = z.detach().reshape(z.shape[0], -1)
        return -torch.randn(z2.shape, generator=generator, dtype=z2.dtype, device=z2.device)

    def grad(self, z, y):
        return (z.detach() - y.to(z.dtype)).reshape(z.shape[0], -1)


_REGISTRY = {"cross_entropy": CrossEntropy, "bce_with_logits": BCEWithLogits, "mse": GaussianMSE}


def get_loss(name: str) -> Loss:
    """Return the likelihood named ``name`` (one of ``LOSSES``); unknown names raise ``ValueError``."""
    if isinstance(name, Loss):
        return name
    if name not in _REGISTRY:
        raise ValueError(f"unknown loss={name!r}; expected one of {', '.join(map(repr, LOSSES))}")
    return _REGISTRY[name]()
