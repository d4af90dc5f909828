"""torch.distributed (gloo, 2 CPU processes, unequal shards of 7 and 4 samples) against one process on all data.

One spawn runs every library check (``_workers.compute``); deterministic quantities must agree to 1e-10 in
float64, stochastic ones within their stated error, and both ranks must return identical results.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from . import _workers as W

pytestmark = pytest.mark.skipif(
    not torch.distributed.is_available(), reason="torch.distributed is not available"
)
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """(rank 0, rank 1, single process on all the data)."""
    tmp = tmp_path_factory.mktemp("dist")
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env_path) if p)
    torch.multiprocessing.spawn(
        W.worker, args=(2, str(tmp / "init"), str(tmp)), nprocs=2, join=True
    )
    ranks = [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    # the tracker's JSONL: rank 0 alone wrote it (one record), the single process writes its own
    lines = (tmp / "track.jsonl").read_text().splitlines()
    ranks[0]["tracker_lines"] = ranks[1]["tracker_lines"] = len(lines)
    os.environ["WEIGHTINFO_TEST_TRACK"] = str(tmp / "single.jsonl")
    model, X, Y = W.problem()
    single = W.compute(model, (X, Y))
    single["tracker_lines"] = 1
    return ranks[0], ranks[1], single


def _close(a, b, tol=1e-10):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _close(a[k], b[k], tol)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            _close(u, v, tol)
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype == torch.float64
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
    elif isinstance(a, float):
        assert a == pytest.approx(b, rel=tol, abs=tol) or (math.isnan(a) and math.isnan(b))
    else:
        assert a == b


def _same(a, b):
    """Bitwise equal (the two ranks)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        for u, v in zip(a, b):
            _same(u, v)
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b)
    else:
        assert a == b


def test_ranks_agree_exactly(results):
    r0, r1, _ = results
    assert r0.pop("rank") == (0, 2, True) and r1.pop("rank") == (1, 2, False)
    _same(r0, r1)


DETERMINISTIC = [
    "fisher_diag_exact", "fisher_diag_exact_n", "fisher_diag_exact_loss",
    "fisher_diag_empirical", "fisher_diag_empirical_n", "fisher_diag_mc_n", "fisher_kfac",
    "fisher_full", "ggn_full", "hessian_diag", "hessian_diag_n", "ggn_v", "hutchinson_trace",
    "info_fisher", "info_variational_n",
    "certify_standard", "certify_record_bound_n", "activation_fisher", "prior_mlp64", "prior_mlp64_info",
    "certify_trained_prior", "certify_trained_prior_training", "certify_trained_prior_record",
    "effective_information", "tracker", "tracker_lines",
]  # fmt: skip


@pytest.mark.parametrize("key", DETERMINISTIC)
def test_deterministic_equals_single_process(results, key):
    r0, _, single = results
    if key == "info_variational_n":
        assert r0["info_variational"][1:3] == pytest.approx(single["info_variational"][1:3], 1e-10)
        return
    # Hutchinson: the probes come from the seed on every rank and each product is exact, so the
    # estimate equals the single-process one. Fisher form: the weight draws of E_Q[L_D] are shared too.
    _close(r0[key], single[key])
    assert single["fisher_diag_exact_n"] == W.N


def test_mc_fisher_within_its_error(results):
    """kind="mc": rank 1 draws labels from rank_seed(seed), so the result is another unbiased draw.

    Per entry, a one-label MC Fisher of N samples has relative spread ~ √(2/N) at most; we check the
    trace against the exact one within 4 such spreads and the per-sample count exactly."""
    r0, _, single = results
    exact = sum(float(v.sum()) for v in single["fisher_diag_exact"].values())
    mc = sum(float(v.sum()) for v in r0["fisher_diag_mc"].values())
    assert abs(mc - exact) <= 4 * math.sqrt(2 / W.N) * exact
    # rank 0 draws with the seed itself: the shard's first labels match the single process's draws
    assert r0["fisher_diag_mc_loss"] == pytest.approx(single["fisher_diag_mc_loss"], rel=1e-10)


