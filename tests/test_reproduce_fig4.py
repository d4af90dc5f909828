"""The Fig 4 reproduction (``weightinfo reproduce fig4``): quick run through the command."""

import json
import math

from weightinfo.experiments.fig4 import FIG4, FIG4_QUICK


def test_settings():
    assert FIG4["epochs"] > FIG4_QUICK["epochs"]
    assert FIG4["batch_sizes"] == [16, 64, 256] and FIG4["ks"] == [2, 4, 6, 8, 10]


def test_quick_run_through_the_command(tmp_path):
    from typer.testing import CliRunner

    from weightinfo.cli import app

    out = tmp_path / "fig4"
    cli = CliRunner().invoke(app, ["reproduce", "fig4", "--quick", "--out", str(out), "-q"])
    assert cli.exit_code == 0, (cli.output, cli.exception)
    for ext in ("json", "png", "md"):
        assert (out / f"fig4.{ext}").exists()
    assert (out / "fig4.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "fig4.json").read_text())
    assert data["quick"] is True and data["made_by"]["quick"] is True
    assert (out / "fig4.md").read_text().startswith("**QUICK SMOKE TEST")
    s = data["settings"]
    assert len(data["batch_runs"]) == 2 * len(s["batch_sizes"]) * s["seeds"]
    assert len(data["class_runs"]) == len(s["ks"]) * s["seeds"]
    for r in data["batch_runs"] + data["class_runs"]:
        for k in ("loss", "trace", "temperature"):
            assert math.isfinite(r[k]), k
        assert r["trace"] >= 0 and r["loss"] >= 0
        # independent checks: T = η/B, the same N for every run, steps = epochs · ceil(N / B)
        assert r["temperature"] == r["lr"] / r["batch"]
        assert r["n_train"] == s["n_train"]
        assert r["steps"] == s["epochs"] * math.ceil(s["n_train"] / r["batch"])
    for r in data["batch_runs"]:
        if r["schedule"] == "fixed_T":
            assert abs(r["temperature"] - s["temperature"]) <= 1e-12
        else:
            assert r["lr"] == s["lr"]
    for r in data["class_runs"]:
        assert r["n_classes_present"] <= r["k"]
    an = data["analysis"]
    assert set(an["batch"]) == {"fixed_lr", "fixed_T"}
    assert "rho_k_trace" in an["classes"] and len(an["classes"]["per_k"]) == len(s["ks"])
