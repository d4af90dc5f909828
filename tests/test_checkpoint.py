"""Checkpoint round trips, atomic writes and the ``train_or_load`` cache."""

import json
import os
from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import weightinfo.checkpoint.files as ckpt_files
import weightinfo.checkpoint.spec as ckpt_spec
from weightinfo.checkpoint import (
    Checkpoint,
    config_hash,
    default_cache_dir,
    load_checkpoint,
    metadata_path,
    save_checkpoint,
    train_or_load,
)
from weightinfo.models import build_model
from weightinfo.training import train

ARCH = {"name": "allcnn", "kwargs": {"width": 0.125}, "input_shape": (1, 8, 8), "n_classes": 3}


def trained_allcnn():
    """A small BatchNorm net after a few steps, so running statistics are non-trivial."""
    torch.manual_seed(0)
    model = build_model("allcnn", (1, 8, 8), 3, width=0.125)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = torch.randn(32, 1, 8, 8), torch.arange(32) % 3
    train(model, DataLoader(TensorDataset(x, y), batch_size=8), epochs=1, lr=0.05, progress=False)
    return model, init


def save(path, model, init, **kw):
    return save_checkpoint(
        path,
        model,
        arch=ARCH,
        dataset={"name": "toy", "split": "train"},
        train_config={"epochs": 1, "lr": 0.05},
        seed=0,
        metrics={"test_accuracy": torch.tensor(0.5), "nan": float("nan")},
        init_state_dict=init,
        **kw,
    )


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


def test_round_trip_restores_weights_init_and_metadata(tmp_path):
    model, init = trained_allcnn()
    path = save(tmp_path / "run.pt", model, init)
    assert path == tmp_path / "run.pt"
    assert sorted(os.listdir(tmp_path)) == ["run.json", "run.pt"]

    ck = load_checkpoint(path)
    assert isinstance(ck, Checkpoint) and ck.path == path
    assert_same_state(ck.model.state_dict(), model.state_dict())  # includes BN buffers
    assert_same_state(ck.init_state_dict, init)
    assert not ck.model.training and not any(m.training for m in ck.model.modules())
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(ck.model(x), model.eval()(x), rtol=0, atol=0)
    assert_same_state(ck.init_model().state_dict(), init)

    meta = json.loads(metadata_path(path).read_text())
    assert meta == ck.meta
    assert meta["architecture"] == {**ARCH, "input_shape": [1, 8, 8]}
    assert ck.arch["kwargs"] == {"width": 0.125}
    assert meta["dataset"] == {"name": "toy", "split": "train"}
    assert meta["train_config"] == {"epochs": 1, "lr": 0.05}
    assert meta["seed"] == 0
    assert meta["metrics"] == {"test_accuracy": 0.5, "nan": None} == ck.metrics
    assert meta["torch_version"] == torch.__version__
    assert meta["weightinfo_version"] and meta["created"].endswith("+00:00")
    assert meta["n_parameters"] == sum(p.numel() for p in model.parameters())
    assert meta["has_init_state_dict"] and meta["weights_file"] == "run.pt"


def test_checkpoint_without_init_and_with_extra(tmp_path):
    torch.manual_seed(0)
    model = build_model("mlp", (4,), 2, widths=(3,))
    arch = {"name": "mlp", "kwargs": {"widths": [3]}, "input_shape": [4], "n_classes": 2}
    path = save_checkpoint(tmp_path / "m", model, arch=arch, extra={"note": ("a", 1)})
    assert metadata_path(path).name == "m.json"
    ck = load_checkpoint(path)
    assert ck.init_state_dict is None and ck.meta["note"] == ["a", 1]
    with pytest.raises(ValueError, match="no initial weights"):
        ck.init_model()
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(tmp_path / "x.pt", model, arch=arch, extra={"seed": 1})


def test_load_does_not_advance_global_rng(tmp_path):
    model, init = trained_allcnn()
    path = save(tmp_path / "run.pt", model, init)
    state = torch.random.get_rng_state()
    load_checkpoint(path)
    assert torch.equal(state, torch.random.get_rng_state())


