"""Variational information in the weights: closed-form optima of linear-Gaussian regression, resume, Task2Vec."""

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from weightinfo.iw import variational as V
from weightinfo.iw._resume import epoch_seed
from weightinfo.iw.estimate import information
from weightinfo.iw.variational import variational_information
from weightinfo.posterior.gaussian import DiagGaussian, kl_diag
from weightinfo.posterior.prior import make_prior

D = torch.float64
BETA = 1e-2
# Full-batch Adam steps with a slowly decaying rate: the noise of the one-draw gradient averages out to
# ~0.3% in σ² from the Fisher start (seeded; ~3.5 s). FAR: a start 10-250× off, coarser (~1 s).
# lr_decay counts epochs of at least 32 steps (variational._MIN_EPOCH_STEPS): ×0.999 per step and ×0.98
# per 10-step epoch.
FIT = dict(lr=0.02, lr_decay=0.999**32, max_epochs=5000, batch_size=200, tol=0.0, progress=False)
FAR = dict(
    lr=0.1, lr_decay=0.98**3.2, max_epochs=300, batch_size=20, tol=0.0, progress=False,
    init_var=0.1,
)  # fmt: skip


class Scale(nn.Module):
    """Fixed per-output gain (a buffer): makes the curvature differ between the filters of the Linear."""

    def __init__(self, s):
        super().__init__()
        self.register_buffer("s", torch.tensor(s, dtype=D))

    def forward(self, x):
        return x * self.s


def _regression(d_out=1, scale=None):
    g = torch.Generator().manual_seed(0)
    N, d = 200, 5
    X = torch.randn(N, d, generator=g, dtype=D) * torch.tensor([0.5, 1.0, 2.0, 3.0, 0.2], dtype=D)
    Y = X @ torch.randn(d, d_out, generator=g, dtype=D) + 0.1 * torch.randn(
        N, d_out, generator=g, dtype=D
    )
    lin = nn.Linear(d, d_out, bias=False).to(D)
    gains = torch.tensor(scale or [1.0] * d_out, dtype=D)[:, None]
    with torch.no_grad():  # least squares: the means sit at the minimum, as after training
        lin.weight.copy_(torch.linalg.lstsq(X, Y).solution.T / gains)
    model = (nn.Sequential(lin, Scale(scale)) if scale else lin).eval()
    return model, X, Y


def _exact_expected_loss(model, X, Y, s2, gains=None):
    """E_Q[½‖y − f‖²] = L(μ) + ½ Σ_jk g_j² σ_jk² mean(x_k²): exact for a linear model."""
    with torch.no_grad():
        L = 0.5 * (model(X) - Y).pow(2).sum(1).mean()
    g2 = (
        torch.ones(s2.shape[0], 1, dtype=D)
        if gains is None
        else torch.tensor(gains, dtype=D)[:, None] ** 2
    )
    return float(L + 0.5 * (g2 * s2 * X.pow(2).mean(0)).sum())


def _kl(model, s2, lam):
    name = next(k for k, _ in model.named_parameters())
    w = dict(model.named_parameters())[name].detach()
    return kl_diag(DiagGaussian({name: w}, {name: s2}), make_prior(model, prior_scale=lam))


def test_diag_reaches_closed_form_optimum():
    model, X, Y = _regression()
    lam = 1.0
    r = variational_information(
        model, (X, Y), beta=BETA, prior_scale=lam, loss="mse", mc_samples=200, **FIT
    )
    H = X.pow(2).mean(0)  # diagonal of H = XᵀX/N for L_D = mean ½(y − wᵀx)²
    s2_opt = (BETA / (H + BETA / lam**2))[None]
    s2 = r.posterior_variance["weight"]
    assert r.extra["local_reparam_modules"] == [""]
    assert ((s2 / s2_opt - 1).abs() < 0.02).all()
    assert r.nats == pytest.approx(_kl(model, s2_opt, lam), rel=0.01)
    assert r.nats == pytest.approx(_kl(model, s2, lam), rel=1e-12)
    e_opt = _exact_expected_loss(model, X, Y, s2_opt)
    assert _exact_expected_loss(model, X, Y, s2) == pytest.approx(e_opt, rel=0.01)
    assert abs(r.expected_loss - _exact_expected_loss(model, X, Y, s2)) < 4 * r.expected_loss_stderr
    with torch.no_grad():
        assert r.train_loss == pytest.approx(0.5 * float((model(X) - Y).pow(2).mean()), rel=1e-12)
    assert sum(float(v.sum()) for v in r.per_parameter.values()) == pytest.approx(r.nats, rel=1e-12)
    assert r.method == "variational" and r.structure == "diag" and r.beta == BETA
    assert len(r.extra["history"]) == 5000 and r.extra["excluded_parameters"] == []
    assert r.extra["init_var"].startswith("fisher")
    assert r.lagrangian == pytest.approx(r.expected_loss + BETA * r.nats)


