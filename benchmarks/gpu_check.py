"""``make gpu-check``: weightinfo on CUDA against the CPU, dense-reference tests on CUDA, GPU timings.

Run from the repository root (on a machine without CUDA it prints "no CUDA device: gpu-check skipped" and
exits 0)::

    make gpu-check            # or: OMP_NUM_THREADS=4 .venv/bin/python benchmarks/gpu_check.py

Three parts, about 3-6 minutes on one H100 (budget < 8):

1. **tests** — ``pytest tests/curvature`` with ``WEIGHTINFO_TEST_DEVICE=cuda`` (``tests/conftest.py`` makes
   CUDA the default device, so the tests' models and data, and with them weightinfo, run on CUDA);
   ``--skip-tests`` leaves it out.
2. **CUDA vs CPU** — the same seeded model and data on both devices: ``fisher`` diag/kfac/full (exact),
   ``hessian`` diag and ``information`` (Fisher method, no Monte Carlo term), in float64 (max relative error
   <= 1e-10: only the order of float64 sums differs) and float32 (<= 1e-4: float32 sums in another order,
   cuBLAS/cuDNN kernels of other blocking, with TF32 switched off; 1e-6 would sit at float32's own rounding
   of a sum of 10^3-10^4 terms and fail for no bug).
3. **timings** — ``fisher`` diag exact and MC on the MLP 784-600-600-10 and LeNet of ``benchmarks/curvature.py``
   (``--n-images``, float32, batch 256), and ResNet-18 (CIFAR shape, eval mode) MC-Fisher and ``information``
   (Fisher method, MC curvature) on ``--resnet-images`` images; each with its time and
   ``torch.cuda.max_memory_allocated``. Inputs are seeded random tensors: the cost does not depend on data.

The tables are printed as markdown and written to ``--out`` (default ``docs/results/gpu_check.{md,json}``).
Exit status 1 if a comparison fails its tolerance or the CUDA tests fail.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import weightinfo  # noqa: E402
from weightinfo.models import build_model  # noqa: E402

TOL = {torch.float64: 1e-10, torch.float32: 1e-4}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def _case(dtype, device):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(96, 1, 8, 8, generator=g).to(dtype)
    Y = torch.randint(0, 4, (96,), generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(108, 6), nn.Tanh(), nn.Linear(6, 4)
    ).to(dtype)
    return model.to(device).eval(), (X.to(device), Y.to(device))


def _results(dtype, device) -> dict[str, dict[str, torch.Tensor]]:
    model, data = _case(dtype, device)
    out = {}
    for s in ("diag", "kfac", "full"):
        F = weightinfo.fisher(model, data, structure=s, batch_size=32)
        out[f"fisher {s}"] = (
            {"M": F.blocks[0].matrix} if s == "full" else {k: v for k, v in F.diag.items()}
        )
    out["hessian diag"] = dict(weightinfo.hessian(model, data, batch_size=32).diag)
    r = weightinfo.information(model, data, beta=0.05, prior_scale=1.0, mc_samples=0, batch_size=32)
    out["information"] = {"nats": torch.tensor(r.nats), **r.per_parameter}
    return out


def compare() -> list[dict]:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    rows = []
    for dtype in (torch.float64, torch.float32):
        cpu, gpu = _results(dtype, "cpu"), _results(dtype, "cuda")
        for name in cpu:
            err = max(_rel(gpu[name][k], cpu[name][k]) for k in cpu[name])
            rows.append(
                {
                    "what": name,
                    "dtype": str(dtype).removeprefix("torch."),
                    "max_rel_err": err,
                    "tol": TOL[dtype],
                    "ok": err <= TOL[dtype],
                }
            )
    return rows


def _timed(fn) -> tuple[float, int]:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t, torch.cuda.max_memory_allocated()


def timings(n_images: int, resnet_images: int) -> list[dict]:
    rows = []
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n_images, 1, 28, 28, generator=g).cuda()
    Y = torch.randint(0, 10, (n_images,), generator=g).cuda()
    for name, model in (
        ("mlp 784-600-600-10", build_model("mlp", (1, 28, 28), 10, widths=(600, 600))),
        ("lenet", build_model("lenet", (1, 28, 28), 10)),
    ):
        model = model.cuda().eval()
        weightinfo.fisher(model, (X[:64], Y[:64]), kind="mc")  # warm-up (kernels, cuDNN choice)
        for kind in ("exact", "mc"):
            s, mem = _timed(lambda: weightinfo.fisher(model, (X, Y), kind=kind, batch_size=256))  # noqa: B023
            rows.append({"model": name, "what": f"fisher diag {kind}", "images": n_images, "seconds": s, "peak_bytes": mem})  # fmt: skip
    Xr = torch.randn(resnet_images, 3, 32, 32, generator=g).cuda()
    Yr = torch.randint(0, 10, (resnet_images,), generator=g).cuda()
    torch.manual_seed(0)
    model = build_model("resnet18", (3, 32, 32), 10).cuda().eval()
    weightinfo.fisher(model, (Xr[:16], Yr[:16]), kind="mc")
    runs = {
        "fisher diag mc": lambda: weightinfo.fisher(model, (Xr, Yr), kind="mc", batch_size=128),
        "information (fisher, mc curvature)": lambda: weightinfo.information(
            model,
            (Xr, Yr),
            beta=1e-3,
            prior_scale=0.1,
            curvature_kind="mc",
            mc_samples=2,
            batch_size=128,
        ),
    }
    for what, fn in runs.items():
        s, mem = _timed(fn)
        rows.append({"model": "resnet18", "what": what, "images": resnet_images, "seconds": s, "peak_bytes": mem})  # fmt: skip
    return rows


def run_tests() -> dict:
    env = {**os.environ, "WEIGHTINFO_TEST_DEVICE": "cuda"}
    t = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "tests/curvature"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    tail = (p.stdout + p.stderr).strip().splitlines()[-1:] or [""]
    return {"returncode": p.returncode, "summary": tail[0], "seconds": time.perf_counter() - t}


def markdown(report: dict) -> str:
    lines = [f"GPU check on {report['device']} (torch {report['torch']})", ""]
    if "tests" in report:
        t = report["tests"]
        lines += [f"CUDA tests (tests/curvature): rc={t['returncode']}, {t['summary']}", ""]
    lines += ["| comparison | dtype | max rel. error | tolerance | ok |", "|---|---|---|---|---|"]
    for r in report["compare"]:
        lines.append(
            f"| {r['what']} | {r['dtype']} | {r['max_rel_err']:.2e} | {r['tol']:g} | {r['ok']} |"
        )
    lines += [
        "",
        "| model | what | images | seconds | peak memory (MiB) |",
        "|---|---|---|---|---|",
    ]
    for r in report["timings"]:
        lines.append(
            f"| {r['model']} | {r['what']} | {r['images']} | {r['seconds']:.2f} | {r['peak_bytes'] / 2**20:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-images", type=int, default=2048)
    ap.add_argument("--resnet-images", type=int, default=512)
    ap.add_argument("--skip-tests", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "docs" / "results" / "gpu_check"))
    a = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: gpu-check skipped")
        return 0
    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    if not a.skip_tests:
        report["tests"] = run_tests()
    report["compare"] = compare()
    report["timings"] = timings(a.n_images, a.resnet_images)
    md = markdown(report)
    print(md)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text(md)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    ok = (
        all(r["ok"] for r in report["compare"])
        and report.get("tests", {}).get("returncode", 0) == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
