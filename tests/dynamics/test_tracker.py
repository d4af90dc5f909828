"""weightinfo.Tracker: records during training, tr F against a dense torch.func computation, JSONL, plot."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

import weightinfo
from weightinfo import Tracker


def _data(n=40, d=5, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    Y = torch.randint(0, c, (n,), generator=g)
    return X, Y


def _mlp(d=5, h=6, c=3, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, h), nn.Tanh(), nn.Linear(h, c)).double()


def _dense_fisher(model, X):
    """F = (1/N) Σ_i Σ_c p_c(x_i) g_ic g_icᵀ, g_ic = ∇_w log p(c|x_i), by hand with torch.func."""
    params = {k: p.detach() for k, p in model.named_parameters()}

    def logp(p, x):
        return torch.log_softmax(functional_call(model, p, (x.unsqueeze(0),)), dim=1)[0]

    jac = vmap(jacrev(logp), in_dims=(None, 0))(params, X)  # name -> (N, C, *shape)
    G = torch.cat([jac[k].reshape(X.shape[0], jac[k].shape[1], -1) for k in params], dim=2)
    with torch.no_grad():
        prob = torch.softmax(model(X), 1)
    Fm = torch.einsum("nc,ncp,ncq->pq", prob, G, G) / X.shape[0]
    per_sample = torch.einsum("nc,ncp->n", prob, G.square())
    layer = {}
    off = 0
    for k, p in params.items():
        lay = k.rpartition(".")[0]
        tr = torch.einsum("nc,ncp->", prob, G[:, :, off : off + p.numel()].square()) / X.shape[0]
        layer[lay] = layer.get(lay, 0.0) + float(tr)
        off += p.numel()
    return Fm, per_sample, layer


def test_trace_layer_trace_and_logdet_match_dense():
    X, Y = _data()
    model = _mlp()
    tr = Tracker((X, Y), quantities=("trace", "layer_trace", "logdet"), damping=1e-3)
    rec = tr.step(model)
    Fm, per_sample, layer = _dense_fisher(model, X)
    assert rec["trace"] == pytest.approx(float(torch.trace(Fm)), rel=1e-6, abs=1e-9)
    se = float(per_sample.std(unbiased=True)) / math.sqrt(X.shape[0])
    assert rec["trace_stderr"] == pytest.approx(se, rel=1e-6)
    assert sum(rec["layer_trace"].values()) == pytest.approx(rec["trace"], rel=1e-9)
    for k, v in layer.items():
        assert rec["layer_trace"][k] == pytest.approx(v, rel=1e-6, abs=1e-10)
    ev = torch.linalg.eigvalsh(Fm).clamp_min(0)
    assert rec["logdet_method"] == "dense" and rec["logdet_damping"] == 1e-3
    assert rec["logdet"] == pytest.approx(float(torch.log(ev + 1e-3).sum()), rel=1e-6)
    # the library's own Fisher agrees
    assert rec["trace"] == pytest.approx(weightinfo.fisher(model, (X, Y)).trace(), rel=1e-6)


def test_mc_trace_is_close_and_seeded():
    X, Y = _data(n=60)
    model = _mlp()
    exact = Tracker((X, Y), quantities="trace").step(model)["trace"]
    a = Tracker((X, Y), quantities="trace", kind="mc", mc_samples=20, seed=1).step(model)
    b = Tracker((X, Y), quantities="trace", kind="mc", mc_samples=20, seed=1).step(model)
    assert a["trace"] == b["trace"]
    assert abs(a["trace"] - exact) < 5 * a["trace_stderr"] + 1e-3


def test_train_callback_records_every_epoch_and_jsonl(tmp_path):
    X, Y = _data(n=64)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=16)
    model = _mlp()
    path = tmp_path / "track.jsonl"
    q = ("trace", "layer_trace", "loss", "accuracy", "temperature", "gradient_noise")
    tr = Tracker(
        (X[:32], Y[:32]), quantities=q, test_data=(X[32:], Y[32:]), train_loader=loader, path=path
    )
    weightinfo.train(model, loader, epochs=3, lr=0.05, callbacks=[tr], progress=False)
    assert [r["epoch"] for r in tr.records] == [1, 2, 3]
    for r in tr.records:
        for k in q + ("test_loss", "test_accuracy", "trace_stderr"):
            assert r[k] is not None, k
        assert r["temperature"] == pytest.approx(0.05 / 16)
        assert r["gradient_noise"] > 0
    lines = path.read_text().splitlines()
    assert [json.loads(s) for s in lines] == tr.records
    png = tr.plot(tmp_path / "track.png")
    assert png.stat().st_size > 1000


def test_every_skips_epochs():
    X, Y = _data(n=32)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=8)
    tr = Tracker((X, Y), every=2, quantities=("loss",))
    weightinfo.train(_mlp(), loader, epochs=4, lr=0.05, callbacks=[tr], progress=False)
    assert [r["epoch"] for r in tr.records] == [2, 4]


def test_plain_loop_step_and_crash_keeps_records(tmp_path):
    X, Y = _data(n=48)
    model = _mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    path = tmp_path / "t.jsonl"
    tr = Tracker((X, Y), quantities=("trace", "loss", "temperature"), path=path)
    with pytest.raises(RuntimeError, match="boom"):
        for it in range(5):
            for s in range(0, 48, 12):
                opt.zero_grad()
                nn.functional.cross_entropy(model(X[s : s + 12]), Y[s : s + 12]).backward()
                opt.step()
            tr.step(model, step=4 * (it + 1), epoch=it + 1, optimizer=opt, batch_size=12)
            if it == 1:
                raise RuntimeError("boom")
    recs = [json.loads(s) for s in path.read_text().splitlines()]
    assert [r["epoch"] for r in recs] == [1, 2]
    assert recs[1]["temperature"] == pytest.approx(0.1 / 12)
    assert recs[1]["step"] == 8 and recs[1]["trace"] > 0
    # appending: a new tracker on the same path continues the file
    Tracker((X, Y), quantities=("loss",), path=path).step(model, lr=0.1)
    assert len(path.read_text().splitlines()) == 3


def test_information_quantity():
    X, Y = _data()
    model = _mlp()
    rec = Tracker((X, Y), quantities=("information",), beta=0.1, prior_scale=1.0).step(model)
    ref = weightinfo.information(model, (X, Y), beta=0.1, prior_scale=1.0, mc_samples=0)
    assert rec["information"] == pytest.approx(ref.nats, rel=1e-9)


def test_slq_logdet_above_dense_limit(monkeypatch):
    from weightinfo.dynamics import tracker as mod

    X, Y = _data()
    model = _mlp()
    dense = Tracker((X, Y), quantities=("logdet",), damping=1e-2).step(model)
    monkeypatch.setattr(mod, "DENSE_LOGDET_MAX_PARAMS", 10)
    slq = Tracker((X, Y), quantities=("logdet",), damping=1e-2, slq_probes=20, slq_steps=45).step(
        model
    )
    assert slq["logdet_method"] == "slq" and slq["logdet_stderr"] >= 0
    assert abs(slq["logdet"] - dense["logdet"]) < 5 * slq["logdet_stderr"] + 1e-6 * abs(
        dense["logdet"]
    )


def test_validation():
    X, Y = _data()
    with pytest.raises(ValueError, match="unknown quantity 'fisher_trace'"):
        Tracker((X, Y), quantities=("trace", "fisher_trace"))
    with pytest.raises(ValueError, match="empty"):
        Tracker((X[:0], Y[:0]))
    with pytest.raises(ValueError, match="NaN"):
        Tracker((torch.full_like(X, float("nan")), Y))
    with pytest.raises(ValueError, match="beta and prior_scale"):
        Tracker((X, Y), quantities=("information",))
    with pytest.raises(ValueError, match="every"):
        Tracker((X, Y), every=0)
    tr = Tracker((X, Y), quantities=("temperature",))
    with pytest.raises(ValueError, match="batch_size"):
        tr.step(_mlp(), lr=0.1)
    model = _mlp()
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        Tracker((X, Y), quantities=("trace",)).step(model)
    with pytest.raises(ValueError, match="no records"):
        Tracker((X, Y)).plot("x.png")


@pytest.mark.usefixtures("isolated_cache")
def test_cli_train_track(tmp_path):
    from tests.cli_helpers import SMALL, ok

    tmp_path = (
        tmp_path / "new" / "folder"
    )  # not there yet: the records need it from the first epoch
    out = tmp_path / "run.pt"
    args = ["--track", "trace,logdet,information", "--track-probe", "50"]
    ok(
        "train",
        *SMALL,
        "--out",
        out,
        *args,
        "--track-beta",
        "1e-3",
        "--track-prior-scale",
        "0.1",
        "-q",
    )
    recs = [json.loads(s) for s in (tmp_path / "track.jsonl").read_text().splitlines()]
    assert len(recs) == 1 and recs[0]["n_probe"] == 50
    assert recs[0]["trace"] > 0 and recs[0]["logdet_method"] == "dense"
    assert math.isfinite(recs[0]["information"]) and recs[0]["logdet_damping"] == 1e-3
    assert (tmp_path / "track.png").stat().st_size > 1000 and out.is_file()
    from tests.cli_helpers import invoke

    bad = invoke("train", *SMALL, "--out", tmp_path / "b.pt", "--track", "trace,bogus", "-q")
    assert bad.exit_code != 0 and "bogus" in bad.output
