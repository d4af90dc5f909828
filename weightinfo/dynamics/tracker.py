"""Track the information in the weights during training: :class:`Tracker` (issue 11 §1; paper.md §4, §5.1).

The paper's dynamics claims (Fig 1: ln|F| over training; Critical Learning Periods: tr F rises then falls;
Prop 2.8: SGD at temperature T ∝ η/B avoids high-Fisher minima) are read off curves of curvature quantities
recorded while a network trains. A :class:`Tracker` records them on a **fixed probe set** (the same samples
at every call, so that changes are changes of the weights, not of the data):

``"trace"``        tr F = (1/N) Σ_i t_i, t_i = tr(J_iᵀ Λ(z_i) J_i) the Fisher trace of probe sample i (labels
                   from the model: ``kind="exact"`` sums over all classes weighted by p_w(y|x_i); ``kind="mc"``
                   draws ``mc_samples`` labels per input, unbiased), with ``trace_stderr`` = std(t_i)/√N, the
                   standard error over probe samples (the sampling error of the probe set, and of the label
                   draws for ``"mc"``). Units: nats per squared weight unit.
``"layer_trace"``  the same trace split by module (``layer_trace``: module name → tr F_l; sums to ``trace``).
``"logdet"``       ln|F + δI| in nats with δ = ``damping`` (default :data:`DEFAULT_DAMPING` = 1e-3, recorded as
                   ``logdet_damping``): up to :data:`DENSE_LOGDET_MAX_PARAMS` parameters the dense exact Fisher
                   and its eigenvalues (``logdet_method="dense"``, ``logdet_stderr`` = 0); above, stochastic
                   Lanczos quadrature on the exact Fisher operator (:func:`weightinfo.curvature.slq_logdet`,
                   ``logdet_method="slq"``, ± its standard error over probes). Always the exact Fisher.
``"information"``  IW in nats, the Fisher form at the given ``beta`` and ``prior_scale``
                   (:func:`weightinfo.information`, ``method="fisher"``, ``mc_samples=0``, curvature of ``kind``).
                   The closed form assumes a minimum: early in training it is a diagnostic, not IW.
``"loss"``, ``"accuracy"``  mean loss and accuracy on the probe set (``loss``, ``accuracy``) and, with
                   ``test_data``, on it (``test_loss``, ``test_accuracy``); eval mode, no gradients.
``"temperature"``  T = η/B, learning rate over batch size (η read from the optimizer in ``train``, B from
                   ``batch_size=`` or ``train_loader.batch_size``; both can be passed to :meth:`Tracker.step`).
``"gradient_noise"``  the simple gradient-noise scale B_simple = tr(Σ_g)/|G|² of McCandlish et al. (2018, "An
                   Empirical Model of Large-Batch Training", eq. 2.8), from the per-sample gradients g_i of the
                   loss at the **data** labels on the probe set: G = mean g_i, tr Σ_g = Σ|g_i − G|²/(N − 1). In
                   samples: the batch size above which larger batches stop reducing gradient noise much. |G|² is
                   the plug-in estimate (biased upward by tr Σ_g/N, so B_simple is biased low when |G|² is small).

Every call computes the per-sample quantities in one pass over the probe set with ``torch.func`` per-sample
Jacobians (chunked; float64 sums), in eval mode (each module's flag restored afterwards). The probe set should be
small (hundreds of samples): the cost is about K backward passes per probe sample for K outputs.

Use it as a callback of :func:`weightinfo.train` (``on_epoch_end``, every ``every`` epochs) or call
:meth:`Tracker.step` from any loop. With ``path`` every record is appended to a JSONL file as one line, flushed
and fsynced at once: a crash keeps every record written before it. ``tracker.records`` holds the same dicts,
``tracker.plot(png)`` draws them.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._base.batches import iter_batches
from .._base.checks import check_choice, check_int, check_model, check_positive, named_trainable
from .._base.likelihoods import LOSSES, get_loss
from ..curvature.fisher_matrix import _directions
from ..curvature.result import layer_of
from ..models.modes import eval_mode
from ..training import loss_value, n_correct

__all__ = [
    "Tracker",
    "QUANTITIES",
    "UNITS",
    "DEFAULT_QUANTITIES",
    "DEFAULT_DAMPING",
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
# Up to this many parameters ln|F + δI| comes from the dense Fisher's eigenvalues (P² float64: 32 MB at 2,000).
DENSE_LOGDET_MAX_PARAMS = 2_000
# Elements of a per-sample Jacobian chunk (B_chunk × K × P) held at once.
_JAC_ELEMENTS = 1 << 24

#: Axis label, with its unit, of each scalar quantity (:meth:`Tracker.plot`, ``weightinfo report``).
UNITS = {
    "trace": "tr F [nats / weight²]",
    "logdet": "ln|F + δI| [nats]",
    "information": "IW [nats]",
    "loss": "loss [nats / sample]",
    "accuracy": "accuracy [fraction]",
    "temperature": "η / B [lr / sample]",
    "gradient_noise": "B_simple [samples]",
}


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
            if "logdet" in q and "logdet" not in rec:
                rec.update(self._slq_logdet(model))
            if "information" in q:
                rec["information"] = self._information(model)
            if self.test_data is not None and ("loss" in q or "accuracy" in q):
                ev = _evaluate(model, self.test_data, self.loss, self.eval_batch_size)
                if "loss" in q:
                    rec["test_loss"] = ev["loss"]
                if "accuracy" in q:
                    rec["test_accuracy"] = ev["accuracy"]
        rec["time"] = time.perf_counter() - t0
        rec = _finite_or_none(rec)
        self.records.append(rec)
        if self.path is not None:
            self._write(rec)
        return rec

    def _write(self, rec: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(rec, allow_nan=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    # ----------------------------------------------------------------------------------------------
    # computations
    # ----------------------------------------------------------------------------------------------

    def _probe_pass(self, model: nn.Module) -> dict[str, Any]:
        """One pass over the probe set: per-sample Fisher traces, loss, accuracy, gradient noise, dense F."""
        from torch.func import functional_call, jacrev, vmap

        q = self.quantities
        want_trace = "trace" in q or "layer_trace" in q
        want_noise = "gradient_noise" in q
        params = {k: p.detach() for k, p in named_trainable(model).items()}
        names = list(params)
        P = sum(p.numel() for p in params.values())
        dense = "logdet" in q and P <= DENSE_LOGDET_MAX_PARAMS
        want_jac = want_trace or want_noise or dense
        layers = list(dict.fromkeys(layer_of(k) for k in names))
        lossfn = get_loss(self.loss)
        device = next(iter(params.values())).device
        gen = torch.Generator(device=device).manual_seed(self.seed)

        def f(p, xi):
            return functional_call(model, p, (xi.unsqueeze(0),)).reshape(-1)

        per_sample: list[torch.Tensor] = []  # (B, n_layers) Fisher traces per sample and layer
        g_sum = torch.zeros(P, dtype=torch.float64, device=device)
        g_sq = 0.0
        M = torch.zeros(P, P, dtype=torch.float64, device=device) if dense else None
        n, loss_sum, correct_sum, has_acc = 0, 0.0, 0.0, True
        for x, y in iter_batches(self.probe_data, device=device, batch_size=self.eval_batch_size):
            with torch.no_grad():
                z = model(x)
            lossfn.check_targets(z, y)
            loss_sum += float(loss_value(self.loss, z, y)) * x.shape[0]
            c = n_correct(self.loss, z, y)
            has_acc = has_acc and c is not None
            correct_sum += c or 0.0
            n += x.shape[0]
            if not want_jac:
                continue
            K = z.reshape(z.shape[0], -1).shape[1]
            chunk = max(1, _JAC_ELEMENTS // max(1, K * P))
            for s in range(0, x.shape[0], chunk):
                xs, ys, zs = x[s : s + chunk], y[s : s + chunk], z[s : s + chunk]
                jac = vmap(jacrev(f), in_dims=(None, 0))(params, xs)
                J = {k: jac[k].reshape(xs.shape[0], K, -1).to(torch.float64) for k in names}
                if want_trace:
                    D = _directions(lossfn, zs, ys, self.kind, self.mc_samples, gen).to(
                        torch.float64
                    )
                    t = torch.zeros(xs.shape[0], len(layers), dtype=torch.float64, device=device)
                    for k in names:
                        U = torch.einsum("rbk,bkp->rbp", D, J[k])
                        t[:, layers.index(layer_of(k))] += U.square().sum(dim=(0, 2))
                    per_sample.append(t)
                Jf = torch.cat([J[k] for k in names], dim=2) if (want_noise or dense) else None
                if want_noise:
                    gz = lossfn.grad(zs, ys).to(torch.float64)  # (B, K) at the data labels
                    g = torch.einsum("bk,bkp->bp", gz, Jf)
                    g_sum += g.sum(0)
                    g_sq += float(g.square().sum())
                if dense:
                    S = _directions(lossfn, zs, ys, "exact", 1, None).to(torch.float64)
                    U = torch.einsum("rbk,bkp->rbp", S, Jf).reshape(-1, P)
                    M += U.T @ U
        out: dict[str, Any] = {"n_probe": n}
        if "loss" in q:
            out["loss"] = loss_sum / n
        if "accuracy" in q:
            out["accuracy"] = correct_sum / n if has_acc else None
        if want_trace:
            T = torch.cat(per_sample)  # (N, n_layers)
            tot = T.sum(1)
            if "trace" in q:
                out["trace"] = float(tot.mean())
                out["trace_stderr"] = (
                    float(tot.std(unbiased=True)) / math.sqrt(n) if n > 1 else None
                )
                out["trace_kind"] = self.kind
            if "layer_trace" in q:
                means = T.mean(0)
                out["layer_trace"] = {
                    (lay or "<root>"): float(means[i]) for i, lay in enumerate(layers)
                }
        if want_noise:
            G = g_sum / n
            G2 = float(G.square().sum())
            tr_sigma = (g_sq - n * G2) / (n - 1) if n > 1 else float("nan")
            out["gradient_noise"] = tr_sigma / G2 if G2 > 0 else float("inf")
            out["gradient_norm_sq"] = G2
            out["gradient_trace_cov"] = tr_sigma
        if dense:
            ev = torch.linalg.eigvalsh(M / n).clamp_min(0.0)
            out["logdet"] = float(torch.log(ev + self.damping).sum())
            out["logdet_stderr"] = 0.0
            out["logdet_method"] = "dense"
            out["logdet_damping"] = self.damping
        return out

    def _slq_logdet(self, model: nn.Module) -> dict[str, Any]:
        from ..curvature.lanczos import slq_logdet
        from ..curvature.products import CurvatureOperator

        op = CurvatureOperator(
            model, self.probe_data, "fisher", loss=self.loss, batch_size=self.eval_batch_size
        )
        est = slq_logdet(
            op, self.damping, n_probes=self.slq_probes, n_steps=self.slq_steps, seed=self.seed
        )
        return {
            "logdet": est.value,
            "logdet_stderr": est.stderr,
            "logdet_method": "slq",
            "logdet_damping": self.damping,
        }

    def _information(self, model: nn.Module) -> float:
        from ..iw import information

        res = information(
            model,
            self.probe_data,
            beta=self.beta,
            prior_scale=self.prior_scale,
            method="fisher",
            loss=self.loss,
            mc_samples=0,
            seed=self.seed,
            batch_size=self.eval_batch_size,
            progress=False,
            curvature_kind=self.kind,
        )
        return float(res.nats)

    # ----------------------------------------------------------------------------------------------
    # output
    # ----------------------------------------------------------------------------------------------

    def plot(self, path: str | os.PathLike) -> Path:
        """Draw every recorded scalar quantity against the epoch (or step) into a PNG at ``path``."""
        if not self.records:
            raise ValueError("no records to plot: call step() or train with the tracker first")
        from ..report.plots import figure, save_figure

        use_epoch = all(r.get("epoch") is not None for r in self.records)
        xkey = (
            "epoch"
            if use_epoch
            else ("step" if all(r.get("step") is not None for r in self.records) else "call")
        )
        xlabel = {"epoch": "epoch", "step": "step [optimizer steps]", "call": "tracker call"}[xkey]
        xs = [r[xkey] for r in self.records]
        panels = [k for k in ("trace", "logdet", "information", "loss", "accuracy", "temperature", "gradient_noise")
                  if any(r.get(k) is not None for r in self.records)]  # fmt: skip
        has_layers = any(r.get("layer_trace") for r in self.records)
        n_panels = len(panels) + int(has_layers)
        cols = min(3, max(1, n_panels))
        rows = max(1, -(-n_panels // cols))
        fig = figure(4.2 * cols, 3.2 * rows)
        axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n_panels)]
        for ax, key in zip(axes, panels):
            ys = [r.get(key) for r in self.records]
            ys = [float("nan") if v is None else v for v in ys]
            err = [r.get(f"{key}_stderr") for r in self.records]
            if any(e for e in err):
                ax.errorbar(
                    xs, ys, yerr=[e or 0.0 for e in err], marker="o", ms=3, capsize=2, label="probe"
                )
            else:
                ax.plot(xs, ys, marker="o", ms=3, label="probe")
            if key in ("loss", "accuracy") and any(
                r.get(f"test_{key}") is not None for r in self.records
            ):
                tv = [r.get(f"test_{key}") for r in self.records]
                ax.plot(
                    xs,
                    [float("nan") if v is None else v for v in tv],
                    marker="s",
                    ms=3,
                    label="test",
                )
                ax.legend(fontsize=7)
            label = UNITS[key]
            if key == "logdet":
                label += f", δ = {self.damping:g}"
            ax.set_ylabel(label)
            ax.set_xlabel(xlabel)
            ax.grid(alpha=0.3)
        if has_layers:
            ax = axes[-1]
            names = list(
                dict.fromkeys(k for r in self.records for k in (r.get("layer_trace") or {}))
            )
            for name in names:
                ax.plot(xs, [(r.get("layer_trace") or {}).get(name, float("nan")) for r in self.records],
                        marker="o", ms=3, label=name)  # fmt: skip
            ax.set_ylabel("per-layer tr F [nats / weight²]")
            ax.set_xlabel(xlabel)
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)
        fig.suptitle(
            f"Tracker on {self.records[-1].get('n_probe')} probe samples (Fisher kind={self.kind})"
        )
        fig.tight_layout()
        return save_figure(fig, path)

    def __repr__(self) -> str:
        return f"Tracker(quantities={self.quantities}, every={self.every}, records={len(self.records)})"


@torch.no_grad()
def _evaluate(model: nn.Module, data, loss: str, batch_size: int) -> dict[str, Any]:
    """Mean loss and accuracy over ``data`` (tuple or loader), model already in eval mode."""
    device = next(model.parameters()).device
    n, total, correct, has_acc = 0, 0.0, 0.0, True
    for x, y in iter_batches(data, device=device, batch_size=batch_size):
        z = model(x)
        total += float(loss_value(loss, z, y)) * x.shape[0]
        c = n_correct(loss, z, y)
        has_acc = has_acc and c is not None
        correct += c or 0.0
        n += x.shape[0]
    return {"loss": total / n, "accuracy": correct / n if has_acc else None}
