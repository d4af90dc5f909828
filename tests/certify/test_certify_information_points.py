"""certify(posterior="information") evaluates every (λ, β) of its grid on one Fisher-form curvature."""

import pytest
import torch

import weightinfo.certificates as wc
from weightinfo.data import load_dataset
from weightinfo.iw import information, points
from weightinfo.models import build_model


def test_one_curvature_for_the_whole_grid(monkeypatch):
    ds = load_dataset("digits", seed=0)
    pi, bi = ds.prior_bound_split(0.5, 0)
    torch.manual_seed(0)
    model = build_model("mlp", ds.input_shape, ds.n_classes, widths=(16,)).eval()
    data = (ds.x_train[:300], ds.y_train[:300])
    calls = []
    real = points._curvature
    monkeypatch.setattr(points, "_curvature", lambda *a, **k: calls.append(1) or real(*a, **k))
    c = wc.certify(
        model,
        prior="init",
        init_state={k: v.clone() for k, v in model.state_dict().items()},
        posterior="information",
        posterior_data=data,
        bound_data=(ds.x_train[bi], ds.y_train[bi]),
        beta=[1e-4, 1e-3],
        prior_scale=[0.02, 0.05],
        mc_samples=5,
        mc_screen=5,
    )
    assert calls == [1] and len(c.grid) == 4
    # The certified point's KL is that of information() at its (λ, β), with the same prior mean.
    ref = information(
        model,
        data,
        beta=c.beta,
        prior_scale=c.prior_scale,
        prior_mean="init",
        init_state=dict(model.state_dict()),
        mc_samples=0,
        progress=False,
    )
    assert c.kl_nats == pytest.approx(ref.nats, rel=1e-6)
