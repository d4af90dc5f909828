"""Per-example logits under Q = N(μ, diag σ²) for any network: an independent weight draw for every example.

For each example x_i, f(x_i; w_i) with w_i ∼ Q drawn afresh (independent across examples). The noisy
parameters are split in two, and both parts are exact draws:

* **Linear-on-2-D modules** (:func:`local_cover`, i.e. ``find_local_reparam_modules(mode="exact")``: plain
  ``nn.Linear`` called once per forward on (B, d) input, owning its weights): the local reparameterisation
  (Kingma, Salimans & Welling 2015), z = μ_W a + μ_b + √(σ_W² a² + σ_b²) ⊙ ε, one ε ∼ N(0, I) per output unit
  of the example. Given the layer's input a, the units of one example use disjoint, independent weights, so
  z has exactly the law of W a + b with (W, b) ∼ Q, independent of every other weight; by induction over the
  layers the example's logits have exactly the law of f(x_i; w), w ∼ Q.
* **Every other noisy parameter** (convolution kernels and biases, normalisation affine parameters, ...): a
  real draw w_i = μ + σ ⊙ ε_i per example. The forward runs ``torch.func.vmap`` over the examples of a chunk
  of ``functional_call(model, w_i, x_i[None])``; vmap's batching rule turns a convolution with one kernel per
  example into one grouped convolution (the FLOPs of a plain forward). Local reparameterisation on conv feature
  maps (per-activation noise) is never used: its activations are independent where Q's share a kernel.

All noise is drawn **outside** vmap from ``gen`` (chunk by chunk: each noisy non-local parameter in ``var``'s
order as (c, *shape), then each local module's ε as (c, out_features)), so the result is a deterministic
function of ``gen``, and distinct examples get distinct, independent noise. Models vmap cannot run (in-place
ops on batched tensors, data-dependent control flow, ...) are run one example at a time on the same draws.
Parameters not in ``var`` keep their ``mean`` (or the model's) value.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.nn import functional as F

from .._base import devices
from ..posterior.sampling import find_local_reparam_modules

#: Bytes of per-example weights drawn at once (chunk · #noisy non-local parameters · itemsize).
CHUNK_BYTES = 256 * 2**20
#: Most examples per chunk: LeNet on 28x28 at 1 thread ran fastest at 512-1024 (4096: ~1.5x slower).
MAX_CHUNK = 1024


def _pname(mn: str, k: str) -> str:
    return f"{mn}.{k}" if mn else k


def local_cover(model: nn.Module, x: torch.Tensor, names) -> tuple[list[str], list[str]]:
    """``(modules, rest)``: the Linear-on-2-D modules holding noisy parameters (exact local reparameterisation)
    and the noisy parameters (of ``names``, in order) outside them."""
    modules = find_local_reparam_modules(model, x[:2], mode="exact", names=names)
    covered = set()
    for mn in modules:
        covered.update(_pname(mn, k) for k, _ in model.get_submodule(mn).named_parameters())
    return modules, [n for n in names if n not in covered]


def chunk_size(mean, var, rest, batch_size: int) -> int:
    """Examples per chunk: at most ``batch_size`` and :data:`MAX_CHUNK`, and chunk · Σ numel(rest) · itemsize
    ≤ :data:`CHUNK_BYTES`."""
    nbytes = sum(mean[k].numel() * mean[k].element_size() for k in rest)
    return max(1, min(int(batch_size), MAX_CHUNK, CHUNK_BYTES // max(1, nbytes)))


def _local_specs(model, modules, mean, var) -> dict:
    specs = {}
    for mn in modules:
        m = model.get_submodule(mn)
        if type(m) is not nn.Linear:  # the guarantee: no local reparameterisation outside nn.Linear
            raise ValueError(f"local reparameterisation is exact only in nn.Linear, not {mn!r}")
        wn, bn = _pname(mn, "weight"), _pname(mn, "bias")
        w_mean = mean[wn] if wn in mean else m.weight.detach()
        w_var = var[wn].expand_as(w_mean) if wn in var else torch.zeros_like(w_mean)
        b_mean = b_var = None
        if m.bias is not None:
            b_mean = mean[bn] if bn in mean else m.bias.detach()
            b_var = var[bn].expand_as(b_mean) if bn in var else torch.zeros_like(b_mean)
        specs[mn] = (m, w_mean, w_var, b_mean, b_var)
    return specs


@contextmanager
def _local_forwards(specs: dict, noise: dict):
    """Each module of ``specs`` runs z = μ_W a + μ_b + √(σ_W² a² + σ_b²) ⊙ ``noise[name]`` (once per example)."""

    def make(mn, w_mean, w_var, b_mean, b_var):
        def forward(a):
            if mn not in noise:
                raise ValueError(
                    f"{mn!r} ran twice in one forward: its local reparameterisation is not exact"
                )
            eps = noise.pop(mn)
            dt = a.dtype
            b_mu, b_v = (None, None) if b_mean is None else (b_mean.to(dt), b_var.to(dt))
            mu = F.linear(a, w_mean.to(dt), b_mu)
            v = F.linear(a * a, w_var.to(dt), b_v)
            return mu + v.clamp_min(torch.finfo(dt).tiny).sqrt() * eps.to(dt)

        return forward

    for mn, (m, *spec) in specs.items():
        m.forward = make(mn, *spec)
    try:
        yield
    finally:
        noise.clear()
        for m, *_ in specs.values():
            del m.forward


@torch.no_grad()
def per_example_logits(
    model: nn.Module, x, mean, var, gen, *, modules, rest, batch_size: int = 4096
) -> torch.Tensor:
    """Logits (n, C): row i is f(x_i; w_i) with w_i ∼ Q = N(mean, diag var), independent across rows.

    ``modules``/``rest`` from :func:`local_cover`. Draw order, chunk by chunk (:func:`chunk_size`): ε of
    shape (c, *shape) for each parameter of ``rest``, then (c, out_features) for each module of ``modules``."""
    ref = dict(model.named_parameters())
    specs = _local_specs(model, modules, mean, var)
    taken = {_pname(mn, k) for mn in modules for k, _ in model.get_submodule(mn).named_parameters()}
    fixed = {k: v.to(ref[k].dtype) for k, v in mean.items() if k not in taken and k not in rest}
    mu = {k: mean[k] if k in mean else ref[k].detach() for k in rest}
    sd = {k: var[k].sqrt() for k in rest}
    noise: dict = {}

    def one(params, eps, xi):
        noise.clear()
        noise.update(eps)
        return functional_call(model, {**fixed, **params}, (xi[None],))[0]

    chunk = chunk_size(mu, var, rest, batch_size)
    outs = []
    with _local_forwards(specs, noise):
        for start in range(0, x.shape[0], chunk):
            xc = x[start : start + chunk]
            params, eps = _draw_chunk(xc.shape[0], mu, sd, ref, specs, gen)
            try:
                z = vmap(one)(params, eps, xc)
            except Exception:  # noqa: BLE001 - models vmap cannot run: one example at a time, same draws
                rows = [
                    ({k: v[i] for k, v in params.items()}, {k: v[i] for k, v in eps.items()})
                    for i in range(len(xc))
                ]
                z = torch.stack([one(p, e, xi) for (p, e), xi in zip(rows, xc)])
            outs.append(z)
    return torch.cat(outs)


def _draw_chunk(c: int, mu, sd, ref, specs, gen) -> tuple[dict, dict]:
    """Per-example weights {name: (c, *shape)} of the non-local noisy parameters, then the local modules'
    ε {module: (c, out_features)}, drawn from ``gen`` in that order."""
    params = {}
    for k, m in mu.items():
        e = devices.randn((c, *m.shape), generator=gen, dtype=m.dtype, device=m.device)
        params[k] = e.mul_(sd[k]).add_(m).to(ref[k].dtype)
    eps = {}
    for mn, (mod, w_mean, *_) in specs.items():
        w = mod.weight
        eps[mn] = devices.randn((c, w_mean.shape[0]), generator=gen, dtype=w.dtype, device=w.device)
    return params, eps
