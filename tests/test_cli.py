"""The ``weightinfo`` command line (typer app in ``weightinfo.cli``), on the bundled digits set."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.cli_helpers import SMALL, invoke, ok
from weightinfo import load_checkpoint
from weightinfo.models import build_model

pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A small trained checkpoint written by ``weightinfo train``."""
    path = tmp_path_factory.mktemp("ckpt") / "run.pt"
    result = ok("train", *SMALL, "--seed", "3", "--out", path, "--quiet")
    return path, result


def test_help_lists_commands():
    result = ok("--help")
    for command in ("train", "fisher", "demo", "datasets", "models", "report"):
        assert command in result.output
    for command in ("train", "fisher", "demo", "report"):
        assert "--help" in ok(command, "--help").output
    assert ok("--version").output.startswith("weightinfo ")


def test_train_writes_checkpoint_and_metadata(ckpt):
    path, result = ckpt
    assert path.is_file() and path.with_suffix(".json").is_file()
    assert "train accuracy" in result.stdout and "test accuracy" in result.stdout
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["architecture"] == {
        "name": "mlp",
        "kwargs": {"widths": [16]},
        "input_shape": [1, 8, 8],
        "n_classes": 10,
    }
    assert meta["dataset"]["name"] == "digits" and meta["seed"] == 3
    assert meta["train_config"]["epochs"] == 1 and meta["has_init_state_dict"]
    assert 0.0 <= meta["metrics"]["test_accuracy"] <= 1.0
    ck = load_checkpoint(path)
    torch.manual_seed(3)
    fresh = build_model("mlp", (1, 8, 8), 10, widths=[16]).state_dict()
    assert ck.init_state_dict.keys() == fresh.keys()
    assert all(torch.equal(ck.init_state_dict[k], fresh[k]) for k in fresh)
    trained = ck.model.state_dict()
    assert not torch.equal(trained["layers.0.weight"], fresh["layers.0.weight"])


def test_train_label_noise_is_recorded(tmp_path):
    path = tmp_path / "noisy.pt"
    ok("train", *SMALL, "--label-noise", "0.5", "--out", path, "-q")
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["dataset"]["info"]["label_noise"]["fraction"] == 0.5
    assert meta["config"]["label_noise"] == 0.5


def test_fisher_from_checkpoint_json(ckpt, tmp_path):
    path, _ = ckpt
    out = tmp_path / "f.json"
    result = ok("fisher", "--checkpoint", path, "--json", out)
    assert "layers.0" in result.stdout and "total trace" in result.stdout
    assert os.listdir(tmp_path) == ["f.json"]
    data = json.loads(out.read_text())
    assert set(data) == {"command", "checkpoint", "fisher"}
    assert data["command"]["name"] == "fisher"
    assert data["checkpoint"]["id"] == json.loads(path.with_suffix(".json").read_text())["id"]
    f = data["fisher"]
    assert (f["curvature"], f["kind"], f["structure"]) == ("fisher", "exact", "diag")
    assert f["n_samples"] == 1438
    rows = f["per_layer"]
    assert sum(r["trace"] for r in rows) == pytest.approx(f["trace"], rel=1e-12)
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    model = load_checkpoint(path).model
    layers = list(dict.fromkeys(n.rpartition(".")[0] for n, _ in model.named_parameters()))
    assert [r["layer"] for r in rows] == layers == ["layers.0", "layers.1"]
    assert sum(r["n_params"] for r in rows) == sum(p.numel() for p in model.parameters())


def test_fisher_trains_on_the_fly_then_hits_the_cache(tmp_path):
    args = ["fisher", *SMALL, "--n-samples", "300"]
    first = ok(*args, "--json", tmp_path / "a.json")
    second = ok(*args, "--json", tmp_path / "b.json")
    assert "trained and cached" in first.stderr and "loaded cached" in second.stderr
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert a["fisher"] == b["fisher"] and a["fisher"]["n_samples"] == 300
    assert a["checkpoint"]["id"] == b["checkpoint"]["id"]
    assert (a["command"]["options"]["cache_hit"], b["command"]["options"]["cache_hit"]) == (
        False,
        True,
    )
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1


def test_fisher_mc_is_reproducible_with_seed(ckpt, tmp_path):
    path, _ = ckpt

    def run(seed, name):
        out = tmp_path / name
        ok(
            "fisher",
            "-c",
            path,
            "--kind",
            "mc",
            "--mc-samples",
            "2",
            "--seed",
            seed,
            "--n-samples",
            "200",
            "--json",
            out,
            "-q",
        )
        return json.loads(out.read_text())["fisher"]

    a, b, c = run(5, "a.json"), run(5, "b.json"), run(6, "c.json")
    assert a == b
    assert a["kind"] == "mc" and a["mc_samples"] == 2 and a["seed"] == 5
    assert c["trace"] != a["trace"]


