"""Data-parallel speed-up: 2 ranks × 1 thread against 1 rank × 1 thread (torch.distributed, gloo, CPU).

Run by hand (not a test), from the repository root::

    OMP_NUM_THREADS=1 WEIGHTINFO_DATA=/work/shared/data .venv/bin/python benchmarks/distributed.py

On the first ``--n-images`` (10,000) Fashion-MNIST training images, for an MLP (784-600-600-10, as in
``benchmarks/information.py``) and LeNet (``build_model``, seeded, eval mode; random weights — the cost does not
depend on training), each rank count runs in fresh processes (``torch.multiprocessing.spawn``, one thread each;
two ranks: a gloo group, each rank on its contiguous half, ``weightinfo._base.distributed``):

* ``fisher``: ``weightinfo.fisher(kind="exact", structure="diag")`` (10 backward directions per input);
* ``information``: ``weightinfo.information(method="fisher", structure="diag", mc_samples=0)`` (exact Fisher
  pass + closed form);
* ``mc risk``: 4 weight draws of E_Q[L_D] under the Fisher-form Q* (``mc_expected_loss``, the Monte Carlo
  engine that ``certify`` also uses), each a forward pass over all images;
* ``certify risk``: the per-example Gibbs 0-1 risk that ``certify`` bounds by default
  (``certificates.risk.gibbs_error_per_example``, m = 10 independent draws per image under the same Q*; real
  per-example conv kernel draws for LeNet). Each rank draws from its own stream, so the two rank counts agree
  only within Monte Carlo error (the last column is then a sampling difference, not a rounding one).

Every timing is taken between two barriers on rank 0 (so it is the slowest rank's time), the minimum over
``--repeats`` rounds, the 1-rank and 2-rank runs alternating within each round. The script also checks that both
rank counts give the same numbers (relative difference of the Fisher trace / IW / risk). The speed-up is the
ratio of the two columns measured in the same run; on a shared machine absolute times move with the load.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

TASKS = ("fisher", "information", "mc risk", "certify risk")
MODELS = {"mlp": {"widths": (600, 600)}, "lenet": {}}


def _data(n_images: int):
    import weightinfo

    ds = weightinfo.load_dataset("fashion-mnist")
    return ds.x_train[:n_images].float(), ds.y_train[:n_images]


def _model(name: str):
    from weightinfo.models import build_model

    torch.manual_seed(0)
    return build_model(name, (1, 28, 28), 10, **MODELS[name]).eval()


def _timed(fn, *args, **kwargs):
    from weightinfo._base import distributed as dist

    dist.barrier()
    t0 = time.perf_counter()
    value = fn(*args, **kwargs)
    dist.barrier()
    return time.perf_counter() - t0, value


def _worker(
    rank: int, world: int, init_file: str, out: str, n_images: int, batch_size: int
) -> None:
    torch.set_num_threads(1)
    if world > 1:
        torch.distributed.init_process_group(
            "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world
        )
    import weightinfo
    from weightinfo._base import distributed as dist
    from weightinfo.certificates.risk import gibbs_error_per_example
    from weightinfo.posterior.sampling import mc_expected_loss

    X, Y = _data(n_images)
    lo, hi = dist.shard_bounds(X.shape[0])
    data = (X[lo:hi], Y[lo:hi])
    rows = {}
    for name in MODELS:
        model = _model(name)
        common = dict(batch_size=batch_size, progress=False)
        weightinfo.fisher(model, (data[0][:16], data[1][:16]), **common)  # warm-up, not timed
        t, F = _timed(weightinfo.fisher, model, data, **common)
        rows[(name, "fisher")] = (t, F.trace())
        t, r = _timed(
            weightinfo.information, model, data, beta=1e-3, prior_scale=0.1, mc_samples=0, **common
        )
        rows[(name, "information")] = (t, r.nats)
        params = {k: p.detach() for k, p in model.named_parameters()}
        var = {k: v.float() for k, v in r.posterior_variance.items()}
        t, (e, _, _) = _timed(
            mc_expected_loss, model, data, params, var, loss="cross_entropy", mc_samples=4,
            seed=0, batch_size=batch_size,
        )  # fmt: skip
        rows[(name, "mc risk")] = (t, e)
        gen = torch.Generator().manual_seed(0)
        t, (g, _) = _timed(gibbs_error_per_example, model, data[0], data[1], params, var, 10, gen)
        rows[(name, "certify risk")] = (t, g)
    if dist.is_main():
        torch.save(rows, out)
    if world > 1:
        torch.distributed.destroy_process_group()


def _run(world: int, tmp: Path, n_images: int, batch_size: int) -> dict:
    out = tmp / f"w{world}-{time.monotonic_ns()}.pt"
    init = tmp / f"init-{time.monotonic_ns()}"
    torch.multiprocessing.spawn(
        _worker, args=(world, str(init), str(out), n_images, batch_size), nprocs=world, join=True
    )
    return torch.load(out, weights_only=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-images", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = "1"
    best: dict[int, dict] = {1: {}, 2: {}}
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as d:
        for _ in range(args.repeats):
            for world in (1, 2):
                for key, (t, v) in _run(world, Path(d), args.n_images, args.batch_size).items():
                    old = best[world].get(key)
                    best[world][key] = (min(t, old[0]) if old else t, v)
    print(
        f"{args.n_images:,} Fashion-MNIST images, 1 thread per rank, gloo; minimum of "
        f"{args.repeats} rounds; cores on this machine: {os.cpu_count()}; load average (1, 5, 15 min) "
        f"at start {' '.join(f'{x:.2f}' for x in load_start)}, at end "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    print()
    print("| model | task | 1 rank (s) | 2 ranks (s) | speed-up | rel. diff. of the result |")
    print("|---|---|---:|---:|---:|---:|")
    for name in MODELS:
        for task in TASKS:
            (t1, v1), (t2, v2) = best[1][(name, task)], best[2][(name, task)]
            diff = abs(v2 - v1) / max(abs(v1), 1e-300)
            print(f"| {name} | {task} | {t1:.2f} | {t2:.2f} | {t1 / t2:.2f}× | {diff:.1e} |")


if __name__ == "__main__":
    main()
