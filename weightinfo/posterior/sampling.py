"""Forward passes with weights drawn from a Gaussian post-distribution Q, and the Monte Carlo E_Q[L_D].

Two ways to run the network with noisy weights w ∼ Q = N(μ, diag σ²):

* **General path** (:func:`sample_forward`, any module): w = μ + σ ⊙ ε, ε ∼ N(0, I) drawn once per call and
  shared by every sample of the batch, then ``torch.func.functional_call``. Differentiable in μ and σ (the
  reparameterisation trick, Kingma & Welling 2014).
* **Local reparameterisation** (Kingma, Salimans & Welling 2015, "Variational dropout and the local
  reparameterization trick", §2.3) for ``nn.Linear`` and ``nn.Conv2d``: instead of the weights, sample the
  layer's output given its input a,

      mean = layer(a; μ_W, μ_b),   var = layer(a² + floor; σ_W², σ_b²),   out = mean + √var ⊙ ε,

  with one ε per output activation (``floor`` = 0, or Task2Vec's 1e-2).

What is exact. For ``nn.Linear`` on a (B, d) input the units z_j = Σ_k W_jk a_k + b_j of one sample use disjoint
weights, so given a they are independent Gaussians with exactly the mean and variance above: the local draw has
the same joint law as a weight draw *for each sample separately*. By induction this holds for the whole output
of a network in which every such layer is called once per forward and owns its weights (independent of all
other weights), provided the network treats the samples of a batch independently (eval mode). It does not hold across samples: under Q the outputs of two samples are correlated (they share
W), under the local draw they are independent. Since L_D = (1/N) Σ_i ℓ_i only needs each sample's own law,
E[L_D] is unchanged (unbiased for E_Q[L_D]); the spread of L_D over draws is not (usually smaller).
For ``nn.Conv2d`` (or a Linear on (B, T, d) inputs) one filter is shared by all positions of a sample, so
positions are correlated under Q but independent under the local draw: each activation's marginal is exact, the
joint within a sample is not, and after a nonlinearity E[ℓ_i] is that of a network with weights drawn
independently per position — an approximation (Task2Vec's and Kingma et al.'s choice), not E_Q.
:func:`find_local_reparam_modules` therefore picks, with ``mode="exact"``, only Linear modules called once with
2-D input and unshared weights; ``mode="all"`` adds Conv2d and Linear on any input (still called once).

Units: losses are mean per-sample losses L_D in nats (the likelihoods of ``weightinfo._base.likelihoods``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from contextlib import contextmanager

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from .._base import devices
from .._base import distributed as dist
from .._base.batches import iter_batches
from .._base.checks import check_model, named_trainable
from .._base.likelihoods import get_loss
from .gaussian import DiagGaussian

LOCAL_REPARAM_MODES = ("exact", "all")


def sample_forward(
    model: nn.Module,
    x: torch.Tensor,
    mean: Mapping[str, torch.Tensor],
    std: Mapping[str, torch.Tensor],
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``model(x)`` with weights w = mean + std ⊙ ε, ε ∼ N(0, I), one draw shared by the whole batch.

    ``mean`` is keyed like ``model.named_parameters()`` (any subset; other parameters keep their values);
    ``std`` is keyed like ``mean`` (a missing entry means no noise). Noise is drawn in ``mean``'s order and
    dtype, and the weights are cast to each parameter's dtype. Differentiable w.r.t. ``mean`` and ``std``.

    >>> m = torch.nn.Linear(3, 2).double()
    >>> x = torch.randn(4, 3, dtype=torch.float64)
    >>> mu = {k: p.detach() for k, p in m.named_parameters()}
    >>> zero = {k: torch.zeros_like(v) for k, v in mu.items()}
    >>> bool(torch.equal(sample_forward(m, x, mu, zero), m(x)))
    True
    """
    ref = dict(model.named_parameters())
    return functional_call(model, _draw(ref, mean, std, generator), (x,))


