"""What each rank computes in ``test_distributed.py`` (importable by the spawned processes).

One launch of two gloo processes runs every check (a launch costs a few seconds): rank r computes on its
shard of ``problem()`` and saves its results to ``out/rank{r}.pt``; the test compares them with one process on
all the data.
"""

from __future__ import annotations

import copy
import os

import torch
from torch import nn

import weightinfo
from weightinfo._base import distributed as dist
from weightinfo.curvature import CurvatureOperator, ggn_vector_product, hutchinson_trace

# Unequal shards: rank 0 gets the first SPLIT samples, rank 1 the rest.
N, SPLIT = 11, 7
BATCH = 3  # several batches per shard
BETA, LAMBDA = 0.05, 0.5
VARIATIONAL = dict(
    method="variational", beta=BETA, prior_scale=LAMBDA, mc_samples=0, seed=3, batch_size=4,
    max_epochs=40, tol=0.0, lr=0.05, lr_decay=0.5, progress=False,
)  # fmt: skip


def problem():
    """A float64 conv + linear model and N samples (3 classes)."""
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)
    ).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5)
    model.eval()
    X = torch.randn(N, 1, 6, 6, generator=g, dtype=torch.float64)
    Y = torch.randint(0, 3, (N,), generator=g)
    return model, X, Y


def probe_vector(model):
    g = torch.Generator().manual_seed(1)
    return {
        k: torch.randn(p.shape, generator=g, dtype=torch.float64)
        for k, p in model.named_parameters()
    }


def compute(model, data) -> dict:
    """Every quantity checked, on ``data`` (this rank's shard under a process group)."""
    out = {}
    for kind in ("exact", "empirical", "mc"):
        F = weightinfo.fisher(model, data, kind=kind, batch_size=BATCH, progress=False)
        out[f"fisher_diag_{kind}"] = F.diag
        out[f"fisher_diag_{kind}_n"] = F.n_samples
        out[f"fisher_diag_{kind}_loss"] = F.mean_loss
    K = weightinfo.fisher(model, data, structure="kfac", batch_size=BATCH)
    out["fisher_kfac"] = [(b.A, b.G) for b in K.blocks]
    full = weightinfo.fisher(model, data, structure="full", batch_size=BATCH)
    out["fisher_full"] = full.blocks[0].matrix
    out["ggn_full"] = (
        weightinfo.ggn(model, data, structure="full", batch_size=BATCH).blocks[0].matrix
    )
    H = weightinfo.hessian(model, data, method="exact", batch_size=BATCH)
    out["hessian_diag"] = H.diag
    out["hessian_diag_n"] = H.n_samples
    out["ggn_v"] = ggn_vector_product(model, data, probe_vector(model), batch_size=BATCH)
    op = CurvatureOperator(model, data, "ggn", batch_size=BATCH)
    est = hutchinson_trace(op, n_probes=6, seed=5)
    out["hutchinson_trace"] = (est.value, est.stderr)
    r = weightinfo.information(
        model, data, beta=BETA, prior_scale=LAMBDA, mc_samples=3, batch_size=BATCH, progress=False
    )
    out["info_fisher"] = (r.nats, r.train_loss, r.expected_loss, r.n_samples)
    r = weightinfo.information(
        model, data, beta=BETA, prior_scale=LAMBDA, mc_samples=0, batch_size=BATCH,
        curvature_samples=6, progress=False,
    )  # fmt: skip
    out["info_fisher_sub"] = (r.nats, r.train_loss, r.n_samples)
    r = weightinfo.information(model, data, **VARIATIONAL)
    out["info_variational"] = (r.nats, r.train_loss, r.n_samples, r.extra["epochs"])
    out["info_variational_var"] = r.posterior_variance
    out.update(compute_part2(model, data))
    return out


# Part 2: certify, activations, tracker (issue 12 §1). Fixed settings shared by every rank.
CERTIFY = dict(
    prior_state=None, posterior="information", search="pinned", prior_scale=0.5, beta=0.05,
    mc_samples=20, seed=4, delta=0.05,
)  # fmt: skip


def _certificate(c) -> tuple:
    return (
        c.risk_bound, c.empirical_risk, c.mc_upper, c.kl_nats, c.n_bound, c.m,
        c.test_error, c.mean_test_error, c.majority_vote_test_error,
    )  # fmt: skip


