"""Fig 1 of Achille, Paolini & Soatto (2019): ln|F| over the training of a small network on 2-D points.

The paper (§5.1 of ``reference/paper.md``) shows ln|F| (range ≈ 0–450) of a 3-layer network on 2-D points rising in
"bumps" as decision boundaries form, then a late decrease ("compression"). This experiment reruns it on a
network small enough for everything to be exact:

* Data: ``two-moons`` (:func:`weightinfo.data.load_dataset`, noise 0.1), ``n_samples`` points of which 80 % train.
* Network: 2-``hidden``-``hidden``-1 tanh MLP (337 weights for hidden 16), PyTorch's default init (seeded); one
  logit f, Bernoulli likelihood p(y=1|x) = σ(f) (``bce_with_logits``); float64 throughout.
* Training: full-batch ``optimizer`` (``"gd"``: plain gradient descent; ``"adam"``) with learning rate ``lr`` on
  the mean BCE for ``n_steps`` steps; ``n_eval`` log-spaced evaluation steps (and step 0).
* At each evaluation step: the exact Fisher F = (1/N) Σ σ_i(1 − σ_i) ∇f_i ∇f_iᵀ (Jacobian by ``torch.func``),
  ln|F + δI| (``damping`` δ) and ln|I + F/δ| = ln|F + δI| − k ln δ (≥ 0, the part of the log-determinant that the
  training adds to the damping floor), tr F, the dense Hessian H of the mean loss (``torch.func.hessian``) and
  ‖H − F‖_F / ‖F‖_F, train loss / accuracy, mean |f|, and the fraction of a fixed 100 × 100 grid over the data whose
  predicted class changed since the previous evaluation step (and since the step of the ln|F| peak).

Report (``fig1.{json,png,md}``, :mod:`._fig1_report`): the "bumps" (evaluation intervals with the largest rises of
ln|F + δI|, against those where the boundary changed), and whether the late decrease is compression (the decision
boundary still changes) or logit saturation (tr F falls while the boundary stays fixed and H ≈ F).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

from ._report_files import argv_command, finish

__all__ = ["FIG1", "FIG1_QUICK", "run_fig1", "fisher_dense", "hessian_dense"]

FIG1: dict[str, Any] = {
    "dataset": "two-moons",
    "n_samples": 250,  # 200 train, 50 test
    "data_seed": 0,
    "hidden": 16,
    "optimizer": "gd",
    "lr": 0.5,
    "n_steps": 100_000,
    "n_eval": 80,
    "damping": 1e-4,
    "grid": 100,
    "grid_box": (-1.5, 2.5, -1.0, 1.5),
    # an evaluation interval is a "bump" when ln|F + δI| rises by more than this fraction of its total rise
    "bump_fraction": 0.05,
    # the boundary "changed" in an interval when more than this fraction of the grid flipped class
    "boundary_threshold": 0.005,
}

FIG1_QUICK: dict[str, Any] = {**FIG1, "n_steps": 300, "n_eval": 12, "grid": 40}


def _shapes(hidden: int) -> list[tuple[int, ...]]:
    return [(hidden, 2), (hidden,), (hidden, hidden), (hidden,), (1, hidden), (1,)]


def init_weights(hidden: int, seed: int):
    """The flat float64 weight vector of a freshly initialised ``nn.Sequential`` 2-h-h-1 tanh MLP."""
    import torch

    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(2, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, hidden),
        torch.nn.Tanh(), torch.nn.Linear(hidden, 1),
    ).double()  # fmt: skip
    return torch.nn.utils.parameters_to_vector(net.parameters()).detach().clone()


def logits(w, x, hidden: int):
    """f_w(x), shape (N,), for the flat weights ``w`` (``nn.Linear`` layout, ``nn.Sequential`` order)."""
    import torch

    parts, i = [], 0
    for s in _shapes(hidden):
        n = math.prod(s)
        parts.append(w[i : i + n].reshape(s))
        i += n
    w1, b1, w2, b2, w3, b3 = parts
    h = torch.tanh(x @ w1.T + b1)
    h = torch.tanh(h @ w2.T + b2)
    return (h @ w3.T + b3).squeeze(-1)


def mean_loss(w, x, y, hidden: int):
    import torch.nn.functional as F

    return F.binary_cross_entropy_with_logits(logits(w, x, hidden), y)


def fisher_dense(w, x, hidden: int):
    """Exact Fisher of the Bernoulli model, (1/N) Σ σ(1−σ) ∇f ∇fᵀ, (k, k)."""
    import torch
    from torch.func import jacrev

    jac = jacrev(lambda v: logits(v, x, hidden))(w)  # (N, k)
    p = torch.sigmoid(logits(w, x, hidden))
    return (jac.T * (p * (1 - p))) @ jac / len(x)


def hessian_dense(w, x, y, hidden: int):
    """Hessian of the mean BCE loss, (k, k)."""
    from torch.func import hessian

    return hessian(lambda v: mean_loss(v, x, y, hidden))(w)


def eval_steps(n_steps: int, n_eval: int) -> list[int]:
    import numpy as np

    s = np.unique(np.round(np.geomspace(1, n_steps, max(n_eval - 1, 1))).astype(int))
    return [0, *[int(v) for v in s]]


def _grid(s: dict):
    import torch

    x0, x1, y0, y1 = s["grid_box"]
    g = int(s["grid"])
    gx, gy = torch.meshgrid(
        torch.linspace(x0, x1, g, dtype=torch.float64),
        torch.linspace(y0, y1, g, dtype=torch.float64),
        indexing="xy",
    )
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)


def _measure(w, x, y, grid, s: dict) -> tuple[dict[str, float], Any]:
    import torch

    h, d = int(s["hidden"]), float(s["damping"])
    with torch.no_grad():
        fm = fisher_dense(w, x, h)
        hm = hessian_dense(w, x, y, h)
        f = logits(w, x, h)
        k = fm.shape[0]
        logdet = float(torch.linalg.slogdet(fm + d * torch.eye(k, dtype=fm.dtype))[1])
        eig = torch.linalg.eigvalsh(fm)
        cls = logits(w, grid, h) > 0
        row = {
            "logdet": logdet,
            "logdet_above_floor": logdet - k * math.log(d),
            "trace": float(torch.trace(fm)),
            "eig_max": float(eig[-1]),
            "n_eig_above_damping": int((eig > d).sum()),
            "h_minus_f_rel": float(torch.linalg.norm(hm - fm) / torch.linalg.norm(fm)),
            "loss": float(mean_loss(w, x, y, h)),
            "accuracy": float(((f > 0).double() == y).double().mean()),
            "mean_abs_logit": float(f.abs().mean()),
        }
    return row, cls


def run_fig1(
    out_dir: str | os.PathLike | None = None,
    *,
    quick: bool = False,
    seed: int = 0,
    log: Callable[[str], None] = print,
    settings: dict[str, Any] | None = None,
    data_root: str | os.PathLike | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Train, measure ln|F + δI|, tr F, ‖H − F‖/‖F‖ and boundary changes at log-spaced steps; analyse; report.

    ``settings`` overrides keys of :data:`FIG1` (or :data:`FIG1_QUICK` with ``quick``)."""
    import torch

    from .._base.machine import machine_info
    from .._base.provenance import made_by
    from ..data import load_dataset
    from ._fig1_report import analyse, reading, write_outputs

    s = {**(FIG1_QUICK if quick else FIG1), **(settings or {})}
    t_start = time.perf_counter()
    made = made_by(quick=quick)
    ds = load_dataset(s["dataset"], seed=s["data_seed"], n_samples=s["n_samples"], root=data_root)
    x, y = ds.x_train.double(), ds.y_train.double()
    h = int(s["hidden"])
    w0 = init_weights(h, seed)
    w = w0.clone().requires_grad_(True)
    k = w.numel()
    grid = _grid(s)
    steps = eval_steps(int(s["n_steps"]), int(s["n_eval"]))
    log(
        f"{ds.describe()}; 2-{h}-{h}-1 tanh ({k} weights), BCE; full-batch {s['optimizer']} lr {s['lr']:g}, "
        f"{s['n_steps']} steps, {len(steps)} evaluations; δ = {s['damping']:g}"
    )
    opt = torch.optim.Adam([w], lr=s["lr"]) if s["optimizer"] == "adam" else None
    if s["optimizer"] not in ("gd", "adam"):
        raise ValueError(f"optimizer: 'gd' or 'adam', not {s['optimizer']!r}")
    rows: list[dict[str, Any]] = []
    classes: list[Any] = []
    t_train = t_meas = 0.0
    step = 0
    for target in steps:
        t0 = time.perf_counter()
        while step < target:
            loss = mean_loss(w, x, y, h)
            (g,) = torch.autograd.grad(loss, w)
            if opt is None:
                with torch.no_grad():
                    w -= s["lr"] * g
            else:
                w.grad = g
                opt.step()
            step += 1
        t1 = time.perf_counter()
        row, cls = _measure(w.detach(), x, y, grid, s)
        t_meas += time.perf_counter() - t1
        t_train += t1 - t0
        row["step"] = step
        row["boundary_change"] = float((cls != classes[-1]).double().mean()) if classes else None
        classes.append(cls)
        rows.append(row)
        log(
            f"step {step:>6}: ln|F+δI| {row['logdet']:9.2f}  tr F {row['trace']:.3g}  "
            f"‖H−F‖/‖F‖ {row['h_minus_f_rel']:.3f}  loss {row['loss']:.4f}  acc {row['accuracy']:.3f}  "
            f"boundary Δ {row['boundary_change'] if row['boundary_change'] is not None else float('nan'):.4f}"
        )
    i_peak = max(range(len(rows)), key=lambda i: rows[i]["logdet"])
    for r, c in zip(rows, classes):
        r["boundary_change_vs_peak"] = float((c != classes[i_peak]).double().mean())
    with torch.no_grad():
        test_acc = float(
            ((logits(w, ds.x_test.double(), h) > 0).double() == ds.y_test.double()).double().mean()
        )
    if command is None:
        command = argv_command()
    settings_out = {k_: (list(v) if isinstance(v, tuple) else v) for k_, v in s.items()}
    settings_out.update(
        seed=seed, n_params=k, n_train=len(x), dataset_description=ds.describe(),
        likelihood="bce_with_logits (Bernoulli, one logit)",
    )  # fmt: skip
    out: dict[str, Any] = {
        "experiment": "fig1",
        "description": (
            "ln|F + δI|, tr F and ‖H − F‖/‖F‖ over the training of a 2-16-16-1 tanh network on two moons "
            "(Achille, Paolini & Soatto 2019, Fig 1), with decision-boundary changes"
        ),
        "quick": bool(quick),
        "settings": settings_out,
        "w0": [float(v) for v in w0],
        "steps": rows,
        "test_accuracy": test_acc,
        "analysis": analyse(rows, settings_out),
        "command": command,
        "made_by": made,
        "machine": machine_info(),
        "times_s": {"train": t_train, "measure": t_meas},
        "time_s": time.perf_counter() - t_start,
    }
    return finish(out, out_dir, reading=reading, write_outputs=write_outputs, log=log)
