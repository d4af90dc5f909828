"""What a certificate certifies, and a check that a certificate file is consistent with its own numbers.

A risk certificate is a claim about *these* data, *this* split and *these* prior and posterior weights. Its
record names them by content: a SHA-256 of every array (dtype, shape and bytes, so a reordered or re-typed
copy hashes differently), of the split indices, and of the prior mean and the posterior mean and variance; the
model architecture; every option; and the versions. :func:`verify` recomputes the two-step bound (Pérez-Ortiz
et al. 2021, §2; Langford & Caruana 2001 for the Monte Carlo step) from the recorded terms, so a reader can
audit a ``certificate.json`` without rerunning it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from .. import bounds
from .._base.version import __version__

__all__ = [
    "TOLERANCE",
    "Verification",
    "content_hash",
    "certificate_record",
    "options_record",
    "verify",
]

#: Agreement required between a recorded and a recomputed bound: kl⁻¹ is bisected to 1e-12.
TOLERANCE = 1e-9


def content_hash(*tensors: torch.Tensor | None) -> str:
    """16 hex digits of the SHA-256 of the tensors' dtypes, shapes and bytes (``None`` hashes as empty)."""
    h = hashlib.sha256()
    for t in tensors:
        if t is None:
            h.update(b"none;")
            continue
        t = torch.as_tensor(t).detach().cpu().contiguous()
        h.update(f"{t.dtype};{tuple(t.shape)};".encode())
        # The raw bytes without a copy (a training set is hundreds of MB), for every dtype numpy lacks too.
        h.update(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
    return h.hexdigest()[:16]


def _state_hash(state: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode() + b"=" + content_hash(state[k]).encode() + b";")
    return h.hexdigest()[:16]


def _data(xy, sharded: bool = False) -> dict | None:
    if xy is None:
        return _sharded(None) if sharded else None
    x, y = xy
    out = {"n": int(x.shape[0]), "hash": content_hash(x, y)}
    return _sharded(out) if sharded else out


def _indices(idx, sharded: bool = False) -> dict | None:
    if idx is None:
        return _sharded(None) if sharded else None
    t = torch.as_tensor(idx).to(torch.int64)
    out = {"n": int(t.numel()), "hash": content_hash(t)}
    return _sharded(out) if sharded else out


def _sharded(entry: dict | None) -> dict | None:
    """Under a process group (collective): the union of the ranks' shards, n the total, the hash the SHA-256 of
    the shards' hashes in rank order, ``shards`` their sizes; ``entry`` itself without one."""
    from .._base import distributed as dist

    if not (dist.active() and dist.world_size() > 1):
        return entry
    parts = dist.all_gather_objects(entry)
    if all(p is None for p in parts):
        return None
    parts = [p or {"n": 0, "hash": ""} for p in parts]
    joined = hashlib.sha256(";".join(p["hash"] for p in parts).encode()).hexdigest()[:16]
    return {"n": sum(p["n"] for p in parts), "hash": joined, "shards": [p["n"] for p in parts]}


def options_record(prior, posterior, mc, **other) -> dict:
    """Every option of a ``certify`` call as JSON-ready values; weight dicts (a given prior mean, the
    initial weights) appear as content hashes."""
    from dataclasses import fields

    def one(opts) -> dict:
        out = {}
        for f in fields(opts):
            v = getattr(opts, f.name)
            if isinstance(v, Mapping):
                v = {"hash": _state_hash(v)}
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    return {"prior": one(prior), "posterior": one(posterior), "mc": one(mc), **other}


def certificate_record(
    model, data: Mapping, indices: Mapping, w0, mean, var, options: Mapping, sharded=()
) -> dict:
    """The provenance of a certificate: data and index hashes, architecture, weight hashes, options, versions.

    ``data`` maps "prior", "posterior", "bound", "test" to ``(X, Y)`` tensors (or None), ``indices`` "prior" and
    "bound" to training-set indices (or None); ``w0`` is the prior mean, ``mean``/``var`` the posterior's.
    ``sharded``: the names of ``data`` that are this rank's shard under a process group, recorded as the union
    (total n, a hash of the shards' hashes, the shard sizes; collective); ``indices`` are always taken as
    shards (the prior set itself is gathered by ``certify``).
    """
    sharded = set(sharded)
    return {
        "data": {k: _data(v, k in sharded) for k, v in data.items()},
        "indices": {k: _indices(v, True) for k, v in indices.items()},
        "model": {
            "class": type(model).__name__,
            "architecture": repr(model),
            "n_params": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
        },
        "weights": {
            "prior_mean": _state_hash(w0),
            "posterior_mean": _state_hash(mean),
            "posterior_variance": _state_hash(var),
        },
        "options": dict(options),
        "versions": {"weightinfo": __version__, "torch": str(torch.__version__)},
    }


@dataclass(frozen=True)
class Verification:
    """The checks of :func:`verify`: ``checks`` maps a check's name to (passed, detail)."""

    checks: dict

    @property
    def ok(self) -> bool:
        return all(passed for passed, _ in self.checks.values())

    def __str__(self) -> str:
        return "\n".join(
            f"{'ok  ' if passed else 'FAIL'} {name}: {detail}"
            for name, (passed, detail) in self.checks.items()
        )


def _close(a: float, b: float, tol: float) -> bool:
    return abs(float(a) - float(b)) <= tol


def verify(cert: Mapping, *, tol: float = TOLERANCE) -> Verification:
    """Recompute a certificate from its recorded terms (``Certificate.to_dict()``, e.g. a ``certificate.json``).

    Checks: δ and δ′ in (0, 1) with δ + δ′ < 1 and ``confidence`` = 1 − δ − δ′; ``kl_bits`` = ``kl_nats`` / ln 2;
    K = ``k_union`` covers the declared set (``search``) or the screened grid; the Monte Carlo upper bound û = kl⁻¹(L̂, ln(1/δ′)/m) (or /(m·n)
    for the per-example estimator) and the bound kl⁻¹(û, (KL + ln(2√n/δ_K))/n), δ_K = δ/K, equal the recorded
    ``mc_upper`` and ``risk_bound`` within ``tol``; ``vacuous`` ⇔ bound ≥ 1. A missing field is a failed check.
    """
    checks: dict = {}

    def check(name: str, fn):
        try:
            checks[name] = fn()
        except (KeyError, TypeError, ValueError) as e:
            checks[name] = (False, f"{type(e).__name__}: {e}")

    def confidence():
        d, dmc = float(cert["delta"]), float(cert["delta_mc"])
        bounds.two_step.total_confidence(d, dmc)
        c = float(cert["confidence"])
        return _close(c, 1 - d - dmc, 1e-12), f"{c} = 1 - {d} - {dmc}"

    def kl_units():
        nats, bits = float(cert["kl_nats"]), float(cert["kl_bits"])
        return _close(
            bits, nats / math.log(2), 1e-9 * max(1.0, bits)
        ), f"{bits} bits = {nats} nats / ln 2"

    def union():
        k = int(cert["k_union"])
        # Every candidate of the declared set (or every (λ, β) of a pinned grid) is paid for, also when a
        # learnt λ screened only two of them.
        if cert.get("search"):
            n_grid = len(cert["search"])
        else:
            n_grid = int(cert["k_scales"]) * max(1, len(cert.get("beta_grid") or [None]))
        return k >= n_grid >= 1, f"K = {k} certificates paid for, grid of {n_grid}"

    def two_step():
        k = int(cert["k_union"])
        delta_k = bounds.union_delta(float(cert["delta"]), k) if k > 1 else float(cert["delta"])
        r = bounds.certificate(
            float(cert["empirical_risk"]),
            float(cert["kl_nats"]),
            int(cert["n_bound"]),
            int(cert["m"]),
            delta_k,
            float(cert["delta_mc"]),
            bound="kl",
            per_example=cert["mc"] == "per_example",
        )
        ok = _close(r.mc_upper, cert["mc_upper"], tol) and _close(
            r.risk_bound, cert["risk_bound"], tol
        )
        ok = ok and bool(cert["vacuous"]) == (float(cert["risk_bound"]) >= 1.0)
        return ok, (
            f"recomputed û {r.mc_upper:.10f} (recorded {float(cert['mc_upper']):.10f}), bound "
            f"{r.risk_bound:.10f} (recorded {float(cert['risk_bound']):.10f}), δ_K = {delta_k:.6g}"
        )

    check("confidence", confidence)
    check("kl units", kl_units)
    check("union bound", union)
    check("two-step bound", two_step)
    return Verification(checks)