def find_local_reparam_modules(
    model: nn.Module, x: torch.Tensor, *, mode: str = "exact", names: Iterable[str] | None = None
) -> list[str]:
    """Names of the Linear/Conv2d modules where the local reparameterisation may replace weight sampling.

    Runs one probe forward on ``x`` (no grad) and keeps plain ``nn.Linear`` / ``nn.Conv2d`` modules (their class
    ``forward``, no instance override) that are called exactly once and whose parameters no other module
    shares. ``mode="exact"``: only Linear on 2-D input (exact per sample, see module docstring);
    ``mode="all"``: also Conv2d and Linear on higher-rank input (per-activation marginals only). ``names``:
    parameter names that carry noise; a module with none of them is left out.
    """
    if mode not in LOCAL_REPARAM_MODES:
        raise ValueError(
            f"unknown local_reparam mode={mode!r}; expected one of {LOCAL_REPARAM_MODES}"
        )
    owners: dict[int, int] = {}
    for _, m in model.named_modules(remove_duplicate=False):
        for p in m._parameters.values():
            if p is not None:
                owners[id(p)] = owners.get(id(p), 0) + 1
    wanted = None if names is None else set(names)
    cands = {}
    for mn, m in model.named_modules():
        if type(m) not in (nn.Linear, nn.Conv2d) or "forward" in m.__dict__:
            continue
        pnames = [_pname(mn, k) for k, p in m._parameters.items() if p is not None]
        if any(owners[id(p)] > 1 for p in m._parameters.values() if p is not None):
            continue
        if wanted is not None and not wanted.intersection(pnames):
            continue
        cands[mn] = m
    calls: dict[str, list[int]] = {mn: [] for mn in cands}
    hooks = [
        m.register_forward_pre_hook(lambda _m, args, mn=mn: calls[mn].append(args[0].ndim))
        for mn, m in cands.items()
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    out = []
    for mn, m in cands.items():
        if len(calls[mn]) != 1:
            continue
        if mode == "exact" and not (type(m) is nn.Linear and calls[mn][0] == 2):
            continue
        out.append(mn)
    return out


def local_reparam_forward(
    model: nn.Module,
    x: torch.Tensor,
    mean: Mapping[str, torch.Tensor],
    var: Mapping[str, torch.Tensor],
    generator: torch.Generator | None = None,
    *,
    modules: Iterable[str] | None = None,
    input_floor: float = 0.0,
) -> torch.Tensor:
    """``model(x)`` under Q = N(mean, diag var): local reparameterisation in ``modules``, weight draws elsewhere.

    ``modules``: module names handled by the local reparameterisation (default: probe with
    ``find_local_reparam_modules(mode="exact")``; ``()``: none). Parameters of other modules that appear in
    ``var`` get one weight draw for the batch (general path, drawn first, in ``var``'s order); then each local
    module draws one ε per output activation when it runs. ``input_floor`` is added to a² in the variance
    (Task2Vec uses 1e-2). Missing ``var`` entries mean zero variance. Differentiable w.r.t. ``var``.
    """
    ref = dict(model.named_parameters())
    if modules is None:
        modules = find_local_reparam_modules(model, x, mode="exact", names=var)
    local, taken = {}, set()
    for mn in modules:
        m = model.get_submodule(mn)
        wn, bn = _pname(mn, "weight"), _pname(mn, "bias")
        taken.update((wn, bn))
        w_mean = mean[wn] if wn in mean else m.weight
        w_var = var.get(wn)
        b_mean = mean.get(bn, m.bias) if m.bias is not None else None
        b_var = var.get(bn) if m.bias is not None else None
        local[mn] = (m, w_mean, w_var, b_mean, b_var)
    rest_mean = {k: v for k, v in mean.items() if k not in taken}
    rest_std = {k: v.sqrt() for k, v in var.items() if k not in taken}
    params = _draw(ref, rest_mean, rest_std, generator)
    with _local_forwards(local, generator, float(input_floor)):
        return functional_call(model, params, (x,))


def expected_loss(
    model: nn.Module,
    data,
    posterior: DiagGaussian,
    *,
    loss: str = "cross_entropy",
    mc_samples: int = 16,
    seed: int = 0,
    batch_size: int = 256,
    local_reparam: bool | str = False,
) -> tuple[float, float]:
    """Monte Carlo E_{w∼Q}[L_D(w)] (mean per-sample loss, nats) and its standard error.

    Each of the ``mc_samples`` draws is **one** weight sample w_s ∼ Q evaluated on **all** of ``data``:
    Ê = (1/S) Σ_s L_D(w_s), stderr = std_s(L_D(w_s)) / √S (NaN for S = 1). With ``local_reparam`` (True =
    ``"exact"``, or ``"all"``) each draw is one pass over the data with fresh local noise instead (unbiased in
    ``"exact"`` mode; see the module docstring for ``"all"``). Keys of ``posterior`` must be trainable
    parameters of ``model``; parameters not in it keep their values. Draws are seeded by ``seed``.
    """
    check_model(model)
    _check_posterior_keys(model, posterior.mean, "posterior")
    e, se, _ = posterior_mc_loss(
        model,
        data,
        posterior,
        loss,
        mc_samples,
        seed,
        batch_size,
        local_reparam_mode(local_reparam),
    )
    return e, se


def local_reparam_mode(local_reparam: bool | str) -> str | None:
    """The sampling mode of a ``local_reparam`` argument: ``False`` → None (weight draws), ``True`` →
    ``"exact"``, ``"exact"``/``"all"`` as given; ``ValueError`` naming it otherwise."""
    if local_reparam not in (False, True, *LOCAL_REPARAM_MODES):
        raise ValueError(
            f"unknown local_reparam={local_reparam!r}; expected a bool, 'exact' or 'all'"
        )
    return {False: None, True: "exact"}.get(local_reparam, local_reparam)


def posterior_mc_loss(
    model, data, posterior: DiagGaussian, loss, mc_samples, seed, batch_size, mode
):
    """:func:`mc_expected_loss` under ``posterior`` (``mode`` from :func:`local_reparam_mode`), unchecked:
    ``(mean, stderr, N)``."""
    return mc_expected_loss(
        model,
        data,
        posterior.mean,
        posterior.var,
        loss=loss,
        mc_samples=mc_samples,
        seed=seed,
        batch_size=batch_size,
        local_reparam=mode,
    )


def mc_expected_loss(
    model: nn.Module,
    data,
    mean: Mapping[str, torch.Tensor],
    var: Mapping[str, torch.Tensor],
    *,
    loss: str,
    mc_samples: int,
    seed: int,
    batch_size: int,
    local_reparam: str | None = None,
    input_floor: float = 0.0,
) -> tuple[float, float, int]:
    """Engine of :func:`expected_loss` without the checks; ``var`` may cover a subset of ``mean``.

    Returns ``(mean, stderr, N)``. With ``var = {}`` and one draw it is the deterministic L_D(mean).

    Distributed (``weightinfo._base.distributed``): each rank passes its own shard; each draw's loss sum and
    count are all-reduced (collective), so every rank gets the mean over the union. A weight draw is the same on
    every rank (same ``seed``); local-reparameterisation noise, per activation, is drawn with
    ``rank_seed(seed)`` (independent across ranks; unbiased as before).
    """
    if int(mc_samples) != mc_samples or mc_samples < 1:
        raise ValueError(f"mc_samples must be a positive integer, got {mc_samples!r}")
    lossfn = get_loss(loss)
    ref = dict(model.named_parameters())
    device = next(model.parameters()).device
    # One weight draw serves all ranks (same seed); per-activation noise is independent across ranks.
    gen_seed = int(seed) if local_reparam is None else dist.rank_seed(int(seed))
    gen = torch.Generator(device=device).manual_seed(gen_seed)
    std = {k: v.sqrt() for k, v in var.items()}
    modules = None
    values, n = [], 0
    with torch.no_grad():
        for s in range(int(mc_samples)):
            total = torch.zeros((), dtype=torch.float64, device=device)
            n = 0
            w = _draw(ref, mean, std, gen) if local_reparam is None else None
            for x, y in iter_batches(data, device=device, batch_size=batch_size):
                if local_reparam is None:
                    z = functional_call(model, w, (x,))
                else:
                    if modules is None:
                        modules = find_local_reparam_modules(
                            model, x, mode=local_reparam, names=var
                        )
                    z = local_reparam_forward(
                        model, x, mean, var, gen, modules=modules, input_floor=input_floor
                    )
                if s == 0 and n == 0:
                    lossfn.check_targets(z, y)
                total += lossfn.per_sample(z, y).to(torch.float64).sum()
                n += x.shape[0]
            if dist.active():  # the union's sum and count
                red = dist.reduce_sums({"total": total, "n": n})
                total, n = red["total"], red["n"]
            values.append(total / n)
    vals = torch.stack(values)
    se = float(vals.std() / math.sqrt(len(vals))) if len(vals) > 1 else float("nan")
    return float(vals.mean()), se, n


def _pname(module_name: str, local: str) -> str:
    return f"{module_name}.{local}" if module_name else local


def _draw(ref, mean, std, generator) -> dict[str, torch.Tensor]:
    """{name: mean + std ⊙ ε} cast to the parameter's dtype (no noise where ``std`` has no entry)."""
    out = {}
    for k, m in mean.items():
        if k not in ref:
            raise ValueError(f"{k!r} is not a parameter of the model")
        s = std.get(k)
        if s is not None:
            eps = devices.randn(m.shape, generator=generator, dtype=m.dtype, device=m.device)
            m = m + s.expand_as(m) * eps
        out[k] = m.to(ref[k].dtype)
    return out


@contextmanager
def _local_forwards(local: dict, generator, floor: float):
    """Temporarily replace the forward of each Linear/Conv2d in ``local`` by its local-reparameterised one."""
    for m, w_mean, w_var, b_mean, b_var in local.values():
        m.forward = _make_forward(m, w_mean, w_var, b_mean, b_var, generator, floor)
    try:
        yield
    finally:
        for m, *_ in local.values():
            del m.forward


def _make_forward(m, w_mean, w_var, b_mean, b_var, generator, floor):
    if isinstance(m, nn.Conv2d):

        def op(a, w, b):
            return m._conv_forward(a, w, b)
    else:
        op = F.linear

    def forward(a):
        dt = a.dtype
        mu = op(a, w_mean.to(dt), None if b_mean is None else b_mean.to(dt))
        if w_var is None and b_var is None:
            return mu
        wv = torch.zeros_like(w_mean, dtype=dt) if w_var is None else w_var.expand_as(w_mean).to(dt)
        v = op(a.pow(2) + floor, wv, None if b_var is None else b_var.to(dt))
        eps = devices.randn(mu.shape, generator=generator, dtype=dt, device=mu.device)
        return mu + v.clamp_min(torch.finfo(dt).tiny).sqrt() * eps

    return forward


def _check_posterior_keys(model, mean: Mapping[str, torch.Tensor], what: str) -> None:
    params = named_trainable(model)
    for k, v in mean.items():
        if k not in params:
            raise ValueError(
                f"{what} has parameter {k!r}, which is not a trainable parameter of the model"
            )
        if tuple(v.shape) != tuple(params[k].shape):
            raise ValueError(
                f"{what}[{k!r}] has shape {tuple(v.shape)}, parameter has {tuple(params[k].shape)}"
            )