def test_filter_reaches_filter_optimum():
    gains = [1.0, 3.0]
    model, X, Y = _regression(d_out=2, scale=gains)
    lam = 1.0
    r = variational_information(
        model, (X, Y), beta=BETA, prior_scale=lam, loss="mse", structure="filter", **FIT
    )
    H = torch.tensor(gains, dtype=D)[:, None] ** 2 * X.pow(2).mean(0)  # H_jk = g_j² mean(x_k²)
    s2_opt = (1 / (H.mean(1, keepdim=True) / BETA + 1 / lam**2)).expand(
        2, 5
    )  # σ_f⁻² = mean H/β + 1/λ²
    s2 = r.posterior_variance["0.weight"]
    assert torch.equal(s2, s2[:, :1].expand(2, 5))  # one variance per filter
    assert ((s2[:, 0] / s2_opt[:, 0] - 1).abs() < 0.02).all()
    assert r.nats == pytest.approx(_kl(model, s2_opt, lam), rel=0.01)
    e_opt = _exact_expected_loss(model, X, Y, s2_opt, gains)
    assert _exact_expected_loss(model, X, Y, s2, gains) == pytest.approx(e_opt, rel=0.01)


def test_learned_prior_scale_reaches_fixed_point():
    model, X, Y = _regression()
    r = variational_information(
        model,
        (X, Y),
        beta=BETA,
        prior_scale=3.0,
        loss="mse",
        learn_prior_scale=True,
        mc_samples=0,
        **FAR,
    )
    w2 = model.weight.detach().pow(2)
    s2 = r.posterior_variance["weight"]
    lam2 = r.prior_scale[""] ** 2
    assert lam2 == pytest.approx(float((w2 + s2).mean()), rel=0.02)  # λ² = mean((w − w0)² + σ²)
    H = X.pow(2).mean(0)
    lam2_opt = 1.0
    for _ in range(200):  # the joint fixed point, by iteration
        s2_opt = BETA / (H + BETA / lam2_opt)
        lam2_opt = float((w2[0] + s2_opt).mean())
    assert lam2 == pytest.approx(lam2_opt, rel=0.02)
    assert ((s2[0] / s2_opt - 1).abs() < 0.05).all()
    assert r.extra["prior_scale_init"] == {"": 3.0}
    assert math.isnan(r.expected_loss)


def _classifier():
    torch.manual_seed(1)
    m = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 3)).to(D).eval()
    X = torch.randn(60, 3, dtype=D)
    return m, (X, torch.randint(0, 3, (60,)))


RUN = dict(
    beta=1e-3, prior_scale=1.0, learn_prior_scale=True, batch_size=16, tol=0.0, progress=False
)


def _same(a, b):
    assert a.extra["history"] == b.extra["history"]
    assert all(
        torch.equal(a.posterior_variance[k], b.posterior_variance[k]) for k in a.posterior_variance
    )
    assert (
        a.nats == b.nats and a.prior_scale == b.prior_scale and a.expected_loss == b.expected_loss
    )


def test_resume_continues_and_equals_uninterrupted(tmp_path):
    m, data = _classifier()
    path = tmp_path / "state.pt"
    first = variational_information(m, data, max_epochs=2, state_path=path, **RUN)
    assert len(first.extra["history"]) == 2 and path.exists()
    resumed = variational_information(m, data, max_epochs=4, state_path=path, **RUN)
    assert resumed.extra["resumed_from_epoch"] == 2
    assert [h["epoch"] for h in resumed.extra["history"]] == [1, 2, 3, 4]
    _same(resumed, variational_information(m, data, max_epochs=4, **RUN))
    assert all(p.grad is None for p in m.parameters())  # the means stay frozen
    with pytest.warns(UserWarning, match="another configuration"):  # β differs: fresh start
        other = variational_information(
            m, data, max_epochs=1, state_path=path, **{**RUN, "beta": 2e-3}
        )
    assert other.extra["resumed_from_epoch"] is None


