"""Random labels (``weightinfo.experiments.random_labels``, ``weightinfo reproduce random-labels``).

A reduced version of the documented experiment: an MLP fit to 0, 50 and 100 % random digits labels from
the same initial weights; the information in its weights must rise strictly with the fraction for both
methods at the same β and λ.
"""

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from weightinfo.cli import app
from weightinfo.experiments import QUICK_BANNER
from weightinfo.experiments.random_labels import (
    DEFAULTS,
    QUICK,
    markdown,
    parse_pairs,
    run,
    strictly_increasing,
)

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"


def _quick(**overrides):
    kw = {k: v for k, v in QUICK.items() if k != "max_epochs"}
    kw.update(epochs=QUICK["max_epochs"], progress=False, **overrides)
    return run(**kw)


@pytest.fixture(scope="module")
def reduced():
    return _quick()


def test_information_rises_with_the_fraction_of_random_labels(reduced):
    rows = reduced["rows"]
    assert [r["fraction"] for r in rows] == [0.0, 0.5, 1.0]
    for r in rows:  # every network fits its (noisy) training labels
        assert r["fit_reached"] and r["train_acc"] >= 0.99, r
        assert r["train_loss"] <= QUICK["fit_loss"]
    # clean labels generalise, random ones do not
    assert rows[0]["test_acc"] > 0.8 > 0.2 > rows[-1]["test_acc"]
    for method in ("fisher", "variational"):
        iw = [r[f"iw_{method}"] for r in rows]
        assert all(math.isfinite(v) and v > 0 for v in iw)
        assert strictly_increasing(iw), (method, iw)
        assert reduced["ordering"][method]["iw_strictly_increasing"]
    assert strictly_increasing([r["mean_term"] for r in rows])


def test_terms_and_per_layer_rows_add_up(reduced):
    for r, entry in zip(reduced["rows"], reduced["per_layer"]):
        assert entry["fraction"] == r["fraction"]
        layers = entry["layers"]
        assert [e["layer"] for e in layers] == ["layers.0", "layers.1"]
        assert sum(e["n_params"] for e in layers) == reduced["settings"]["model"]["n_params"]
        assert sum(e["mean_term"] for e in layers) == pytest.approx(r["mean_term"], rel=1e-9)
        for m in ("fisher", "variational"):
            assert sum(e[f"iw_{m}"] for e in layers) == pytest.approx(r[f"iw_{m}"], rel=1e-6)
            assert r[f"curvature_term_{m}"] == pytest.approx(r[f"iw_{m}"] - r["mean_term"])
            # KL(Q||P) >= the mean term: the variance part of the Gaussian KL is >= 0
            assert r[f"curvature_term_{m}"] > 0
            assert math.isfinite(r[f"expected_loss_{m}"])


def test_same_initialisation_and_nested_corruption(reduced):
    rows = reduced["rows"]
    assert rows[0]["n_changed"] == 0
    assert rows[0]["n_changed"] < rows[1]["n_changed"] < rows[2]["n_changed"]
    assert reduced["settings"]["training"]["same_initialisation"]
    assert reduced["settings"]["information"]["beta"] == QUICK["beta"]


def test_settings_are_validated():
    with pytest.raises(ValueError, match="fractions"):
        run(dataset="digits", fractions=(0.5, 0.0), progress=False)
    with pytest.raises(ValueError, match="methods"):
        run(dataset="digits", methods=("laplace",), progress=False)
    with pytest.raises(ValueError, match="beta"):
        run(dataset="digits", beta=-1.0, progress=False)


def test_parse_pairs():
    assert parse_pairs("3e-7:0.05, 1e-7:0.07") == [(3e-7, 0.05), (1e-7, 0.07)]
    assert parse_pairs("none") == []
    with pytest.raises(ValueError):
        parse_pairs("3e-7")


def test_defaults_are_the_documented_run():
    assert DEFAULTS["fractions"] == (0.0, 0.25, 0.5, 1.0)
    assert DEFAULTS["methods"] == ("fisher", "variational")
    assert DEFAULTS["dataset"] == "fashion-mnist"


def test_full_settings_report_is_not_marked_quick(reduced):
    """``run`` without ``quick=True`` (the documented run's path) records ``quick: false``, no banner."""
    assert reduced["quick"] is False
    assert QUICK_BANNER not in markdown(reduced)


def test_cli_reproduce_random_labels_quick(tmp_path):
    out = tmp_path / "results"
    torch.manual_seed(123)  # the command must not depend on the global RNG state
    result = runner.invoke(
        app,
        ["reproduce", "random-labels", "--quick", "--n-train", "300", "--methods", "fisher",
         "--out", str(out), "-q"],
    )  # fmt: skip
    assert result.exit_code == 0, (result.output, result.exception)
    assert "IW fisher" in result.stdout and "rises strictly" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "random_labels.json",
        "random_labels.md",
        "random_labels.png",
    ]
    data = json.loads((out / "random_labels.json").read_text())
    assert data["settings"]["dataset"] == "digits"
    assert data["settings"]["n_train"] == 300
    assert data["settings"]["methods"] == ["fisher"]
    assert [r["fraction"] for r in data["rows"]] == [0.0, 0.5, 1.0]
    assert data["ordering"]["fisher"]["iw_strictly_increasing"]
    assert data["command"] == (
        f"weightinfo reproduce random-labels --quick --n-train 300 --methods fisher --out {out}"
    )
    assert (out / "random_labels.png").read_bytes()[:8] == PNG
    md = (out / "random_labels.md").read_text()
    assert "| random labels |" in md and "## Reading" in md
    # A smoke test says so, in the JSON and on the report's first line.
    assert data["quick"] is True
    assert md.splitlines()[0] == QUICK_BANNER
    assert f"results: {out}" in result.stdout


def test_cli_rejects_bad_options(tmp_path):
    result = runner.invoke(
        app, ["reproduce", "random-labels", "--quick", "--fractions", "0,x", "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "--fractions" in result.output


@pytest.mark.slow
def test_full_reproduction(tmp_path):
    """The documented run (Fashion-MNIST, minutes): IW rises strictly for both methods."""
    from weightinfo import load_dataset

    try:
        load_dataset(DEFAULTS["dataset"])
    except FileNotFoundError as e:
        pytest.skip(f"{DEFAULTS['dataset']} not available: {e}")
    r = run(out_dir=tmp_path, progress=False)
    for method in ("fisher", "variational"):
        assert r["ordering"][method]["iw_strictly_increasing"]


def test_report_of_a_single_fraction(reduced):
    """A run with one fraction renders (no per-layer increase to share out) instead of dividing by 0."""
    one = dict(reduced, rows=reduced["rows"][:1], per_layer=reduced["per_layer"][:1])
    text = markdown(one)
    assert "Where the extra information goes" not in text and "mean term" in text
