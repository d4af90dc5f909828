"""Diagonal Fisher / GGN: weightinfo against BackPACK, curvlinops and naive torch.func, on Fashion-MNIST.

Run by hand (not a test), from the repository root::

    OMP_NUM_THREADS=1 WEIGHTINFO_DATA=/work/shared/data .venv/bin/python benchmarks/curvature.py
    OMP_NUM_THREADS=2 WEIGHTINFO_DATA=/work/shared/data .venv/bin/python benchmarks/curvature.py --threads 2

One process prints one table. For the MLP 784-600-600-10 and LeNet (``build_model("lenet", (1, 28, 28), 10)``)
over ``--n-images`` training images (float32, eval mode, batch 256), each method's best time over ``--repeats``
interleaved rounds (default 3; ResNet-18: 1) and its ratio to one plain gradient pass over the same images (mean
cross-entropy, ``loss.backward()`` per batch):

* ours diag exact / MC (1 label per input): ``weightinfo.fisher(kind="exact" | "mc", structure="diag")``;
* BackPACK ``DiagGGNExact`` / ``DiagGGNMC`` with ``CrossEntropyLoss(reduction="mean")``, on an
  ``nn.Sequential`` copy of the same network (BackPACK needs modules, not ``torch.relu``/``F.max_pool2d``);
* curvlinops 3.0.1 exact GGN diagonal. That version has no exact-diagonal routine (only the stochastic
  ``hutchinson_diag``/``xdiag``), so the exact diagonal costs P GGN-vector products (one per unit vector). We
  time ``GGNLinearOperator @ M`` for ``--curvlinops-columns`` unit vectors over ``--curvlinops-images`` images
  and extrapolate linearly to P columns and N images (marked ``≈``); the entries computed are compared with
  ours to show it is the same quantity;
* naive torch.func: ``vmap(grad)`` per-sample gradients at labels drawn from the model (the MC Fisher, same
  draws as ours), squared and summed; timed once (slow; ``--skip-naive`` to leave it out).

Then ResNet-18 with BatchNorm (full width, eval mode; BackPACK cannot run it) over ``--resnet-images`` images:
ours MC and ours exact against one gradient pass.

Every backend gets its own ``copy.deepcopy`` of the model (BackPACK's ``extend()`` breaks torch.func on the
same object). Every method is warmed up once on a small batch before timing. Weights are the seeded random
initialisation: the cost does not depend on training. ``--profile N`` prints torch.profiler tables of ours instead.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import gc
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import weightinfo  # noqa: E402
from weightinfo._base.machine import cpu_model, load_average_text  # noqa: E402
from weightinfo.models import build_model  # noqa: E402

BATCH = 256


# ---------------------------------------------------------------------------------------------- helpers
def best_of(fn, repeats: int):
    """Min wall-clock seconds over ``repeats`` calls of ``fn``, and the last result."""
    best, out = math.inf, None
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def batches(X, Y, bs=BATCH):
    return [(X[i : i + bs], Y[i : i + bs]) for i in range(0, X.shape[0], bs)]


def max_rel_diff(a: dict, b: dict) -> float:
    """max over parameters of max|a − b| / max|b|."""
    return max(
        float((a[n].double() - b[n].double()).abs().max() / b[n].double().abs().max()) for n in b
    )


def as_sequential(name: str, model: nn.Module) -> tuple[nn.Sequential, dict]:
    """An ``nn.Sequential`` copy of ``model`` for BackPACK, and the map from its parameter names to ours."""
    m = copy.deepcopy(model)
    if name == "mlp":
        L = m.layers
        seq = nn.Sequential(nn.Flatten(), L[0], nn.ReLU(), L[1], nn.ReLU(), L[2])
        names = {"1": "layers.0", "3": "layers.1", "5": "layers.2"}
    elif name == "lenet":
        seq = nn.Sequential(
            m.conv1, nn.ReLU(), nn.MaxPool2d(2), m.conv2, nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            m.fc1, nn.ReLU(), m.fc2, nn.ReLU(), m.fc3,
        )  # fmt: skip
        names = {"0": "conv1", "3": "conv2", "7": "fc1", "9": "fc2", "11": "fc3"}
    else:
        raise ValueError(name)
    pmap = {}
    for n, _ in seq.named_parameters():
        idx, _, leaf = n.partition(".")
        pmap[n] = f"{names[idx]}.{leaf}"
    return seq.eval(), pmap


# ---------------------------------------------------------------------------------------------- methods
def grad_pass(model, data):
    lossfn = nn.CrossEntropyLoss()
    for x, y in data:
        model.zero_grad(set_to_none=True)
        lossfn(model(x), y).backward()


def ours(model, X, Y, kind):
    return weightinfo.fisher(
        model, (X, Y), kind=kind, structure="diag", seed=0, batch_size=BATCH
    ).diag


def backpack_diag(seq, lossfn, pmap, data, kind):
    from backpack import backpack
    from backpack.extensions import DiagGGNExact, DiagGGNMC

    ext, attr = (
        (DiagGGNExact(), "diag_ggn_exact") if kind == "exact" else (DiagGGNMC(1), "diag_ggn_mc")
    )
    n_total = sum(x.shape[0] for x, _ in data)
    sums = {n: torch.zeros(p.shape, dtype=torch.float64) for n, p in seq.named_parameters()}
    torch.manual_seed(0)  # DiagGGNMC draws from the global RNG
    for x, y in data:
        seq.zero_grad(set_to_none=True)
        loss = lossfn(seq(x), y)
        with backpack(ext):
            loss.backward()
        w = x.shape[0] / n_total  # mean reduction per batch → mean over the whole set
        for n, p in seq.named_parameters():
            sums[n] += w * getattr(p, attr).double()
    return {pmap[n]: v for n, v in sums.items()}


def naive_func(model, data):
    """torch.func per-sample gradients at labels drawn from the model (seeded like ours), squared and summed."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    gen = torch.Generator().manual_seed(0)

    def loss1(p, x, y):
        z = functional_call(model, p, (x.unsqueeze(0),))
        return F.cross_entropy(z, y.unsqueeze(0))

    per_sample = vmap(grad(loss1), in_dims=(None, 0, 0))
    sums = {k: torch.zeros(v.shape, dtype=torch.float64) for k, v in params.items()}
    n = 0
    for x, _ in data:
        with torch.no_grad():
            p = torch.softmax(model(x), 1)
        y = torch.multinomial(p, 1, generator=gen).squeeze(1)
        g = per_sample(params, x, y)
        for k in sums:
            sums[k] += g[k].pow(2).sum(0, dtype=torch.float64)
        n += x.shape[0]
    return {k: v / n for k, v in sums.items()}


