"""The noisy-activation channel of Achille, Paolini & Soatto (2019, §3, Definition 3.1): x ↦ z = f_ℓ(x; w* + n).

Activations of a trained network are a deterministic function of the input, so I(x; z) is degenerate. Perturbing
the weights with the noise the Information Lagrangian tolerates, n ∼ N(0, Σ) (Σ = the posterior variance of Q*,
diagonal), makes the activations of a layer ℓ a channel. Linearised in the weights,

    z | x ≈ N(μ(x), Σ_z(x)),   μ(x) = f_ℓ(x; w*),   Σ_z(x) = J(x) Σ J(x)ᵀ,   J = ∂f_ℓ/∂w (dim z × #noisy weights),

which is **exact** when f_ℓ is linear in the noisy weights (a Linear layer whose own weights are the only noisy
ones: z = W a(x) + b). :class:`Channel` computes μ, J and Σ_z per example (``torch.func.jacrev`` of the layer's
output with respect to the noisy parameters, vectorised over examples with ``vmap``) and draws z with real weight
samples for the Monte Carlo estimators.

``posterior``: an :class:`~weightinfo.iw.result.InformationResult` (its ``posterior_variance``, around the
model's current weights) or a dict ``{parameter name: variance tensor shaped like the parameter}``; parameters not
in it are fixed. ``layer``: a module name of the model, or ``None`` for the model's output.

Any ``nn.Module`` in eval mode works (MLP, LeNet, All-CNN and ResNet-18 with eval BatchNorm, attention: tested in
tests/activations/test_architectures.py). How the forward is taken:

* ``torch.func.functional_call`` with the noisy parameters substituted; the other parameters and the **buffers**
  (BatchNorm running statistics) are the module's own, so eval-mode BatchNorm is the fixed affine map it is at
  test time. A BatchNorm with ``track_running_stats=False`` normalises by the batch even in eval mode (under
  ``vmap`` each example would be normalised by itself): ``Channel.of`` raises a ``ValueError`` naming it.
* The layer's output is **copied** when the hook sees it, so a later in-place op (``ReLU(inplace=True)``) does
  not change what is measured. A module called more than once per forward (weight sharing) cannot be a layer
  (``ValueError``); the model's output of such a model is fine (J sums the uses).
* PyTorch's fused attention kernels (the ``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer`` eval fast
  path, flash / memory-efficient scaled-dot-product attention) have no forward-mode AD or no ``vmap`` rule, so
  the channel's forwards switch them off (``torch.backends.mha``, ``sdpa_kernel(SDPBackend.MATH)``); the math
  path computes the same function.

**Memory.** A per-example weight Jacobian is dim z × k numbers (k: the noisy weights acting before the layer).
:meth:`Channel.chunk_size` gives how many examples are linearised at once so that chunk · dim z · k · 8 bytes ≤
``JACOBIAN_CHUNK_BYTES`` (512 MiB); callers loop over such chunks (results do not depend on it). One example
above ``JACOBIAN_MAX_BYTES`` (4 GiB, dim z · k > 2²⁹) raises :class:`JacobianMemoryError` (a ``ValueError``)
naming the layer, dim z and k: put the posterior on fewer parameters (a dict with the layers of interest) or
measure an earlier / narrower layer. Both limits are module constants.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, jacrev

from .._base.checks import check_finite_tensor, check_model
from .._base.vmapping import map_samples

__all__ = [
    "JACOBIAN_CHUNK_BYTES",
    "JACOBIAN_MAX_BYTES",
    "Channel",
    "JacobianMemoryError",
    "posterior_variances",
]

JACOBIAN_CHUNK_BYTES = 512 * 2**20
JACOBIAN_MAX_BYTES = 4 * 2**30


class JacobianMemoryError(ValueError):
    """One example's weight Jacobian (dim z × k, float64) exceeds ``JACOBIAN_MAX_BYTES``."""


