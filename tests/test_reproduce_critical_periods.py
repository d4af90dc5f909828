"""The critical-periods reproduction (``weightinfo reproduce critical-periods``): the deficits, the run plan, and
a quick run through the command with independent checks of its JSON."""

import json
import math

import pytest
import torch

from weightinfo.experiments.critical_periods import (
    CRITICAL_PERIODS,
    CRITICAL_PERIODS_QUICK,
    blur,
    flip,
    plan_runs,
)


def test_settings():
    s, q = CRITICAL_PERIODS, CRITICAL_PERIODS_QUICK
    assert s["clean_epochs"] > q["clean_epochs"] and s["n_train"] > q["n_train"]
    assert 0 in s["removal_epochs"] and s["baseline_seeds"] >= 2 and s["blur_size"] == 7


def test_blur_keeps_only_the_7x7_block_means():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 1, 28, 28, generator=g)
    y = blur(x)
    assert y.shape == x.shape
    # 28 → 7 by 4×4 means: adding anything with zero mean in every 4×4 block changes nothing
    d = torch.randn(3, 1, 28, 28, generator=g)
    d = d - torch.nn.functional.avg_pool2d(d, 4).repeat_interleave(4, -1).repeat_interleave(4, -2)
    assert torch.allclose(blur(x + d), y, atol=1e-5)
    # the map is linear of rank 7·7 = 49 (a 28 → 7 → 28 bottleneck)
    basis = torch.eye(784).reshape(784, 1, 28, 28)
    assert torch.linalg.matrix_rank(blur(basis).reshape(784, 784)) == 49
    # nearest upsampling: a blurred image is its own re-blur (each 4×4 block is constant)
    z = blur(x, mode="nearest")
    assert torch.allclose(blur(z, mode="nearest"), z, atol=1e-6)
    corner = x[..., :4, :4].mean(dim=(-2, -1), keepdim=True)
    assert torch.allclose(z[..., :4, :4], corner.expand(3, 1, 4, 4), atol=1e-6)
    with pytest.raises(ValueError, match="multiple of 7"):
        blur(torch.zeros(1, 1, 30, 30))


def test_flip_is_an_involution_upside_down():
    x = torch.rand(2, 1, 28, 28)
    assert torch.equal(flip(flip(x)), x)
    assert torch.equal(flip(x)[..., 0, :], x[..., 27, :]) and not torch.equal(flip(x), x)


def test_plan_counts_epochs_and_dedups():
    s = CRITICAL_PERIODS
    plan = plan_runs(s)
    keys = [(r["deficit"], r["deficit_start"], r["deficit_end"], r["seed"]) for r in plan]
    assert len(keys) == len(set(keys))
    lengths = sorted({r["deficit_end"] + s["clean_epochs"] for r in plan})
    for r in plan:
        if (
            r["deficit"] == "none"
        ):  # the matched control: trained to the longest total, tested at every total
            assert r["control_lengths"] == lengths and r["epochs"] == lengths[-1]
        else:
            assert r["epochs"] == r["deficit_end"] + s["clean_epochs"]
        assert r["deficit_epochs"] == r["deficit_end"] - r["deficit_start"]
    # onset 0 of the window is the removal run at e = window_length: trained once, with both roles
    w0 = [r for r in plan if r["deficit"] == "blur" and r["deficit_start"] == 0
          and r["deficit_end"] == s["window_length"]]  # fmt: skip
    assert len(w0) == 1 and set(w0[0]["roles"]) == {"removal", "window"}
    tracked = {(r["deficit"], r["deficit_end"]) for r in plan if r["tracked"]}
    assert tracked == {("none", 0), ("blur", max(s["removal_epochs"]))}


