"""The Fig 3 reproduction (``weightinfo reproduce fig3``): quick run through the command, one number checked."""

import json
import math

from weightinfo.experiments.fig3 import FIG3, FIG3_QUICK, knots


def test_settings_and_geometry():
    assert FIG3["n_steps"] >= 10_000 and FIG3_QUICK["n_steps"] <= 1000
    t, v = knots(FIG3)
    assert len(t) == 2 * FIG3["pieces_per_side"] + 1 and t == sorted(t)
    assert t[0] == -1.5 and t[-1] == 1.5 and abs(t[FIG3["pieces_per_side"]]) < 1e-15
    slopes = [abs((v[i + 1] - v[i]) / (t[i + 1] - t[i])) for i in range(len(t) - 1)]
    assert 90 < max(slopes) < 95 and 4.4 < min(slopes) < 4.6
    assert all(abs(z) == FIG3["amplitude"] for z in v)  # every piece spans [−A, A]


def test_quick_run_through_the_command(tmp_path):
    from typer.testing import CliRunner

    from weightinfo.cli import app

    out = tmp_path / "fig3"
    cli = CliRunner().invoke(app, ["reproduce", "fig3", "--quick", "--out", str(out), "-q"])
    assert cli.exit_code == 0, (cli.output, cli.exception)
    for ext in ("json", "png", "md"):
        assert (out / f"fig3.{ext}").exists()
    assert (out / "fig3.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "fig3.json").read_text())
    assert data["quick"] is True and data["made_by"]["quick"] is True
    assert (out / "fig3.md").read_text().startswith("**QUICK SMOKE TEST")
    s = data["settings"]
    assert [r["batch"] for r in data["batches"]] == FIG3_QUICK["batch_sizes"]
    for r in data["batches"]:
        for k in (
            "mean_ln_fisher",
            "shannon_joint",
            "shannon_seed_averaged",
            "shannon_per_seed",
            "piece_entropy",
        ):
            assert math.isfinite(r[k]), k
        assert 0 <= r["shannon_seed_averaged"] <= math.log(s["n_datasets"]) + 1e-9
        assert 0 <= r["shannon_joint"] <= math.log(s["n_datasets"] * s["seeds"]) + 1e-9
        assert sum(r["piece_counts"]) == s["n_datasets"] * s["seeds"]
        # independent check: the recorded Fisher is N s² of the piece holding the recorded θ, found here from
        # the recorded knots (outer pieces extended)
        t, v = s["knots"], s["knot_values"]
        for th, piece, f in zip(
            r["final_theta_sample"], r["final_piece_sample"], r["final_fisher_sample"]
        ):
            j = max(i for i in range(len(t) - 1) if t[i] <= th) if th >= t[0] else 0
            j = min(j, len(t) - 2)
            assert j == piece
            slope = (v[j + 1] - v[j]) / (t[j + 1] - t[j])
            assert abs(f - s["n"] * slope**2) <= 1e-9 * f
    for k in ("mean_ln_fisher", "shannon_joint", "shannon_seed_averaged"):
        assert k in data["analysis"]
