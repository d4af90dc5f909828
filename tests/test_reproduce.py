"""``weightinfo reproduce``: the scripts in experiments/ run it, outputs go to a fresh folder, quick runs say so."""

import json
import runpy
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from weightinfo._base.machine import load_average_text, machine_info
from weightinfo.cli import app, main
from weightinfo.cli.reproduce import certificate_runs, fresh_run_folder, random_labels_settings
from weightinfo.experiments import QUICK_BANNER
from weightinfo.experiments.certificates import RUNS
from weightinfo.experiments.random_labels import DEFAULTS, QUICK

SCRIPTS = Path(__file__).resolve().parents[1] / "experiments"
runner = CliRunner()


def _exit(fn, capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        fn()
    return e.value.code, capsys.readouterr().out


@pytest.mark.parametrize(
    "script, command",
    [("certificates.py", ["reproduce", "certificates"]),
     ("random_labels.py", ["reproduce", "random-labels"])],
)  # fmt: skip
def test_scripts_run_the_cli(script, command, monkeypatch, capsys):
    """``python experiments/X.py ARGS`` is ``weightinfo reproduce X ARGS``: same --help, same errors."""
    path = SCRIPTS / script

    def run_script(*args):
        monkeypatch.setattr(sys, "argv", [str(path), *args])
        return _exit(lambda: runpy.run_path(str(path), run_name="__main__"), capsys)

    code, text = run_script("--help")
    assert code == 0 and "Usage: weightinfo reproduce" in text
    assert (code, text) == _exit(lambda: main([*command, "--help"]), capsys)
    # Arguments reach the command: an unknown option is rejected by it (usage error, exit code 2).
    code, _ = run_script("--no-such-option")
    assert code == 2


def test_which_accepts_one_several_or_all():
    assert (
        certificate_runs("all")
        == list(RUNS)
        == ["fashion", "binary-mnist", "digits", "fashion-cnn"]
    )
    assert certificate_runs("digits") == ["digits"]
    assert certificate_runs("digits, fashion") == ["digits", "fashion"]
    for bad in ("cifar", "", "all,digits"):
        with pytest.raises(ValueError, match="--which"):
            certificate_runs(bad)


def test_random_labels_settings_layer_defaults_quick_and_options():
    assert random_labels_settings(False, {}) == DEFAULTS
    quick = random_labels_settings(
        True, {"n_train": None, "widths": "32, 16", "sensitivity": "none"}
    )
    assert quick["dataset"] == QUICK["dataset"] and quick["n_train"] == QUICK["n_train"]
    assert quick["widths"] == [32, 16] and quick["sensitivity"] == []
    assert quick["methods"] == DEFAULTS["methods"]  # not in QUICK: the documented value
    with pytest.raises(ValueError, match="--widths"):
        random_labels_settings(False, {"widths": "a,b"})


def test_fresh_run_folder_is_new_every_time(tmp_path):
    a = fresh_run_folder("certificates", tmp_path / "runs")
    b = fresh_run_folder("certificates", tmp_path / "runs")
    assert a != b and a.is_dir() and b.is_dir() and a.parent == b.parent == tmp_path / "runs"
    assert a.name.startswith("certificates-") and a.name.endswith("Z")
    assert b.name == a.name + "-2" or b.name.startswith("certificates-")


def test_quick_run_without_out_never_touches_docs_results(tmp_path, monkeypatch):
    """From a checkout, ``--quick`` without ``--out`` writes to runs/<experiment>-<time>, marked quick."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs" / "results").mkdir(parents=True)
    res = runner.invoke(app, ["reproduce", "certificates", "--which", "digits", "--quick", "-q"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert list((tmp_path / "docs" / "results").iterdir()) == []
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("certificates-")
    assert f"results: {Path('runs') / folder.name}" in res.stdout
    assert sorted(p.name for p in folder.iterdir()) == [
        "certificates_digits.json",
        "certificates_digits.md",
        "certificates_digits.png",
    ]
    assert json.loads((folder / "certificates_digits.json").read_text())["quick"] is True
    assert (folder / "certificates_digits.md").read_text().splitlines()[0] == QUICK_BANNER


def test_machine_info_records_what_timings_need():
    m = machine_info()
    for key in (
        "cpu",
        "cpu_count",
        "python",
        "torch",
        "torch_threads",
        "omp_num_threads",
        "load_average",
    ):
        assert key in m
    assert m["torch_threads"] >= 1 and isinstance(m["cpu"], str) and m["cpu"]
    assert load_average_text() == "n/a" or len(load_average_text().split()) == 3
    json.dumps(m)  # JSON-ready
