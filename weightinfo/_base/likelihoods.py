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

Targets of ``bce_with_logits`` and ``mse`` (:meth:`Loss.targets`): a float tensor with one value per output,
or integer class labels of shape (B,) for a (B, K) output with K > 1, which stand for their one-hot vectors
e_y (so a classifier trained with ``weightinfo train --loss mse`` is measured on its own labels). Training
(:mod:`weightinfo.training`) minimises the batch mean of the same ``per_sample``.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .batches import value_range

LOSSES = ("cross_entropy", "bce_with_logits", "mse")


def _out_of_range(y: torch.Tensor, lo, hi) -> bool:
    """Whether a value of ``y`` lies outside [lo, hi] (no device sync for batches from ``iter_batches``)."""
    ymin, ymax = value_range(y)
    if ymin >= lo and ymax <= hi:
        return False
    # The range may be the whole batch's (``y`` a slice of it): decide on ``y`` itself.
    return bool((y < lo).any() or (y > hi).any())


def is_class_labels(z: torch.Tensor, y: torch.Tensor) -> bool:
    """Whether ``y`` holds integer class labels (B,) for a (B, K > 1) output, i.e. one-hot targets."""
    return not y.is_floating_point() and y.ndim == 1 and z.ndim == 2 and z.shape[1] > 1


class Loss:
    """Base class: the negative log-likelihood ℓ(z, y) of one sample, ``per_sample`` giving shape (B,)."""

    name = ""

    def targets(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``y`` in the form ``per_sample`` uses (the labels themselves for ``cross_entropy``)."""
        return y

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
        if y.numel() and _out_of_range(y, 0, C - 1):
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


class _PerOutput(Loss):
    """A likelihood with one target value per output: float targets, or class labels one-hot encoded."""

    def targets(self, z, y):
        """Float targets shaped like ``z``: e_y for class labels (see the module docstring)."""
        if is_class_labels(z, y):
            return F.one_hot(y.long(), z.shape[1]).to(z.dtype)
        return y.reshape(z.shape).to(z.dtype)

    def check_targets(self, z, y):
        if is_class_labels(z, y):
            K = z.shape[1]
            if y.numel() and _out_of_range(y, 0, K - 1):
                raise ValueError(
                    f"{self.name}: class labels out of range: found {int(y.min())}..{int(y.max())} "
                    f"for {K} outputs"
                )
            return
        if y.ndim == 0 or y.shape[0] != z.shape[0] or y.numel() != z.numel():
            raise ValueError(
                f"{self.name} expects targets shaped like the output {tuple(z.shape)} or integer class "
                f"labels of shape ({z.shape[0]},), got {tuple(y.shape)}"
            )
        self._check_values(y)

    def _check_values(self, y: torch.Tensor) -> None:
        return None


class BCEWithLogits(_PerOutput):
    name = "bce_with_logits"

    def _check_values(self, y):
        if y.numel() and _out_of_range(y, 0, 1):
            raise ValueError("bce_with_logits targets must lie in [0, 1]")

    def per_sample(self, z, y):
        return (
            F.binary_cross_entropy_with_logits(z, self.targets(z, y), reduction="none")
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
        return p - self.targets(z, y).reshape(p.shape).to(p.dtype)


class GaussianMSE(_PerOutput):
    name = "mse"

    def per_sample(self, z, y):
        return 0.5 * (z - self.targets(z, y)).pow(2).reshape(z.shape[0], -1).sum(1)

    def hessian_sqrt(self, z):
        B, K = z.shape[0], z[0].numel()
        eye = torch.eye(K, dtype=z.dtype, device=z.device)
        return eye.expand(B, K, K)

    def sampled_grad(self, z, generator):
        # ỹ = z + ε with ε ~ N(0, I): ∇_z ℓ(z, ỹ) = z − ỹ = −ε.
        z2 = z.detach().reshape(z.shape[0], -1)
        return -torch.randn(z2.shape, generator=generator, dtype=z2.dtype, device=z2.device)

    def grad(self, z, y):
        return (z.detach() - self.targets(z, y)).reshape(z.shape[0], -1)


_REGISTRY = {"cross_entropy": CrossEntropy, "bce_with_logits": BCEWithLogits, "mse": GaussianMSE}


def get_loss(name: str) -> Loss:
    """Return the likelihood named ``name`` (one of ``LOSSES``); unknown names raise ``ValueError``."""
    if isinstance(name, Loss):
        return name
    if name not in _REGISTRY:
        raise ValueError(f"unknown loss={name!r}; expected one of {', '.join(map(repr, LOSSES))}")
    return _REGISTRY[name]()
