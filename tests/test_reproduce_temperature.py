"""The temperature reproduction (``weightinfo reproduce temperature``, Prop 2.8): quick run through the command."""

import json
import math

from weightinfo.experiments.temperature import TEMPERATURE, TEMPERATURE_QUICK


def test_settings():
    assert TEMPERATURE["epochs"] > TEMPERATURE_QUICK["epochs"]
    assert len(TEMPERATURE["lrs"]) * len(TEMPERATURE["batch_sizes"]) >= 9


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
    assert (out / "temperature.md").read_text().startswith("**QUICK SMOKE TEST")
    s = data["settings"]
    runs = data["runs"]
    assert len(runs) == len(s["lrs"]) * len(s["batch_sizes"]) * s["seeds"]
    for r in runs:
        for k in ("loss", "logdet", "trace", "free_energy", "temperature"):
            assert math.isfinite(r[k]), k
        assert r["trace"] >= 0 and r["loss"] >= 0
        assert r["logdet_method"] == "dense"
        # independent checks: T = η/B and the free energy from the recorded fields
        assert r["temperature"] == r["lr"] / r["batch"]
        assert abs(
            r["free_energy"] - (r["loss"] + 0.5 * r["temperature"] * r["logdet"])
        ) <= 1e-9 * (1 + abs(r["free_energy"]))
        # ln|F + δI| ≥ P ln δ (F is PSD)
        assert r["logdet"] >= s["n_params"] * math.log(s["damping"]) - 1e-6
    an = data["analysis"]
    for k in ("rho_T_logdet", "rho_T_trace", "band", "slope_at_fixed_loss", "per_temperature"):
        assert k in an
    assert sum(row["n_runs"] for row in an["per_temperature"]) == len(runs)
