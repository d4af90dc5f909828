"""Track the information in the weights during training: :class:`Tracker` (issue 11 §1; paper.md §4, §5.1).

The paper's dynamics claims (Fig 1: ln|F| over training; Critical Learning Periods: tr F rises then falls;
Prop 2.8: SGD at temperature T ∝ η/B avoids high-Fisher minima) are read off curves of curvature quantities
recorded while a network trains. A :class:`Tracker` records them on a **fixed probe set** (the same samples
at every call, so that changes are changes of the weights, not of the data). Quantities (``quantities=``):

``"trace"``        tr F = (1/N) Σ_i t_i, t_i = tr(J_iᵀ Λ(z_i) J_i) the Fisher trace of probe sample i (labels
                   from the model: ``kind="exact"`` sums over all classes weighted by p_w(y|x_i); ``kind="mc"``
                   draws ``mc_samples`` labels per input, unbiased).
``"layer_trace"``  the same trace split by module (module name → tr F_l; sums to ``trace``).
``"logdet"``       ln|F + δI| with δ = ``damping`` (default :data:`DEFAULT_DAMPING`): up to
                   :data:`DENSE_LOGDET_MAX_PARAMS` parameters from the eigenvalues of the dense exact Fisher
                   (:func:`weightinfo.fisher` ``structure="full"``); above, stochastic Lanczos quadrature on the
                   exact Fisher operator (:func:`weightinfo.curvature.slq_logdet`). Always the exact Fisher.
``"information"``  IW, the Fisher form at ``beta`` and ``prior_scale`` (:func:`weightinfo.information`,
                   ``method="fisher"``, ``mc_samples=0``, curvature of ``kind``). The closed form assumes a
                   minimum: early in training it is a diagnostic, not IW.
``"loss"``, ``"accuracy"``  on the probe set and, with ``test_data``, on it; eval mode.
``"temperature"``  T = η/B (η read from the optimizer in ``train``, B from ``batch_size=`` or
                   ``train_loader.batch_size``; both can be passed to :meth:`Tracker.step`).
``"gradient_noise"``  the simple gradient-noise scale B_simple = tr(Σ_g)/|G|² of McCandlish et al. (2018, "An
                   Empirical Model of Large-Batch Training", eq. 2.8), from the per-sample gradients g_i of the
                   loss at the **data** labels on the probe set: G = mean g_i, tr Σ_g = Σ|g_i − G|²/(N − 1) =
                   (Σ|g_i|² − N|G|²)/(N − 1). |G|² is the plug-in estimate (biased upward by tr Σ_g/N, so
                   B_simple is biased low when |G|² is small).

How: one pass over the probe set in eval mode (each module's flag restored afterwards). tr F, per-layer tr F
and Σ|g_i|² come from the per-sample engine behind ``weightinfo.fisher(structure="diag")``
(:mod:`weightinfo.curvature.persample`: one batched backward pass per output direction, per-sample squared
gradients assembled per layer, float64 sums), and loss/accuracy from the same forward pass; no per-sample
Jacobians are formed. The dense ln|F + δI| and SLQ take their own passes. The default quantities cost about
K + 1 batched backward passes over the probe set for K outputs (``benchmarks/tracker_overhead.py``).

**Standard error of tr F (batch means).** The probe set is cut into G = min(``stderr_groups``, N) contiguous
groups of ⌊N/G⌋ or ⌈N/G⌉ samples (default G = 10); ``trace_stderr`` = std(group means of t_i)/√G. It estimates
the sampling error of the probe set (how much tr F would move with another probe set of the same size drawn
the same way) and, for ``kind="mc"``, of the label draws; not any error of F itself. With G = N it is the
per-sample std(t_i)/√N.

**Distributed** (``weightinfo._base.distributed``): under an initialised process group each rank passes its
own contiguous shard of ``probe_data`` (and of ``test_data``), in rank order. The sums (loss, correct
predictions, per-sample Fisher traces per layer and group, squared and summed gradients) are all-reduced in
float64 and divided by the global N (``n_probe``). The G batch-means groups are defined on the **union**, rows
⌊gN/G⌋ … ⌊(g+1)N/G⌋ − 1 of the ranks' shards concatenated; each rank adds its rows of every group and the group
sums are reduced, so G and ``trace_stderr`` are those of one process on the concatenated probe set.
``kind="mc"`` labels are drawn per rank (``rank_seed``). Every rank gets the same record; only rank 0 appends
to ``path`` and draws :meth:`Tracker.plot`. The ``step`` calls are collective (every rank, same order).

**JSONL records** (``path=``; one JSON object per line, appended, flushed and fsynced at once, so a crash keeps
every record written before it; a non-finite number is written as ``null``; keys of quantities not requested
are absent). ``tracker.records`` holds the same dicts, :meth:`Tracker.plot` draws them.

==================  ====================================================================================
``call``            1, 2, … the tracker's call number
``epoch``           epoch just finished (``train`` callback; 1-based) or as passed to ``step``, else null
``step``            optimizer steps so far, or null
``lr``              learning rate η, or null
``batch_size``      training batch size B, or null
``time``            seconds this call took (wall clock)
``n_probe``         N, samples in the probe set
``trace``           tr F [nats / weight²] (mean over probe samples)
``trace_stderr``    its batch-means standard error [nats / weight²]; null when N = 1
``trace_groups``    G, the groups of the batch-means standard error
``trace_kind``      ``"exact"`` or ``"mc"``
``layer_trace``     {module name (``"<root>"`` for the root): tr F_l [nats / weight²]}
``logdet``          ln|F + δI| [nats]
``logdet_stderr``   its standard error [nats] (0 for ``"dense"``; over SLQ probes for ``"slq"``)
``logdet_method``   ``"dense"`` or ``"slq"``
``logdet_damping``  δ [nats / weight²]
``information``     IW [nats]
``loss``            mean loss on the probe set [nats / sample] (of ``loss=``; ``mse``: ½‖y − f‖²)
``accuracy``        fraction of the probe set classified correctly [0–1] (null for regression targets)
``test_loss``       as ``loss`` on ``test_data`` [nats / sample] (only with ``test_data``)
``test_accuracy``   as ``accuracy`` on ``test_data`` [0–1] (only with ``test_data``)
``temperature``     η/B [learning rate / sample]
``gradient_noise``  B_simple = tr Σ_g / |G|² [samples]
``gradient_norm_sq`` |G|², squared norm of the mean probe gradient [nats² / weight²]
``gradient_trace_cov`` tr Σ_g, trace of the per-sample gradient covariance [nats² / weight²]
==================  ====================================================================================

Use it as a callback of :func:`weightinfo.train` (``on_epoch_end``, every ``every`` epochs) or call
:meth:`Tracker.step` from any loop. The command line: ``weightinfo track`` (``weightinfo train --track``).
``tensorboard=DIR`` (or a ``SummaryWriter``) also writes each record's measured numbers as TensorBoard scalars
(:mod:`weightinfo.integrations.tensorboard`); :meth:`Tracker.to_dataframe` gives the records as a table;
:class:`weightinfo.integrations.lightning.InformationCallback` runs a tracker in a Lightning ``Trainer``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._base import distributed as dist
from .._base.batches import iter_batches, value_range
from .._base.checks import check_choice, check_int, check_model, check_positive
from .._base.likelihoods import LOSSES, get_loss
from ..curvature.fisher_matrix import _directions
from ..curvature.persample import PerSampleEngine
from ..curvature.result import layer_of
from ..models.modes import eval_mode
from ..training import correct_count, loss_value
from ._tracker_measures import DENSE_LOGDET_MAX_PARAMS, evaluate, information_at, logdet
from ._tracker_plot import UNITS

__all__ = [
    "Tracker",
    "QUANTITIES",
    "UNITS",
    "DEFAULT_QUANTITIES",
    "DEFAULT_DAMPING",
    "DEFAULT_STDERR_GROUPS",
    "DENSE_LOGDET_MAX_PARAMS",
]

QUANTITIES: tuple[str, ...] = (
    "trace",
    "layer_trace",
    "logdet",
    "information",
    "loss",
    "accuracy",
    "temperature",
    "gradient_noise",
)
DEFAULT_QUANTITIES: tuple[str, ...] = ("trace", "layer_trace", "loss", "accuracy", "temperature")
# δ of ln|F + δI|: F of an over-parameterised network is singular, so some damping is needed (Fig 1's is unstated).
DEFAULT_DAMPING = 1e-3
# Groups of the batch-means standard error of tr F (module docstring).
DEFAULT_STDERR_GROUPS = 10


def _check_quantities(quantities) -> tuple[str, ...]:
    if isinstance(quantities, str):
        quantities = tuple(q.strip() for q in quantities.split(",") if q.strip())
    quantities = tuple(quantities)
    if not quantities:
        raise ValueError(f"quantities is empty; choose from {', '.join(QUANTITIES)}")
    for q in quantities:
        if q not in QUANTITIES:
            raise ValueError(
                f"unknown quantity {q!r}; expected one of {', '.join(map(repr, QUANTITIES))}"
            )
    return tuple(dict.fromkeys(quantities))


def _finite_or_none(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite_or_none(v) for k, v in x.items()}
    return x


class Tracker:
    """Record curvature and information quantities of a network while it trains (module docstring).

    Parameters
    ----------
    probe_data : the fixed probe set, a tuple ``(X, Y)`` or a re-iterable DataLoader of ``(x, y)`` batches.
    every : record every ``every``-th epoch when used as a :func:`weightinfo.train` callback.
    quantities : names from :data:`QUANTITIES` (a sequence or a comma-separated string).
    test_data : optional held-out ``(X, Y)`` / loader for ``test_loss`` / ``test_accuracy``.
    beta, prior_scale : β (per sample) and λ of the Fisher-form IW; required with ``"information"``.
    kind : ``"exact"`` (all classes) or ``"mc"`` (``mc_samples`` labels drawn per input, seeded by ``seed``:
        the same draws at every call for the same outputs, common random numbers across calls).
    path : a JSONL file the records are appended to, one line each, flushed as written.
    loss : one of :data:`weightinfo.training.LOSSES` (the training loss).
    damping : δ of ``"logdet"`` (default :data:`DEFAULT_DAMPING`).
    batch_size : the training batch size B for ``"temperature"`` (else ``train_loader.batch_size``, or
        ``batch_size=`` of :meth:`step`).
    train_loader : where B is read from when ``batch_size`` is not given.
    slq_probes, slq_steps : probes and Lanczos steps of the SLQ log-determinant (large models).
    eval_batch_size : rows per batch when ``probe_data``/``test_data`` are ``(X, Y)`` tuples.
    stderr_groups : G of the batch-means standard error of tr F (at most N; module docstring).
    tensorboard : a folder or an open ``SummaryWriter``: every record's measured numbers are also written as
        scalars ``weightinfo/<name>`` at global step = epoch (:mod:`weightinfo.integrations.tensorboard`).
    """

    def __init__(
        self,
        probe_data,
        every: int = 1,
        quantities: Sequence[str] | str = DEFAULT_QUANTITIES,
        *,
        test_data=None,
        beta: float | None = None,
        prior_scale=None,
        kind: str = "exact",
        mc_samples: int = 1,
        seed: int = 0,
        path: str | os.PathLike | None = None,
        loss: str = "cross_entropy",
        damping: float = DEFAULT_DAMPING,
        batch_size: int | None = None,
        train_loader: Iterable | None = None,
        slq_probes: int = 30,
        slq_steps: int = 30,
        eval_batch_size: int = 256,
        stderr_groups: int = DEFAULT_STDERR_GROUPS,
        tensorboard=None,
    ):
        self.quantities = _check_quantities(quantities)
        self.every = check_int("every", every, 1)
        self.kind = check_choice("kind", kind, ("exact", "mc"))
        self.mc_samples = check_int("mc_samples", mc_samples, 1)
        self.seed = int(seed)
        self.loss = check_choice("loss", loss, LOSSES)
        self.damping = check_positive("damping", damping)
        self.slq_probes = check_int("slq_probes", slq_probes, 2)
        self.slq_steps = check_int("slq_steps", slq_steps, 1)
        self.eval_batch_size = check_int("eval_batch_size", eval_batch_size, 1)
        self.stderr_groups = check_int("stderr_groups", stderr_groups, 2)
        if "information" in self.quantities and (beta is None or prior_scale is None):
            missing = " and ".join(
                n for n, v in (("beta", beta), ("prior_scale", prior_scale)) if v is None
            )
            raise ValueError(f"quantity 'information' needs {missing} (the Fisher-form IW at β, λ)")
        self.beta = None if beta is None else check_positive("beta", beta)
        self.prior_scale = prior_scale
        if batch_size is None and train_loader is not None:
            batch_size = getattr(train_loader, "batch_size", None)
        self.batch_size = None if batch_size is None else check_int("batch_size", batch_size, 1)
        self.probe_data = self._check_data("probe_data", probe_data)
        self.test_data = None if test_data is None else self._check_data("test_data", test_data)
        self.path = None if path is None else Path(path)
        self.records: list[dict[str, Any]] = []
        self._probe: tuple | None = None  # (device, X, Y): the probe set, read once
        self.tensorboard = None  # a TensorBoardWriter, or None
        if tensorboard is not None:
            from ..integrations.tensorboard import TensorBoardWriter

            self.tensorboard = TensorBoardWriter(tensorboard)

    @staticmethod
    def _check_data(name: str, data):
        if data is None:
            raise ValueError(f"{name} is None; give a tuple (X, Y) or a DataLoader")
        if (
            isinstance(data, tuple)
            and len(data) == 2
            and all(isinstance(t, torch.Tensor) for t in data)
        ):
            X, Y = data
            if X.shape[0] == 0:
                raise ValueError(f"{name} is empty (0 samples)")
            if X.shape[0] != Y.shape[0]:
                raise ValueError(f"{name}: X has {X.shape[0]} rows but Y has {Y.shape[0]}")
            if X.is_floating_point() and not bool(torch.isfinite(X).all()):
                raise ValueError(f"{name}: inputs contain NaN/Inf")
        else:
            try:
                if len(data) == 0:
                    raise ValueError(f"{name} is empty (0 batches)")
            except TypeError:
                pass
        return data

    # ----------------------------------------------------------------------------------------------
    # training-loop interfaces
    # ----------------------------------------------------------------------------------------------

    def on_epoch_end(self, state) -> None:
        """:func:`weightinfo.train` hook: record every ``every``-th epoch (η from the optimizer)."""
        if state.epoch % self.every != 0:
            return None
        lr = float(state.optimizer.param_groups[0]["lr"]) if state.optimizer is not None else None
        self.step(state.model, step=state.step, epoch=state.epoch, lr=lr)
        return None

    def step(
        self,
        model: nn.Module,
        *,
        step: int | None = None,
        epoch: int | None = None,
        lr: float | None = None,
        batch_size: int | None = None,
        optimizer: torch.optim.Optimizer | None = None,
    ) -> dict[str, Any]:
        """Compute the requested quantities for ``model`` now; append and return the record.

        ``lr`` (or ``optimizer``, whose first param group's lr is read) and ``batch_size`` (else the
        tracker's) give the temperature η/B; both are recorded when known.
        """
        t0 = time.perf_counter()
        if lr is None and optimizer is not None:
            lr = float(optimizer.param_groups[0]["lr"])
        B = self.batch_size if batch_size is None else check_int("batch_size", batch_size, 1)
        rec: dict[str, Any] = {"call": len(self.records) + 1, "epoch": epoch, "step": step}
        rec["lr"] = None if lr is None else float(lr)
        rec["batch_size"] = B
        q = self.quantities
        if "temperature" in q:
            if lr is None or B is None:
                raise ValueError(
                    "quantity 'temperature' = lr / batch_size needs both: pass lr= (or optimizer=) and "
                    "batch_size= to step(), or batch_size=/train_loader= to Tracker"
                )
            rec["temperature"] = float(lr) / B
        with eval_mode(model):
            check_model(model)
            rec.update(self._probe_pass(model))
            if "logdet" in q:
                rec.update(logdet(self, model))
            if "information" in q:
                rec["information"] = information_at(self, model)
            if self.test_data is not None and ("loss" in q or "accuracy" in q):
                ev = evaluate(model, self.test_data, self.loss, self.eval_batch_size)
                if "loss" in q:
                    rec["test_loss"] = ev["loss"]
                if "accuracy" in q:
                    rec["test_accuracy"] = ev["accuracy"]
        rec["time"] = time.perf_counter() - t0
        rec = _finite_or_none(rec)
        self.records.append(rec)
        if self.path is not None:
            self._write(rec)
        if self.tensorboard is not None:
            self.tensorboard.write_record(rec)
        return rec

    def _write(self, rec: dict) -> None:
        if not dist.is_main():  # under a process group only rank 0 writes
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec, allow_nan=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    # ----------------------------------------------------------------------------------------------
    # computations
    # ----------------------------------------------------------------------------------------------

    def _probe_tensors(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        """The probe set as two tensors on ``device`` (read once: the probe set is fixed)."""
        if self._probe is None or self._probe[0] != device:
            xs, ys = zip(
                *iter_batches(self.probe_data, device=device, batch_size=self.eval_batch_size)
            )
            Y = torch.cat(ys)
            if (
                Y.numel()
            ):  # the labels' range, read on the host: checking a slice costs no device sync
                r = [value_range(y) for y in ys]
                Y._weightinfo_range = (min(a for a, _ in r), max(b for _, b in r))
            self._probe = (device, torch.cat(xs), Y)
        return self._probe[1], self._probe[2]

    def _probe_pass(self, model: nn.Module) -> dict[str, Any]:
        """One pass over the probe set: loss, accuracy, tr F per layer and group, gradient noise."""
        q = self.quantities
        want_trace = "trace" in q or "layer_trace" in q
        want_noise = "gradient_noise" in q
        lossfn = get_loss(self.loss)
        device = next(model.parameters()).device
        X, Y = self._probe_tensors(device)
        N, lo = (
            X.shape[0],
            0,
        )  # this rank's rows lo … lo + N_r − 1 of the union's N (module docstring)
        if dist.world_size() > 1:
            counts = dist.shard_counts(N)
            N, lo = sum(counts), sum(counts[: dist.rank()])
        G = min(self.stderr_groups, N)
        gen = torch.Generator(device=device).manual_seed(dist.rank_seed(self.seed))
        et = PerSampleEngine(model) if want_trace else None  # Σ_i (Fisher direction gradients)²
        en = PerSampleEngine(model) if want_noise else None  # Σ_i |g_i|² at the data labels
        names = list((et or en).sums) if (et or en) else []
        layers = list(dict.fromkeys(layer_of(k) for k in names))
        where = [layers.index(layer_of(k)) for k in names]
        group_sums = torch.zeros(G, len(layers), dtype=torch.float64, device=device)
        g_sum = [torch.zeros(en.sums[k].shape, dtype=torch.float64, device=device) for k in names] if en else []  # fmt: skip
        bounds = [N * g // G for g in range(G + 1)]
        # Device accumulators (float64), read once after the pass.
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct_sum = torch.zeros((), dtype=torch.float64, device=device)
        has_acc = True
        for g in range(G) if (et or en) else ():
            g_lo = min(max(bounds[g] - lo, 0), X.shape[0])  # the group's rows on this rank
            g_hi = min(max(bounds[g + 1] - lo, 0), X.shape[0])
            for s in range(g_lo, g_hi, self.eval_batch_size):
                stop = min(s + self.eval_batch_size, g_hi)
                x, y = X[s:stop], Y[s:stop]
                with ExitStack() as stack, torch.enable_grad():
                    for e in (et, en):
                        if e is not None:
                            stack.enter_context(e.record(x.shape[0]))
                    z = model(x)
                lossfn.check_targets(z, y)
                with torch.no_grad():
                    loss_sum += loss_value(self.loss, z, y).to(torch.float64) * x.shape[0]
                    c = correct_count(self.loss, z, y)
                has_acc = has_acc and c is not None
                if c is not None:
                    correct_sum += c
                if et is not None:
                    et.accumulate(x, z, _directions(lossfn, z, y, self.kind, self.mc_samples, gen))
                if en is not None:
                    gz = lossfn.grad(z, y).reshape(z.shape).detach()
                    en.accumulate(x, z, gz.unsqueeze(0))
                    params = [en.params[k] for k in names]
                    grads = torch.autograd.grad(z, params, gz, allow_unused=True)
                    for acc, gr in zip(g_sum, grads):
                        if gr is not None:
                            acc += gr.to(torch.float64)
            if et is not None:
                for k, i in zip(names, where):
                    group_sums[g, i] += et.sums[k].sum()
                    et.sums[k].zero_()
        if not (et or en) and ("loss" in q or "accuracy" in q):  # forward passes only
            ev = evaluate(model, (X, Y), self.loss, self.eval_batch_size)
            loss_sum, correct_sum, has_acc = ev["loss"] * N, (ev["accuracy"] or 0.0) * N, ev["accuracy"] is not None  # fmt: skip
        g_sq = sum(float(en.sums[k].sum()) for k in names) if en else 0.0
        if (et or en) and dist.world_size() > 1:  # the union's sums (one all-reduce)
            red = dist.reduce_sums(
                {"loss": loss_sum, "correct": correct_sum, "no_acc": int(not has_acc),
                 "groups": group_sums, "g_sq": g_sq, **{str(i): a for i, a in enumerate(g_sum)}}
            )  # fmt: skip
            loss_sum, correct_sum, has_acc = red["loss"], red["correct"], red["no_acc"] == 0
            group_sums, g_sq = red["groups"], red["g_sq"]
            g_sum = [red[str(i)] for i in range(len(g_sum))]
        loss_sum, correct_sum = float(loss_sum), float(correct_sum)
        out: dict[str, Any] = {"n_probe": N}
        if "loss" in q:
            out["loss"] = loss_sum / N
        if "accuracy" in q:
            out["accuracy"] = correct_sum / N if has_acc else None
        if want_trace:
            sizes = torch.tensor([bounds[g + 1] - bounds[g] for g in range(G)], device=device)
            means = group_sums.sum(1) / sizes  # per-group mean Fisher trace
            if "trace" in q:
                out["trace"] = float(group_sums.sum()) / N
                out["trace_stderr"] = float(means.std()) / math.sqrt(G) if G > 1 else None
                out["trace_groups"] = G
                out["trace_kind"] = self.kind
            if "layer_trace" in q:
                lt = group_sums.sum(0) / N
                out["layer_trace"] = {
                    (lay or "<root>"): float(lt[i]) for i, lay in enumerate(layers)
                }
        if want_noise:
            G2 = float(sum(acc.square().sum() for acc in g_sum)) / N**2
            tr_sigma = (g_sq - N * G2) / (N - 1) if N > 1 else float("nan")
            out["gradient_noise"] = tr_sigma / G2 if G2 > 0 else float("inf")
            out["gradient_norm_sq"] = G2
            out["gradient_trace_cov"] = tr_sigma
        return out

    # ----------------------------------------------------------------------------------------------
    # output
    # ----------------------------------------------------------------------------------------------

    def plot(self, path: str | os.PathLike, *, command: str | None = None) -> Path:
        """Draw every recorded scalar quantity against the epoch (or step) into a PNG at ``path``; ``command``
        (the command that made the records) goes into the title."""
        from ._tracker_plot import plot_records

        if not dist.is_main():  # under a process group only rank 0 draws
            return Path(path)
        return plot_records(
            self.records, path, kind=self.kind, damping=self.damping, command=command
        )

    def to_dataframe(self):
        """The records as a pandas DataFrame, one row per record, columns as in the JSONL table (module
        docstring; units there) with ``layer_trace`` spread into ``layer_trace/<module>`` columns."""
        from .records import records_dataframe

        return records_dataframe(self.records)

    def __repr__(self) -> str:
        return f"Tracker(quantities={self.quantities}, every={self.every}, records={len(self.records)})"