def curvlinops_columns(model, data, n_total, columns: int, seed: int = 0):
    """Exact GGN columns at ``columns`` random unit vectors: returns (indices, diagonal entries)."""
    from curvlinops import GGNLinearOperator

    params = [p for p in model.parameters() if p.requires_grad]
    G = GGNLinearOperator(
        model,
        nn.CrossEntropyLoss(reduction="mean"),
        params,
        data,
        check_deterministic=False,
        num_data=n_total,
    )
    P = sum(p.numel() for p in params)
    idx = torch.randperm(P, generator=torch.Generator().manual_seed(seed))[:columns]
    E = torch.zeros(P, columns)
    E[idx, torch.arange(columns)] = 1.0
    cols = G @ E
    return idx, cols[idx, torch.arange(columns)]


# ---------------------------------------------------------------------------------------------- main
def timed_rounds(short: str, methods: list, repeats: int) -> dict:
    """Warm every method up once, then ``repeats`` interleaved rounds (method 1, 2, …, 1, 2, …).

    Interleaving spreads any slow period of a shared machine over all methods; each keeps its minimum.
    ``methods``: (key, description, fn, warmup). Returns key -> (seconds, last result).
    """
    for _, _, _, warmup in methods:
        warmup()
    best = {key: (math.inf, None) for key, *_ in methods}
    for r in range(repeats):
        for key, desc, fn, _ in methods:
            t, out = best_of(fn, 1)
            best[key] = (min(best[key][0], t), out)
            print(f"  {short:<12} round {r + 1}/{repeats}  {desc:<34} {t:8.2f} s", flush=True)
    return best