def compute_part2(model, data) -> dict:
    """certify (deterministic: information posterior, whole-network draws; per-example draws; an optimised
    posterior with a prior trained on the gathered prior set), the data-parallel prior, activation Fisher,
    I_eff, tracker."""
    out = {}
    state = {k: v.detach().clone() for k, v in model.named_parameters()}
    kw = dict(CERTIFY, prior_state=state)
    c = weightinfo.certify(
        model, posterior_data=data, bound_data=data, test_data=data, mc="standard", **kw
    )
    out["certify_standard"] = _certificate(c)
    out["certify_record_bound_n"] = c.record["data"]["bound"]["n"]
    c = weightinfo.certify(model, posterior_data=data, bound_data=data, mc="per_example", **kw)
    out["certify_per_example"] = _certificate(c)
    # The optimised posterior is trained in float32 (posterior_fit): a float32 copy of the problem.
    net, data32 = copy.deepcopy(model).float(), (data[0].float(), data[1])
    c = weightinfo.certify(
        net, prior_data=data32, posterior_data=data32, bound_data=data32, posterior="optimize",
        search="pinned", prior_scale=0.5, mc="standard", mc_samples=10, prior_epochs=2,
        posterior_epochs=2, batch_size=4, seed=4,
    )  # fmt: skip
    out["certify_optimize"] = _certificate(c)
    out["certify_optimize_prior_hash"] = c.record["weights"]["prior_mean"]
    out.update(prior_checks(data))
    var = {k: torch.full_like(v, 1e-3) for k, v in model.named_parameters()}
    a = weightinfo.activation_fisher(
        model, data, var, "brightness", batch_size=BATCH, method="exact", progress=False
    )
    out["activation_fisher"] = (
        a.mean_term, a.covariance_term, a.mean_term_stderr, a.covariance_term_stderr, a.stderr,
        a.n_samples,
    )  # fmt: skip
    var = {
        k: torch.full_like(v, 0.3) for k, v in model.named_parameters()
    }  # overlapping components
    e = weightinfo.effective_information(
        model, data, var, estimator="gaussian", samples=8, seed=2, batch_size=BATCH
    )
    out["effective_information"] = (e.per_layer, e.stderr, e.n)
    e = weightinfo.effective_information(
        model, data, var, estimator="mc", samples=16, seed=2, batch_size=BATCH
    )
    out["effective_information_mc"] = (e.per_layer, e.stderr, e.n)
    from weightinfo.dynamics import Tracker

    path = os.environ.get("WEIGHTINFO_TEST_TRACK")
    tr = Tracker(
        data, quantities=("trace", "layer_trace", "loss", "accuracy", "gradient_noise"),
        test_data=data, stderr_groups=3, eval_batch_size=BATCH, path=path,
    )  # fmt: skip
    rec = tr.step(model, step=1)
    out["tracker"] = {k: v for k, v in rec.items() if k != "time"}
    return out


# The data-parallel prior (certificates/_prior_parallel.py): batches of 3 rows (shares 1 + 2), 3 held-out rows
# (shares 1 + 2; float64: 6 epochs run, the best the 3rd); float32 without a held-out part (32 steps).
PRIOR = dict(epochs=8, lr=0.1, batch_size=3, holdout=0.3, patience=3, schedule="cosine", seed=0)


def mlp(batchnorm: bool = False) -> nn.Module:
    """A tiny float64 MLP without dropout (with ``batchnorm``: a BatchNorm1d after the hidden layer)."""
    torch.manual_seed(0)
    hidden = [nn.Linear(36, 5), nn.BatchNorm1d(5)] if batchnorm else [nn.Linear(36, 5)]
    return nn.Sequential(nn.Flatten(), *hidden, nn.Tanh(), nn.Linear(5, 3)).double().eval()


def prior_checks(data) -> dict:
    """The prior mean trained on the gathered prior set (float64 and float32, early stopping; a BatchNorm
    model, trained whole on every rank) and a deterministic certificate on a trained prior (6 epochs run, the
    best the 3rd)."""
    from weightinfo.certificates import posterior_fit as pf

    out = {}
    whole = tuple(dist.all_gather_rows(t) for t in data)
    for name, net, xy, holdout in (
        ("prior_mlp64", mlp(), whole, PRIOR["holdout"]),
        ("prior_mlp32", mlp().float(), (whole[0].float(), whole[1]), 0.0),
        ("prior_bn", mlp(batchnorm=True), whole, PRIOR["holdout"]),
    ):
        info = {}
        out[name] = pf.train_prior_mean(net, xy, info=info, **dict(PRIOR, holdout=holdout))
        out[f"{name}_info"] = info
    c = weightinfo.certify(
        mlp(), prior_data=data, posterior_data=data, bound_data=data, posterior="information",
        search="pinned", prior_scale=0.5, beta=0.05, mc="standard", mc_samples=10, seed=0,
        prior_epochs=8, prior_lr=0.1, prior_batch_size=3, prior_holdout=0.3, prior_holdout_min=1,
        prior_patience=3,
    )  # fmt: skip
    out["certify_trained_prior"] = _certificate(c)
    out["certify_trained_prior_training"] = c.prior_training
    out["certify_trained_prior_record"] = c.record["data"]["prior"]  # the gathered set: n, hash
    out["certify_trained_prior_hash"] = c.record["weights"]["prior_mean"]
    return out


def worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    torch.distributed.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world
    )
    try:
        os.environ["WEIGHTINFO_TEST_TRACK"] = os.path.join(out_dir, "track.jsonl")
        model, X, Y = problem()
        lo, hi = (0, SPLIT) if rank == 0 else (SPLIT, N)
        out = compute(model, (X[lo:hi], Y[lo:hi]))
        out["rank"] = (dist.rank(), dist.world_size(), dist.is_main())
        torch.save(out, os.path.join(out_dir, f"rank{rank}.pt"))
        dist.barrier()
    finally:
        torch.distributed.destroy_process_group()