def test_quiet_keeps_stderr_empty(ckpt):
    path, _ = ckpt
    result = ok("--quiet", "fisher", "-c", path, "--n-samples", "50")
    assert result.stderr == "" and "total trace" in result.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["fisher", "--dataset", "no-such-set"], "no-such-set"),
        (["train", "--dataset", "no-such-set", "--out", "x.pt"], "no-such-set"),
        (["fisher", "--checkpoint", "missing/run.pt"], "missing/run.pt"),
        (["fisher", "--dataset", "digits", "--model", "no-such-net"], "no-such-net"),
        (["train", "--dataset", "digits", "--out", "run.json"], ".json"),
    ],
)
def test_errors_are_one_clean_line_with_exit_code_2(args, needle):
    result = invoke(*args)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_library_value_error_exits_2(tmp_path):
    # (This used `--loss bce_with_logits` on class labels, which the likelihood now one-hot encodes.)
    path = tmp_path / "run.pt"  # the default MLP: 85,002 parameters, too many for a full matrix
    ok("train", "--dataset", "digits", "--epochs", "1", "--out", path, "-q")
    result = invoke("fisher", "-c", path, "--structure", "full", "--n-samples", "10", "-q")
    assert result.exit_code == 2 and result.stderr.startswith("error: structure='full'")
    assert "Traceback" not in result.output


def test_demo_prints_table_and_writes_json(tmp_path):
    result = ok("demo", "--out", tmp_path / "out")
    for needle in ("layers.0", "layers.2", "share %", "total trace", "What the numbers mean"):
        assert needle in result.stdout
    data = json.loads((tmp_path / "out" / "fisher.json").read_text())
    assert data["command"]["name"] == "demo"
    assert data["checkpoint"]["architecture"]["kwargs"] == {"widths": [256, 256]}
    assert data["fisher"]["kind"] == "exact" and data["fisher"]["structure"] == "diag"
    assert data["checkpoint"]["metrics"]["test_accuracy"] > 0.9


def test_datasets_and_models():
    out = ok("datasets").stdout
    assert "digits" in out and "two-moons" in out and "yes" in out
    out = ok("--plain", "models").stdout
    assert all(m in out for m in ("mlp", "lenet", "allcnn", "resnet18"))


def test_module_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "weightinfo.cli", "--version"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
    )
    assert result.returncode == 0 and result.stdout.startswith("weightinfo ")


def test_train_command_matches_train_or_load(tmp_path):
    """``weightinfo train`` and ``train_or_load`` share one training path: same weights."""
    from weightinfo import train_or_load

    path = tmp_path / "noisy.pt"
    ok("train", *SMALL, "--seed", "3", "--label-noise", "0.5", "--out", path, "-q")
    cached = train_or_load(
        "digits", "mlp", model_kwargs={"widths": [16]}, epochs=1, lr=0.05, optimizer="sgd",
        batch_size=128, seed=3, label_noise=0.5,
    )  # fmt: skip
    ran = load_checkpoint(path)
    assert ran.meta["dataset"]["info"] == cached.meta["dataset"]["info"]
    for a, b in ((ran.model.state_dict(), cached.model.state_dict()),
                 (ran.init_state_dict, cached.init_state_dict)):  # fmt: skip
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("loss", ["mse", "bce_with_logits"])
def test_checkpoint_trained_with_a_per_output_loss_can_be_measured(tmp_path, loss):
    """A checkpoint of `train --loss mse/bce_with_logits` is measured on the loss it was trained
    on: its recorded train loss is the L_D the Fisher pass computes from the same likelihood."""
    path = tmp_path / "run.pt"
    ok("train", *SMALL, "--loss", loss, "--out", path, "-q")
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["train_config"]["loss"] == loss
    out = tmp_path / "f.json"
    ok("fisher", "--checkpoint", path, "--json", out, "-q")
    assert json.loads(out.read_text())["fisher"]["trace"] > 0
    from weightinfo import fisher

    ck = load_checkpoint(path)
    from weightinfo.data import load_dataset

    ds = load_dataset("digits")
    res = fisher(ck.model, ds.train_loader(batch_size=512, shuffle=False), loss=loss)
    assert res.mean_loss == pytest.approx(meta["metrics"]["train_loss"], rel=1e-5)


def test_train_help_states_the_per_dataset_defaults():
    from weightinfo.cli._common import TRAIN_DEFAULTS

    text = " ".join(ok("train", "--help").output.replace("│", " ").split())
    for name, d in TRAIN_DEFAULTS.items():
        assert f"{name} {d.epochs}," in text or f"{name} {d.epochs};" in text
        assert f"{name} {d.lr:g}" in text and f"{name} {d.optimizer}" in text
    assert "Mini-batch size (default: 128)" in text and "per dataset)" not in text
