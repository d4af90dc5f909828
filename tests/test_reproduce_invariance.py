"""The invariance reproduction (``weightinfo reproduce invariance``): quick run, and its two statistics."""

import json

import pytest
import torch

from weightinfo.experiments._invariance_measures import normalised_variance, spearman_ci
from weightinfo.experiments.invariance import INVARIANCE, INVARIANCE_QUICK

PNG = b"\x89PNG\r\n\x1a\n"


def test_spearman_perfect_monotone():
    a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    c = spearman_ci(a, [v**3 for v in a], n_boot=200, seed=0)
    assert c["rho"] == pytest.approx(1.0)
    assert c["ci_low"] == pytest.approx(1.0) and c["ci_high"] == pytest.approx(1.0)
    assert spearman_ci(a, [-v for v in a], n_boot=50)["rho"] == pytest.approx(-1.0)


def test_normalised_variance_toy():
    g = torch.Generator().manual_seed(0)
    base = torch.randn(1, 20, 3, generator=g)  # 20 samples, 3 units
    same = base.expand(5, 20, 3)  # units ignore the 5 transformations
    assert normalised_variance(same)[0] == pytest.approx(0.0)
    noise = torch.randn(5, 20, 3, generator=g)  # transformation as strong as the sample
    assert 0.5 < normalised_variance(noise)[0] < 1.5
    dead = torch.cat([same, torch.zeros(5, 20, 1)], dim=2)  # a dead unit is left out
    assert normalised_variance(dead) == (pytest.approx(0.0), 1)


def test_settings():
    assert (
        len(INVARIANCE["augment"]) * len(INVARIANCE["fractions"]) * len(INVARIANCE["weight_noise"])
        >= 8
    )
    assert INVARIANCE_QUICK["dataset"] == "digits"


def test_quick_run_through_the_command(tmp_path):
    from typer.testing import CliRunner

    from weightinfo.cli import app

    out = tmp_path / "inv"
    cli = CliRunner().invoke(app, ["reproduce", "invariance", "--quick", "--out", str(out), "-q"])
    assert cli.exit_code == 0, (cli.output, cli.exception)
    tmp_path = out
    for ext in ("json", "png", "md"):
        assert (tmp_path / f"invariance.{ext}").exists()
    assert (tmp_path / "invariance.png").read_bytes()[:8] == PNG
    data = json.loads((tmp_path / "invariance.json").read_text())
    assert data["quick"] is True and data["made_by"]["quick"] is True
    assert len(data["networks"]) >= 8
    r = data["networks"][0]
    for k in ("iw", "i_eff", "fisher", "normalised_variance", "times_s"):
        assert k in r
    assert set(r["fisher"]) == {*INVARIANCE_QUICK["nuisances"], "class-direction"}
    an = data["analysis"]
    for k in ("spearman_iw", "depth", "augmentation", "normalised_variance_vs_fisher"):
        assert k in an
    assert an["augmentation"]["n_pairs"] == 4
    md = (tmp_path / "invariance.md").read_text()
    assert md.startswith("**QUICK SMOKE TEST") and "Spearman" in md
    assert data["analysis_summary"]