def test_atomic_write_leaves_no_temp_files_and_keeps_old_file(tmp_path, monkeypatch):
    model, init = trained_allcnn()
    path = save(tmp_path / "run.pt", model, init)
    before = path.read_bytes(), metadata_path(path).read_bytes()

    def broken_save(obj, fh):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_files.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save(tmp_path / "run.pt", model, init)
    assert sorted(os.listdir(tmp_path)) == ["run.json", "run.pt"]
    assert (path.read_bytes(), metadata_path(path).read_bytes()) == before
    with pytest.raises(OSError):
        save(tmp_path / "sub" / "new.pt", model, init)
    assert os.listdir(tmp_path / "sub") == []


def test_save_rejects_mismatched_architecture_and_bad_paths(tmp_path):
    model, init = trained_allcnn()
    with pytest.raises(ValueError, match="does not match the architecture"):
        save_checkpoint(tmp_path / "a.pt", model, arch={**ARCH, "kwargs": {"width": 0.25}})
    with pytest.raises(ValueError, match="missing n_classes"):
        save_checkpoint(tmp_path / "a.pt", model, arch={"name": "allcnn", "input_shape": [1, 8, 8]})
    with pytest.raises(ValueError, match="init_state_dict does not match"):
        save_checkpoint(tmp_path / "a.pt", model, arch=ARCH, init_state_dict={"w": torch.ones(1)})
    with pytest.raises(ValueError, match=r"must not end in \.json"):
        save_checkpoint(tmp_path / "a.json", model, arch=ARCH)
    with pytest.raises(TypeError, match="cannot be stored as JSON"):
        save_checkpoint(tmp_path / "a.pt", model, arch=ARCH, metrics={"f": object()})
    assert os.listdir(tmp_path) == []
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_stale_sidecar_is_ignored_with_warning(tmp_path):
    model, init = trained_allcnn()
    a = save(tmp_path / "a.pt", model, init)
    save(tmp_path / "b.pt", model, init, extra={"tag": "b"})
    os.replace(tmp_path / "b.json", tmp_path / "a.json")
    with pytest.warns(UserWarning, match="belongs to another save"):
        ck = load_checkpoint(a)
    assert "tag" not in ck.meta


def test_unreadable_checkpoints_are_named_with_the_problem(tmp_path):
    model, init = trained_allcnn()
    good = save(tmp_path / "good.pt", model, init)
    raw = good.read_bytes()
    cases = {
        "cut.pt": (raw[:100], r"cut\.pt' is not a weightinfo checkpoint \(truncated or corrupt"),
        "half.pt": (
            raw[: len(raw) // 2],
            r"half\.pt' is not a weightinfo checkpoint \(truncated or corrupt",
        ),
        "notes.pt": (b"every line of text\n", r"notes\.pt' is not a weightinfo checkpoint \(not a"),
    }
    for name, (data, pattern) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ValueError, match=pattern):
            load_checkpoint(tmp_path / name)
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "pickled.pt")
    with pytest.raises(ValueError, match=r"pickled\.pt' .* objects other than tensors") as info:
        load_checkpoint(tmp_path / "pickled.pt")
    assert "weights_only" not in str(info.value) and "Weights only" not in str(info.value)
    torch.save({"x": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match=r"plain\.pt' .* without its state_dict and meta"):
        load_checkpoint(tmp_path / "plain.pt")


def test_sidecar_given_as_checkpoint_or_corrupt_is_named(tmp_path):
    model, init = trained_allcnn()
    good = save(tmp_path / "good.pt", model, init)
    with pytest.raises(
        ValueError, match=r"good\.json' is JSON metadata, not a checkpoint.*good\.pt"
    ):
        load_checkpoint(tmp_path / "good.json")
    metadata_path(good).write_text('{"id": ')
    with pytest.raises(ValueError, match=r"metadata '.*good\.json' is not valid JSON"):
        load_checkpoint(good)
    metadata_path(good).write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"metadata '.*good\.json' is not a JSON object"):
        load_checkpoint(good)
    metadata_path(good).unlink()
    assert load_checkpoint(good).meta["architecture"]["name"] == "allcnn"


# ---------------------------------------------------------------------------------- caching


