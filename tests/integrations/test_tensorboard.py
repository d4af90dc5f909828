"""TensorBoard output read back from the event file: tracker scalars equal the JSONL records, the where-map is
an image, and the CLI's --tensorboard writes both."""

from __future__ import annotations

import json

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

import weightinfo
from weightinfo import Tracker
from weightinfo.integrations.tensorboard import TensorBoardWriter, log_where_map


def _events(folder):
    ea = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0})
    ea.Reload()
    return ea


def _scalars(ea):
    return {t: {e.step: e.value for e in ea.Scalars(t)} for t in ea.Tags()["scalars"]}


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3))


def test_tracker_scalars_equal_jsonl(tmp_path):
    g = torch.Generator().manual_seed(0)
    X, Y = torch.randn(30, 5, generator=g), torch.randint(0, 3, (30,), generator=g)
    model = _model()
    q = "trace,layer_trace,information,loss,accuracy,temperature"
    tr = Tracker((X, Y), quantities=q, beta=1e-3, prior_scale=0.1, batch_size=10,
                 path=tmp_path / "t.jsonl", tensorboard=tmp_path / "tb")  # fmt: skip
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for epoch in (1, 2):
        opt.zero_grad()
        nn.functional.cross_entropy(model(X), Y).backward()
        opt.step()
        tr.step(model, epoch=epoch, step=3 * epoch, lr=0.1)
    tr.tensorboard.close()
    recs = [json.loads(s) for s in (tmp_path / "t.jsonl").read_text().splitlines()]
    got = _scalars(_events(tmp_path / "tb"))
    want_tags = {"trace", "trace_stderr", "information", "loss", "accuracy", "temperature"}
    want_tags |= {"layer_trace/0", "layer_trace/2"}
    assert set(got) == {"weightinfo/" + t for t in want_tags}
    for rec in recs:
        for t in want_tags:
            want = rec["layer_trace"][t[12:]] if t.startswith("layer_trace/") else rec[t]
            # TensorBoard stores float32
            assert got["weightinfo/" + t][rec["epoch"]] == pytest.approx(want, rel=1e-6), t
    df = tr.to_dataframe()
    assert list(df["layer_trace/0"]) == [r["layer_trace"]["0"] for r in recs]


def test_where_map_image_and_information_scalars(tmp_path):
    g = torch.Generator().manual_seed(1)
    X, Y = torch.randn(20, 5, generator=g), torch.randint(0, 3, (20,), generator=g)
    res = weightinfo.information(_model(), (X, Y), beta=1e-3, prior_scale=0.1, mc_samples=0,
                                 progress=False)  # fmt: skip
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(tmp_path)) as w:
        img = log_where_map(w, res, step=3)
        TensorBoardWriter(w).log_information(res, 4, where=False)
    assert img.ndim == 3 and img.shape[2] == 3 and 0 <= img.min() and img.max() <= 1
    ea = _events(tmp_path)
    (ev,) = ea.Images("weightinfo/where")
    assert ev.step == 3 and (ev.height, ev.width) == img.shape[:2]
    assert ev.encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n"
    s = _scalars(ea)
    assert s["weightinfo/iw/nats"][4] == pytest.approx(res.nats, rel=1e-6)
    for r in res.per_layer.rows:
        assert s[f"weightinfo/iw/layer/{r['layer']}"][4] == pytest.approx(r["nats"], rel=1e-5)
    assert "weightinfo/iw/expected_loss" not in s  # not estimated (mc_samples=0): NaN is left out
    with pytest.raises(TypeError, match="SummaryWriter"):
        TensorBoardWriter(3)


@pytest.mark.usefixtures("isolated_cache")
def test_cli_tensorboard(tmp_path):
    from tests.cli_helpers import SMALL, invoke, ok

    tb = tmp_path / "tb"
    bad = invoke("train", *SMALL, "--out", tmp_path / "x.pt", "--tensorboard", tb, "-q")
    assert bad.exit_code == 2 and "--track" in bad.output and not tb.exists()
    ok("track", *SMALL, "--epochs", "2", "--out", tmp_path / "run.pt", "--track-probe", "40",
       "--tensorboard", tb, "-q")  # fmt: skip
    recs = [json.loads(s) for s in (tmp_path / "track.jsonl").read_text().splitlines()]
    got = _scalars(_events(tb))
    assert sorted(got["weightinfo/trace"]) == [1, 2]
    for rec in recs:
        for k in ("trace", "loss", "accuracy", "test_loss", "temperature"):
            assert got["weightinfo/" + k][rec["epoch"]] == pytest.approx(rec[k], rel=1e-6), k
    tb2 = tmp_path / "tb2"
    ok("measure", "--checkpoint", tmp_path / "run.pt", "--out", tmp_path / "m",
       "--mc-samples", "0", "--tensorboard", tb2, "-q")  # fmt: skip
    report = json.loads((tmp_path / "m" / "report.json").read_text())
    ea = _events(tb2)
    assert len(ea.Images("weightinfo/where")) == 1
    assert _scalars(ea)["weightinfo/iw/nats"][0] == pytest.approx(report["nats"], rel=1e-6)
