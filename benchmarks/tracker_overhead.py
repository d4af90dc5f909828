"""Overhead of a :class:`weightinfo.Tracker` call against one training epoch (issue 11 §1).

Run by hand (not a test), from the repository root::

    OMP_NUM_THREADS=1 WEIGHTINFO_DATA=/work/shared/data PYTHONPATH=. .venv/bin/python benchmarks/tracker_overhead.py
    ... benchmarks/tracker_overhead.py --cases digits-mlp --quantities default,all --probe 1000

For each case it trains the network for ``--epochs`` epochs (SGD lr 0.05, batch ``--batch-size``, float32),
once untracked and once per quantity set with a ``Tracker`` on the first ``--probe`` training images, and
prints one table row per (case, quantity set): seconds per untracked epoch (the untracked run's time over its
epochs), the tracker's mean seconds per call (``record["time"]``) and their ratio. Quantity sets: ``default``
(trace, layer_trace, loss, accuracy, temperature), ``all`` (every quantity except ``information``; ln|F + δI|
by SLQ above 2,000 parameters), or a ``+``-joined list (``trace+gradient_noise``). Cases:

* ``digits-mlp``: scikit-learn digits (1,438 training images, 8×8), MLP 64-32-10 (2,410 parameters);
* ``fashion-mlp``: the first ``--n-train`` (10,000) Fashion-MNIST training images, MLP 784-256-10 (203,530);
* ``fashion-lenet``: the same images, LeNet (conv 6, 16; fc 120, 84; 107,786 parameters).

Measured (2026-12-06, torch 2.13 CPU, 1 thread, AMD EPYC on a 2-CPU VM shared with three other jobs; probe 500,
batch 32, 2 epochs; table in docs/benchmarks.md "Tracker overhead"): default tracker call / epoch = 0.32
(digits MLP, epoch 0.024 s, call 0.008 s), 0.056 (Fashion MLP, epoch 0.31 s), 0.25 (Fashion LeNet, epoch
1.5 s); ``all`` 26 (digits) and 106 (Fashion MLP), nearly all of it the SLQ log-determinant. Before the
tracker used the per-sample engine (per-sample Jacobians, K = 10 backward passes per probe image) the digits
default call took 0.19 s, ratio 7.8 (``all`` 41).
"""

from __future__ import annotations

import argparse
import os
import time

import torch

import weightinfo
from weightinfo._base.machine import cpu_model, load_average_text
from weightinfo.dynamics.tracker import DEFAULT_QUANTITIES, QUANTITIES

CASES = {
    "digits-mlp": ("digits", "mlp", {"widths": (32,)}),
    "fashion-mlp": ("fashion-mnist", "mlp", {"widths": (256,)}),
    "fashion-lenet": ("fashion-mnist", "lenet", {}),
}


def quantity_set(name: str) -> tuple[str, ...]:
    if name == "default":
        return DEFAULT_QUANTITIES
    if name == "all":
        return tuple(q for q in QUANTITIES if q != "information")
    return tuple(name.split("+"))


def run_case(case: str, args, sets: list[str]) -> list[str]:
    ds_name, arch, kw = CASES[case]
    ds = weightinfo.load_dataset(ds_name)
    n = args.n_train if ds_name != "digits" else ds.x_train.shape[0]
    X, Y = ds.x_train[:n].contiguous(), ds.y_train[:n].contiguous()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, Y), batch_size=args.batch_size, shuffle=True
    )

    def train(callbacks):
        torch.manual_seed(0)
        model = weightinfo.build_model(arch, ds.input_shape, ds.n_classes, **kw)
        res = weightinfo.train(
            model, loader, epochs=args.epochs, lr=0.05, callbacks=callbacks, progress=False
        )
        return res, model

    train([])  # warm-up
    t0 = time.perf_counter()
    _, model = train([])
    epoch = (time.perf_counter() - t0) / args.epochs
    n_params = sum(p.numel() for p in model.parameters())
    rows = []
    for s in sets:
        tracker = weightinfo.Tracker(
            (X[: args.probe], Y[: args.probe]), quantities=quantity_set(s), train_loader=loader
        )
        train([tracker])
        call = sum(r["time"] for r in tracker.records) / len(tracker.records)
        logdet = tracker.records[-1].get("logdet_method")
        label = s + (f" (logdet {logdet})" if logdet else "")
        rows.append(
            f"| {case} | {n} | {n_params:,} | {label} | {epoch:.3f} | {call:.3f} | {call / epoch:.3f} |"
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--quantities", default="default,all", help="comma list of quantity sets")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--probe", type=int, default=500)
    ap.add_argument("--n-train", type=int, default=10_000)
    args = ap.parse_args()
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(
        f"# machine: {cpu_model()}, {os.cpu_count()} logical CPUs, load average at start "
        f"{load_average_text()}"
    )
    print(
        f"# probe {args.probe}, batch {args.batch_size}, {args.epochs} epochs, SGD lr 0.05, float32"
    )
    print(
        "| case | train images | parameters | quantities | epoch [s] | tracker call [s] | call / epoch |"
    )
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: |", flush=True)
    for case in args.cases.split(","):
        run_case(case, args, args.quantities.split(","))


if __name__ == "__main__":
    main()
