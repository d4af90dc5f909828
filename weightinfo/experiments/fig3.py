"""Fig 3 of Achille, Paolini & Soatto (2019): the zigzag toy — batch size, Fisher and Shannon information.

The paper (§5.1 of ``reference/paper.md``): μ ∼ U[−1, 1]; D = {x_i}, N = 100, x_i ∼ N(μ, 1);
L_D(θ) = (1/N) Σ (x_i − φ(θ))² with a fixed piecewise-linear zigzag φ, steep near 0 and shallow far away, every
linear piece holding a global minimum with equal loss. SGD with several batch sizes; Q(θ|D) = N(θ*, F⁻¹) per run,
F = N s² on a piece of slope s. Reported trend: smaller batches → lower Fisher and lower information. The paper
leaves the geometry, η, steps and init unstated; this follows [A]'s rebuild where it is silent.

Construction (exact):

* Zigzag: ``pieces_per_side`` = 10 pieces on each side of 0 over [−``half_width``, ``half_width``] = [−1.5, 1.5],
  widths growing by ``width_ratio`` = 1.4 outwards (w_j = w_0 · 1.4^j, w_0 = 1.5 · 0.4 / (1.4¹⁰ − 1) ≈ 0.0215);
  φ is linear between the knots and takes the value ``amplitude`` · (−1)^j (A = 1) at the j-th knot counted from 0
  on either side (φ is even, φ(0) = A). |slope| = 2A / w_j: 93.1 (innermost) → 4.5 (outermost). Beyond ±1.5 the
  outermost pieces continue linearly. Every piece spans [−A, A], so φ(θ) = mean(x) has a solution on every piece
  when |mean(x)| ≤ A = 1 (for |mean(x)| > 1, ≈ 4 % of datasets, the minimiser is a knot where φ = ±1 or a point on
  the outermost extended pieces).
* Data: K = ``n_datasets`` datasets, μ_k ∼ U[−1, 1], x_{k,i} ∼ N(μ_k, 1), N = ``n``; seeded by ``data_seed``.
* Training: for each dataset, S = ``seeds`` runs. Seed s fixes the init θ_0 ∼ U[−``init_range``, ``init_range``]
  and the batch indices (drawn with replacement, B per step; B = N is full-batch GD), the same for every dataset.
  SGD θ ← θ − η ∇ (1/B) Σ_{i∈batch} (x_i − φ(θ))² = θ − 2η φ'(θ) (φ(θ) − mean of the batch), η = ``lr``,
  ``n_steps`` steps, float64, all K·S runs at once as one tensor.
* Posterior (β = 1, the paper's Fig 3): Q(θ | D_k, seed s) = N(θ_T, 1/F), F = N s² with s the slope of the piece
  holding the final iterate θ_T (the Fisher of the Gaussian model x ∼ N(φ(θ), 1) summed over N points; the
  curvature of L_D is 2 s²).
* Reported per batch size: E ln F; the paper-style "Shannon information" (all K·S runs pooled as separate
  components, I(θ; D, seed) — :func:`weightinfo.dynamics.shannon_information`, mixture estimator); the
  seed-averaged I(θ; D) with Q(θ | D_k) = (1/S) Σ_s Q_{k,s} (:func:`weightinfo.dynamics.seed_averaged_information`);
  I(θ; D | seed) (mean over seeds of the mixture estimate over the K datasets); the entropy of the piece reached
  (pooled over all runs).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

from ._report_files import argv_command, finish

__all__ = ["FIG3", "FIG3_QUICK", "run_fig3", "zigzag", "knots"]

FIG3: dict[str, Any] = {
    "n": 100,
    "pieces_per_side": 10,
    "half_width": 1.5,
    "width_ratio": 1.4,
    "amplitude": 1.0,
    "batch_sizes": [1, 3, 10, 30, 100],
    "lr": 1e-4,
    "n_steps": 20_000,
    "n_datasets": 300,
    "seeds": 12,
    "init_range": 0.1,
    "data_seed": 0,
    "mc_samples": 16,
}

FIG3_QUICK: dict[str, Any] = {
    **FIG3,
    "batch_sizes": [1, 10, 100],
    "n_steps": 500,
    "n_datasets": 20,
    "seeds": 3,
    "mc_samples": 4,
}


def knots(s: dict[str, Any]) -> tuple[list[float], list[float]]:
    """Knot positions (ascending, 2·pieces_per_side + 1 of them) and φ at each knot."""
    m, r, a = int(s["pieces_per_side"]), float(s["width_ratio"]), float(s["amplitude"])
    w0 = float(s["half_width"]) * (r - 1) / (r**m - 1)
    pos = [0.0]
    for j in range(m):
        pos.append(pos[-1] + w0 * r**j)
    pos[-1] = float(s["half_width"])
    vals = [a * (-1) ** j for j in range(m + 1)]
    return [-p for p in pos[:0:-1]] + pos, vals[:0:-1] + vals


def zigzag(theta, t, v):
    """(φ(θ), φ'(θ), piece index) for knots ``t`` and knot values ``v`` (tensors); outer pieces extended."""
    import torch

    slope = (v[1:] - v[:-1]) / (t[1:] - t[:-1])
    idx = (torch.searchsorted(t, theta, right=True) - 1).clamp(0, len(slope) - 1)
    return v[idx] + slope[idx] * (theta - t[idx]), slope[idx], idx


def _train(x, batch: int, s: dict, t, v, gen_seed: int):
    """SGD for all (K, S) runs; returns the final θ (K, S)."""
    import torch

    K, n = x.shape
    S = int(s["seeds"])
    g = torch.Generator().manual_seed(gen_seed)
    r = float(s["init_range"])
    theta = ((torch.rand(S, generator=g, dtype=torch.float64) * 2 - 1) * r).expand(K, S).clone()
    lr = float(s["lr"])
    full = x.mean(1, keepdim=True).expand(K, S)
    for _ in range(int(s["n_steps"])):
        if batch >= n:
            xb = full
        else:
            idx = torch.randint(0, n, (S * batch,), generator=g)
            xb = x[:, idx].reshape(K, S, batch).mean(-1)
        phi, d, _ = zigzag(theta, t, v)
        theta -= 2 * lr * d * (phi - xb)
    return theta


def run_fig3(
    out_dir: str | os.PathLike | None = None,
    *,
    quick: bool = False,
    log: Callable[[str], None] = print,
    settings: dict[str, Any] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Train the zigzag toy at every batch size, estimate the information; report.

    ``settings`` overrides keys of :data:`FIG3` (or :data:`FIG3_QUICK` with ``quick``)."""
    import torch

    from .._base.machine import machine_info
    from .._base.provenance import made_by
    from ..dynamics import seed_averaged_information, shannon_information
    from ._fig3_report import analyse, reading, write_outputs

    s = {**(FIG3_QUICK if quick else FIG3), **(settings or {})}
    t_start = time.perf_counter()
    made = made_by(quick=quick)
    tk, vk = knots(s)
    t = torch.tensor(tk, dtype=torch.float64)
    v = torch.tensor(vk, dtype=torch.float64)
    slopes = [(vk[i + 1] - vk[i]) / (tk[i + 1] - tk[i]) for i in range(len(tk) - 1)]
    n, K, S = int(s["n"]), int(s["n_datasets"]), int(s["seeds"])
    g = torch.Generator().manual_seed(int(s["data_seed"]))
    mu = torch.rand(K, generator=g, dtype=torch.float64) * 2 - 1
    x = mu[:, None] + torch.randn(K, n, generator=g, dtype=torch.float64)
    xbar = x.mean(1)
    log(
        f"zigzag: {len(slopes)} pieces on [{tk[0]:g}, {tk[-1]:g}], |slope| {abs(slopes[len(slopes) // 2]):.1f} → "
        f"{abs(slopes[-1]):.2f}; K = {K} datasets × S = {S} seeds, N = {n}, η = {s['lr']:g}, "
        f"{s['n_steps']} steps, B ∈ {list(s['batch_sizes'])}"
    )
    rows: list[dict[str, Any]] = []
    t_train = t_info = 0.0
    ms = int(s["mc_samples"])
    for b in s["batch_sizes"]:
        t0 = time.perf_counter()
        theta = _train(x, int(b), s, t, v, gen_seed=1000 + int(s["data_seed"]))
        t1 = time.perf_counter()
        phi, d, idx = zigzag(theta, t, v)
        fisher = n * d**2  # (K, S)
        var = 1.0 / fisher
        post = [
            [({"theta": theta[k, j : j + 1]}, {"theta": var[k, j : j + 1]}) for j in range(S)]
            for k in range(K)
        ]
        flat = [p for row in post for p in row]
        joint = shannon_information(flat, "mixture", samples=ms, seed=0)
        sa, sa_se = seed_averaged_information(post, samples=ms, seed=0)
        per_seed = [
            shannon_information([post[k][j] for k in range(K)], "mixture", samples=ms, seed=0).nats
            for j in range(S)
        ]
        counts = torch.bincount(idx.reshape(-1), minlength=len(slopes)).double()
        p = counts / counts.sum()
        ent = float(-(p[p > 0] * p[p > 0].log()).sum())
        t_info += time.perf_counter() - t1
        t_train += t1 - t0
        row = {
            "batch": int(b),
            "temperature_lr_over_b": float(s["lr"]) / int(b),
            "mean_ln_fisher": float(fisher.log().mean()),
            "std_ln_fisher": float(fisher.log().std()),
            "shannon_joint": joint.nats,
            "shannon_joint_stderr": joint.stderr,
            "shannon_seed_averaged": sa,
            "shannon_seed_averaged_stderr": sa_se,
            "shannon_per_seed": float(sum(per_seed) / S),
            "piece_entropy": ent,
            "piece_counts": [int(c) for c in counts],
            "mean_abs_residual": float((phi - xbar[:, None]).abs().mean()),
            "final_theta_sample": [float(z) for z in theta[0]],
            "final_piece_sample": [int(z) for z in idx[0]],
            "final_fisher_sample": [float(z) for z in fisher[0]],
        }
        rows.append(row)
        log(
            f"B = {b:>3}: E ln F {row['mean_ln_fisher']:.3f}  joint (paper-style) {joint.nats:.3f}  "
            f"seed-averaged {sa:.3f}  per-seed {row['shannon_per_seed']:.3f}  H(piece) {ent:.3f} nats"
        )
    if command is None:
        command = argv_command()
    settings_out = dict(s)
    settings_out.update(
        knots=tk, knot_values=vk, slopes=slopes, beta=1.0, ceiling_joint=math.log(K * S),
        ceiling_seed_averaged=math.log(K),
        posterior="Q(theta|D, seed) = N(theta_T, 1/F), F = N s^2, s = slope of the piece holding theta_T",
    )  # fmt: skip
    out: dict[str, Any] = {
        "experiment": "fig3",
        "description": (
            "Zigzag toy (Achille, Paolini & Soatto 2019, Fig 3): Fisher and Shannon information of SGD's "
            "final weight vs batch size, paper-style (seeds pooled) and seed-averaged"
        ),
        "quick": bool(quick),
        "settings": settings_out,
        "mu_sample": [float(z) for z in mu[:5]],
        "xbar_sample": [float(z) for z in xbar[:5]],
        "batches": rows,
        "analysis": analyse(rows),
        "command": command,
        "made_by": made,
        "machine": machine_info(),
        "times_s": {"train": t_train, "information": t_info},
        "time_s": time.perf_counter() - t_start,
    }
    return finish(out, out_dir, reading=reading, write_outputs=write_outputs, log=log)