@contextmanager
def _no_fused_attention():
    """Switch off the fused attention kernels (no forward AD, no vmap rule) for the channel's forwards: the
    ``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer`` fast path, and scaled-dot-product attention
    restricted to its math backend."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    mha = torch.backends.mha
    before = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel(SDPBackend.MATH):
            yield
    finally:
        mha.set_fastpath_enabled(before)


def _check_batchnorm(model: nn.Module) -> None:
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not m.track_running_stats:
            raise ValueError(
                f"module {name!r} ({type(m).__name__}) has track_running_stats=False: it normalises by the "
                "batch even in eval mode, so the activations of one example are not a function of it alone"
            )


def posterior_variances(model: nn.Module, posterior) -> dict[str, torch.Tensor]:
    """The per-weight variances of ``posterior`` for ``model``'s parameters, checked (names, shapes, finite, ≥ 0)."""
    var = getattr(posterior, "posterior_variance", posterior)
    if not isinstance(var, Mapping):
        raise TypeError(
            "posterior must be an InformationResult or a dict {parameter name: variance tensor}, "
            f"got {type(posterior).__name__}"
        )
    params = dict(model.named_parameters())
    out = {}
    for name, v in var.items():
        if name not in params:
            raise ValueError(
                f"posterior has a variance for {name!r}, which is not a parameter of the model "
                f"(parameters: {', '.join(list(params)[:6])}{', …' if len(params) > 6 else ''})"
            )
        v = torch.as_tensor(v).detach()
        if tuple(v.shape) != tuple(params[name].shape):
            raise ValueError(
                f"posterior variance of {name!r} has shape {tuple(v.shape)}, the parameter "
                f"{tuple(params[name].shape)}"
            )
        check_finite_tensor(f"posterior variance of {name!r}", v)
        if bool((v < 0).any()):
            raise ValueError(f"posterior variance of {name!r} has negative entries")
        out[name] = v.to(params[name].dtype)
    if not out:
        raise ValueError("posterior has no variance for any parameter: the channel has no noise")
    return out


def _module(model: nn.Module, layer: str | None) -> nn.Module | None:
    if layer is None:
        return None
    names = dict(model.named_modules())
    if layer not in names or layer == "":
        shown = [n for n in names if n][:8]
        raise ValueError(
            f"layer {layer!r} is not a module of the model; modules: {', '.join(shown)}"
            f"{', …' if len(names) > 9 else ''} (None: the model's output)"
        )
    return names[layer]


