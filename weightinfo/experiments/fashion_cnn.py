"""A convolutional-network risk certificate on Fashion-MNIST (issue 9 §2): ``reproduce certificates --which
fashion-cnn``.

Protocol (Pérez-Ortiz et al. 2021, data-dependent prior): the 60,000 training images are split with
``Dataset.prior_bound_split(prior_fraction, seed)``. The prior mean w0 is a CNN (:data:`FASHION_CNN`) trained by
SGD on the prior part only; P = N(w0, λ² I). The posterior is chosen from the declared set ``search`` (the
information posterior Q* of Achille, Paolini & Soatto 2019, Eq. 8, centred at w0, at several λ and β; the
PBB-optimised posterior is left out: one epoch of it on 60,000 images costs about as much as the whole prior
training of this CNN on one CPU thread), screened
on the bound part with per-example draws and certified with fresh ones at δ/K, K = ``k_union``: every
certificate ever computed on this bound set, the exploratory runs listed in ``docs/results/certificates.md``
included.

The Monte Carlo risk uses real weight draws: for every (example, repetition) an independent draw of every conv
kernel (a grouped convolution, :func:`weightinfo.certificates.risk.gibbs_error_per_example`) and the exact
local reparameterisation in the linear layers. No per-activation noise enters the certificate.
"""

from __future__ import annotations

import time

import torch

from .._base.machine import machine_info
from .._base.provenance import made_by
from ..certificates import Candidate, certify
from ..data import load_dataset
from ..models import build_model

__all__ = ["FASHION_CNN", "FASHION_CNN_QUICK", "run_fashion_cnn"]

FASHION_CNN = dict(
    model="lenet",
    model_kwargs={"channels": (32, 64), "hidden": (256, 128)},
    prior_fraction=0.7,
    prior_epochs=12,
    prior_lr=0.05,
    prior_batch=128,
    prior_momentum=0.9,
    prior_schedule="cosine",
    search=[Candidate("information", lam, beta=b) for lam in (0.003, 0.01) for b in (1e-4, 1e-3)],
    mc_samples=10,
    mc_screen=1,
    # Networks of the majority vote reported on the test set (each a full CNN forward of 10,000 images).
    majority_votes=8,
    # Certificates computed on this bound set in all: the 4 candidates here (no other certificate was ever
    # computed on it). Declared as 20 before the run, to cover the prior settings too: they were picked
    # after one exploratory training of this CNN on the first 42,000 training images (which overlap the
    # bound set) judged by its test error (docs/results/certificates.md). δ/k_union each.
    k_union=20,
)
FASHION_CNN_QUICK = dict(
    FASHION_CNN,
    model_kwargs={"channels": (4, 8), "hidden": (32, 16)},
    prior_epochs=1,
    n_train=3000,
    n_test=500,
    mc_samples=1,
    k_union=None,
)


def run_fashion_cnn(out_dir=None, *, quick=False, seed=0, log=print, **overrides) -> dict:
    """The CNN certificate on Fashion-MNIST (:data:`FASHION_CNN`; ``quick``: tiny smoke-test settings)."""
    made = made_by(quick=quick)
    s = dict(FASHION_CNN_QUICK if quick else FASHION_CNN, **overrides)
    t0 = time.perf_counter()
    ds = load_dataset("fashion-mnist")
    if s.get("n_train"):
        ds = ds.subset(torch.arange(int(s["n_train"])))
    n_test = int(s.get("n_test") or ds.n_test)
    torch.manual_seed(seed)
    model = build_model(s["model"], ds.input_shape, ds.n_classes, **s["model_kwargs"])
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}
    pi, bi = ds.prior_bound_split(s["prior_fraction"], seed)
    search = list(s["search"])
    log(
        f"fashion-cnn: {s['model']} {s['model_kwargs']}, prior {len(pi)}, bound {len(bi)}, "
        f"test {n_test}; {len(search)} candidates, union bound over K = {s['k_union'] or len(search)}"
    )
    cert = certify(
        model,
        prior_data=(ds.x_train[pi], ds.y_train[pi]),
        posterior_data=(ds.x_train, ds.y_train),
        bound_data=(ds.x_train[bi], ds.y_train[bi]),
        test_data=(ds.x_test[:n_test], ds.y_test[:n_test]),
        prior_indices=pi,
        bound_indices=bi,
        init_state=init,
        prior_epochs=s["prior_epochs"],
        prior_lr=s["prior_lr"],
        prior_batch_size=s["prior_batch"],
        prior_momentum=s["prior_momentum"],
        prior_schedule=s["prior_schedule"],
        prior_holdout=0,
        search=search,
        mc="per_example",
        mc_samples=s["mc_samples"],
        mc_screen=s["mc_screen"],
        majority_votes=s["majority_votes"],
        k_union=s["k_union"],
        seed=seed,
        log=lambda line: log(f"  {line}"),
    )
    row = dict(
        cert.to_dict(),
        dataset="fashion-mnist (CNN)",
        prior_kind=f"data ({s['prior_fraction']:.0%})",
    )
    log(
        f"  {cert.posterior} λ {cert.prior_scale:g} β {cert.beta}: bound {cert.risk_bound:.4f} KL "
        f"{cert.kl_nats:.2f} emp {cert.empirical_risk:.4f} stochastic test error {cert.test_error:.4f} "
        f"({cert.wall_time_s:.0f}s)"
    )
    out = {
        "quick": bool(quick),
        "settings": _jsonable(s),
        "seed": seed,
        "k_union": cert.k_union,
        "n_prior": len(pi),
        "n_bound": len(bi),
        "prior_training": cert.prior_training,
        cert.posterior if cert.posterior == "information" else "optimized": row,
        "grid": cert.grid,
        "best": {
            "posterior": cert.posterior,
            "risk_bound": cert.risk_bound,
            "mc_upper": cert.mc_upper,
            "delta_mc_each": cert.delta_mc,
            "k_union": cert.k_union,
            "of": 1,
        },
        "total_wall_s": time.perf_counter() - t0,
        "machine": machine_info(),
    }
    log(f"  best: {cert.risk_bound:.4f} (K = {cert.k_union}); total {out['total_wall_s']:.0f}s")
    out["quick"], out["made_by"] = made["quick"], made
    if out_dir is not None:
        from ._certificates_report import write_outputs

        out["files"] = [str(p) for p in write_outputs(out, out_dir, "certificates_fashion_cnn")]
    return out


def _jsonable(s: dict) -> dict:
    out = {}
    for k, v in s.items():
        if isinstance(v, tuple):
            v = list(v)
        elif isinstance(v, dict):
            v = _jsonable(v)
        elif isinstance(v, list):
            v = [c.to_dict() if isinstance(c, Candidate) else c for c in v]
        out[k] = v
    return out