class FakeDataset:
    """Just enough of ``weightinfo.data.Dataset`` for ``train_or_load``."""

    def __init__(self, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.y_train, self.y_test = torch.arange(120) % 2, torch.arange(40) % 2
        self.x_train = torch.randn(120, 3, generator=g) + 3 * self.y_train[:, None]
        self.x_test = torch.randn(40, 3, generator=g) + 3 * self.y_test[:, None]
        self.name, self.n_classes, self.input_shape, self.info = "toy", 2, (3,), {"seed": seed}

    def train_loader(self, batch_size=128, shuffle=True, seed=0):
        g = torch.Generator().manual_seed(seed)
        ds = TensorDataset(self.x_train, self.y_train)
        return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=g)

    def test_loader(self, batch_size=512):
        return DataLoader(TensorDataset(self.x_test, self.y_test), batch_size=batch_size)

    def to_dict(self):
        return {"name": self.name, "n_train": 120, "n_test": 40, "info": self.info}


@pytest.fixture
def fake_data(monkeypatch):
    calls = SimpleNamespace(load=[], train=0)

    def load(name, **kw):
        calls.load.append((name, kw))
        return FakeDataset(kw["seed"])

    def counting_train(*args, **kwargs):
        calls.train += 1
        return train(*args, **kwargs)

    monkeypatch.setattr(ckpt_spec, "_load_dataset", load)
    monkeypatch.setattr(ckpt_spec, "train", counting_train)
    return calls


CFG = {
    "epochs": 3,
    "lr": 0.1,
    "optimizer": "sgd",
    "batch_size": 16,
    "model_kwargs": {"widths": (8,)},
}


def test_train_or_load_trains_once_then_hits_cache(tmp_path, fake_data):
    first = train_or_load("toy", "mlp", seed=1, cache_dir=tmp_path, **CFG)
    assert fake_data.train == 1 and fake_data.load[0] == (
        "toy",
        {"root": None, "download": False, "seed": 0},
    )
    files = sorted(os.listdir(tmp_path))
    assert len(files) == 2 and files[0].endswith(".json") and files[1].endswith(".pt")
    key = files[1][: -len(".pt")]
    assert first.meta["config_hash"] == key and len(key) == 16
    assert first.meta["metrics"]["test_accuracy"] > 0.9
    assert first.meta["train_config"]["batch_size"] == 16 and first.meta["seed"] == 1
    assert first.meta["dataset"]["data_seed"] == 0 and len(first.meta["history"]) == 3
    torch.manual_seed(1)  # the initial weights are the seeded initialisation
    ref = build_model("mlp", (3,), 2, widths=(8,))
    assert_same_state(first.init_state_dict, ref.state_dict())

    again = train_or_load("toy", "mlp", seed=1, cache_dir=tmp_path, **CFG)
    assert fake_data.train == 1 and len(fake_data.load) == 1  # no data load, no training
    assert_same_state(again.model.state_dict(), first.model.state_dict())
    assert_same_state(again.init_state_dict, first.init_state_dict)
    assert again.meta == first.meta

    train_or_load("toy", "mlp", seed=2, cache_dir=tmp_path, **CFG)  # another config
    assert fake_data.train == 2 and len(os.listdir(tmp_path)) == 4
    forced = train_or_load("toy", "mlp", seed=1, cache_dir=tmp_path, force=True, **CFG)
    assert fake_data.train == 3 and len(os.listdir(tmp_path)) == 4
    # deterministic training: retraining gives bit-identical weights
    assert_same_state(forced.model.state_dict(), first.model.state_dict())


def test_train_or_load_uses_env_cache_and_recovers_from_corruption(
    tmp_path, monkeypatch, fake_data
):
    monkeypatch.setenv("WEIGHTINFO_CACHE", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    ck = train_or_load("toy", "mlp", **CFG)
    assert ck.path.parent == tmp_path / "env" and fake_data.train == 1
    ck.path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="unreadable cached checkpoint"):
        again = train_or_load("toy", "mlp", **CFG)
    assert fake_data.train == 2
    assert_same_state(again.model.state_dict(), ck.model.state_dict())
    other = train_or_load("toy", "mlp", **{**CFG, "seed": 3})  # a sidecar of another save
    os.replace(metadata_path(other.path), metadata_path(ck.path))
    with pytest.warns(UserWarning, match="belongs to another save"):
        train_or_load("toy", "mlp", **CFG)
    assert fake_data.train == 4
    assert train_or_load("toy", "mlp", **CFG).meta["id"] == load_checkpoint(ck.path).meta["id"]
    assert fake_data.train == 4