def run_small_model(name, X, Y, args, rows, checks):
    repeats = args.repeats if args.repeats is not None else 3
    torch.manual_seed(0)
    if name == "mlp":
        base = build_model("mlp", (1, 28, 28), 10, widths=(600, 600)).eval()
        label, short = "MLP 784-600-600-10", "MLP"
    else:
        base = build_model("lenet", (1, 28, 28), 10).eval()
        label, short = "LeNet (CNN)", "LeNet"
    P = sum(p.numel() for p in base.parameters())
    label = f"{label}, {P:,} params"
    N = X.shape[0]
    data = batches(X, Y)
    warm = batches(X[:64], Y[:64], 32)
    Xw, Yw = X[:64], Y[:64]
    # Each backend: its own copy.
    m_grad, m_ours = copy.deepcopy(base), copy.deepcopy(base)
    seq, pmap = as_sequential(name, base)
    with torch.no_grad():
        assert torch.allclose(seq(X[:64]), base(X[:64]), atol=1e-6), (
            "Sequential copy differs from the model"
        )
    from backpack import extend

    seq = extend(seq)
    bp_loss = extend(nn.CrossEntropyLoss(reduction="mean"))
    best = timed_rounds(
        short,
        [
            (
                "grad",
                "one gradient pass",
                lambda: grad_pass(m_grad, data),
                lambda: grad_pass(m_grad, warm),
            ),
            (
                "oe",
                "ours diag exact",
                lambda: ours(m_ours, X, Y, "exact"),
                lambda: ours(m_ours, Xw, Yw, "exact"),
            ),
            (
                "om",
                "ours diag MC (1 label)",
                lambda: ours(m_ours, X, Y, "mc"),
                lambda: ours(m_ours, Xw, Yw, "mc"),
            ),
            (
                "be",
                "BackPACK DiagGGNExact",
                lambda: backpack_diag(seq, bp_loss, pmap, data, "exact"),
                lambda: backpack_diag(seq, bp_loss, pmap, warm, "exact"),
            ),
            (
                "bm",
                "BackPACK DiagGGNMC (1 label)",
                lambda: backpack_diag(seq, bp_loss, pmap, data, "mc"),
                lambda: backpack_diag(seq, bp_loss, pmap, warm, "mc"),
            ),
        ],  # fmt: skip
        repeats,
    )
    t_grad, t_oe, t_om, t_be, t_bm = (best[k][0] for k in ("grad", "oe", "om", "be", "bm"))
    res = {k: v[1] for k, v in best.items()}
    # curvlinops: k columns over a subset, timed once, extrapolated to P columns over N images.
    n_c = min(N, args.curvlinops_images)
    data_c = batches(X[:n_c], Y[:n_c])
    m_cl = copy.deepcopy(base)
    k = args.curvlinops_columns
    curvlinops_columns(m_cl, warm[:1], 32, 2)
    t_c, (idx, dvals) = best_of(lambda: curvlinops_columns(m_cl, data_c, n_c, k), 1)
    print(
        f"  {short:<12} once       curvlinops GGN, {k} columns, {n_c} images {t_c:8.2f} s",
        flush=True,
    )
    t_cl = t_c * (P / k) * (N / n_c)
    # Checks: the table compares equal work.
    checks.append(
        f"{label}: ours exact vs BackPACK DiagGGNExact, max rel diff {max_rel_diff(res['oe'], res['be']):.2e}"
    )
    checks.append(
        f"{label}: ours MC vs BackPACK DiagGGNMC (seed 0; CPU draws coincide), max rel diff "
        f"{max_rel_diff(res['om'], res['bm']):.2e}"
    )
    if n_c == N:
        flat = torch.cat([res["oe"][n].reshape(-1) for n, _ in base.named_parameters()])
        rel = float((flat[idx] - dvals.double()).abs().max() / flat[idx].abs().max())
        checks.append(
            f"{label}: curvlinops diagonal entries ({k} sampled) vs ours exact, max rel diff {rel:.2e}"
        )
    t_nv = None
    if not args.skip_naive:
        m_nv = copy.deepcopy(base)
        naive_func(m_nv, warm)  # warm-up; the naive path is timed once (slow)
        t_nv, res["nv"] = best_of(lambda: naive_func(m_nv, data), 1)
        print(
            f"  {short:<12} once       torch.func vmap(grad) (MC labels) {t_nv:8.2f} s", flush=True
        )
        checks.append(
            f"{label}: naive vmap(grad) vs ours MC (same draws), max rel diff {max_rel_diff(res['nv'], res['om']):.2e}"
        )

    def row(method, t, vs=None, approx=False):
        sec = f"≈{t:,.0f}" if approx else f"{t:.3f}"
        ratio = f"≈{t / t_grad:,.0f}" if approx else f"{t / t_grad:.2f}"
        rows.append((label, N, method, sec, ratio, "" if vs is None else f"{vs:.2f}"))

    row("one gradient pass (mean CE, backward)", t_grad)
    row("ours diag exact", t_oe, t_oe / t_be)
    row("ours diag MC (1 label)", t_om, t_om / t_bm)
    row("BackPACK DiagGGNExact", t_be)
    row("BackPACK DiagGGNMC (1 label)", t_bm)
    row(f"curvlinops GGN diag exact ({P:,} GGN-vector products)", t_cl, approx=True)
    if t_nv is not None:
        row("torch.func vmap(grad) per-sample, MC labels (1 run)", t_nv)
    else:
        rows.append((label, N, "torch.func vmap(grad) per-sample, MC labels", "skipped", "", ""))