def test_unreadable_resume_state_is_named_and_kept(tmp_path):
    m, data = _classifier()
    path = tmp_path / "state.pt"
    variational_information(m, data, max_epochs=1, state_path=path, **RUN)
    raw = path.read_bytes()
    cases = [
        (raw[: len(raw) // 2], r"state\.pt' is not a variational resume state \(truncated"),
        (b'{"epoch": 3}', r"state\.pt' is not a variational resume state \(not a torch file"),
    ]
    for data_bytes, pattern in cases:
        path.write_bytes(data_bytes)
        with pytest.raises(ValueError, match=pattern):
            variational_information(m, data, max_epochs=1, state_path=path, **RUN)
        assert path.read_bytes() == data_bytes  # not overwritten
    torch.save({"state_dict": {}}, path)  # e.g. another tool's file
    with pytest.raises(ValueError, match=r"state\.pt' .* without the saved estimator's fields"):
        variational_information(m, data, max_epochs=1, state_path=path, **RUN)
    with pytest.raises(
        ValueError, match=r"state_path '.*' is not a variational resume state \(not a file"
    ):
        variational_information(m, data, max_epochs=1, state_path=tmp_path, **RUN)


def test_keyboard_interrupt_saves_last_epoch(tmp_path, monkeypatch):
    m, data = _classifier()
    path = tmp_path / "state.pt"
    real, calls = V._run_epoch, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(V, "_run_epoch", flaky)
    with pytest.raises(KeyboardInterrupt):
        variational_information(m, data, max_epochs=4, state_path=path, **RUN)
    assert torch.load(path, weights_only=True)["epoch"] == 2
    monkeypatch.setattr(V, "_run_epoch", real)
    resumed = variational_information(m, data, max_epochs=4, state_path=path, **RUN)
    assert resumed.extra["resumed_from_epoch"] == 2
    _same(resumed, variational_information(m, data, max_epochs=4, **RUN))


def test_warm_start_from_init_variance():
    m, data = _classifier()
    a = variational_information(m, data, max_epochs=3, **RUN)
    b = variational_information(
        m, data, max_epochs=1, init_variance=a.posterior_variance, **{**RUN, "lr": 1e-12}
    )
    assert b.extra["init_var"].startswith("init_variance")
    for k, v in a.posterior_variance.items():
        torch.testing.assert_close(b.posterior_variance[k], v, rtol=1e-9, atol=0)


def _tiny_cnn():
    torch.manual_seed(2)
    m = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 4)
    ).to(D)
    with torch.no_grad():
        m[1].running_var.uniform_(0.5, 2.0)
    return m.eval(), torch.randn(8, 1, 4, 4, dtype=D), torch.randint(0, 4, (8,))


def test_task2vec_objective_by_hand():
    m, X, Y = _tiny_cnn()
    beta = 0.01  # large enough that β·2·KL is visible next to the cross-entropy
    r = variational_information(
        m, [(X, Y)], beta=beta, preset="task2vec", max_epochs=1, progress=False
    )
    assert r.beta == 2 * beta and r.extra["kl_factor"] == 2.0 and r.structure == "filter"
    assert r.extra["variational_parameters"] == ["0.weight", "4.weight"]
    assert r.extra["excluded_parameters"] == ["0.bias", "1.weight", "1.bias", "4.bias"]
    for k in r.extra["excluded_parameters"]:
        assert not r.posterior_variance[k].any() and not r.per_parameter[k].any()
    # Task2Vec's initial state and its Lz = Σ w²/λ² + Σ σ²/λ² + k ln λ² − Σ ln σ² − k (= 2·KL)
    W = {k: m.get_parameter(k).detach() for k in ("0.weight", "4.weight")}
    s2 = {k: (0.05 * w.reshape(w.shape[0], -1).var(1) + 1e-8).reshape(-1, *[1] * (w.ndim - 1)).expand_as(w)
          for k, w in W.items()}  # fmt: skip
    lam2 = {k: w.pow(2).mean() + 1e-8 for k, w in W.items()}
    Lz = sum(
        (W[k].pow(2) / lam2[k]).sum() + (s2[k] / lam2[k]).sum() + W[k].numel() * lam2[k].log()
        - s2[k].log().sum() - W[k].numel()
        for k in W
    )  # fmt: skip
    # Task2Vec's noisy forward: local reparameterisation with the 1e-2 floor, BN in eval mode
    with torch.no_grad():
        g = torch.Generator().manual_seed(epoch_seed(0, 0, "noise"))
        mu = F.conv2d(X, W["0.weight"], m[0].bias, padding=1)
        v = F.conv2d(X**2 + 1e-2, s2["0.weight"], None, padding=1)
        h = mu + v.sqrt() * torch.randn(mu.shape, generator=g, dtype=D)
        h = m[3](m[2](m[1](h)))
        mu = F.linear(h, W["4.weight"], m[4].bias)
        v = F.linear(h**2 + 1e-2, s2["4.weight"])
        z = mu + v.sqrt() * torch.randn(mu.shape, generator=g, dtype=D)
        ce = F.cross_entropy(z, Y)
    h0 = r.extra["history"][0]  # one batch: the epoch mean is the objective at the initial state
    assert h0["kl_nats"] == pytest.approx(float(Lz) / 2, rel=1e-12)
    assert h0["expected_loss"] == pytest.approx(float(ce), rel=1e-12)
    assert h0["objective"] == pytest.approx(float(ce + beta * Lz), rel=1e-12)
    assert r.extra["prior_scale_init"] == pytest.approx(
        {k[0]: float(v.sqrt()) for k, v in lam2.items()}
    )


