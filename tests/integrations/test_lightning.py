"""InformationCallback in a real lightning Trainer: the logged numbers are the Tracker's on the same weights."""

from __future__ import annotations

import copy
import csv

import lightning.pytorch as pl  # the dev extra installs it (pyproject.toml)
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import weightinfo
from weightinfo import Tracker
from weightinfo.integrations.lightning import InformationCallback


class Module(pl.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 10))

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, _):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Snapshot(pl.Callback):
    """The weights at every epoch end (after InformationCallback measured them)."""

    def __init__(self):
        self.states = []

    def on_train_epoch_end(self, trainer, pl_module):
        self.states.append(copy.deepcopy(pl_module.model.state_dict()))


def _rows(path):
    with open(path, newline="") as fh:
        return [
            {k: float(v) for k, v in r.items() if v != ""}
            for r in csv.DictReader(fh)
            if r.get("weightinfo/trace")
        ]


def test_callback_logs_tracker_records_to_csv(tmp_path):
    ds = weightinfo.load_dataset("digits")
    X, Y = ds.x_train[:256], ds.y_train[:256]
    probe = (X[:64], Y[:64])
    train_loader = DataLoader(TensorDataset(X, Y), batch_size=32, shuffle=False)
    quantities = ("trace", "layer_trace", "information", "loss", "accuracy", "temperature")
    cb = InformationCallback(probe, quantities, beta=1e-3, prior_scale=0.1, attribute="model")
    assert isinstance(cb, pl.Callback)
    snap = Snapshot()
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=CSVLogger(tmp_path, name="run"),
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        callbacks=[cb, snap],
    )
    module = Module()
    trainer.fit(module, train_loader)

    rows = _rows(trainer.logger.log_dir + "/metrics.csv")
    recs = cb.tracker.records
    assert [r["epoch"] for r in recs] == [1, 2] and [r["step"] for r in recs] == [8, 16]
    assert [int(r["step"]) for r in rows] == [1, 2]  # logged at step = epoch
    layers = {"layer_trace/1", "layer_trace/3"}
    for row, rec, state in zip(rows, recs, snap.states):
        names = {k[len("weightinfo/") :] for k in row if k.startswith("weightinfo/")}
        assert names == {"trace", "trace_stderr", "information", "loss", "accuracy"} | layers | {
            "temperature"
        }
        assert rec["temperature"] == pytest.approx(0.1 / 32)  # η of the optimizer, B of the loader
        # what reached the CSV is the record (CSVLogger keeps full float precision)
        for k in names:
            want = rec["layer_trace"][k.split("/")[1]] if k in layers else rec[k]
            assert row["weightinfo/" + k] == pytest.approx(want, rel=1e-12), k
        # and the record is a fresh Tracker's on the same weights
        net = copy.deepcopy(module.model)
        net.load_state_dict(state)
        again = Tracker(probe, quantities=quantities, beta=1e-3, prior_scale=0.1, batch_size=32)
        again = again.step(net, lr=0.1)
        for k in ("trace", "information", "loss", "accuracy"):
            assert again[k] == pytest.approx(rec[k], rel=1e-9), k
    # independently: tr F of the final weights from weightinfo.fisher, summed diagonal, and per layer
    F = weightinfo.fisher(module.model.eval(), probe, structure="diag", progress=False)
    assert rows[-1]["weightinfo/trace"] == pytest.approx(F.trace(), rel=1e-6)
    for r in F.per_layer().rows:
        assert rows[-1][f"weightinfo/layer_trace/{r['layer']}"] == pytest.approx(
            r["trace"], rel=1e-6
        )
    df = cb.tracker.to_dataframe()
    assert list(df["epoch"]) == [1, 2] and list(df["trace"]) == [r["trace"] for r in recs]


def test_every_and_missing_attribute(tmp_path):
    X, Y = torch.randn(40, 64), torch.randint(0, 10, (40,))
    cb = InformationCallback((X, Y), "trace", every=2)
    trainer = pl.Trainer(
        max_epochs=3,
        accelerator="cpu",
        logger=CSVLogger(tmp_path),
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        callbacks=[cb],
    )
    trainer.fit(Module(), DataLoader(TensorDataset(X, Y), batch_size=20))
    assert [r["epoch"] for r in cb.tracker.records] == [2]
    # the whole LightningModule is measured: its parameters are named model.0.weight, ...
    assert cb.logged[0]["weightinfo/trace"] == pytest.approx(cb.tracker.records[0]["trace"])
    bad = InformationCallback((X, Y), "trace", attribute="net")
    with pytest.raises(AttributeError, match="no such attribute"):
        bad.network(Module())
