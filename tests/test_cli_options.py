"""The command line's shared pieces: options declared once, global flags anywhere, output checked first and
written all or nothing, ``fisher --help``'s convention."""

import os
import typing

import pytest

from tests.cli_helpers import SMALL, invoke
from weightinfo.cli import _common, certify, fisher, measure, train
from weightinfo.cli._common import all_or_nothing, check_output, hoist_global_flags

pytestmark = pytest.mark.usefixtures("isolated_cache")


def _never(*args, **kwargs):
    raise AssertionError("the work started although the output location cannot be written")


# -------------------------------------------------------------------------------- options declared once

SHARED = {
    "dataset": "DatasetOpt",
    "model": "ModelOpt",
    "checkpoint": "CheckpointOpt",
    "widths": "WidthsOpt",
    "width": "WidthOpt",
    "model_arg": "ModelArgOpt",
    "epochs": "EpochsOpt",
    "lr": "LrOpt",
    "optimizer": "OptimizerOpt",
    "train_batch_size": "TrainBatchSizeOpt",
    "train_seed": "TrainSeedOpt",
    "data_root": "DataRootOpt",
    "download": "DownloadOpt",
    "quiet": "Quiet",
    "loss": "LikelihoodOpt",
    "n_samples": "NSamplesOpt",
    "batch_size": "BatchSizeOpt",
}


@pytest.mark.parametrize(
    "command",
    [train.train, fisher.fisher_cmd, measure.measure_cmd, certify.certify_cmd],
    ids=["train", "fisher", "measure", "certify"],
)
def test_model_and_data_options_come_from_one_declaration(command):
    hints = typing.get_type_hints(command, include_extras=True)
    checked = 0
    for param, alias in SHARED.items():
        if param not in hints or (command is train.train and param in ("loss", "batch_size")):
            continue  # train's --loss / --batch-size are the training loss and mini-batch size
        assert hints[param] is getattr(_common, alias), f"{command.__name__}: {param}"
        checked += 1
    assert checked >= 4


def test_model_source_group_gives_fisher_and_measure_the_same_options():
    import inspect

    from weightinfo.cli._options import MODEL_SOURCE_OPTIONS, ModelSource, model_source_options

    for command in (fisher.fisher_cmd, measure.measure_cmd):
        params = inspect.signature(command).parameters
        assert "src" not in params and set(MODEL_SOURCE_OPTIONS) <= set(params)

    seen = []

    @model_source_options
    def probe(*, src: ModelSource, extra: int = 1):
        seen.append((src, extra))

    probe(**{k: None for k in MODEL_SOURCE_OPTIONS}, extra=2)
    assert seen == [(ModelSource(**{k: None for k in MODEL_SOURCE_OPTIONS}), 2)]


# -------------------------------------------------------------------------------- global flags


def test_hoist_global_flags_moves_them_before_the_command_only_up_to_double_dash():
    assert hoist_global_flags(["measure", "--beta", "1", "--debug", "-q"]) == [
        "--debug",
        "-q",
        "measure",
        "--beta",
        "1",
    ]
    assert hoist_global_flags(["x", "--", "--debug"]) == ["x", "--", "--debug"]


@pytest.mark.parametrize("position", ["before", "after"])
def test_debug_works_before_and_after_the_sub_command(tmp_path, position):
    args = ["measure", *SMALL, "--out", "/proc/weightinfo-test/out"]
    plain = invoke(*args)
    assert plain.exit_code == 2 and plain.stderr.startswith("error: --out")
    result = invoke(*(["--debug", *args] if position == "before" else [*args, "--debug"]))
    assert isinstance(result.exception, ValueError) and "--out" in str(result.exception)


@pytest.mark.parametrize("position", ["before", "after"])
def test_plain_and_quiet_work_after_the_sub_command(position):
    args = ["datasets"]
    flags = ["--plain", "--quiet"]
    result = invoke(*(flags + args if position == "before" else args + flags))
    assert result.exit_code == 0, result.output
    assert "digits" in result.stdout and "│" not in result.stdout and "┃" not in result.stdout


# -------------------------------------------------------------------------------- output checked first


@pytest.mark.parametrize(
    "args,patch",
    [
        (["measure", *SMALL, "--out", "/proc/x"], "weightinfo.cli.measure.load_source"),
        (["certify", *SMALL, "--out", "/proc/x"], "weightinfo.cli.certify.load_source"),
        (["fisher", *SMALL, "--json", "/proc/x/f.json"], "weightinfo.cli.fisher.load_source"),
        (["demo", "--out", "/proc/x"], "weightinfo.cli.demo.load_data"),
        (["train", *SMALL, "--out", "/proc/x/run.pt"], "weightinfo.checkpoint.load_training_data"),
    ],
    ids=["measure", "certify", "fisher", "demo", "train"],
)
def test_unwritable_output_fails_before_any_work(tmp_path, monkeypatch, args, patch):
    monkeypatch.setattr(patch, _never)
    result = invoke(*args)
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stderr.startswith("error: --") and "/proc/x" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "cache").exists()


