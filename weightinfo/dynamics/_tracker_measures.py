"""The tracker's costlier measurements, one function each: ln|F + δI| (dense or SLQ), the Fisher-form IW and the
loss/accuracy of a data set (:mod:`.tracker` documents the record fields they fill)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .._base import distributed as dist
from .._base.batches import iter_batches
from ..training import correct_count, loss_value

__all__ = ["evaluate", "information_at", "logdet"]

# Up to this many parameters ln|F + δI| comes from the dense Fisher's eigenvalues (P² float64: 32 MB at 2,000).
DENSE_LOGDET_MAX_PARAMS = 2_000


def logdet(tracker, model: nn.Module) -> dict[str, Any]:
    """ln|F + δI| of the exact Fisher on the probe set: dense eigenvalues up to
    ``DENSE_LOGDET_MAX_PARAMS`` parameters (``logdet_stderr`` 0), stochastic Lanczos quadrature above."""
    P = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if P > DENSE_LOGDET_MAX_PARAMS:
        return _slq_logdet(tracker, model)
    from ..curvature.fisher_matrix import fisher

    X, Y = tracker._probe_tensors(next(model.parameters()).device)
    F = fisher(model, (X, Y), kind="exact", structure="full", loss=tracker.loss,
               batch_size=tracker.eval_batch_size, progress=False)  # fmt: skip
    ev = torch.linalg.eigvalsh(F.blocks[0].matrix).clamp_min(0.0)
    return {
        "logdet": float(torch.log(ev + tracker.damping).sum()),
        "logdet_stderr": 0.0,
        "logdet_method": "dense",
        "logdet_damping": tracker.damping,
    }


def _slq_logdet(tracker, model: nn.Module) -> dict[str, Any]:
    from ..curvature.lanczos import slq_logdet
    from ..curvature.products import CurvatureOperator

    op = CurvatureOperator(
        model, tracker.probe_data, "fisher", loss=tracker.loss, batch_size=tracker.eval_batch_size
    )
    est = slq_logdet(
        op,
        tracker.damping,
        n_probes=tracker.slq_probes,
        n_steps=tracker.slq_steps,
        seed=tracker.seed,
    )
    return {
        "logdet": est.value,
        "logdet_stderr": est.stderr,
        "logdet_method": "slq",
        "logdet_damping": tracker.damping,
    }


def information_at(tracker, model: nn.Module) -> float:
    """IW in nats, the Fisher form at the tracker's β and λ (``mc_samples=0``: no E_Q[L_D] draws)."""
    from ..iw import information

    res = information(
        model,
        tracker.probe_data,
        beta=tracker.beta,
        prior_scale=tracker.prior_scale,
        method="fisher",
        loss=tracker.loss,
        mc_samples=0,
        seed=tracker.seed,
        batch_size=tracker.eval_batch_size,
        progress=False,
        curvature_kind=tracker.kind,
    )
    return float(res.nats)


@torch.no_grad()
def evaluate(model: nn.Module, data, loss: str, batch_size: int) -> dict[str, Any]:
    """Mean loss and accuracy over ``data`` (tuple or loader), model already in eval mode."""
    device = next(model.parameters()).device
    n, has_acc = 0, True
    total = torch.zeros((), dtype=torch.float64, device=device)  # read once, after the pass
    correct = torch.zeros((), dtype=torch.float64, device=device)
    for x, y in iter_batches(data, device=device, batch_size=batch_size):
        z = model(x)
        total += loss_value(loss, z, y).to(torch.float64) * x.shape[0]
        c = correct_count(loss, z, y)
        has_acc = has_acc and c is not None
        if c is not None:
            correct += c
        n += x.shape[0]
    if dist.world_size() > 1:  # each rank evaluated its shard: the union's means
        red = dist.reduce_sums({"t": total, "c": correct, "n": n, "no_acc": int(not has_acc)})
        total, correct, n, has_acc = red["t"], red["c"], red["n"], red["no_acc"] == 0
    total, correct = float(total), float(correct)
    return {"loss": total / n, "accuracy": correct / n if has_acc else None}
