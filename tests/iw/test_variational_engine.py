"""The variational estimator's machinery: closed-form KL gradient, stopping rule, running E_Q[L_D], float32."""

import math

import pytest
import torch
from torch import nn

from weightinfo.iw._family import Family
from weightinfo.iw._monitor import Monitor
from weightinfo.iw.variational import variational_information

D64 = torch.float64


@pytest.mark.parametrize("structure", ["diag", "filter"])
@pytest.mark.parametrize("learn", [False, True])
def test_closed_form_kl_and_gradient_match_autograd(structure, learn):
    g = torch.Generator().manual_seed(0)
    params = {"a.weight": torch.randn(4, 3, generator=g, dtype=D64), "a.bias": torch.randn(4, generator=g, dtype=D64),
              "b.weight": torch.randn(2, 4, generator=g, dtype=D64)}  # fmt: skip
    w0 = {k: 0.3 * torch.randn(v.shape, generator=g, dtype=D64) for k, v in params.items()}
    fam = Family(params, w0, list(params), structure, {"a": 0.5, "b": 2.0}, learn)
    with torch.no_grad():
        for lv in fam.logvar.values():
            lv.copy_(torch.randn(lv.shape, generator=g, dtype=D64) - 1)
    for lv in fam.logvar.values():
        lv.requires_grad_(True)
    # reference: the KL written out with autograd over the expanded variances
    kl = 0.0
    for n, lv in fam.logvar.items():
        s2, ll = lv.exp().expand(params[n].shape), fam.loglam[n.split(".")[0]]
        d2 = (params[n] - w0[n]).pow(2)
        kl = kl + 0.5 * ((s2 + d2) * torch.exp(-ll) - 1 + ll - s2.log()).sum()
    kl.backward()
    ref = {n: lv.grad.clone() for n, lv in fam.logvar.items()}
    ref_lam = {k: v.grad.clone() for k, v in fam.loglam.items()} if learn else {}
    for t in list(fam.logvar.values()) + list(fam.loglam.values()):
        t.grad = None
    var_lv = fam.var_lv()
    assert fam.kl(var_lv) == pytest.approx(float(kl.detach()), rel=1e-12)
    fam.add_kl_grad(var_lv, scale=0.7)
    for n, lv in fam.logvar.items():
        torch.testing.assert_close(lv.grad, 0.7 * ref[n], rtol=1e-12, atol=1e-14)
    for k, v in ref_lam.items():
        torch.testing.assert_close(fam.loglam[k].grad, 0.7 * v, rtol=1e-12, atol=1e-14)


def _feed(mon, kls, objective=0.5, se_noise=0.0, steps=5):
    """Run ``steps`` steps per KL value; the KL recorded at each check is the given one."""
    out = []
    for kl in kls:
        for j in range(steps):
            obj = objective + (se_noise if j % 2 else -se_noise)
            out.append(mon.step(obj, obj, kl, 10))
    return out


def test_monitor_stops_when_kl_and_objective_settle():
    mon = Monitor(tol=1e-3, check_every=5)
    stops = _feed(mon, [100.0, 150.0, 180.0, 180.1, 180.15])
    assert [c["step"] for c in mon.trace] == [5, 10, 15, 20, 25]
    assert not any(stops[:-1]) and stops[-1]  # two consecutive calm intervals needed
    assert mon.converged()


def test_monitor_ignores_a_single_calm_interval_and_kl_drift():
    mon = Monitor(tol=1e-3, check_every=5)
    assert not any(_feed(mon, [100.0, 100.05, 110.0, 110.05]))  # calm, jump, calm
    mon = Monitor(tol=0.0, check_every=5)  # tol = 0 never stops
    assert not any(_feed(mon, [100.0] * 6))


def test_monitor_objective_must_settle_beyond_its_noise():
    mon = Monitor(tol=1e-3, check_every=4)
    for obj in (1.0, 0.9, 0.8, 0.7):  # KL constant, objective still falling with no noise
        for _ in range(4):
            assert not mon.step(obj, obj, 50.0, 1)
    mon = Monitor(tol=1e-3, check_every=4)
    noisy = []
    for obj in (0.70, 0.69, 0.71):  # the same drift hidden in minibatch noise of ±0.2 passes
        for j in range(4):
            noisy.append(mon.step(obj + (0.2 if j % 2 else -0.2), 0.3, 50.0, 1))
    assert noisy[-1]


