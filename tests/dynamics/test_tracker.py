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
    per_sample = torch.einsum("nc,ncp->n", prob, G.square())  # t_i, the Fisher trace of sample i
    layer = {}
    off = 0
    for k, p in params.items():
        lay = k.rpartition(".")[0]
        tr = torch.einsum("nc,ncp->", prob, G[:, :, off : off + p.numel()].square()) / X.shape[0]
        layer[lay] = layer.get(lay, 0.0) + float(tr)
        off += p.numel()
    return Fm, per_sample, layer


def _batch_means_stderr(per_sample, groups):
    """std of the means of ``groups`` contiguous near-equal groups / √groups (the tracker's estimator)."""
    N = per_sample.shape[0]
    b = [N * g // groups for g in range(groups + 1)]
    means = torch.stack([per_sample[b[g] : b[g + 1]].mean() for g in range(groups)])
    return float(means.std(unbiased=True)) / math.sqrt(groups)


def _lenet(seed=0):
    torch.manual_seed(seed)
    return weightinfo.models.LeNet((1, 8, 8), 4, channels=(3, 4), hidden=(10, 8)).double().eval()


@pytest.mark.parametrize("arch", ["mlp", "lenet"])
def test_trace_layer_trace_and_logdet_match_dense(arch):
    if arch == "mlp":
        X, Y = _data()
        model = _mlp()
    else:
        g = torch.Generator().manual_seed(1)
        X = torch.randn(23, 1, 8, 8, generator=g, dtype=torch.float64)
        Y = torch.randint(0, 4, (23,), generator=g)
        model = _lenet()
    q = ("trace", "layer_trace", "loss", "accuracy") + (("logdet",) if arch == "mlp" else ())
    # eval_batch_size 7: groups of 4-5 samples (MLP: 40 rows) are cut into several engine batches
    tr = Tracker((X, Y), quantities=q, damping=1e-3, eval_batch_size=7)
    rec = tr.step(model)
    Fm, per_sample, layer = _dense_fisher(model, X)
    # the explicit per-sample-Jacobian computation and the library's dense exact Fisher, to float64 tolerance
    assert rec["trace"] == pytest.approx(float(torch.trace(Fm)), rel=1e-10)
    full = weightinfo.fisher(model, (X, Y), structure="full").blocks[0].matrix
    assert rec["trace"] == pytest.approx(float(torch.trace(full)), rel=1e-10)
    assert rec["trace"] == pytest.approx(float(per_sample.mean()), rel=1e-10)
    assert rec["trace_groups"] == 10 and rec["trace_kind"] == "exact"
    assert rec["trace_stderr"] == pytest.approx(_batch_means_stderr(per_sample, 10), rel=1e-8)
    assert sum(rec["layer_trace"].values()) == pytest.approx(rec["trace"], rel=1e-12)
    assert set(rec["layer_trace"]) == set(layer)
    for k, v in layer.items():
        assert rec["layer_trace"][k] == pytest.approx(v, rel=1e-10, abs=1e-15)
    with torch.no_grad():
        z = model(X)
    assert rec["loss"] == pytest.approx(float(nn.functional.cross_entropy(z, Y)), rel=1e-12)
    assert rec["accuracy"] == pytest.approx(float((z.argmax(1) == Y).double().mean()))
    # G = N: the per-sample standard error std(t_i)/√N
    rec_n = Tracker((X, Y), quantities="trace", stderr_groups=X.shape[0]).step(model)
    se = float(per_sample.std(unbiased=True)) / math.sqrt(X.shape[0])
    assert rec_n["trace_stderr"] == pytest.approx(se, rel=1e-8)
    assert rec_n["trace"] == pytest.approx(rec["trace"], rel=1e-12)
    if arch == "mlp":
        ev = torch.linalg.eigvalsh(Fm).clamp_min(0)
        assert rec["logdet_method"] == "dense" and rec["logdet_damping"] == 1e-3
        assert rec["logdet"] == pytest.approx(float(torch.log(ev + 1e-3).sum()), rel=1e-8)


@pytest.mark.parametrize("arch", ["mlp", "lenet"])
def test_mc_trace_is_close_and_seeded(arch):
    if arch == "mlp":
        X, Y = _data(n=60)
        model = _mlp()
    else:
        g = torch.Generator().manual_seed(2)
        X = torch.randn(40, 1, 8, 8, generator=g, dtype=torch.float64)
        Y = torch.randint(0, 4, (40,), generator=g)
        model = _lenet()
    exact = Tracker((X, Y), quantities="trace").step(model)["trace"]
    a = Tracker((X, Y), quantities="trace", kind="mc", mc_samples=20, seed=1).step(model)
    b = Tracker((X, Y), quantities="trace", kind="mc", mc_samples=20, seed=1).step(model)
    assert a["trace"] == b["trace"] and a["trace_kind"] == "mc"
    assert abs(a["trace"] - exact) < 4 * a["trace_stderr"]
    # the expectation: the mean of 8 seeds' estimates is within 4 standard errors of the exact trace
    runs = [Tracker((X, Y), quantities="trace", kind="mc", seed=s).step(model) for s in range(8)]
    mean = sum(r["trace"] for r in runs) / 8
    se = math.sqrt(sum(r["trace_stderr"] ** 2 for r in runs)) / 8
    assert abs(mean - exact) < 4 * se


def test_gradient_noise_matches_per_sample_gradients():
    X, Y = _data(n=30)
    model = _mlp()
    rec = Tracker((X, Y), quantities="gradient_noise", eval_batch_size=8).step(model)
    params = {k: p.detach() for k, p in model.named_parameters()}

    def loss(p, x, y):
        z = functional_call(model, p, (x.unsqueeze(0),))
        return nn.functional.cross_entropy(z, y.unsqueeze(0))

    g = vmap(torch.func.grad(loss), in_dims=(None, 0, 0))(params, X, Y)
    g = torch.cat([g[k].reshape(X.shape[0], -1) for k in params], 1)
    G2 = float(g.mean(0).square().sum())
    tr_sigma = float((g - g.mean(0)).square().sum()) / (X.shape[0] - 1)
    assert rec["gradient_norm_sq"] == pytest.approx(G2, rel=1e-9)
    assert rec["gradient_trace_cov"] == pytest.approx(tr_sigma, rel=1e-9)
    assert rec["gradient_noise"] == pytest.approx(tr_sigma / G2, rel=1e-9)


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
    from weightinfo.dynamics import _tracker_measures as mod

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


@pytest.mark.usefixtures("isolated_cache")
def test_cli_track_defaults_jsonl_and_plot(tmp_path, monkeypatch):
    from tests.cli_helpers import SMALL, ok
    from weightinfo.cli.train import TRACK_DEFAULT
    from weightinfo.dynamics import _tracker_plot
    from weightinfo.dynamics.tracker import DEFAULT_QUANTITIES

    assert TRACK_DEFAULT == ",".join(DEFAULT_QUANTITIES)
    seen = {}
    real = _tracker_plot.plot_records

    def spy(records, path, **kw):
        seen.update(kw)
        return real(records, path, **kw)

    monkeypatch.setattr(_tracker_plot, "plot_records", spy)
    out = tmp_path / "run.pt"
    res = ok("track", *SMALL, "--epochs", "2", "--out", out, "--track-probe", "40")
    recs = [json.loads(s) for s in (tmp_path / "track.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in recs] == [1, 2]
    for r in recs:
        for k in DEFAULT_QUANTITIES + (
            "trace_stderr",
            "test_loss",
            "test_accuracy",
            "n_probe",
            "time",
        ):
            assert r[k] is not None, k
        assert r["n_probe"] == 40 and r["trace_kind"] == "exact" and r["trace_groups"] == 10
        assert "gradient_noise" not in r and "logdet" not in r
        assert sum(r["layer_trace"].values()) == pytest.approx(r["trace"], rel=1e-9)
    assert (tmp_path / "track.png").stat().st_size > 1000 and out.is_file()
    assert seen["command"].startswith("weightinfo track --out ")
    assert "--dataset digits" in seen["command"] and "--track-probe 40" in seen["command"]
    assert "track.jsonl" in res.output
    # the quantities can still be chosen
    ok("track", *SMALL, "--out", tmp_path / "b" / "b.pt", "--track", "loss,gradient_noise", "-q")
    rec = json.loads((tmp_path / "b" / "track.jsonl").read_text())
    assert rec["gradient_noise"] > 0 and "trace" not in rec
