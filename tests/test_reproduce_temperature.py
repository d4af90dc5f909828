"""The temperature reproduction (``weightinfo reproduce temperature``, Prop 2.8 at equal loss): quick run
through the command, with independent checks of the stopping rule."""

import json
import math

import pytest

from weightinfo.experiments._temperature_report import verdict
from weightinfo.experiments.temperature import (
    TEMPERATURE,
    TEMPERATURE_QUICK,
    check_every_for,
    run_temperature,
)


def test_settings():
    assert TEMPERATURE["n_train"] > TEMPERATURE_QUICK["n_train"]
    Ts = {round(lr / b, 12) for lr, b in TEMPERATURE["configs"]}
    assert len(Ts) >= 8  # distinct temperatures matter most
    assert len(Ts) < len(TEMPERATURE["configs"])  # and at least one equal-η/B pair (linear scaling)
    assert min(TEMPERATURE["targets"]) < max(TEMPERATURE["targets"])


def test_verdict_and_check_interval():
    assert verdict(-0.9, -0.1) == "HOLDS"
    assert verdict(0.1, 0.9) == "DOES NOT HOLD"
    assert verdict(-0.5, 0.5) == "NOT SHOWN"
    assert verdict(None, None) == "NOT SHOWN"
    assert (
        check_every_for(0.02, 1.0) == 50
        and check_every_for(0.5, 1.0) == 2
        and check_every_for(4.0, 1.0) == 1
    )


def _check_runs(data):
    s = data["settings"]
    n = s["n_train_used"]
    for r in data["runs"]:
        # T = η/B, steps ↔ epochs ↔ SGD time, the check interval, the budget
        assert r["temperature"] == r["lr"] / r["batch"]
        assert r["epochs"] == pytest.approx(r["steps"] / math.ceil(n / r["batch"]))
        assert r["sgd_time"] == pytest.approx(r["lr"] * r["steps"])
        assert r["check_every"] == max(1, round(s["check_sgd_time"] / r["lr"]))
        assert r["max_steps"] % r["check_every"] == 0
        assert r["max_steps"] * r["lr"] >= s["max_sgd_time"] - 1e-9
        assert r["steps"] % r["check_every"] == 0 and r["steps"] <= r["max_steps"]
        if r["reached"]:
            # stopped at the first crossing: at or below L* now, above it at the previous check
            assert r["loss_stop"] <= r["target_loss"]
            assert r["loss_prev"] is not None and r["loss_prev"] > r["target_loss"]
            # the Tracker's loss (another code path) is the stopping loss
            assert r["loss"] == pytest.approx(r["loss_stop"], rel=1e-4, abs=1e-6)
            for k in ("logdet", "trace", "free_energy"):
                assert math.isfinite(r[k]), k
            assert r["trace"] >= 0 and r["logdet_method"] == "dense"
            assert abs(
                r["free_energy"] - (r["loss"] + 0.5 * r["temperature"] * r["logdet"])
            ) <= 1e-9 * (1 + abs(r["free_energy"]))
            assert r["logdet"] >= s["n_params"] * math.log(s["damping"]) - 1e-6  # F is PSD
        else:
            assert r["steps"] == r["max_steps"] and r["loss_stop"] > r["target_loss"]
            assert r["logdet"] is None and r["trace"] is None
    # a lower target is reached later along the same run
    key = {(r["lr"], r["batch"], r["seed"], r["target_loss"]): r for r in data["runs"]}
    t_hi, t_lo = max(s["targets"]), min(s["targets"])
    for (lr, b, sd, t), r in key.items():
        if t == t_lo and r["reached"]:
            assert r["steps"] >= key[(lr, b, sd, t_hi)]["steps"]


def test_quick_run_through_the_command(tmp_path):
    from typer.testing import CliRunner

    from weightinfo.cli import app

    out = tmp_path / "temperature"
    cli = CliRunner().invoke(app, ["reproduce", "temperature", "--quick", "--out", str(out), "-q"])
    assert cli.exit_code == 0, (cli.output, cli.exception)
    for ext in ("json", "png", "md"):
        assert (out / f"temperature.{ext}").exists()
    assert (out / "temperature.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "temperature.json").read_text())
    assert data["quick"] is True and data["made_by"]["quick"] is True
    md = (out / "temperature.md").read_text()
    assert md.startswith("**QUICK SMOKE TEST") and "Main reading" in md
    s, runs = data["settings"], data["runs"]
    assert len(runs) == len(s["configs"]) * s["seeds"] * len(s["targets"])
    assert all(r["reached"] for r in runs)  # the quick settings reach every target
    _check_runs(data)
    an = data["analysis"]
    assert an["main_target"] == min(s["targets"])
    for e in an["by_target"]:
        assert e["n_reached"] == e["n_runs"] == len(s["configs"]) * s["seeds"]
        assert e["verdict"] in ("HOLDS", "DOES NOT HOLD", "NOT SHOWN")
        assert sum(row["n_runs"] for row in e["per_temperature"]) == e["n_reached"]
        assert e["paired"]["n_seeds"] == s["seeds"]
        assert e["loss_stop_range"][1] <= e["target_loss"]
        la = e["loss_adjusted"]  # two targets: the along-run rate between them is defined, and > 0
        assert la["sensitivity"] is not None and la["sensitivity"] > 0
    for k in (
        "experiment",
        "settings",
        "runs",
        "analysis",
        "analysis_summary",
        "made_by",
        "time_s",
    ):
        assert k in data


def test_unreached_runs_are_reported_not_dropped():
    data = run_temperature(
        quick=True,
        log=lambda _: None,
        settings={
            "configs": [[0.4, 16], [0.02, 16], [0.8, 16]],
            "seeds": 1,
            "max_sgd_time": 20.0,
            "n_boot": 20,
        },
    )
    _check_runs(data)
    runs = data["runs"]
    assert len(runs) == 3 * len(data["settings"]["targets"])
    missed = [r for r in runs if not r["reached"]]
    assert missed  # 20 units of SGD time are not enough for L* = 0.3
    for e in data["analysis"]["by_target"]:
        assert e["n_runs"] == 3 and e["n_reached"] + len(e["not_reached"]) == 3
    assert any("never reached" in line for line in data["analysis_summary"])


def test_sgd_to_targets_follows_plain_sgd():
    """With a target never reached, sgd_to_targets is plain_sgd (same data order, same weights); the callback
    gets the first check at or below a target with the previous check's loss."""
    import torch

    from weightinfo.experiments._sgd import plain_sgd, sgd_to_targets
    from weightinfo.experiments.temperature import _model

    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(40, 5, generator=g), torch.randint(0, 3, (40,), generator=g)
    a, b = _model(5, 4, 3, "tanh", 1), _model(5, 4, 3, "tanh", 1)
    steps = plain_sgd(a, X, Y, 0.1, 16, 3, seed=2)  # 3 epochs × 3 batches
    end = sgd_to_targets(
        b, X, Y, 0.1, 16, 2, targets=[0.0], check_every=1, max_steps=9, on_reach=None
    )
    assert steps == end["steps"] == 9
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    seen = []
    sgd_to_targets(
        _model(5, 4, 3, "tanh", 1), X, Y, 0.5, 8, 0, targets=[0.9, 0.95], check_every=3, max_steps=3000,
        on_reach=lambda t, st, loss, prev: seen.append((t, st, loss, prev)),
    )  # fmt: skip
    assert [t for t, *_ in seen] == [0.95, 0.9]
    for t, st, loss, prev in seen:
        assert loss <= t < prev and st % 3 == 0