@dataclass
class Channel:
    """The channel x ↦ f_ℓ(x; w* + n), n ∼ N(0, diag ``var``), of ``model`` at ``layer`` (``None``: output).

    ``var`` maps the noisy parameters to their variances (shaped like them); the others stay at the model's
    values. Activations are flattened per example: ``dim`` = the number of units of the layer.
    """

    model: nn.Module
    layer: str | None
    var: dict[str, torch.Tensor]

    @classmethod
    def of(cls, model: nn.Module, posterior, layer: str | None = None) -> Channel:
        """The channel of ``model`` at ``layer`` with the noise of ``posterior`` (checked)."""
        check_model(model)
        _check_batchnorm(model)
        _module(model, layer)
        return cls(model, layer, posterior_variances(model, posterior))

    # -- the layer's activations as a function of (noisy parameters, one input) ---------------------------

    def _params(self) -> dict[str, torch.Tensor]:
        return {k: p.detach() for k, p in self.model.named_parameters()}

    def _forward(self, noisy: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """f_ℓ(x; w) flattened per example for inputs ``x`` (batch first), noisy parameters from ``noisy``."""
        params = {**self._params(), **noisy}
        module = _module(self.model, self.layer)
        if module is None:
            with _no_fused_attention():
                return functional_call(self.model, params, (x,)).flatten(1)
        store = []

        def keep(_m, _i, out):  # a copy: a later in-place op must not change the layer's output
            store.append(out.clone() if torch.is_tensor(out) else out)

        hook = module.register_forward_hook(keep)
        try:
            with _no_fused_attention():
                functional_call(self.model, params, (x,))
        finally:
            hook.remove()
        if len(store) != 1 or not torch.is_tensor(store[0]):
            raise ValueError(
                f"layer {self.layer!r} must be called exactly once per forward and return a tensor "
                f"(called {len(store)} time(s))"
            )
        return store[0].flatten(1)

    def noisy_means(self) -> dict[str, torch.Tensor]:
        """w* of the noisy parameters."""
        params = dict(self.model.named_parameters())
        return {k: params[k].detach() for k in self.var}

    @torch.no_grad()
    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """μ(x) = f_ℓ(x; w*), shape (n, dim)."""
        return self._forward(self.noisy_means(), x)

    def dim(self, x: torch.Tensor) -> int:
        """The number of units of the layer (from one example of ``x``)."""
        return int(self.mean(x[:1]).shape[1])

    # -- linearisation --------------------------------------------------------------------------------------

    @property
    def n_noisy(self) -> int:
        """k: the number of noisy weights."""
        return sum(int(v.numel()) for v in self.var.values())

    def chunk_size(self, d: int) -> int:
        """Examples per Jacobian pass: chunk · ``d`` · k · 8 bytes ≤ ``JACOBIAN_CHUNK_BYTES`` (at least 1).

        Raises :class:`JacobianMemoryError` when one example needs more than ``JACOBIAN_MAX_BYTES``.
        """
        k = self.n_noisy
        per = int(d) * k * 8
        if per > JACOBIAN_MAX_BYTES:
            where = "the output" if self.layer is None else f"layer {self.layer!r}"
            raise JacobianMemoryError(
                f"{where}: one example's weight Jacobian is dim z × k = {d} × {k} (float64: {per / 2**30:.1f} "
                f"GiB), above the limit JACOBIAN_MAX_BYTES = {JACOBIAN_MAX_BYTES / 2**30:g} GiB of "
                "weightinfo.activations.channel. Put the posterior on fewer parameters (a dict with the "
                "variances of the layers of interest only), or measure an earlier or narrower layer"
            )
        return max(1, JACOBIAN_CHUNK_BYTES // max(per, 1))

    def chunks(self, x: torch.Tensor, d: int) -> Iterator[torch.Tensor]:
        """``x`` in consecutive slices of :meth:`chunk_size` examples."""
        c = self.chunk_size(d)
        for a in range(0, len(x), c):
            yield x[a : a + c]

    def jacobians(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """J_p(x) = ∂f_ℓ(x)/∂p for every noisy parameter p, shape (n, dim, p.numel()), per example.

        Holds n · dim · k numbers: loop over :meth:`chunks` for many examples (``covariances`` does).
        """
        w = self.noisy_means()

        def jac(xi):
            j = jacrev(lambda ww: self._forward(ww, xi.unsqueeze(0)).squeeze(0))(w)
            return {k: v.reshape(v.shape[0], -1) for k, v in j.items()}

        return map_samples(jac)(x)

    def covariances(self, x: torch.Tensor) -> torch.Tensor:
        """Σ_z(x) = J(x) diag(σ²) J(x)ᵀ in float64, shape (n, dim, dim): exact for a layer linear in its noise.

        The Jacobians are taken :meth:`chunks` of examples at a time (memory ≤ ``JACOBIAN_CHUNK_BYTES``).
        """
        out = []
        for xc in self.chunks(x, self.dim(x)):
            cov = None
            for k, j in self.jacobians(xc).items():
                j = j.double()
                s2 = self.var[k].reshape(-1).double()
                term = torch.einsum("nai,i,nbi->nab", j, s2, j)
                cov = term if cov is None else cov + term
            out.append(cov)
        return torch.cat(out)

    # -- sampling -------------------------------------------------------------------------------------------

    @torch.no_grad()
    def input_jacobians(self, x: torch.Tensor) -> torch.Tensor:
        """∇_x μ(x) per example at w*, float64, shape (n, dim, dim x) (Eq 10 and F_{z|x} need it)."""
        w = self.noisy_means()
        g = map_samples(jacrev(lambda xi: self._forward(w, xi.unsqueeze(0)).squeeze(0)))(x)
        return g.reshape(g.shape[0], g.shape[1], -1).double()

    def sample(self, x: torch.Tensor, draws: int, gen: torch.Generator) -> torch.Tensor:
        """z = f_ℓ(x; w* + n) with ``draws`` independent weight draws per example: shape (draws, n, dim).

        Each (draw, example) gets its own weights (the inputs are evaluated one draw of every noisy parameter
        per example, vectorised with ``vmap``), so z's law per example is exactly the channel's.
        """
        w = self.noisy_means()
        std = {k: v.sqrt() for k, v in self.var.items()}
        out = []
        for _ in range(int(draws)):
            noisy = {
                k: w[k]
                + std[k]
                * torch.randn(
                    (x.shape[0], *w[k].shape), generator=gen, dtype=w[k].dtype, device=w[k].device
                )
                for k in w
            }
            z = map_samples(lambda p, xi: self._forward(p, xi.unsqueeze(0)).squeeze(0), (0, 0))(
                noisy, x
            )
            out.append(z)
        return torch.stack(out)