def test_fisher_form_on_a_subset(results):
    """curvature_samples=6 of 11: the shards take 4 + 2 (proportional), L_D still over all 11 samples."""
    r0, _, single = results
    assert r0["info_fisher_sub"][1:] == pytest.approx(single["info_fisher_sub"][1:], rel=1e-10)
    assert math.isfinite(r0["info_fisher_sub"][0])


def test_variational_close_to_single_process(results):
    """The distributed optimisation reduces the data term's gradient over the union of the ranks' minibatches
    but draws its own noise per rank and batches 2 + 2 rows from the shards instead of 4 rows from all data:
    another draw of the same stochastic optimisation (40 epochs, decayed learning rate, no early stop). Its
    IW and σ² must agree with the single-process run within that optimisation's Monte Carlo spread — we allow
    10 % on the nats and a median 25 % on σ² (two single-process runs with different seeds differ by a few %)."""
    r0, _, single = results
    nats, ref = r0["info_variational"][0], single["info_variational"][0]
    assert r0["info_variational"][3] == single["info_variational"][3]  # same number of epochs
    assert abs(nats - ref) <= 0.10 * abs(ref)
    ratios = torch.cat(
        [
            (r0["info_variational_var"][k] / single["info_variational_var"][k]).reshape(-1)
            for k in single["info_variational_var"]
        ]
    )
    assert float((ratios.log().abs()).median()) < math.log(1.25)


def _weightinfo(args: list[str], *, ranks: int, cwd, timeout: int) -> subprocess.CompletedProcess:
    """``python -m weightinfo ARGS`` (ranks = 1) or under ``torchrun --nproc-per-node RANKS --standalone``, one
    torch thread, this checkout first on PYTHONPATH; asserts it exited 0."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    launch = (
        ["-m", "torch.distributed.run", "--nproc-per-node", str(ranks), "--standalone"]
        if ranks > 1
        else []
    )
    run = subprocess.run([sys.executable, *launch, "-m", "weightinfo", *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=timeout)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def test_cli_fisher_under_torchrun(tmp_path):
    """``torchrun --nproc-per-node 2 -m weightinfo fisher``: every rank computes on its shard, only rank 0
    prints the table and writes the JSON, and the JSON equals the single-process one."""
    args = ["fisher", "--dataset", "digits", "--n-samples", "60", "--quiet"]
    out2 = tmp_path / "two"
    out2.mkdir()
    _weightinfo([*args, "--json", str(out2 / "f.json")], ranks=2, cwd=out2, timeout=120)
    assert sorted(p.name for p in out2.iterdir()) == ["f.json"]
    _weightinfo([*args, "--json", str(tmp_path / "one.json")], ranks=1, cwd=None, timeout=120)
    import json

    a = json.loads((out2 / "f.json").read_text())
    b = json.loads((tmp_path / "one.json").read_text())
    assert a["fisher"]["n_samples"] == b["fisher"]["n_samples"] == 60
    assert a["fisher"]["trace"] == pytest.approx(b["fisher"]["trace"], rel=1e-5)


def test_certify_per_example_within_its_error(results):
    """Per-example draws come from one stream per rank: L̂ is another draw over the same m·n = 220 terms, the
    bound's n and m are the global ones, and the KL (deterministic) is the single-process one."""
    r0, _, single = results
    emp, ref = r0["certify_per_example"][1], single["certify_per_example"][1]
    m, n = single["certify_per_example"][5], single["certify_per_example"][4]
    assert r0["certify_per_example"][3:6] == pytest.approx(
        single["certify_per_example"][3:6], 1e-10
    )
    assert (m, n) == (20, W.N)
    # two independent means of m·n Bernoulli terms: |difference| ≤ 4 · √(2 p(1−p)/(m·n))
    assert abs(emp - ref) <= 4 * math.sqrt(2 * 0.25 / (m * n))