def test_quick_run_through_the_command(tmp_path):
    from typer.testing import CliRunner

    from weightinfo.cli import app

    out = tmp_path / "cp"
    cli = CliRunner().invoke(
        app, ["reproduce", "critical-periods", "--quick", "--out", str(out), "-q"]
    )
    assert cli.exit_code == 0, (cli.output, cli.exception)
    for ext in ("json", "png", "md"):
        assert (out / f"critical_periods.{ext}").exists()
    assert (out / "critical_periods.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "critical_periods.json").read_text())
    assert data["quick"] is True and data["made_by"]["quick"] is True
    md = (out / "critical_periods.md").read_text()
    assert md.startswith("**QUICK SMOKE TEST")
    assert "## Reading" in md and ("HOLDS" in md or "NOT SHOWN" in md)
    s, runs = data["settings"], data["runs"]
    steps_per_epoch = math.ceil(s["n_train"] / s["batch"])
    assert s["steps_per_epoch"] == steps_per_epoch
    assert s["epochs_total"] == sum(r["epochs"] for r in runs)
    for r in runs:
        # epochs counted right: deficit epochs + the same clean epochs after removal, steps = epochs · ⌈N/B⌉
        assert r["epochs"] == r["clean_epochs_after"] + r["deficit_end"]
        if r["deficit"] == "none":
            lengths = r["control_lengths"]
            assert r["epochs"] == max(lengths)
            assert [p["epochs"] for p in r["test_at"]] == lengths
            assert r["test_at"][-1]["test_accuracy"] == r["test_accuracy"]
        else:
            assert r["epochs"] == r["deficit_end"] + s["clean_epochs"]
        assert r["steps"] == r["epochs"] * steps_per_epoch
        assert r["lr_final"] == pytest.approx(s["lr"] * s["lr_decay"] ** (r["epochs"] - 1))
        assert 0.0 <= r["test_accuracy"] <= 1.0 and r["test_loss"] >= 0
        # tr F ≥ 0 and the 9 block traces sum to it; shares sum to 1
        assert r["trace"] >= 0 and len(r["blocks"]) == 9
        assert sum(b["trace"] for b in r["blocks"]) == pytest.approx(r["trace"], rel=1e-9)
        assert sum(b["share"] for b in r["blocks"]) == pytest.approx(1.0)
        assert sum(b["n_params"] for b in r["blocks"]) == s["n_params"]
        if r["tracked"]:
            c = r["curve"]
            assert [p["epoch"] for p in c] == list(range(r["epochs"] + 1))
            assert c[-1]["trace"] == pytest.approx(r["trace"])
            on = [p["deficit_on"] for p in c[1:]]
            assert on == [r["deficit_start"] <= t < r["deficit_end"] for t in range(r["epochs"])]
            assert all(p["trace"] >= 0 and sum(p["shares"]) == pytest.approx(1.0) for p in c)
        else:
            assert r["curve"] is None
    an = data["analysis"]
    b = {x["epochs"]: x for x in an["baseline"]["by_length"]}
    clean = [r for r in runs if r["deficit"] == "none"]
    assert len(clean) == s["baseline_seeds"]
    for L, x in b.items():
        accs = [next(p["test_accuracy"] for p in r["test_at"] if p["epochs"] == L) for r in clean]
        assert x["mean"] == pytest.approx(sum(accs) / len(accs))
        assert x["noise"] >= max(2 * (max(accs) - min(accs)), s["min_noise"]) - 1e-12
    assert [x["e"] for x in an["removal"]] == s["removal_epochs"]
    assert [x["onset"] for x in an["window"]] == s["window_onsets"]
    for x in an["removal"] + an["window"] + an["flip"]:
        # every drop is against the clean runs after the same total number of epochs
        assert (
            x["clean_accuracy"] == b[x["epochs"]]["mean"] and x["noise"] == b[x["epochs"]]["noise"]
        )
        assert x["drop"] == pytest.approx(b[x["epochs"]]["mean"] - x["test_accuracy"])
    for k in ("long_deficit_impairs", "short_deficit_recovers", "window_peaks_early", "fisher_peaks_early",
              "blur_shifts_fisher_up", "flip_leaves_no_mark"):  # fmt: skip
        assert isinstance(an[k], bool)
    assert data["analysis_summary"] and all(
        line.startswith("* ") for line in data["analysis_summary"]
    )