def test_check_output_rejects_files_for_folders_and_folders_for_files(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="--out .* not a folder"):
        check_output(tmp_path / "file", "--out", folder=True)
    with pytest.raises(ValueError, match="--json .* is a folder"):
        check_output(tmp_path, "--json", folder=False)
    with pytest.raises(ValueError, match="is not a folder"):
        check_output(tmp_path / "file" / "sub" / "x.json", "--json", folder=False)
    assert (
        check_output(tmp_path / "new" / "deeper", "--out", folder=True)
        == tmp_path / "new" / "deeper"
    )
    assert not (tmp_path / "new").exists()  # checking creates nothing
    assert sorted(os.listdir(tmp_path)) == ["file"]  # and leaves no probe behind


# -------------------------------------------------------------------------------- all or nothing


def test_all_or_nothing_writes_every_file_or_none(tmp_path):
    out = tmp_path / "a" / "results"
    with pytest.raises(OSError, match="disk full"):
        with all_or_nothing(out) as stage:
            (stage / "first.json").write_text("{}")
            raise OSError("disk full")  # the second file fails
    assert os.listdir(tmp_path) == []  # neither the staging folder nor the parents remain
    with all_or_nothing(out) as stage:
        (stage / "first.json").write_text("{}")
        (stage / "second.png").write_bytes(b"png")
    assert sorted(os.listdir(out)) == ["first.json", "second.png"]
    assert (out.stat().st_mode & 0o777) == 0o777 & ~_umask()
    # An existing folder keeps its other files; a failure adds nothing to it.
    (out / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError):
        with all_or_nothing(out) as stage:
            (stage / "first.json").write_text('{"new": 1}')
            raise RuntimeError("boom")
    assert sorted(os.listdir(out)) == ["first.json", "notes.txt", "second.png"]
    assert (out / "first.json").read_text() == "{}"
    with all_or_nothing(out) as stage:
        (stage / "first.json").write_text('{"new": 1}')
    assert sorted(os.listdir(out)) == ["first.json", "notes.txt", "second.png"]
    assert (out / "first.json").read_text() == '{"new": 1}'


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_measure_failure_in_second_file_leaves_no_partial_folder(tmp_path, monkeypatch):
    def broken_plot(*args, **kwargs):
        raise OSError("cannot draw where.png: disk full")

    monkeypatch.setattr("weightinfo.report.plots.plot_where", broken_plot)
    out = tmp_path / "results" / "run"
    result = invoke(
        "measure", *SMALL, "--n-samples", "100", "--mc-samples", "0", "--out", out, "-q"
    )
    assert result.exit_code == 2, (result.output, result.exception)
    assert "disk full" in result.stderr
    assert not out.exists() and not (tmp_path / "results").exists()
    assert sorted(os.listdir(tmp_path)) == ["cache"]  # no staging folder left behind


# -------------------------------------------------------------------------------- help texts


def test_fisher_help_states_the_mean_over_samples_convention():
    text = " ".join(invoke("fisher", "--help").output.split())
    assert "(1/N) Σ_i" in text and "mean per-sample loss" in text and "nats" in text


def test_train_writes_checkpoint_and_sidecar_together_or_neither(tmp_path, monkeypatch):
    import weightinfo.checkpoint.files as files

    real = files.atomic_write

    def fail_on_sidecar(path, write):
        if str(path).endswith(".json"):
            raise OSError("disk full while writing the sidecar")
        return real(path, write)

    monkeypatch.setattr(files, "atomic_write", fail_on_sidecar)
    out = tmp_path / "runs" / "run.pt"
    result = invoke("train", *SMALL, "--out", out, "-q")
    assert result.exit_code == 2 and "disk full" in result.stderr
    assert os.listdir(tmp_path) == []  # neither run.pt nor a staging folder nor runs/
    monkeypatch.setattr(files, "atomic_write", real)
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "other.txt").write_text("kept")
    result = invoke("train", *SMALL, "--out", out, "-q")
    assert result.exit_code == 0, (result.output, result.exception)
    assert sorted(os.listdir(tmp_path / "runs")) == ["other.txt", "run.json", "run.pt"]