def test_certify_optimized_posterior(results):
    """Optimised posterior: the prior mean is trained data-parallel on the gathered prior set (w0 equal to one
    process's up to float32 summation order, so not by hash), the posterior's gradients are reduced (another
    draw of the optimisation), the bound uses the global n."""
    r0, _, single = results
    a, b = r0["certify_optimize"], single["certify_optimize"]
    assert a[4:6] == b[4:6] == (W.N, 10)
    assert 0.0 <= a[1] <= 1.0 and math.isfinite(a[3]) and a[0] <= 1.0
    assert abs(a[3] - b[3]) <= 0.5 * abs(b[3]) + 0.05  # KL of two short fits from the same start


def test_data_parallel_prior(results):
    """The prior mean trained data-parallel (each rank the gradient of its share of every batch, all-reduced
    before each step; early stopping on all-reduced held-out counts): float64 equals one process to 1e-10
    (``DETERMINISTIC``, with the same epochs and stopping decisions), float32 (32 steps) to 1e-6; a BatchNorm
    model is trained whole on every rank, bit for bit the single-process w0. The record's prior-mean hash is of
    the exact bits: it equals the single-process one only where the weights match bitwise (BatchNorm), not
    after a data-parallel float training (summation order)."""
    r0, _, single = results
    assert r0["prior_mlp32_info"] == single["prior_mlp32_info"]
    for k, v in single["prior_mlp32"].items():
        assert v.dtype == torch.float32
        torch.testing.assert_close(r0["prior_mlp32"][k], v, rtol=1e-6, atol=1e-6)
    assert r0["prior_bn_info"] == single["prior_bn_info"]
    for k, v in single["prior_bn"].items():
        assert torch.equal(r0["prior_bn"][k], v)
    info = single["prior_mlp64_info"]  # early stopping on 3 held-out rows, after the best epoch
    assert info["best_epoch"] >= 2 and info["best_epoch"] < info["epochs_run"] < W.PRIOR["epochs"]
    assert single["prior_mlp32_info"]["epochs_run"] == W.PRIOR["epochs"]


def test_effective_information_mc_within_its_error(results):
    r0, _, single = results
    (a, sa, n), (b, sb, _) = r0["effective_information_mc"], single["effective_information_mc"]
    assert n == W.N
    assert abs(a["output"] - b["output"]) <= 4 * math.hypot(sa["output"], sb["output"]) + 0.05


@pytest.mark.slow
def test_cli_certify_under_torchrun(tmp_path):
    """``torchrun --nproc-per-node 2 -m weightinfo certify`` on digits with deterministic settings (information
    posterior at the initial weights, whole-network draws): only rank 0 writes, and the bound equals the
    single-process one. About 35 s on 2 cores (two launches of the CLI): ``-m slow``."""
    args = ["certify", "--dataset", "digits", "--prior", "init", "--posterior", "information",
            "--prior-scale", "0.1", "--beta", "0.1", "--mc", "standard", "--mc-samples", "10",
            "--test-fraction", "0.2", "--quiet"]  # fmt: skip
    out2 = tmp_path / "two"
    out2.mkdir()
    _weightinfo([*args, "--out", str(out2 / "c")], ranks=2, cwd=out2, timeout=180)
    assert sorted(p.name for p in out2.iterdir()) == ["c"]
    assert sorted(p.name for p in (out2 / "c").iterdir()) == ["certificate.json", "certificate.png"]
    _weightinfo([*args, "--out", str(tmp_path / "one")], ranks=1, cwd=None, timeout=180)
    import json

    a = json.loads((out2 / "c" / "certificate.json").read_text())
    b = json.loads((tmp_path / "one" / "certificate.json").read_text())
    assert a["n_bound"] == b["n_bound"] and a["m"] == b["m"] and a["k_union"] == b["k_union"]
    assert a["record"]["data"]["bound"]["shards"] == [
        b["n_bound"] // 2,
        b["n_bound"] - b["n_bound"] // 2,
    ]
    for key in ("risk_bound", "empirical_risk", "kl_nats", "test_error", "mean_test_error"):
        assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-9), key