def run_resnet(X, Y, args, rows, checks):
    torch.manual_seed(0)
    base = build_model("resnet18", (1, 28, 28), 10).eval()
    P = sum(p.numel() for p in base.parameters())
    label = f"ResNet-18 + BatchNorm (eval), {P:,} params"
    N = X.shape[0]
    data = batches(X, Y)
    warm = batches(X[:8], Y[:8])
    repeats = args.repeats or 1
    m_grad, m_ours = copy.deepcopy(base), copy.deepcopy(base)
    methods = [
        (
            "grad",
            "one gradient pass",
            lambda: grad_pass(m_grad, data),
            lambda: grad_pass(m_grad, warm),
        ),
        (
            "om",
            "ours diag MC (1 label)",
            lambda: ours(m_ours, X, Y, "mc"),
            lambda: ours(m_ours, X[:8], Y[:8], "mc"),
        ),
    ]
    if not args.skip_resnet_exact:
        methods.append(
            (
                "oe",
                "ours diag exact",
                lambda: ours(m_ours, X, Y, "exact"),
                lambda: ours(m_ours, X[:8], Y[:8], "exact"),
            )
        )
    best = timed_rounds("ResNet-18", methods, repeats)
    t_grad, t_om = best["grad"][0], best["om"][0]
    rows.append((label, N, "one gradient pass (mean CE, backward)", f"{t_grad:.3f}", "1.00", ""))
    rows.append((label, N, "ours diag MC (1 label)", f"{t_om:.3f}", f"{t_om / t_grad:.2f}", ""))
    if args.skip_resnet_exact:
        rows.append((label, N, "ours diag exact", "skipped", "", ""))
        return
    t_oe = best["oe"][0]
    rows.append((label, N, "ours diag exact", f"{t_oe:.3f}", f"{t_oe / t_grad:.2f}", ""))
    tr_mc = sum(float(v.sum()) for v in best["om"][1].values())
    tr_ex = sum(float(v.sum()) for v in best["oe"][1].values())
    checks.append(
        f"{label}: trace MC / trace exact = {tr_mc / tr_ex:.3f} (one draw; should be near 1)"
    )


