"""Overhead of the default :class:`weightinfo.Tracker` against one training epoch (issue 11 §1).

Run by hand (not a test), from the repository root::

    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/tracker_overhead.py
    OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python benchmarks/tracker_overhead.py --probe 1000 --widths 64,64

Trains an MLP (``build_model("mlp", widths=...)``) on scikit-learn's digits (8×8, 10 classes; the ``digits``
dataset of ``weightinfo.load_dataset``), batch ``--batch-size``, SGD lr 0.05, for ``--epochs`` epochs, once
without and once with a ``Tracker`` with the default quantities (trace, layer_trace, loss, accuracy, temperature)
on the first ``--probe`` training images, and prints the seconds per epoch of each, the tracker's own seconds per
call (``record["time"]``) and the ratio tracker call / training epoch. ``--quantities`` tracks others (comma list;
``all`` for every quantity except ``information``).

Measured once (2026-12-06, torch 2.13 CPU, 1 thread; digits 1,438 training images, MLP 64-32-10 = 2,410
parameters, batch 32, probe 500): epoch 0.024 s, default tracker call 0.19 s, ratio 7.8; with ``--quantities all``
(dense ln|F+δI| is refused above 2,000 parameters, so SLQ, 30 probes × 30 steps) 1.42 s, ratio 41. The default's
cost is the per-sample Jacobians (K = 10 backward passes per probe image): a probe of N images costs about
10·N/N_train epochs' worth of gradients, plus vmap overhead.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

import weightinfo
from weightinfo.dynamics.tracker import DEFAULT_QUANTITIES, QUANTITIES


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--probe", type=int, default=500)
    ap.add_argument("--widths", default="32")
    ap.add_argument("--quantities", default=",".join(DEFAULT_QUANTITIES))
    args = ap.parse_args()
    q = (
        [x for x in QUANTITIES if x != "information"]
        if args.quantities == "all"
        else args.quantities
    )

    ds = weightinfo.load_dataset("digits")
    widths = tuple(int(w) for w in args.widths.split(","))
    X, Y = ds.x_train, ds.y_train
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(X, Y), batch_size=args.batch_size, shuffle=True
    )

    def run(callbacks):
        torch.manual_seed(0)
        model = weightinfo.build_model("mlp", ds.input_shape, ds.n_classes, widths=widths)
        t0 = time.perf_counter()
        weightinfo.train(
            model, loader, epochs=args.epochs, lr=0.05, callbacks=callbacks, progress=False
        )
        return time.perf_counter() - t0, model

    run([])  # warm-up
    t_plain, model = run([])
    tracker = weightinfo.Tracker(
        (X[: args.probe], Y[: args.probe]), quantities=q, train_loader=loader
    )
    t_tracked, _ = run([tracker])
    n_params = sum(p.numel() for p in model.parameters())
    epoch = t_plain / args.epochs
    call = sum(r["time"] for r in tracker.records) / len(tracker.records)
    print(
        f"# torch {torch.__version__}, {torch.get_num_threads()} thread(s), {platform.processor() or 'cpu'}"
    )
    print(f"# digits: {X.shape[0]} training images, MLP widths {widths} ({n_params} parameters), batch "
          f"{args.batch_size}, probe {min(args.probe, X.shape[0])} images, quantities {tracker.quantities}")  # fmt: skip
    print(f"training epoch, untracked : {epoch:.4f} s")
    print(f"training epoch, tracked   : {t_tracked / args.epochs:.4f} s")
    print(f"tracker call (record time): {call:.4f} s")
    print(f"ratio tracker call / epoch: {call / epoch:.2f}")
    print(f"ratio tracked / untracked : {t_tracked / t_plain:.2f}")


if __name__ == "__main__":
    main()
