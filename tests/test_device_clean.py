"""Device cleanliness of the entry points without a GPU (issue 12 §2), via ``tests.device_audit``.

1. No tensor factory called by weightinfo code on these paths omits ``device=`` (such a tensor would land on
   the CPU next to a CUDA model).
2. Host syncs (``.item()``, ``float(t)``, ``.cpu()``, ...) do not run once per batch, except the documented
   per-batch *decisions* in ``PER_BATCH_ALLOWED`` — each one a validation that must raise before the device
   computes on bad input, or an optimiser monitor that decides every step.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import weightinfo
from tests.device_audit import DeviceAudit, per_batch_syncs

B = 8

# Per-batch host reads that are allowed, by file (and function): why each one cannot wait for the pass's end.
PER_BATCH_ALLOWED = {
    # The loader's tensors, read on the host *before* the transfer to the model's device: no device sync for a
    # CPU loader (the usual case); the label range read there spares the device a sync in check_targets.
    "weightinfo/_base/batches.py": {"_host_range", "_validated"},
    "weightinfo/_base/checks.py": {"check_finite_tensor"},
    # Activation Fisher: a zero or non-finite Σ_z, a nuisance that is not the identity at θ = 0 must raise for
    # the batch at hand (the eigen-solver branches on the rank, a decision per batch).
    "weightinfo/activations/_gaussian.py": {"__init__"},
    "weightinfo/activations/fisher.py": {"_finite"},
    "weightinfo/activations/nuisances.py": {"nuisance_tangent"},
    # The variational estimator's monitor decides convergence every optimiser step from (objective, E L, KL).
    "weightinfo/iw/_family.py": {"<dictcomp>", "kl"},
    "weightinfo/iw/variational.py": {"_run_epoch"},
}


def _data(n, img=False):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, *((1, 6, 6) if img else (5,)), generator=g, dtype=torch.float64)
    return X, torch.randint(0, 3, (n,), generator=g)


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)).double()


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(32, 3)).double()


def _variances(model):
    return {k: torch.full_like(p, 1e-3) for k, p in model.named_parameters()}


ENTRY_POINTS = {
    "fisher-diag": lambda n: weightinfo.fisher(_mlp(), _data(n * B), batch_size=B),
    "fisher-diag-mc-conv": lambda n: weightinfo.fisher(
        _cnn(), _data(n * B, img=True), kind="mc", batch_size=B
    ),
    "fisher-kfac": lambda n: weightinfo.fisher(
        _cnn(), _data(n * B, img=True), structure="kfac", batch_size=B
    ),
    "fisher-full": lambda n: weightinfo.fisher(
        _mlp(), _data(n * B), structure="full", batch_size=B
    ),
    "hessian-diag": lambda n: weightinfo.hessian(_mlp(), _data(n * B), batch_size=B),
    "information-fisher": lambda n: weightinfo.information(
        _mlp(), _data(n * B), beta=0.1, prior_scale=1.0, batch_size=B, mc_samples=2
    ),
    "information-variational": lambda n: weightinfo.information(
        _mlp(),
        _data(n * B),
        beta=0.1,
        prior_scale=1.0,
        batch_size=B,
        method="variational",
        max_epochs=1,
    ),
    "activation-fisher": lambda n: weightinfo.activation_fisher(
        _mlp(), _data(n * B), _variances(_mlp()), lambda x, t: x + t, batch_size=B
    ),
    "certify": lambda n: weightinfo.certify(
        _mlp(),
        prior_data=_data(n * B),
        posterior_data=_data(n * B),
        bound_data=_data(n * B),
        batch_size=B,
        prior_epochs=1,
        posterior_epochs=1,
        mc_samples=3,
    ),
    "tracker-step": lambda n: weightinfo.Tracker(
        _data(n * B),
        quantities="trace,layer_trace,logdet,information,loss,accuracy,gradient_noise",
        beta=0.1,
        prior_scale=1.0,
        eval_batch_size=B,
    ).step(_mlp()),
}


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_factories_name_their_device(name):
    with DeviceAudit() as audit:
        ENTRY_POINTS[name](1)
    assert not audit.undeviced, "factory calls without device=: " + ", ".join(
        f"torch.{f} at {s}" for s, f in sorted(set(audit.undeviced))
    )


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_no_host_sync_per_batch(name):
    growing = per_batch_syncs(ENTRY_POINTS[name])
    bad = {}
    for site, k in growing.items():
        path, _, func = site.partition(" (")
        allowed = PER_BATCH_ALLOWED.get(path.rsplit(":", 1)[0], set())
        if func.rstrip(")") not in allowed:
            bad[site] = k
    assert not bad, f"host syncs once per batch (site: syncs per batch): {bad}"


def test_audit_catches_a_missing_device():
    """The audit itself: a factory without ``device=`` in a weightinfo file is reported, with its site; one with
    ``device=`` or one called from outside the package is not."""
    from tests.device_audit import PACKAGE

    code = compile(
        "torch.zeros(3, dtype=torch.float64)\ntorch.ones(2, device='cpu')\n",
        f"{PACKAGE}/_fake_module.py",
        "exec",
    )
    with DeviceAudit() as audit:
        exec(code, {"torch": torch})
        torch.zeros(2)  # this test file is not weightinfo code
    assert audit.undeviced == [("weightinfo/_fake_module.py:1 (<module>)", "zeros")]
