"""``information(method="fisher")``: the Monte Carlo Fisher, curvature on a subset, L_D(w*) from the curvature pass."""

import pytest
import torch
from torch import nn

from weightinfo.curvature import fisher
from weightinfo.iw._subsample import split_for_curvature
from weightinfo.iw.estimate import information

D64 = torch.float64


def _problem(n=64, seed=0):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double().eval()
    g = torch.Generator().manual_seed(seed + 1)
    X = torch.randn(n, 4, generator=g, dtype=D64)
    return m, X, torch.randint(0, 3, (n,), generator=g)


def _ld(m, X, Y):
    with torch.no_grad():
        return float(nn.functional.cross_entropy(m(X), Y))


@pytest.mark.parametrize("kind", ["exact", "mc", "empirical"])
def test_curvature_pass_reports_the_mean_loss(kind):
    m, X, Y = _problem()
    F = fisher(
        m, (X, Y), kind=kind, batch_size=10
    )  # several batches and the first-batch guard split
    assert F.mean_loss == pytest.approx(_ld(m, X, Y), rel=1e-12)
    assert fisher(m, (X, Y), structure="kfac").mean_loss is None  # not on the KFAC hooks' path


def test_information_takes_train_loss_from_the_curvature_pass(monkeypatch):
    from weightinfo.iw import points

    m, X, Y = _problem()
    calls = []
    real = points._mean_loss
    monkeypatch.setattr(points, "_mean_loss", lambda *a, **k: calls.append(1) or real(*a, **k))
    r = information(m, (X, Y), beta=1e-2, prior_scale=1.0, mc_samples=0)
    assert calls == [] and r.train_loss == pytest.approx(_ld(m, X, Y), rel=1e-12)
    r = information(m, (X, Y), beta=1e-2, prior_scale=1.0, mc_samples=0, structure="kfac")
    assert calls == [1] and r.train_loss == pytest.approx(_ld(m, X, Y), rel=1e-12)


def test_mc_fisher_is_unbiased_for_the_information():
    """The MC Fisher (one label per input) averages to the exact one; so its IW is close (Jensen only)."""
    m, X, Y = _problem(n=200)
    kw = dict(beta=1e-2, prior_scale=1.0, mc_samples=0)
    exact = information(m, (X, Y), **kw)
    mc = [information(m, (X, Y), curvature_kind="mc", seed=s, **kw) for s in range(40)]
    assert all(r.extra["curvature_kind"] == "mc" for r in mc)
    for (
        k,
        v,
    ) in exact.posterior_variance.items():  # precision β/σ² − β/λ² = F_ii: unbiased per weight
        prec = torch.stack([kw["beta"] / r.posterior_variance[k] for r in mc])
        f_mc, f_ex = prec.mean(0), kw["beta"] / v
        se = prec.std(0) / len(mc) ** 0.5
        assert ((f_mc - f_ex).abs() <= 5 * se + 1e-12).all()
    assert sum(r.nats for r in mc) / len(mc) == pytest.approx(exact.nats, rel=0.05)


def test_curvature_samples_tuple_subset_and_full_train_loss():
    m, X, Y = _problem(n=50)
    kw = dict(beta=1e-2, prior_scale=1.0, mc_samples=0, seed=3)
    r = information(m, (X, Y), curvature_samples=20, **kw)
    head, rest, k = split_for_curvature((X, Y), 20, seed=3)
    assert k == 20 and rest[0].shape[0] == 30
    ref = information(m, head, **kw)  # the same curvature, from the same 20 rows
    assert r.nats == pytest.approx(ref.nats, rel=1e-12)
    assert r.extra["curvature_samples"] == 20 and r.n_samples == 50
    assert r.train_loss == pytest.approx(_ld(m, X, Y), rel=1e-12)  # L_D over all 50 samples
    whole = information(m, (X, Y), curvature_samples=500, **kw)  # k ≥ N: the whole set
    assert whole.nats == pytest.approx(information(m, (X, Y), **kw).nats, rel=1e-12)


def test_curvature_samples_dataloader_takes_the_first_samples():
    m, X, Y = _problem(n=50)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, Y), batch_size=8)
    kw = dict(beta=1e-2, prior_scale=1.0, mc_samples=0)
    r = information(m, loader, curvature_samples=20, **kw)  # 2 batches + 4 rows of the third
    ref = information(m, (X[:20], Y[:20]), **kw)
    assert r.nats == pytest.approx(ref.nats, rel=1e-12)
    assert r.train_loss == pytest.approx(_ld(m, X, Y), rel=1e-12) and r.n_samples == 50
    head, rest, k = split_for_curvature(loader, 16, seed=0)  # the split falls on a batch boundary
    assert k == 16 and sum(x.shape[0] for x, _ in rest) == 34


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"curvature_kind": "kfac"}, "curvature_kind"),
        ({"curvature_kind": "mc", "curvature": "hessian"}, "hessian"),
        ({"curvature_samples": 0}, "curvature_samples"),
        ({"curvature_samples": 2.5}, "curvature_samples"),
        ({"curvature_kind": "mc", "method": "variational"}, "variational"),
        ({"curvature_samples": 10, "method": "variational"}, "variational"),
    ],
)
def test_bad_curvature_options(kwargs, match):
    m, X, Y = _problem()
    with pytest.raises(ValueError, match=match):
        information(m, (X, Y), beta=1e-2, prior_scale=1.0, mc_samples=0, **kwargs)


def test_precomputed_curvature_of_a_subset_is_accepted_with_curvature_samples():
    m, X, Y = _problem(n=50)
    kw = dict(beta=1e-2, prior_scale=1.0, mc_samples=0, seed=3)
    head, _, _ = split_for_curvature((X, Y), 20, seed=3)
    r = information(m, (X, Y), curvature_samples=20, **kw)
    pre = information(m, (X, Y), curvature_samples=20, precomputed=fisher(m, head), **kw)
    assert pre.nats == r.nats and pre.n_samples == 50
    assert pre.train_loss == pytest.approx(r.train_loss, rel=1e-12)
    with pytest.raises(ValueError, match="20 samples, the data have 50"):
        information(m, (X, Y), precomputed=fisher(m, head), **kw)
