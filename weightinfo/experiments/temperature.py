"""Prop 2.8 of Achille, Paolini & Soatto (2019) measured: SGD temperature T = η/B vs the Fisher of the minimum.

The paper (§4 of ``reference/paper.md``): SGD at temperature T ∝ η/B approximately minimises the free energy
F(w) = L(w) + (T/2) ln|F_w|, so higher temperature should select minima with lower Fisher (flatter). [A]'s
caveat: for equal-loss minima under *isotropic* noise the preference between them does not depend on T; the
flat-minimum bias that grows with T comes from SGD's curvature-proportional noise, not from the free energy alone.

Construction (exact):

* Data: ``load_dataset(dataset, seed=data_seed)``; the first ``n_train`` training images (digits: 8×8 in
  [0, 1], flattened), 10 classes. The same set is the training set and the probe set of the Fisher.
* Network: ``in → hidden → classes`` MLP with ``activation`` (tanh), float32, PyTorch default init seeded by
  the run's seed; P = in·hidden + hidden + hidden·classes + classes weights (1,210 at 64-16-10).
* Training: plain SGD (no momentum, no weight decay), learning rate η ∈ ``lrs``, batch size B ∈
  ``batch_sizes`` (each epoch a fresh permutation, the last partial batch kept), ``epochs`` epochs for every
  run, mean cross-entropy; seeds ``0 … seeds − 1`` fix the init and the batch order.
* Endpoint: :class:`weightinfo.dynamics.Tracker` with quantities ("logdet", "trace", "loss") on the training
  set: L (mean training cross-entropy, nats / sample), ln|F + δI| (exact dense Fisher, labels from the model,
  δ = ``damping``), tr F; T = η/B; free energy L + (T/2) ln|F + δI|.
* Analysis: Spearman ρ(T, ln|F + δI|) over all runs with a seeded percentile bootstrap over runs; the same
  restricted to the runs whose loss lies in the equal-loss band (ln L within ± ``band_ln_loss`` of the median
  ln L of all runs); the least-squares slope of ln|F + δI| on log10 T with ln L as a covariate (the change in
  ln|F| per decade of T at fixed loss); per distinct T the mean L, ln|F + δI|, tr F and free energy.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._sgd import plain_sgd

__all__ = ["TEMPERATURE", "TEMPERATURE_QUICK", "run_temperature", "free_energy"]

TEMPERATURE: dict[str, Any] = {
    "dataset": "digits",
    "data_seed": 0,
    "n_train": 512,
    "hidden": 16,
    "activation": "tanh",
    "lrs": [0.05, 0.2, 0.5],
    "batch_sizes": [8, 32, 128],
    "seeds": 4,
    "epochs": 400,
    "damping": 1e-3,
    "band_ln_loss": 0.5,
    "n_boot": 2000,
}

TEMPERATURE_QUICK: dict[str, Any] = {
    **TEMPERATURE,
    "n_train": 128,
    "hidden": 8,
    "lrs": [0.1, 0.5],
    "batch_sizes": [16, 64],
    "seeds": 2,
    "epochs": 5,
    "n_boot": 200,
}


def free_energy(loss: float, temperature: float, logdet: float) -> float:
    """The free energy of Prop 2.8, L + (T/2) ln|F + δI|."""
    return float(loss) + 0.5 * float(temperature) * float(logdet)


def _model(n_in: int, hidden: int, n_out: int, activation: str, seed: int):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    return nn.Sequential(nn.Linear(n_in, hidden), act(), nn.Linear(hidden, n_out))


def run_temperature(
    out_dir: str | os.PathLike | None = None,
    *,
    quick: bool = False,
    log: Callable[[str], None] = print,
    settings: dict[str, Any] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Train at every (η, B, seed), measure L, ln|F + δI|, tr F at the end; analyse; report.

    ``settings`` overrides keys of :data:`TEMPERATURE` (or :data:`TEMPERATURE_QUICK` with ``quick``)."""
    from .._base.machine import machine_info
    from .._base.provenance import made_by
    from ..data import load_dataset
    from ..dynamics import Tracker
    from ._temperature_report import analyse, reading, write_outputs

    s = {**(TEMPERATURE_QUICK if quick else TEMPERATURE), **(settings or {})}
    t_start = time.perf_counter()
    made = made_by(quick=quick)
    ds = load_dataset(s["dataset"], seed=int(s["data_seed"]))
    n = int(s["n_train"])
    X = ds.x_train[:n].reshape(min(n, len(ds.x_train)), -1).float()
    Y = ds.y_train[:n]
    n_in, n_out, h = X.shape[1], int(ds.n_classes), int(s["hidden"])
    n_params = n_in * h + h + h * n_out + n_out
    log(
        f"temperature: {s['dataset']} N = {len(X)}, MLP {n_in}-{h}-{n_out} {s['activation']} "
        f"(P = {n_params}), η ∈ {list(s['lrs'])}, B ∈ {list(s['batch_sizes'])}, {s['seeds']} seeds, "
        f"{s['epochs']} epochs"
    )
    tracker = Tracker(
        probe_data=(X, Y),
        quantities=("logdet", "trace", "loss", "accuracy"),
        damping=float(s["damping"]),
    )
    runs: list[dict[str, Any]] = []
    t_train = t_fisher = 0.0
    for lr in s["lrs"]:
        for b in s["batch_sizes"]:
            for seed in range(int(s["seeds"])):
                t0 = time.perf_counter()
                model = _model(n_in, h, n_out, s["activation"], seed)
                steps = plain_sgd(model, X, Y, float(lr), int(b), int(s["epochs"]), seed)
                t1 = time.perf_counter()
                rec = tracker.step(model, lr=float(lr), batch_size=int(b), step=steps)
                t_fisher += time.perf_counter() - t1
                t_train += t1 - t0
                T = float(lr) / int(b)
                row = {
                    "lr": float(lr),
                    "batch": int(b),
                    "seed": seed,
                    "temperature": T,
                    "steps": steps,
                    "loss": rec["loss"],
                    "accuracy": rec.get("accuracy"),
                    "logdet": rec["logdet"],
                    "logdet_method": rec["logdet_method"],
                    "trace": rec["trace"],
                    "free_energy": free_energy(rec["loss"], T, rec["logdet"]),
                }
                runs.append(row)
                log(
                    f"η = {lr:<5g} B = {b:>3} seed {seed}: T = {T:.3g}  L = {row['loss']:.4f}  "
                    f"ln|F+δI| = {row['logdet']:.1f}  tr F = {row['trace']:.3g}  "
                    f"free energy = {row['free_energy']:.4f}"
                )
    if command is None:
        command = " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])
    settings_out = dict(s, n_params=n_params, n_train_used=len(X), n_inputs=n_in, n_classes=n_out,
                        fisher="exact dense Fisher of the model's predictive distribution on the training set",
                        temperature_definition="T = lr / batch_size")  # fmt: skip
    out: dict[str, Any] = {
        "experiment": "temperature",
        "description": (
            "Prop 2.8 (Achille, Paolini & Soatto 2019): SGD temperature T = eta/B vs ln|F + delta I| of the "
            "minimum reached, with the free energy L + (T/2) ln|F + delta I|"
        ),
        "quick": bool(quick),
        "settings": settings_out,
        "runs": runs,
        "analysis": analyse(runs, s),
        "command": command,
        "made_by": made,
        "machine": machine_info(),
        "times_s": {"train": t_train, "fisher": t_fisher},
        "time_s": time.perf_counter() - t_start,
    }
    out["analysis_summary"] = reading(out)
    if out_dir is not None:
        out["files"] = [str(p) for p in write_outputs(out, out_dir)]
        for p_ in out["files"]:
            log(f"wrote {p_}")
    return out
