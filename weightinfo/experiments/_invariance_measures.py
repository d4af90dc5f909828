"""Pieces of the invariance experiment that stand alone: rank statistics, the normalised variance, directions.

* :func:`spearman_ci` — Spearman's ρ between two sequences (``scipy.stats.spearmanr``) with a percentile
  bootstrap 95 % interval over the *items* (networks, or layers): resample the pairs with replacement, seeded,
  drop the resamples where ρ is undefined (a constant resample), take the 2.5 / 97.5 percentiles.
* :func:`normalised_variance` — the normalised variance of Quiroga et al. ("Measuring (in)variances in
  convolutional networks"; the ``tmeasures`` package, ``NormalizedVarianceInvariance``), per unit u:

      NV(u) = TV(u) / SV(u),   TV(u) = mean_x Var_θ a_u(g(x, θ)),   SV(u) = mean_θ Var_x a_u(g(x, θ)),

  the variance of the unit's activation across the transformations θ of one sample (averaged over samples)
  over its variance across samples (averaged over transformations); a layer's value is the mean over its units.
  0: the unit ignores the transformation; 1: the transformation moves it as much as changing the sample does.
  Units with SV = 0 are left out of the mean (``tmeasures`` sets 0/0 to 1 and c/0 to ∞; dead ReLU units would
  then pull every layer towards 1), and their count is returned.
* :func:`class_direction` — the "class-relevant" nuisance x + θ·d, d the unit-norm difference of two class
  means (a direction that changes what the image shows, the control for the nuisance Fisher).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["activations", "class_direction", "format_rho_ci", "normalised_variance", "spearman_ci"]


def _rho(a, b) -> float:
    from scipy.stats import spearmanr

    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)


def spearman_ci(
    a: Sequence[float],
    b: Sequence[float],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """Spearman ρ of ``a`` vs ``b`` with a seeded percentile bootstrap interval over the pairs.

    Returns ``{"rho", "ci_low", "ci_high", "n", "n_boot_used"}`` (NaN → None where undefined)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(
            f"spearman_ci needs two 1-d sequences of one length, got {a.shape}, {b.shape}"
        )
    rho = _rho(a, b)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        i = rng.integers(0, len(a), len(a))
        r = _rho(a[i], b[i])
        if not math.isnan(r):
            boots.append(r)
    lo = hi = math.nan
    if boots:
        q = (1 - level) / 2
        lo, hi = (float(v) for v in np.quantile(boots, [q, 1 - q]))

    def none(v):
        return None if math.isnan(v) else v

    return {
        "rho": none(rho),
        "ci_low": none(lo),
        "ci_high": none(hi),
        "n": len(a),
        "n_boot_used": len(boots),
    }


def normalised_variance(acts: torch.Tensor) -> tuple[float, int]:
    """Mean over units of TV/SV for activations ``acts`` shaped (transformations T, samples N, units...).

    Returns (layer value, number of units left out because SV = 0). See the module docstring."""
    a = acts.detach().double().flatten(2)  # T, N, U
    if a.shape[0] < 2 or a.shape[1] < 2:
        raise ValueError(
            f"normalised_variance needs ≥ 2 transformations and samples, got {tuple(a.shape)}"
        )
    tv = a.var(dim=0, unbiased=False).mean(dim=0)  # across θ, per sample, then mean over samples
    sv = a.var(dim=1, unbiased=False).mean(dim=0)  # across samples, per θ, then mean over θ
    ok = sv > 1e-12 * max(float(sv.max()), 1e-300)
    if not bool(ok.any()):
        return math.nan, int(ok.numel())
    return float((tv[ok] / sv[ok]).mean()), int((~ok).sum())


def activations(
    model: torch.nn.Module, x: torch.Tensor, layers: Sequence[str]
) -> dict[str, torch.Tensor]:
    """The deterministic activations (outputs of the named modules; ``"output"``: the model's output)."""
    got: dict[str, torch.Tensor] = {}
    mods = dict(model.named_modules())
    hooks = [
        mods[n].register_forward_hook(lambda m, i, o, n=n: got.__setitem__(n, o.detach()))
        for n in layers
        if n != "output"
    ]
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in hooks:
            h.remove()
    if "output" in layers:
        got["output"] = out.detach()
    return {n: got[n] for n in layers}


def class_direction(x: torch.Tensor, y: torch.Tensor, classes: tuple[int, int]):
    """The nuisance (x, θ) ↦ x + θ·d, d = (mean of class a − mean of class b)/‖·‖ over ``x``; (fn, d)."""
    a, b = classes
    d = x[y == a].double().mean(0) - x[y == b].double().mean(0)
    d = (d / d.norm()).to(x.dtype)

    def fn(z: torch.Tensor, theta) -> torch.Tensor:
        return z + torch.as_tensor(theta, dtype=z.dtype) * d.to(z.dtype)

    fn.nuisance_name = f"class-direction({a}-{b})"  # type: ignore[attr-defined]
    return fn, d


def format_rho_ci(d: dict) -> str:
    """A :func:`spearman_ci` result as text: ``+0.96 [+0.71, +1.00]``, just ρ without an interval, or
    ``undefined``."""
    if d["rho"] is None:
        return "undefined"
    if d["ci_low"] is None:
        return f"{d['rho']:+.2f}"
    return f"{d['rho']:+.2f} [{d['ci_low']:+.2f}, {d['ci_high']:+.2f}]"