def test_monitor_running_estimate_window_and_state_roundtrip():
    mon = Monitor(tol=1e-3, check_every=2)
    for loss in (5.0, 5.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0):  # checks at steps 2, 4, 6, 8; KL fixed
        mon.step(loss, loss, 10.0, 4)
    assert mon.converged()
    mean, se, n = mon.running()  # only the converged stretch (steps 5–8), not the early steps
    assert (mean, n) == (1.0, 16) and se == 0.0
    other = Monitor(tol=1e-3, check_every=2)
    other.load_state_dict(mon.state_dict())
    assert other.running() == mon.running() and other.trace == mon.trace


def _classifier(n=300, seed=1, dtype=torch.float32):
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3)).to(dtype).eval()
    X = torch.randn(n, 5, dtype=dtype)
    with torch.no_grad():
        Y = m(X).argmax(1)
    return m, (X, Y)


def test_stops_inside_an_epoch_and_reruns_identically(tmp_path):
    m, data = _classifier()
    kw = dict(beta=1e-3, prior_scale=0.5, batch_size=10, checks_per_epoch=2, progress=False)
    path = tmp_path / "s.pt"
    a = variational_information(
        m, data, state_path=path, **kw
    )  # 30 steps per epoch, checks every 15
    ex = a.extra
    assert ex["converged"] and ex["stop_reason"] == "tol" and ex["check_every"] == 15
    assert ex["steps"] % 15 == 0 and len(ex["checks"]) == ex["steps"] // 15
    mean_terms = {round(c["kl_nats"] - c["kl_variance_nats"], 6) for c in ex["checks"]}
    assert len(mean_terms) == 1 and mean_terms.pop() > 0  # fixed λ: the mean term does not move
    b = variational_information(m, data, state_path=path, **kw)  # resumes from the last full epoch
    assert b.nats == a.nats and b.extra["steps"] == a.extra["steps"]
    assert b.expected_loss == a.expected_loss and b.extra["checks"] == a.extra["checks"]


def test_float32_state_and_float64_results():
    m, data = _classifier()
    r = variational_information(m, data, beta=1e-3, prior_scale=0.5, max_epochs=1, progress=False)
    assert all(v.dtype == D64 for v in r.posterior_variance.values())
    assert all(v.dtype == D64 for v in r.per_parameter.values())
    assert sum(float(v.sum()) for v in r.per_parameter.values()) == pytest.approx(r.nats, rel=1e-9)


def test_running_estimate_agrees_with_weight_draws():
    """The default E_Q[L_D] (running local-reparameterisation mean) vs 200 full-data weight draws."""
    m, data = _classifier(dtype=D64)
    kw = dict(beta=1e-2, prior_scale=0.5, batch_size=30, lr=0.05, max_epochs=40, progress=False)
    run = variational_information(m, data, **kw)
    assert run.extra["expected_loss_source"].startswith("running mean")
    assert math.isfinite(run.expected_loss_stderr) and run.mc_samples == 0
    drawn = variational_information(m, data, mc_samples=200, **kw)
    assert drawn.nats == run.nats  # the same fit; only the estimate of E_Q[L_D] differs
    gap = abs(run.expected_loss - drawn.expected_loss)
    assert gap < 4 * math.hypot(run.expected_loss_stderr, drawn.expected_loss_stderr)


def test_fisher_start_on_a_subset_keeps_the_full_train_loss():
    m, (X, Y) = _classifier(n=300, dtype=D64)
    kw = dict(beta=1e-3, prior_scale=0.5, max_epochs=1, progress=False, batch_size=64)
    sub = variational_information(m, (X, Y), init_samples=100, **kw)
    full = variational_information(m, (X, Y), init_samples=None, **kw)
    with torch.no_grad():
        ld = float(nn.functional.cross_entropy(m(X), Y))
    assert sub.train_loss == pytest.approx(ld, rel=1e-12) and sub.n_samples == 300
    assert full.train_loss == pytest.approx(ld, rel=1e-12)
    assert sub.extra["history"] != full.extra["history"]  # another start: another trajectory
    with pytest.raises(ValueError, match="init_samples"):
        variational_information(m, (X, Y), init_samples=0, **kw)
