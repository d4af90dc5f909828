"""The pre-distribution (prior code) P = N(w0, diag λ_l²), one scale λ_l per layer.

P is fixed before seeing the data (Achille et al. 2019, Def. 2.1; Eq. 3 needs it data-independent). Its mean w0 is
zero or the network's initial weights (stored in every checkpoint); its scale is one λ_l per layer (the module
that owns the parameter), given as

* a number (the same λ for every layer),
* a dict ``{layer name: λ}`` (every layer must be present),
* ``"weights"``: λ_l² = mean over the layer of (w − w0)², the scale "set from the layer's weights".

Learned scales (λ_l² = mean(w² + σ²) at the optimum) and grids are handled by the estimators that need them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .._base.checks import check_positive, named_trainable
from ..curvature.result import layer_of

PRIOR_MEANS = ("zero", "init")


def check_scale(name: str, value) -> float:
    """λ as a float, ``ValueError`` naming ``name`` unless λ > 0 and both λ² and 1/λ² are finite float64
    numbers (about 1e-154 < λ < 1e154): the closed forms divide by λ² and by β/λ²."""
    lam = check_positive(name, value)
    lam2 = lam * lam
    if not (math.isfinite(lam2) and lam2 > 0 and math.isfinite(1.0 / lam2)):
        raise ValueError(
            f"{name}={lam:g} is out of range: λ² = {lam2:g} is not a positive finite float64 number "
            "(use 1e-150 < λ < 1e150)"
        )
    return lam


@dataclass(frozen=True)
class GaussianPrior:
    """P = N(w0, diag λ²): ``mean[name]`` shaped like the parameter, ``scale[layer]`` = λ_l (> 0)."""

    mean: dict[str, torch.Tensor]
    scale: dict[str, float]

    def variance(self, name: str) -> float:
        """λ² of the layer that owns parameter ``name``."""
        return self.scale[layer_of(name)] ** 2

    def with_scale(self, scale: Mapping[str, float]) -> GaussianPrior:
        return GaussianPrior(
            self.mean, {k: check_scale(f"prior_scale[{k!r}]", scale[k]) for k in self.scale}
        )

    def to_dict(self) -> dict:
        return {
            "scale": dict(self.scale),
            "mean_norm": math.sqrt(sum(float(m.pow(2).sum()) for m in self.mean.values())),
        }


def make_prior(
    model: nn.Module,
    *,
    prior_scale: float | Mapping[str, float] | str,
    prior_mean: str | Mapping[str, torch.Tensor] = "zero",
    init_state: Mapping[str, torch.Tensor] | None = None,
) -> GaussianPrior:
    """Build P for the trainable parameters of ``model``.

    ``prior_mean``: ``"zero"``, ``"init"`` (needs ``init_state``, e.g. ``Checkpoint.init_state_dict``) or a
    dict of tensors keyed like ``model.named_parameters()``. ``prior_scale``: see the module docstring.
    Raises ``ValueError`` for λ ≤ 0, NaN, λ whose square is not a finite positive float64 number
    (:func:`check_scale`), a missing layer or a mean of the wrong shape.
    """
    params = {k: p.detach() for k, p in named_trainable(model).items()}
    if isinstance(prior_mean, str):
        if prior_mean == "zero":
            mean = {k: torch.zeros_like(p, dtype=torch.float64) for k, p in params.items()}
        elif prior_mean == "init":
            if init_state is None:
                raise ValueError(
                    "prior_mean='init' needs the initial weights (init_state, stored in checkpoints)"
                )
            mean = _mean_from(init_state, params, "init_state")
        else:
            raise ValueError(
                f"unknown prior_mean={prior_mean!r}; expected 'zero', 'init' or a dict of tensors"
            )
    else:
        mean = _mean_from(prior_mean, params, "prior_mean")
    layers = list(dict.fromkeys(layer_of(k) for k in params))
    if isinstance(prior_scale, str):
        if prior_scale != "weights":
            raise ValueError(
                f"unknown prior_scale={prior_scale!r}; expected a number, a dict or 'weights'"
            )
        scale = {}
        for layer in layers:
            diffs = [(params[k].double() - mean[k]).pow(2) for k in params if layer_of(k) == layer]
            ms = float(torch.cat([d.reshape(-1) for d in diffs]).mean())
            if ms <= 0:
                raise ValueError(
                    f"prior_scale='weights': layer {layer!r} equals the prior mean; give a scale"
                )
            scale[layer] = check_scale(f"prior_scale='weights' (layer {layer!r})", math.sqrt(ms))
    elif isinstance(prior_scale, (list, tuple)):
        raise ValueError(
            "prior_scale: a grid of scales is chosen by information(method='fisher', prior_scale=[...]); "
            "a prior needs one number, a dict per layer or 'weights'"
        )
    elif isinstance(prior_scale, Mapping):
        missing = [layer for layer in layers if layer not in prior_scale]
        if missing:
            raise ValueError(f"prior_scale has no entry for layer(s) {missing}")
        scale = {
            layer: check_scale(f"prior_scale[{layer!r}]", prior_scale[layer]) for layer in layers
        }
    else:
        lam = check_scale("prior_scale", prior_scale)
        scale = dict.fromkeys(layers, lam)
    return GaussianPrior(mean, scale)


def _mean_from(src: Mapping[str, torch.Tensor], params: dict, what: str) -> dict[str, torch.Tensor]:
    out = {}
    for k, p in params.items():
        if k not in src:
            raise ValueError(f"{what} has no entry for parameter {k!r}")
        m = torch.as_tensor(src[k]).detach().to(torch.float64)
        if m.shape != p.shape:
            raise ValueError(
                f"{what}[{k!r}] has shape {tuple(m.shape)}, parameter has {tuple(p.shape)}"
            )
        if not bool(torch.isfinite(m).all()):
            raise ValueError(f"{what}[{k!r}] contains NaN/Inf")
        out[k] = m.to(p.device)
    return out
