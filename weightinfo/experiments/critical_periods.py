"""Critical learning periods (Achille, Rovere & Soatto, ICLR 2019) measured: a blur deficit early in training,
its removal epoch, a short-deficit sensitivity window, tr F over training and the per-layer Fisher.

The paper (§5.2 of ``reference/paper.md``): All-CNN on CIFAR-10, a blur deficit (32→8→32) for the first e epochs
then 160 clean epochs; a deficit that lasts beyond an early window permanently lowers the final test accuracy, a
short deficit hurts most at an early onset, a vertical flip (which keeps the low-level statistics) leaves no mark,
tr F rises in the first epochs then falls, and with a blur deficit more of the Fisher sits in the higher layers.
CIFAR-10 is not available offline here: this uses Fashion-MNIST (28→7→28 blur) and a width-scaled All-CNN on a
training subset, with the time axis compressed (``clean_epochs`` instead of 160, lr decay per epoch steeper).

Construction (exact):

* Data: ``load_dataset("fashion-mnist", seed=data_seed)``; the first ``n_train`` training images (1×28×28 in
  [0, 1]) and the first ``n_test`` test images. The test set and the Fisher probe set are always clean.
* Deficits, applied to the training images of the epochs in which the deficit is on: ``blur`` = 4×4 average
  pooling (28→7) then ``F.interpolate(size=28, mode=blur_upsample)`` (7→28); ``flip`` = upside-down
  (``torch.flip`` on the row axis).
* Network: ``AllCNN((1, 28, 28), 10, width=width)`` (9 conv–BN–ReLU blocks, global average pooling), init seeded
  by the run's seed (every run with the same seed starts from the same weights and sees the same batch order).
* Training: SGD, momentum ``momentum``, weight decay ``weight_decay``, batch ``batch``, lr ``lr`` × ``lr_decay`` per
  epoch (epoch t, counted from 0, runs at lr·lr_decay^t), mean cross-entropy, a fresh permutation per epoch (last
  partial batch kept); BatchNorm in training mode while training, eval mode for every measurement.
* Runs. A run has a deficit (``none``, ``blur`` or ``flip``) on during epochs [start, end), then exactly
  ``clean_epochs`` clean epochs after ``end`` (so every run gets the same clean training after removal; runs with
  a later removal are longer and end at a lower lr, as in the paper). (a) removal: blur on [0, e) for
  e ∈ ``removal_epochs`` (e = 0 is the baseline, no deficit); (b) window: blur on [o, o + ``window_length``) for
  o ∈ ``window_onsets``; (c) control: flip on [0, e) for e ∈ ``flip_epochs``; (d) the baseline again with seeds
  1 … ``baseline_seeds`` − 1 (its seed spread). A run that appears twice (e.g. onset 0 = removal at
  ``window_length``) is trained once.
* Measurements: at the end of every run, test accuracy/loss on the clean test images and the exact diagonal
  Fisher (``weightinfo.fisher(kind="exact", structure="diag")``, labels from the model) on the first ``n_probe``
  clean training images: tr F and its split over the 9 blocks (conv + BN of a block together). For the tracked
  runs (the baseline and the longest blur) the same Fisher at every epoch from 0 (init).
* Matched control: the clean runs (no deficit, seeds 0 … ``baseline_seeds`` − 1) train to the longest total
  number of epochs of any run and are tested after every total that a deficit run has (``test_at``): a clean run
  of L epochs is the first L epochs of a longer one (same init, batch order and lr schedule), and a deficit run of
  seed 0 shares all three with the clean run of seed 0, so it differs from it only by the deficit.
* Analysis (:mod:`._critical_periods_report`): drop = mean clean test accuracy after the run's total number of
  epochs − the run's test accuracy; noise = max(2 × |seed spread of the clean runs at that length|, ``min_noise``); normalised per-layer Fisher = block trace / total
  trace (shares sum to 1) and its depth centre Σ_i i · share_i (blocks i = 0 … 8).

JSON fields (``critical_periods.json``)
--------------------------------------
``experiment`` "critical_periods"; ``description``; ``quick`` (bool); ``settings``: the keys of
:data:`CRITICAL_PERIODS` — ``dataset``, ``data_seed``, ``width`` (channel multiplier), ``n_train``, ``n_test``,
``n_probe`` (images), ``batch`` (images per step), ``lr`` (initial learning rate), ``lr_decay`` (factor per epoch),
``momentum``, ``weight_decay`` (L2 coefficient), ``blur_size`` (side of the small image, pixels), ``blur_upsample``
(interpolation mode), ``clean_epochs``, ``removal_epochs``, ``window_length``, ``window_onsets``, ``flip_epochs``
(epochs), ``baseline_seeds`` (count), ``min_noise`` (accuracy fraction) — plus ``n_params`` (weights),
``input_shape``, ``channels`` (per block), ``steps_per_epoch``, ``epochs_total`` (training epochs of the whole
reproduction), ``blocks``, ``deficits``, ``fisher`` (descriptions); ``runs`` (list, one per distinct run);
``analysis``; ``analysis_summary`` (the generated reading, list of str); ``command``; ``made_by`` (commit, command, threads, quick, cpu_capability);
``machine``; ``times_s`` (``train``, ``fisher``, ``test``: seconds summed over runs); ``time_s`` (seconds, total);
``files`` (paths written; not in the JSON file itself).

Per run (``runs[i]``): ``id`` (str); ``roles`` (list of "removal", "window", "flip", "baseline_seed");
``deficit`` ("none" | "blur" | "flip"); ``deficit_start``, ``deficit_end`` (epochs, the deficit is on in
[start, end)); ``deficit_epochs`` (= end − start); ``clean_epochs_after`` (epochs after ``deficit_end``);
``epochs`` (total = end + clean_epochs_after); ``steps`` (SGD steps = epochs · ⌈n_train / batch⌉); ``seed``;
``lr_final`` (lr of the last epoch); ``train_loss`` (mean cross-entropy over the last epoch's batches, nats, on the
images as trained, i.e. clean); ``test_accuracy`` (fraction in [0, 1]); ``test_loss`` (nats); ``trace`` (tr F at
the end, exact Fisher per probe sample, nats per squared weight unit); ``blocks`` (list of 9: ``block``,
``n_params``, ``trace``, ``share`` = trace / total, ``per_weight`` = trace / n_params); ``tracked`` (bool);
``curve`` (tracked runs only; per epoch 0 … epochs: ``epoch`` (epochs completed), ``lr`` (lr of the epoch just done; null at 0), ``deficit_on`` (during the
epoch just done), ``train_loss`` (null at 0), ``trace``, ``shares`` (9 block shares)); ``time_train_s``,
``time_fisher_s``, ``time_test_s`` (seconds). Clean runs only: ``control_lengths`` (the totals they are tested
at, epochs; ``epochs`` = the largest) and ``test_at`` (per length: ``epochs``, ``test_accuracy``, ``test_loss``,
``train_loss``).

``analysis``: ``baseline`` (``seeds``; ``by_length``: per total L, ``epochs`` = L, ``accuracies`` per seed,
``mean``, ``spread`` = max − min, ``noise``); ``removal``, ``window``, ``flip`` (rows: ``e`` or ``onset``
(+ ``length``), ``id``, ``epochs`` (the run's total; e = 0: ``clean_epochs``), ``test_accuracy``,
``clean_accuracy`` (mean clean accuracy after ``epochs``), ``drop`` = clean_accuracy − test_accuracy (accuracy
fraction, positive = worse than the clean run of equal length), ``noise``, ``trace`` (null for e = 0 with an
untracked clean run), ``clean_trace`` (the tracked clean run's tr F after ``epochs``)); ``fisher_curve`` (per tracked
run, keyed by run id: ``deficit``, ``deficit_end``, ``epochs``, ``peak_epoch``, ``peak_trace``, ``final_trace``,
``final_over_peak``, ``init_trace``); ``layers`` (per tracked run, keyed by run id: ``deficit``, ``deficit_end``,
``epochs``, ``shares`` at the end and ``centre`` the depth centre, in blocks); ``final_trace_ratio_long_blur`` (final
tr F of the longest blur run / the clean run's after the same total number of epochs); and the verdicts ``long_deficit_impairs``,
``short_deficit_recovers``, ``window_peaks_early``, ``fisher_peaks_early``, ``blur_shifts_fisher_up``,
``flip_leaves_no_mark`` (bool).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

from ._report_files import argv_command, finish

__all__ = [
    "CRITICAL_PERIODS",
    "CRITICAL_PERIODS_QUICK",
    "blur",
    "flip",
    "plan_runs",
    "run_critical_periods",
]

CRITICAL_PERIODS: dict[str, Any] = {
    "dataset": "fashion-mnist",
    "data_seed": 0,
    "width": 0.25,
    "n_train": 4000,
    "n_test": 10000,
    "n_probe": 256,
    "batch": 128,
    "lr": 0.05,
    "lr_decay": 0.9,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "blur_size": 7,
    "blur_upsample": "bilinear",
    "clean_epochs": 12,
    "removal_epochs": [0, 2, 4, 8, 12, 16],
    "window_length": 4,
    "window_onsets": [0, 4, 8, 12],
    "flip_epochs": [8, 16],
    "baseline_seeds": 2,
    "min_noise": 0.005,
}

CRITICAL_PERIODS_QUICK: dict[str, Any] = {
    **CRITICAL_PERIODS,
    "width": 0.125,
    "n_train": 256,
    "n_test": 256,
    "n_probe": 16,
    "clean_epochs": 1,
    "removal_epochs": [0, 1],
    "window_length": 1,
    "window_onsets": [0, 1],
    "flip_epochs": [1],
}


def blur(x, size: int = 7, mode: str = "bilinear"):
    """The blur deficit: average pooling of ``x`` (N×C×H×W, H = W a multiple of ``size``) down to size×size, then
    interpolation back to H×W (``mode``: "bilinear" or "nearest")."""
    import torch.nn.functional as fn

    h = x.shape[-1]
    if h % size or x.shape[-2] != h:
        raise ValueError(
            f"blur needs square images whose side is a multiple of {size}, got {tuple(x.shape)}"
        )
    small = fn.avg_pool2d(x, h // size)
    kw = {"align_corners": False} if mode == "bilinear" else {}
    return fn.interpolate(small, size=(h, h), mode=mode, **kw)


def flip(x):
    """The control deficit: images upside-down (rows reversed)."""
    import torch

    return torch.flip(x, dims=[-2])


def plan_runs(s: dict[str, Any]) -> list[dict[str, Any]]:
    """The distinct runs of settings ``s`` (each once), with their roles, in training order."""
    runs: dict[tuple, dict[str, Any]] = {}

    def add(kind, start, end, seed, role):
        if end <= start:
            kind, start, end = "none", 0, 0
        key = (kind, start, end, seed)
        if key not in runs:
            rid = "baseline" if kind == "none" else f"{kind}[{start},{end})"
            runs[key] = {"id": f"{rid} seed {seed}", "roles": [], "deficit": kind,
                         "deficit_start": start, "deficit_end": end, "seed": seed}  # fmt: skip
        if role not in runs[key]["roles"]:
            runs[key]["roles"].append(role)

    for e in s["removal_epochs"]:
        add("blur", 0, int(e), 0, "removal")
    k = int(s["window_length"])
    for o in s["window_onsets"]:
        add("blur", int(o), int(o) + k, 0, "window")
    for e in s["flip_epochs"]:
        add("flip", 0, int(e), 0, "flip")
    for seed in range(1, int(s["baseline_seeds"])):
        add("none", 0, 0, seed, "baseline_seed")
    out = list(runs.values())
    longest = max(
        (r["deficit_end"] for r in out if r["deficit"] == "blur" and r["deficit_start"] == 0),
        default=None,
    )
    for r in out:
        r["clean_epochs_after"] = int(s["clean_epochs"])
        r["epochs"] = r["deficit_end"] + r["clean_epochs_after"]
    # The clean runs are the matched control: a run with a deficit is compared with the clean run of the same seed
    # after the same total number of epochs (same init, batch order and lr schedule: a clean run of L epochs is the
    # first L epochs of a longer one), so the clean runs train to the longest total and are tested at every total.
    lengths = sorted({r["epochs"] for r in out})
    for r in out:
        if r["deficit"] == "none":
            r["control_lengths"] = lengths
            r["epochs"] = lengths[-1]
            r["clean_epochs_after"] = lengths[-1]
        r["deficit_epochs"] = r["deficit_end"] - r["deficit_start"]
        r["tracked"] = (r["deficit"] == "none" and r["seed"] == 0) or (
            r["deficit"] == "blur" and r["deficit_start"] == 0 and r["deficit_end"] == longest
        )
    return out


def _blocks(model, X, Y) -> tuple[float, list[dict[str, Any]]]:
    """tr F (exact, diagonal) on (X, Y) and its split over the All-CNN blocks."""
    import weightinfo

    model.eval()
    F = weightinfo.fisher(model, (X, Y), kind="exact", structure="diag")
    per: dict[int, dict[str, Any]] = {}
    for row in F.per_layer().rows:
        i = int(row["layer"].split(".")[1])
        b = per.setdefault(i, {"block": i, "n_params": 0, "trace": 0.0})
        b["n_params"] += int(row["n_params"])
        b["trace"] += float(row["trace"])
    total = float(F.trace())
    blocks = [per[i] for i in sorted(per)]
    for b in blocks:
        b["share"] = b["trace"] / total if total > 0 else float("nan")
        b["per_weight"] = b["trace"] / b["n_params"]
    return total, blocks


def _test(model, data) -> dict[str, Any]:
    """Mean loss and accuracy on the clean test images (eval mode)."""
    from ..training import evaluate

    Xt, Yt = data["Xt"], data["Yt"]
    return evaluate(model, [(Xt[i : i + 1000], Yt[i : i + 1000]) for i in range(0, len(Xt), 1000)])


def _train(run: dict[str, Any], s: dict[str, Any], data: dict[str, Any], log) -> dict[str, Any]:
    """Train one run, measure it; returns the run dict completed with its numbers."""
    import torch
    import torch.nn.functional as fn

    from ..models import AllCNN

    X, Y, Xp, Yp = data["X"], data["Y"], data["Xp"], data["Yp"]
    t0 = time.perf_counter()
    torch.manual_seed(run["seed"])
    model = AllCNN(tuple(X.shape[1:]), 10, width=float(s["width"]))
    opt = torch.optim.SGD(model.parameters(), lr=float(s["lr"]), momentum=float(s["momentum"]),
                          weight_decay=float(s["weight_decay"]))  # fmt: skip
    g = torch.Generator().manual_seed(10_000 + run["seed"])
    n, b = len(X), int(s["batch"])
    t_fisher, t_test, steps, curve, train_loss, lr, test_at = 0.0, 0.0, 0, [], None, None, []
    if run["tracked"]:
        t1 = time.perf_counter()
        tr, blocks = _blocks(model, Xp, Yp)
        t_fisher += time.perf_counter() - t1
        curve.append({"epoch": 0, "lr": None, "deficit_on": None, "train_loss": None, "trace": tr,
                      "shares": [bl["share"] for bl in blocks]})  # fmt: skip
    for epoch in range(run["epochs"]):
        on = run["deficit"] != "none" and run["deficit_start"] <= epoch < run["deficit_end"]
        Xe = data[run["deficit"]] if on else X
        lr = float(s["lr"]) * float(s["lr_decay"]) ** epoch
        for group in opt.param_groups:
            group["lr"] = lr
        model.train()
        perm = torch.randperm(n, generator=g)
        tot = 0.0
        for i in range(0, n, b):
            idx = perm[i : i + b]
            opt.zero_grad(set_to_none=True)
            loss = fn.cross_entropy(model(Xe[idx]), Y[idx])
            loss.backward()
            opt.step()
            tot += loss.item() * len(idx)
            steps += 1
        train_loss = tot / n
        if epoch + 1 in run.get("control_lengths", ()):
            t1 = time.perf_counter()
            ev = _test(model, data)
            t_test += time.perf_counter() - t1
            test_at.append({"epochs": epoch + 1, "test_accuracy": ev["accuracy"], "test_loss": ev["loss"],
                            "train_loss": train_loss})  # fmt: skip
        if run["tracked"]:
            t1 = time.perf_counter()
            tr, blocks = _blocks(model, Xp, Yp)
            t_fisher += time.perf_counter() - t1
            curve.append({"epoch": epoch + 1, "lr": lr, "deficit_on": on, "train_loss": train_loss,
                          "trace": tr, "shares": [bl["share"] for bl in blocks]})  # fmt: skip
    t_train = time.perf_counter() - t0 - t_fisher - t_test
    if run["tracked"]:  # the last point of the curve is the end of training
        trace = tr
    else:
        t1 = time.perf_counter()
        trace, blocks = _blocks(model, Xp, Yp)
        t_fisher += time.perf_counter() - t1
    if test_at:  # a clean run was tested at its last epoch already
        acc, test_loss = test_at[-1]["test_accuracy"], test_at[-1]["test_loss"]
    else:
        t1 = time.perf_counter()
        ev = _test(model, data)
        acc, test_loss = ev["accuracy"], ev["loss"]
        t_test += time.perf_counter() - t1
    out = dict(run, steps=steps, lr_final=lr, train_loss=train_loss, test_accuracy=acc, test_loss=test_loss,
               trace=trace, blocks=blocks, curve=curve if run["tracked"] else None,
               time_train_s=t_train, time_fisher_s=t_fisher, time_test_s=t_test)  # fmt: skip
    if run.get("control_lengths"):
        out["test_at"] = test_at
    log(
        f"{run['id']} ({run['epochs']} epochs): test acc {acc:.4f}  tr F {trace:.4g}  "
        f"train L {train_loss:.4f}  ({t_train + t_fisher + t_test:.1f} s)"
    )
    return out


def run_critical_periods(
    out_dir: str | os.PathLike | None = None,
    *,
    quick: bool = False,
    log: Callable[[str], None] = print,
    settings: dict[str, Any] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Train every run of :func:`plan_runs`, measure, analyse; write ``critical_periods.{json,png,md}``.

    ``settings`` overrides keys of :data:`CRITICAL_PERIODS` (or :data:`CRITICAL_PERIODS_QUICK` with ``quick``)."""
    import torch

    from .._base.machine import machine_info
    from .._base.provenance import made_by
    from ..data import load_dataset
    from ..models import AllCNN
    from ._critical_periods_report import analyse, reading, write_outputs

    s = {**(CRITICAL_PERIODS_QUICK if quick else CRITICAL_PERIODS), **(settings or {})}
    t_start = time.perf_counter()
    made = made_by(quick=quick)
    ds = load_dataset(s["dataset"], seed=int(s["data_seed"]))
    n = int(s["n_train"])
    X, Y = ds.x_train[:n].float(), ds.y_train[:n]
    size, mode = int(s["blur_size"]), str(s["blur_upsample"])
    data = {"X": X, "Y": Y, "blur": blur(X, size, mode), "flip": flip(X),
            "Xp": X[: int(s["n_probe"])], "Yp": Y[: int(s["n_probe"])],
            "Xt": ds.x_test[: int(s["n_test"])].float(), "Yt": ds.y_test[: int(s["n_test"])]}  # fmt: skip
    shape = tuple(X.shape[1:])
    plan = plan_runs(s)
    epochs_total = sum(r["epochs"] for r in plan)
    model = AllCNN(shape, 10, width=float(s["width"]))
    n_params = sum(p.numel() for p in model.parameters())
    channels = [blk.conv.out_channels for blk in model.blocks]
    log(
        f"critical-periods: {s['dataset']} N = {n}, All-CNN width {s['width']} (channels {channels}, "
        f"P = {n_params}), {len(plan)} runs, {epochs_total} epochs in all, {torch.get_num_threads()} thread(s)"
    )
    runs = [_train(r, s, data, log) for r in plan]
    if command is None:
        command = argv_command()
    settings_out = dict(
        s, n_params=n_params, input_shape=list(shape), channels=channels, epochs_total=epochs_total,
        steps_per_epoch=math.ceil(n / int(s["batch"])),
        blocks="block i = conv i + its BatchNorm (i = 0 … 8; 8 is the 10-channel output block)",
        deficits={"blur": f"avg_pool 28→{size}×{size}, {mode} interpolation back to 28×28 (training images only)",
                  "flip": "upside-down (rows reversed; training images only)"},
        fisher=f"exact diagonal Fisher (labels from the model), eval mode, on the first {s['n_probe']} clean "
               "training images: tr F per probe sample, nats per squared weight unit",
    )  # fmt: skip
    out: dict[str, Any] = {
        "experiment": "critical_periods",
        "description": (
            "Critical learning periods (Achille, Rovere & Soatto 2019): final test accuracy vs the epoch a blur "
            "deficit is removed, a short-deficit window vs onset, the vertical-flip control, tr F per epoch and "
            "the per-layer normalised Fisher; Fashion-MNIST + width-scaled All-CNN instead of CIFAR-10"
        ),
        "quick": bool(quick),
        "settings": settings_out,
        "runs": runs,
        "command": command,
        "made_by": made,
        "machine": machine_info(),
        "times_s": {k: sum(r[f"time_{k}_s"] for r in runs) for k in ("train", "fisher", "test")},
    }
    out["analysis"] = analyse(runs, s)
    out["time_s"] = time.perf_counter() - t_start
    return finish(out, out_dir, reading=reading, write_outputs=write_outputs, log=log)
