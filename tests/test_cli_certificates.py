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


@pytest.mark.usefixtures("isolated_cache")
def test_certify_cli_defaults_choose_from_the_declared_set(tmp_path):
    from weightinfo.certificates import DEFAULT_SEARCH, verify_certificate

    out = tmp_path / "out"
    res = CliRunner().invoke(
        app, ["certify", "--dataset", "digits", "--widths", "16", "--out", str(out)]
    )
    assert res.exit_code == 0, (res.output, res.exception)
    assert "declared set of 6 configurations" in res.stdout and "K = 6" in res.stdout
    assert "Monte Carlo estimator: per-example" in res.stdout
    assert "model mlp(widths=[16])" in res.stdout
    assert "screening bound" in res.stderr and "prior mean trained" in res.stderr  # progress lines
    d = json.loads((out / "certificate.json").read_text())
    assert d["search"] == [c.to_dict() for c in DEFAULT_SEARCH] and d["k_union"] == 6
    assert d["mc"] == "per_example" and d["record"]["model_name"] == "mlp(widths=[16])"
    assert verify_certificate(d).ok


@pytest.mark.usefixtures("isolated_cache")
def test_certify_cli_pinned_prior_scale_certifies_that_setting(tmp_path):
    out = tmp_path / "out"
    args = ["certify", *SMALL, "--prior-scale", "0.02", "--posterior-epochs", "1"]
    res = CliRunner().invoke(
        app, [*args, "--mc", "standard", "--mc-samples", "5", "--out", str(out)]
    )
    assert res.exit_code == 0, (res.output, res.exception)
    d = json.loads((out / "certificate.json").read_text())
    assert d["search"] is None and d["k_union"] == 1 and d["prior_scale"] == 0.02
    assert d["mc"] == "standard" and "standard (whole networks)" in res.stdout


def test_reproduce_fashion_cnn_quick(tmp_path):
    out = tmp_path / "out"
    args = ["reproduce", "certificates", "--which", "fashion-cnn", "--quick", "--out", str(out)]
    res = CliRunner().invoke(app, [*args, "-q"])
    assert res.exit_code == 0, (res.output, res.exception)
    d = json.loads((out / "certificates_fashion_cnn.json").read_text())
    assert d["quick"] is True and d["information"]["mc"] == "per_example"
    assert len(d["grid"]) == d["k_union"] == len(d["settings"]["search"])
    assert "Declared set" in (out / "certificates_fashion_cnn.md").read_text()