def profile(X, Y, n: int, models):
    """torch.profiler key_averages of ours (exact and MC) on ``n`` images of each model."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as tprofile

    for name, kw in (("mlp", {"widths": (600, 600)}), ("lenet", {}), ("resnet18", {})):
        if name not in models:
            continue
        torch.manual_seed(0)
        m = build_model(name, (1, 28, 28), 10, **kw).eval()
        nn_ = min(n, 256) if name == "resnet18" else n
        for kind in ("exact", "mc"):
            ours(m, X[:32], Y[:32], kind)  # warm-up
            with tprofile(activities=[ProfilerActivity.CPU]) as prof:
                ours(m, X[:nn_], Y[:nn_], kind)
            print(
                f"\n### profile: {name}, ours diag {kind}, {nn_} images (self CPU time, top 15)\n"
            )
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--n-images", type=int, default=10_000, help="Fashion-MNIST training images (MLP, LeNet)"
    )
    ap.add_argument(
        "--resnet-images", type=int, default=512, help="images for ResNet-18 (0 to skip)"
    )
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument(
        "--models",
        default="mlp,lenet,resnet18",
        help="comma-separated subset of mlp,lenet,resnet18",
    )
    ap.add_argument("--repeats", type=int, default=None, help="timings are the min over this many interleaved "
                    "rounds (default: 3 for the MLP and LeNet, 1 for ResNet-18)")  # fmt: skip
    ap.add_argument(
        "--skip-naive", action="store_true", help="leave out torch.func vmap(grad) (slow)"
    )
    ap.add_argument(
        "--skip-resnet-exact", action="store_true", help="leave out ours exact on ResNet-18"
    )
    ap.add_argument(
        "--curvlinops-columns", type=int, default=4, help="GGN columns timed for curvlinops"
    )
    ap.add_argument(
        "--curvlinops-images", type=int, default=10_000, help="images for the curvlinops timing"
    )
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="instead of the table, profile ours on N images of each model")  # fmt: skip
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    # BackPACK's hooks on inputs that do not require grad; the peers' use of torch.jit.script.
    warnings.filterwarnings("ignore", "Full backward hook", UserWarning)
    warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
    from importlib.metadata import version

    os.environ.setdefault(
        "WEIGHTINFO_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    ds = weightinfo.load_dataset("fashion-mnist")
    models = [m.strip() for m in args.models.split(",") if m.strip()]

    print("# weightinfo curvature benchmark (diagonal Fisher / GGN)")
    print(f"date:     {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"command:  {' '.join(sys.argv)}")
    print(
        f"machine:  {cpu_model()}, {os.cpu_count()} logical CPUs, load average at start {load_average_text()}"
    )
    print(
        f"threads:  torch.get_num_threads() = {torch.get_num_threads()} "
        f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})"
    )
    print(
        f"software: python {platform.python_version()}, torch {torch.__version__}, "
        f"backpack-for-pytorch {version('backpack-for-pytorch')}, "
        f"curvlinops-for-pytorch {version('curvlinops-for-pytorch')}"
    )
    print(f"data:     Fashion-MNIST training images, float32, batch {BATCH}, models in eval mode\n")

    if args.profile:
        profile(ds.x_train, ds.y_train, args.profile, models)
        return

    rows, checks = [], []
    X, Y = ds.x_train[: args.n_images].contiguous(), ds.y_train[: args.n_images].contiguous()
    print("timings as they finish:")
    for name in models:
        if name in ("mlp", "lenet"):
            run_small_model(name, X, Y, args, rows, checks)
    if "resnet18" in models and args.resnet_images > 0:
        n = args.resnet_images
        run_resnet(ds.x_train[:n].contiguous(), ds.y_train[:n].contiguous(), args, rows, checks)

    print(f"\nload average at end {load_average_text()}\n")
    print("| model | N | method | seconds | × gradient pass | ours / BackPACK |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    print(
        "\n≈: extrapolated from a few GGN columns (curvlinops 3.0.1 has no exact-diagonal routine)."
    )
    print("\nchecks (the table compares equal work):")
    for c in checks:
        print(f"- {c}")


if __name__ == "__main__":
    main()