def test_default_cache_dir_without_env(monkeypatch, tmp_path):
    monkeypatch.delenv("WEIGHTINFO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "weightinfo" / "checkpoints"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "weightinfo" / "checkpoints"


def test_config_hash_is_canonical():
    a = config_hash({"b": (1, 2), "a": 0.1})
    assert a == config_hash({"a": 0.1, "b": [1, 2]}) and len(a) == 16
    assert a != config_hash({"a": 0.1, "b": [1, 3]})


def test_digits_mlp_integration(tmp_path):
    """Real data: an MLP on sklearn's 8x8 digits reaches > 90 % test accuracy in a few epochs."""
    data = pytest.importorskip("weightinfo.data")
    if not hasattr(data, "load_dataset"):
        pytest.skip("weightinfo.data.load_dataset not available yet")
    ck = train_or_load(
        "digits",
        "mlp",
        epochs=5,
        lr=0.05,
        optimizer="sgd",
        batch_size=32,
        seed=0,
        cache_dir=tmp_path,
        model_kwargs={"widths": (256, 256)},
    )
    assert ck.meta["metrics"]["test_accuracy"] > 0.9
    assert ck.meta["architecture"]["input_shape"] == [1, 8, 8]
    assert ck.meta["dataset"]["name"] == "digits"


def test_train_or_load_label_noise_recorded_cached_apart_and_reproducible(tmp_path):
    """``label_noise`` enters the cache key (only when non-zero), is recorded like ``weightinfo
    train`` records it, defaults its seed to the training seed and retrains bit-identically."""
    pytest.importorskip("sklearn")
    cfg = {
        "epochs": 1,
        "lr": 0.05,
        "batch_size": 64,
        "seed": 2,
        "cache_dir": tmp_path,
        "model_kwargs": {"widths": (8,)},
    }
    clean = train_or_load("digits", "mlp", **cfg)
    noisy = train_or_load("digits", "mlp", label_noise=0.3, **cfg)
    assert noisy.path != clean.path and len(list(tmp_path.glob("*.pt"))) == 2
    # a clean run keeps the cache key it had before label noise was an option
    old_key = {
        "format_version": 1, "dataset": "digits", "data_seed": 0, "model": "mlp",
        "model_kwargs": {"widths": [8]}, "epochs": 1, "lr": 0.05, "optimizer": "sgd",
        "momentum": 0.9, "weight_decay": 0.0, "schedule": None, "gamma": None, "step_size": None,
        "loss": "cross_entropy", "batch_size": 64, "seed": 2,
    }  # fmt: skip
    assert clean.meta["config_hash"] == config_hash(old_key) == clean.path.stem
    assert "label_noise" not in clean.meta["config"] | clean.meta["train_config"]
    assert "label_noise" not in clean.meta["dataset"]["info"]

    assert noisy.meta["dataset"]["info"]["label_noise"]["fraction"] == 0.3
    assert noisy.meta["dataset"]["info"]["label_noise"]["seed"] == 2  # the training seed
    assert noisy.meta["dataset"]["info"]["label_noise"]["n_corrupted"] == round(0.3 * 1438)
    assert noisy.meta["config"]["label_noise"] == 0.3 == noisy.meta["train_config"]["label_noise"]
    assert noisy.meta["config"]["label_noise_seed"] == 2
    assert not torch.equal(
        noisy.model.state_dict()["layers.0.weight"], clean.model.state_dict()["layers.0.weight"]
    )

    again = train_or_load("digits", "mlp", label_noise=0.3, force=True, **cfg)
    assert again.path == noisy.path and again.meta["id"] != noisy.meta["id"]
    assert_same_state(again.model.state_dict(), noisy.model.state_dict())
    assert again.meta["dataset"] == noisy.meta["dataset"]
    assert train_or_load("digits", "mlp", label_noise=0.3, **cfg).meta["id"] == again.meta["id"]

    other = train_or_load("digits", "mlp", label_noise=0.3, label_noise_seed=5, **cfg)
    assert other.path not in (clean.path, noisy.path)
    assert other.meta["dataset"]["info"]["label_noise"]["seed"] == 5
