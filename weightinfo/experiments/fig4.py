"""Fig 4 of Achille, Paolini & Soatto (2019) measured: tr F after a fixed budget vs batch size and vs number of classes.

The paper (§5.1 of ``reference/paper.md``): ResNet-18 on CIFAR-10; (left) tr F after 30 epochs vs batch size —
smaller batch ⇒ smaller tr F; (right) training on the first k classes ⇒ the final tr F grows with k. CIFAR-10 and
ResNet-18 are not available offline here, so this uses Fashion-MNIST and a small LeNet on a subset.

Construction (exact):

* Data: ``load_dataset("fashion-mnist", seed=data_seed)``; images 1×28×28 in [0, 1].
* Network: ``build_model("lenet", (1, 28, 28), 10)`` (always 10 outputs), init seeded by the run's seed.
* Training: plain SGD (no momentum, no weight decay), mean cross-entropy, ``epochs`` epochs (a fresh
  permutation per epoch, last partial batch kept); seeds ``0 … seeds − 1`` fix init and batch order.
* (a) batch size: the first ``n_train`` training images; B ∈ ``batch_sizes`` at fixed η = ``lr`` and at fixed
  T = η/B = ``temperature`` (η = T·B).
* (b) classes: for k ∈ ``ks`` the first ``n_train`` training images with label < k
  (:func:`weightinfo.data.first_classes`): the same N for every k, the same 10-output model, η = ``lr``,
  B = ``batch_classes``, same epochs (so the same number of SGD steps).
* Endpoint: :class:`weightinfo.dynamics.Tracker` with quantities ("trace", "loss", "accuracy") on a fixed
  probe set, the first ``n_probe`` images of the run's own training set (labels from the model, exact).
* Analysis: Spearman ρ(B, tr F) per schedule and ρ(k, tr F), seeded percentile bootstrap over runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from ._report_files import argv_command, finish
from ._sgd import plain_sgd

__all__ = ["FIG4", "FIG4_QUICK", "run_fig4"]

FIG4: dict[str, Any] = {
    "dataset": "fashion-mnist",
    "data_seed": 0,
    "model": "lenet",
    "n_train": 4000,
    "n_probe": 256,
    "epochs": 15,
    "batch_sizes": [16, 64, 256],
    "lr": 0.05,
    "temperature": 0.05 / 64,
    "ks": [2, 4, 6, 8, 10],
    "batch_classes": 64,
    "seeds": 2,
    "n_boot": 2000,
}

FIG4_QUICK: dict[str, Any] = {
    **FIG4,
    "n_train": 128,
    "n_probe": 16,
    "epochs": 1,
    "batch_sizes": [16, 64],
    "ks": [2, 4],
    "seeds": 1,
    "n_boot": 100,
}


def run_fig4(
    out_dir: str | os.PathLike | None = None,
    *,
    quick: bool = False,
    log: Callable[[str], None] = print,
    settings: dict[str, Any] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Train every configuration of panels (a) and (b), measure tr F at the end; analyse; report.

    ``settings`` overrides keys of :data:`FIG4` (or :data:`FIG4_QUICK` with ``quick``)."""
    import torch

    from .._base.machine import machine_info
    from .._base.provenance import made_by
    from ..data import first_classes, load_dataset
    from ..dynamics import Tracker
    from ..models import build_model
    from ._fig4_report import analyse, reading, write_outputs

    s = {**(FIG4_QUICK if quick else FIG4), **(settings or {})}
    t_start = time.perf_counter()
    made = made_by(quick=quick)
    ds = load_dataset(s["dataset"], seed=int(s["data_seed"]))
    n, n_probe, epochs = int(s["n_train"]), int(s["n_probe"]), int(s["epochs"])
    shape, n_out = tuple(ds.x_train.shape[1:]), int(ds.n_classes)
    n_params = sum(p.numel() for p in build_model(s["model"], shape, n_out).parameters())
    log(
        f"fig4: {s['dataset']} N = {n}, {s['model']} (P = {n_params}), {epochs} epochs, "
        f"B ∈ {list(s['batch_sizes'])}, k ∈ {list(s['ks'])}, {s['seeds']} seeds"
    )

    def one(X, Y, lr, b, seed, **tags):
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        model = build_model(s["model"], shape, n_out)
        steps = plain_sgd(model, X, Y, float(lr), int(b), epochs, seed)
        t1 = time.perf_counter()
        tracker = Tracker(
            probe_data=(X[:n_probe], Y[:n_probe]), quantities=("trace", "loss", "accuracy")
        )
        rec = tracker.step(model, lr=float(lr), batch_size=int(b), step=steps)
        row = {**tags, "lr": float(lr), "batch": int(b), "seed": seed, "temperature": float(lr) / int(b),
               "n_train": len(X), "n_classes_present": int(torch.unique(Y).numel()), "steps": steps,
               "trace": rec["trace"], "trace_stderr": rec.get("trace_stderr"), "loss": rec["loss"],
               "accuracy": rec.get("accuracy"), "time_train_s": t1 - t0,
               "time_fisher_s": time.perf_counter() - t1}  # fmt: skip
        log(
            f"{tags}: η = {lr:.4g} B = {b} seed {seed}: tr F = {row['trace']:.4g}  "
            f"L = {row['loss']:.4f}  acc = {row['accuracy']:.3f}"
        )
        return row

    X, Y = ds.x_train[:n].float(), ds.y_train[:n]
    batch_runs: list[dict[str, Any]] = []
    for schedule in ("fixed_lr", "fixed_T"):
        for b in s["batch_sizes"]:
            lr = float(s["lr"]) if schedule == "fixed_lr" else float(s["temperature"]) * int(b)
            for seed in range(int(s["seeds"])):
                batch_runs.append(one(X, Y, lr, b, seed, schedule=schedule))
    class_runs: list[dict[str, Any]] = []
    for k in s["ks"]:
        dk = first_classes(ds, int(k))
        if len(dk.x_train) < n:
            raise ValueError(
                f"only {len(dk.x_train)} training images in the first {k} classes, need {n}"
            )
        Xk, Yk = dk.x_train[:n].float(), dk.y_train[:n]
        for seed in range(int(s["seeds"])):
            class_runs.append(one(Xk, Yk, s["lr"], s["batch_classes"], seed, k=int(k)))
    if command is None:
        command = argv_command()
    settings_out = dict(s, n_params=n_params, input_shape=list(shape), n_outputs=n_out,
                        fisher="exact trace of the Fisher (labels from the model) on the first n_probe images "
                               "of each run's training set (weightinfo.dynamics.Tracker)",
                        temperature_definition="T = lr / batch_size")  # fmt: skip
    runs = batch_runs + class_runs
    out: dict[str, Any] = {
        "experiment": "fig4",
        "description": (
            "Fig 4 (Achille, Paolini & Soatto 2019): tr F after a fixed number of epochs vs batch size (at fixed "
            "lr and at fixed lr/B) and vs the number of classes k (same N, 10-output model); Fashion-MNIST + "
            "LeNet instead of CIFAR-10 + ResNet-18"
        ),
        "quick": bool(quick),
        "settings": settings_out,
        "batch_runs": batch_runs,
        "class_runs": class_runs,
        "analysis": analyse(batch_runs, class_runs, s),
        "command": command,
        "made_by": made,
        "machine": machine_info(),
        "times_s": {
            "train": sum(r["time_train_s"] for r in runs),
            "fisher": sum(r["time_fisher_s"] for r in runs),
        },
        "time_s": time.perf_counter() - t_start,
    }
    return finish(out, out_dir, reading=reading, write_outputs=write_outputs, log=log)
