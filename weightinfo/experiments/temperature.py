"""Prop 2.8 of Achille, Paolini & Soatto (2019) measured at equal loss: SGD temperature T = η/B vs the Fisher of
the point where training first reaches a target loss.

The paper (§4 of ``reference/paper.md``): SGD at temperature T ∝ η/B approximately minimises the free energy
F(w) = L(w) + (T/2) ln|F_w|, so higher temperature should select minima with lower Fisher (flatter). [A]'s
caveat: for equal-loss minima under *isotropic* noise the preference between them does not depend on T; the
flat-minimum bias that grows with T comes from SGD's curvature-proportional noise, not from the free energy alone.

Why equal loss: an earlier design trained every run a fixed number of epochs; there η·steps = epochs·N·T, so a
hotter run also trained further, and T and the final loss were confounded (ρ(T, L) = −0.99, one distinct T in
the equal-loss band). Here every run stops where its training loss first reaches a target L*, and the Fisher is
measured right there, so runs are compared at (nearly) the same loss.

Construction (exact):

* Data: ``load_dataset(dataset, seed=data_seed)``; the first ``n_train`` training images (digits: 8×8 in
  [0, 1], flattened), 10 classes. The same set is the training set, the stopping set and the probe set of the
  Fisher.
* Network: ``in → hidden → classes`` MLP with ``activation`` (tanh), float32, PyTorch default init seeded by
  the run's seed (the same seed gives the same init for every (η, B)); P = in·hidden + hidden + hidden·classes +
  classes weights (1,210 at 64-16-10).
* Training: plain SGD (no momentum, no weight decay) at each (η, B) of ``configs`` (each epoch a fresh
  permutation from the seed, the last partial batch kept), mean cross-entropy; seeds ``0 … seeds − 1`` fix the
  init and the batch order. T = η/B.
* Stopping: the full-batch mean training cross-entropy L is computed before the first step and then every
  ``check_every = max(1, round(check_sgd_time / η))`` steps (a fixed interval of SGD time η·steps, so every η is
  checked equally finely along its loss curve). At the first check with L ≤ L* (each L* in ``targets``) the
  Fisher quantities are measured there, and training goes on to the next lower target. A run gets at most
  ``max_steps = check_every · ceil(max_sgd_time / (η · check_every))`` steps; a target not reached by then is
  recorded with ``reached = false`` (no Fisher) and reported, not dropped.
* Measured at the stop: :class:`weightinfo.dynamics.Tracker` with ("logdet", "trace", "loss", "accuracy") on the
  training set: ln|F + δI| (exact dense Fisher of the model's predictive distribution, labels from the model, δ =
  ``damping``), tr F, L and accuracy; free energy L + (T/2) ln|F + δI|.
* Analysis, per target, over the runs that reached it: Spearman ρ(T, ln|F + δI|), ρ(T, tr F) and ρ(T, L_stop)
  (the residual loss spread) with seeded percentile bootstrap CIs over runs (``spearman_ci``); the least-squares
  fit ln|F + δI| = a + b·log10 T + c·ln L_stop (b: nats per decade of T at fixed loss, with its standard error),
  and the same with c fixed at the along-run rate d ln|F + δI| / d ln L measured between adjacent targets;
  paired by seed (same init and batch-order seed): the within-seed Spearman ρ(T, ln|F + δI|) of every seed,
  their mean with a percentile bootstrap CI over seeds, and how many seeds have ρ < 0; per distinct T the means;
  for (η, B) pairs with equal η/B, the mean |Δ ln|F + δI|| between them at the same seed (SGD's linear
  scaling). The verdict 'higher T → lower-Fisher minimum at equal loss' is HOLDS when the CI of ρ(T, ln|F + δI|)
  lies below 0, DOES NOT HOLD when it lies above 0 (hotter runs end at *higher* Fisher), NOT SHOWN otherwise.

JSON fields (``temperature.json``):

* ``experiment`` ("temperature"), ``description`` (str), ``quick`` (bool: the ``--quick`` smoke test).
* ``settings``: every key of :data:`TEMPERATURE` — ``dataset``, ``data_seed``, ``n_train`` (images),
  ``hidden`` (units), ``activation``, ``configs`` (list of [η, B]: learning rate, batch size in samples),
  ``seeds`` (count), ``targets`` (list of L* in nats / sample), ``check_sgd_time`` and ``max_sgd_time`` (SGD
  time η·steps, learning-rate units × steps), ``damping`` (δ), ``n_boot`` (bootstrap resamples) — plus
  ``n_params`` (P), ``n_train_used``, ``n_inputs``, ``n_classes``, ``fisher`` and ``temperature_definition``
  (str).
* ``runs``: one record per (η, B, seed, target): ``lr`` (η), ``batch`` (B, samples), ``seed``,
  ``temperature`` (T = η/B, learning-rate units / sample), ``target_loss`` (L*, nats / sample), ``reached``
  (bool), ``check_every`` (steps between loss checks), ``max_steps``, ``steps`` (SGD steps at the stop; where
  not reached, the steps run), ``epochs`` (steps / ceil(N/B), fractional epochs), ``sgd_time`` (η·steps),
  ``loss_stop`` (full-batch mean training cross-entropy at the stop, nats / sample; where not reached, at the
  last check), ``loss_prev`` (the same at the previous check, > L* when reached; null if the stop is the
  check before the first step), and where reached (else null): ``loss`` (L from the Tracker, nats / sample,
  equal to ``loss_stop`` up to float rounding), ``accuracy`` (training, fraction), ``logdet`` (ln|F + δI|,
  nats), ``logdet_method`` ("dense"), ``trace`` (tr F, the sum of the Fisher's diagonal, per
  sample), ``free_energy`` (L + (T/2) ln|F + δI|, nats).
* ``analysis``: ``by_target`` — one entry per L* (highest first): ``target_loss``, ``n_runs``, ``n_reached``,
  ``not_reached`` (list of {lr, batch, seed, loss_stop, sgd_time}), ``n_temperatures`` (distinct T reached),
  ``rho_T_logdet``, ``rho_T_trace``, ``rho_T_loss_stop``, ``rho_T_sgd_time`` (each ``{rho, ci_low, ci_high, n,
  n_boot_used}``), ``loss_stop_range`` ([min, max], nats), ``slope`` (``per_decade_of_T`` and ``stderr`` in
  nats of ln|F + δI| per decade of T, ``per_unit_ln_loss`` in nats), ``loss_adjusted`` (``sensitivity``:
  median along-run d ln|F + δI| / d ln L between this and the adjacent target, nats; ``per_decade_of_T``,
  ``stderr``: slope of ln|F + δI| − sensitivity·ln L_stop on log10 T, nats per decade; ``explained_by_loss``,
  ``observed``: the part of the highest-minus-lowest-T difference of mean ln|F + δI| that the L_stop spread
  accounts for at that rate, and that difference, nats), ``paired`` (``per_seed`` — list of {seed, rho, n};
  ``mean_rho``, ``ci_low``, ``ci_high`` over seeds; ``n_seeds``, ``n_negative``), ``linear_scaling``
  (list of {T, configs, mean_abs_dlogdet (nats), n_pairs}), ``per_temperature`` (list of {temperature,
  configs, n_runs, loss_stop, logdet, trace, sgd_time, steps, free_energy} means over the runs that
  reached), ``verdict`` ("HOLDS" / "DOES NOT HOLD" / "NOT SHOWN"), ``paired_verdict`` (the same from the
  within-seed CI); ``main_target`` (the lowest L*, the main reading).
* ``analysis_summary`` (list of str: the generated reading), ``command`` (str), ``made_by`` (commit, command,
  threads, kernels, quick), ``machine`` (dict), ``times_s`` (``train``, ``fisher``: seconds), ``time_s``
  (seconds, whole run), ``files`` (paths written; only in the returned dict).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

from ._report_files import argv_command, finish
from ._sgd import sgd_to_targets

__all__ = ["TEMPERATURE", "TEMPERATURE_QUICK", "run_temperature", "free_energy", "check_every_for"]

TEMPERATURE: dict[str, Any] = {
    "dataset": "digits",
    "data_seed": 0,
    "n_train": 512,
    "hidden": 16,
    "activation": "tanh",
    # η ∈ {0.02, 0.05, 0.2, 0.5} × B ∈ {8, 32, 128} less (0.2, 128), whose T equals (0.05, 32)'s: 11 configs,
    # 10 distinct T from 1.6e-4 to 0.0625; (0.05, 8) and (0.2, 32) are kept as one equal-T pair
    "configs": [
        [0.02, 8],
        [0.02, 32],
        [0.02, 128],
        [0.05, 8],
        [0.05, 32],
        [0.05, 128],
        [0.2, 8],
        [0.2, 32],
        [0.5, 8],
        [0.5, 32],
        [0.5, 128],
    ],  # fmt: skip
    "seeds": 6,
    "targets": [0.1, 0.03, 0.01],
    "check_sgd_time": 1.0,
    "max_sgd_time": 2000.0,
    "damping": 1e-3,
    "n_boot": 2000,
}

TEMPERATURE_QUICK: dict[str, Any] = {
    **TEMPERATURE,
    "n_train": 128,
    "hidden": 8,
    "configs": [[0.1, 16], [0.4, 64], [0.4, 16], [0.8, 16]],
    "seeds": 2,
    "targets": [0.5, 0.3],
    "max_sgd_time": 400.0,
    "n_boot": 200,
}


def free_energy(loss: float, temperature: float, logdet: float) -> float:
    """The free energy of Prop 2.8, L + (T/2) ln|F + δI|."""
    return float(loss) + 0.5 * float(temperature) * float(logdet)


def check_every_for(lr: float, check_sgd_time: float) -> int:
    """Steps between loss checks: a fixed interval ``check_sgd_time`` of SGD time η·steps (at least 1)."""
    return max(1, round(float(check_sgd_time) / float(lr)))


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
    """Train at every (η, B, seed) until each target loss; measure L, ln|F + δI|, tr F there; analyse; report.

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
    targets = sorted((float(t) for t in s["targets"]), reverse=True)
    log(
        f"temperature: {s['dataset']} N = {len(X)}, MLP {n_in}-{h}-{n_out} {s['activation']} "
        f"(P = {n_params}), (η, B) ∈ {[tuple(c) for c in s['configs']]}, {s['seeds']} seeds, "
        f"stop at L* ∈ {targets}"
    )
    tracker = Tracker(
        probe_data=(X, Y),
        quantities=("logdet", "trace", "loss", "accuracy"),
        damping=float(s["damping"]),
    )
    runs: list[dict[str, Any]] = []
    t_fisher = 0.0
    t_all = time.perf_counter()
    for lr, b in s["configs"]:
        lr, b = float(lr), int(b)
        T = lr / b
        every = check_every_for(lr, s["check_sgd_time"])
        max_steps = every * math.ceil(float(s["max_sgd_time"]) / (lr * every))
        per_epoch = math.ceil(len(X) / b)
        for seed in range(int(s["seeds"])):
            model = _model(n_in, h, n_out, s["activation"], seed)
            got: dict[float, dict[str, Any]] = {}

            def on_reach(target, steps, loss, prev, model=model, got=got, lr=lr, b=b, T=T):
                nonlocal t_fisher
                t1 = time.perf_counter()
                rec = tracker.step(model, lr=lr, batch_size=b, step=steps)
                t_fisher += time.perf_counter() - t1
                got[target] = {
                    "steps": steps,
                    "loss_stop": loss,
                    "loss_prev": None if math.isinf(prev) else prev,
                    "loss": rec["loss"],
                    "accuracy": rec.get("accuracy"),
                    "logdet": rec["logdet"],
                    "logdet_method": rec["logdet_method"],
                    "trace": rec["trace"],
                    "free_energy": free_energy(rec["loss"], T, rec["logdet"]),
                }

            end = sgd_to_targets(
                model, X, Y, lr, b, seed,
                targets=targets, check_every=every, max_steps=max_steps, on_reach=on_reach,
            )  # fmt: skip
            for target in targets:
                g = got.get(target)
                st = g["steps"] if g else end["steps"]
                row = {
                    "lr": lr,
                    "batch": b,
                    "seed": seed,
                    "temperature": T,
                    "target_loss": target,
                    "reached": g is not None,
                    "check_every": every,
                    "max_steps": max_steps,
                    "steps": st,
                    "epochs": st / per_epoch,
                    "sgd_time": lr * st,
                    "loss_stop": g["loss_stop"] if g else end["loss"],
                    "loss_prev": g["loss_prev"] if g else None,
                }
                for k in ("loss", "accuracy", "logdet", "logdet_method", "trace", "free_energy"):
                    row[k] = g[k] if g else None
                runs.append(row)
                log(
                    f"η = {lr:<5g} B = {b:>3} seed {seed} L* = {target:g}: T = {T:.3g}  "
                    + (
                        f"stop at step {st} (η·steps = {row['sgd_time']:.0f}) L = {row['loss_stop']:.4f}  "
                        f"ln|F+δI| = {row['logdet']:.1f}  tr F = {row['trace']:.3g}"
                        if g
                        else f"NOT REACHED in {st} steps (L = {row['loss_stop']:.4f})"
                    )
                )
    t_train = time.perf_counter() - t_all - t_fisher
    if command is None:
        command = argv_command()
    settings_out = dict(s, targets=targets, n_params=n_params, n_train_used=len(X), n_inputs=n_in,
                        n_classes=n_out,
                        fisher="exact dense Fisher of the model's predictive distribution on the training set",
                        temperature_definition="T = lr / batch_size")  # fmt: skip
    out: dict[str, Any] = {
        "experiment": "temperature",
        "description": (
            "Prop 2.8 (Achille, Paolini & Soatto 2019) at equal loss: SGD temperature T = eta/B vs "
            "ln|F + delta I| and tr F where the training loss first reaches each target L*"
        ),
        "quick": bool(quick),
        "settings": settings_out,
        "runs": runs,
        "analysis": analyse(runs, settings_out),
        "command": command,
        "made_by": made,
        "machine": machine_info(),
        "times_s": {"train": t_train, "fisher": t_fisher},
        "time_s": time.perf_counter() - t_start,
    }
    return finish(out, out_dir, reading=reading, write_outputs=write_outputs, log=log)