def test_task2vec_default_preset_runs():
    m, X, Y = _tiny_cnn()
    r = variational_information(
        m, (X, Y), preset="task2vec", batch_size=4, progress=False, mc_samples=2
    )
    assert r.beta == 2e-7 and r.extra["beta_argument"] == 1e-7 and r.extra["epochs"] == 2
    assert r.extra["local_reparam_modules"] == ["0", "4"] and r.extra["input_floor"] == 1e-2
    assert r.prior_scale != r.extra["prior_scale_init"]  # λ is learned
    assert r.nats > 0 and math.isfinite(r.expected_loss)


def test_through_information_entry_point():
    from weightinfo.iw import information

    m, data = _classifier()
    r = information(
        m, data, beta=1e-3, prior_scale=1.0, method="variational", max_epochs=2, progress=False
    )
    assert r.method == "variational" and r.nats > 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"beta": 0.0}, "beta"),
        ({"beta": -1.0}, "beta"),
        ({"beta": float("nan")}, "beta"),
        ({"convention": "paper"}, "convention"),
        ({"structure": "full"}, "structure"),
        ({"structure": "kfac"}, "structure"),
        ({"preset": "laplace"}, "preset"),
        ({"prior_scale": None}, "prior_scale"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"approximation": "small_beta"}, "approximation"),
    ],
)
def test_bad_input(kwargs, match):
    m, data = _classifier()
    args = {"beta": 1e-3, "prior_scale": 1.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        variational_information(m, data, **args)


def test_options_object_equals_keywords_and_unknown_keywords_raise():
    from weightinfo.iw import VariationalOptions

    m, data = _classifier()
    common = {k: v for k, v in RUN.items() if k not in ("learn_prior_scale", "tol")}
    opts = VariationalOptions(max_epochs=2, learn_prior_scale=True, tol=0.0)
    a = variational_information(m, data, max_epochs=2, **RUN)
    _same(a, variational_information(m, data, options=opts, **common))
    _same(a, information(m, data, method="variational", variational=opts, **common))
    with pytest.raises(TypeError, match="max_epoch"):
        information(m, data, method="variational", max_epoch=2, **RUN)
    with pytest.raises(TypeError, match="not both"):
        variational_information(m, data, options=opts, lr=0.1, **common)
    with pytest.raises(TypeError, match="variational"):
        information(m, data, variational=opts, **common)  # method="fisher"


def test_options_are_validated_once_and_frozen():
    import dataclasses

    from weightinfo.iw import VariationalOptions

    o = VariationalOptions(preset="task2vec", lr=0.5, local_reparam=False)
    assert (o.lr, o.max_epochs, o.init_var, o.local_reparam) == (0.5, 2, "weights", "none")
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.lr = 1.0
    for bad, match in [({"lr": -1.0}, "lr"), ({"init_samples": 0}, "init_samples"),
                       ({"local_reparam": "some"}, "local_reparam"), ({"init_var": "zero"}, "init_var")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            VariationalOptions(**bad)


@pytest.mark.parametrize("content", [b"not a torch file", None])
def test_unreadable_state_file_names_the_file(tmp_path, content):
    m, data = _classifier()
    path = tmp_path / "state.pt"
    if content is None:
        torch.save({"epoch": 1}, path)  # a torch file, not a state
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match="state.pt"):
        variational_information(m, data, max_epochs=1, state_path=path, **RUN)
