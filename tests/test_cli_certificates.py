"""``weightinfo reproduce certificates`` (quick digits run) and the certify command's prior/β options."""

import json

import pytest
from typer.testing import CliRunner

from tests.cli_helpers import SMALL
from weightinfo.cli import app
from weightinfo.experiments import QUICK_BANNER


def test_reproduce_certificates_quick_digits(tmp_path):
    out = tmp_path / "out"
    args = ["reproduce", "certificates", "--which", "digits", "--quick", "--out", str(out), "-q"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, (res.output, res.exception)
    assert "best certificate" in res.stdout and "| digits |" in res.stdout
    d = json.loads((out / "certificates_digits.json").read_text())
    assert d["k_union"] == len(d["information_grid"]) + 1  # β grid + the optimised posterior
    assert d["information"]["prior"] == d["optimized"]["prior"] == "data"
    # The smaller of the two, re-certified with δ′ split between the two final MC estimates.
    small = min(d["information"], d["optimized"], key=lambda r: r["risk_bound"])
    assert d["best"]["posterior"] == small["posterior"] and d["best"]["of"] == 2
    assert small["risk_bound"] <= d["best"]["risk_bound"] <= small["risk_bound"] + 0.05
    assert (out / "certificates_digits.png").read_bytes()[:4] == b"\x89PNG"
    assert "# PAC-Bayes risk certificates: digits" in (out / "certificates_digits.md").read_text()
    # A smoke test says so, in the JSON and on the report's first line.
    assert d["quick"] is True
    assert (out / "certificates_digits.md").read_text().splitlines()[0] == QUICK_BANNER
    assert f"results: {out}" in res.stdout


def test_reproduce_certificates_rejects_unknown_experiment(tmp_path):
    res = CliRunner().invoke(
        app, ["reproduce", "certificates", "--which", "cifar", "--out", str(tmp_path)]
    )
    assert res.exit_code != 0 and "--which" in res.output


@pytest.mark.usefixtures("isolated_cache")
def test_certify_cli_beta_grid_and_prior_settings(tmp_path):
    out = tmp_path / "out"
    args = [
        "certify",
        *SMALL,
        "--posterior",
        "information",
        "--beta",
        "1e-4,1e-3",
        "--prior-epochs",
        "2",
        "--prior-lr",
        "0.02",
        "--prior-batch-size",
        "32",
        "--prior-momentum",
        "0.5",
        "--mc-samples",
        "10",
        "--mc",
        "per_example",
        "--out",
        str(out),
        "-q",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, (res.output, res.exception)
    assert "union bound over K = 2" in res.stdout
    d = json.loads((out / "certificate.json").read_text())
    assert d["k_union"] == 2 and d["beta"] in (1e-4, 1e-3) and d["prior"] == "data"
