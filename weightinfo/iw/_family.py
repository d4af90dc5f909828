"""The Gaussian family of the variational estimator: log σ² per weight or per filter, log λ² per layer.

Q = N(w*, diag σ²) with the means frozen, P = N(w0, diag λ_l²). The KL and its gradient are closed forms
(nats), so the optimiser never builds an autograd graph over all parameters:

    KL(Q‖P) = Σ_i ½[(σ_i² + (w_i − w0_i)²)/λ² − 1 + ln λ² − ln σ_i²]
    ∂KL/∂ln σ_f² = ½ m_f (σ_f²/λ² − 1)          (m_f weights share σ_f²: 1 per weight, the fan-in per filter)
    ∂KL/∂ln λ_l² = ½ Σ_{i∈l} (1 − (σ_i² + (w_i − w0_i)²)/λ²)

The state is kept in the parameters' dtype (float32 for a float32 model: element-wise work per step is the
bottleneck of the estimator on CPU); sums over tensors are accumulated in float64.

``init_logvar`` sets the initial log σ² (``init_var``: the Fisher-form optimum from the Monte Carlo Fisher of
``init_samples`` samples, Task2Vec's weight-variance start, a constant, or a warm start) and takes L_D(w*)
from the same pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._base.likelihoods import get_loss
from .._base.mean_loss import with_rest
from ..curvature.fisher_matrix import fisher
from ..curvature.result import layer_of
from ._subsample import split_for_curvature


def lv_shape(shape, structure) -> tuple:
    """Shape of log σ²: the parameter's, or (out, 1, …, 1) for one variance per output unit/filter."""
    if structure == "filter" and len(shape) >= 2:
        return (shape[0],) + (1,) * (len(shape) - 1)
    return tuple(shape)


class Family:
    """log σ² (``logvar``) and log λ_l² (``loglam``) of Q = N(w*, diag σ²), P = N(w0, diag λ_l²)."""

    def __init__(self, params, w0, names, structure, lam2, learn):
        dev = next(iter(params.values())).device
        self.shape = {n: params[n].shape for n in names}
        self.layer = {n: layer_of(n) for n in names}
        self.d2 = {n: (params[n].double() - w0[n].double()).pow(2) for n in names}
        self.d2sum = {n: float(v.sum()) for n, v in self.d2.items()}
        self.count = {n: params[n].numel() for n in names}
        self.logvar = {
            n: torch.zeros(lv_shape(self.shape[n], structure), dtype=params[n].dtype, device=dev)
            for n in names
        }
        self.share = {n: self.count[n] // max(1, self.logvar[n].numel()) for n in names}
        self.lam2_init = dict(lam2)
        self.loglam = {
            layer: torch.tensor(math.log(v), dtype=torch.float64, device=dev, requires_grad=learn)
            for layer, v in lam2.items()
        }
        self.learn = learn

    def var_lv(self) -> dict[str, torch.Tensor]:
        """σ² in log σ²'s own shape, differentiable (the one exp of each step)."""
        return {n: lv.exp() for n, lv in self.logvar.items()}

    def expand(self, var_lv) -> dict[str, torch.Tensor]:
        return {n: v.expand(self.shape[n]) for n, v in var_lv.items()}

    def var(self) -> dict[str, torch.Tensor]:
        """σ² shaped like the parameters (detached)."""
        with torch.no_grad():
            return self.expand(self.var_lv())

    def lam2(self) -> dict[str, float]:
        return {layer: math.exp(float(v.detach())) for layer, v in self.loglam.items()}

    @torch.no_grad()
    def kl(self, var_lv=None) -> float:
        """KL(Q‖P) in nats, closed form (float64 accumulation over tensors)."""
        var_lv = self.var_lv() if var_lv is None else var_lv
        total = 0.0
        for n, lv in self.logvar.items():
            ll = float(self.loglam[self.layer[n]])
            # Sums in the state's dtype (a float64 copy of every entry per step costs more than the
            # whole KL); cascade summation keeps float32 sums to ~1e-7 relative.
            s2 = self.share[n] * float(var_lv[n].sum())
            slv = self.share[n] * float(lv.sum())
            c = self.count[n]
            total += 0.5 * ((s2 + self.d2sum[n]) * math.exp(-ll) - c + c * ll - slv)
        return total

    def mean_term(self) -> float:
        """½ Σ (w − w0)²/λ² in nats: the part of the KL that the variances do not change."""
        lam2 = self.lam2()
        return sum(0.5 * self.d2sum[n] / lam2[self.layer[n]] for n in self.logvar)

    @torch.no_grad()
    def add_kl_grad(self, var_lv, scale: float) -> None:
        """Add ``scale`` · ∂KL/∂(log σ², log λ²) to the ``.grad`` of the state (creating it if missing)."""
        lam2 = self.lam2()
        for n, lv in self.logvar.items():
            a = 0.5 * scale * self.share[n]
            g = var_lv[n].detach() * (a / lam2[self.layer[n]]) - a
            if lv.grad is None:
                lv.grad = g
            else:
                lv.grad.add_(g)
        if not self.learn:
            return
        for layer, ll in self.loglam.items():
            g = 0.0
            for n in self.logvar:
                if self.layer[n] == layer:
                    s2 = self.share[n] * float(var_lv[n].sum())
                    g += 0.5 * (self.count[n] - (s2 + self.d2sum[n]) / lam2[layer])
            g_t = torch.tensor(scale * g, dtype=ll.dtype, device=ll.device)
            if ll.grad is None:
                ll.grad = g_t
            else:
                ll.grad.add_(g_t)

    def load(self, state) -> None:
        with torch.no_grad():
            for n, v in state["logvar"].items():
                self.logvar[n].copy_(v)
            for layer, v in state["loglam"].items():
                self.loglam[layer].copy_(v)
        for v in self.logvar.values():
            v.requires_grad_(True)


def _per_filter(t: torch.Tensor, lv_shape) -> torch.Tensor:
    """Mean of a parameter-shaped tensor over each filter (identity for per-weight shapes)."""
    if tuple(t.shape) == tuple(lv_shape):
        return t
    return t.reshape(t.shape[0], -1).mean(1).reshape(lv_shape)


@dataclass(frozen=True)
class Start:
    """How a run started: the description of its initial σ² and L_D(w*) over N samples from the Fisher pass
    (None where no such pass ran). Saved with the resume state (``init_note``, ``init_train_loss``)."""

    note: str
    train_loss: float | None = None
    n_samples: int | None = None

    @classmethod
    def from_state(cls, state: dict) -> Start:
        loss_n = state["init_train_loss"] or (None, None)
        return cls(state["init_note"], loss_n[0], loss_n[1])

    def state_dict(self) -> dict:
        loss_n = None if self.train_loss is None else [self.train_loss, self.n_samples]
        return {"init_note": self.note, "init_train_loss": loss_n}


def init_logvar(fam, model, data, s, init_variance) -> Start:
    """Set the initial log σ² (see the module docstring); ``s`` are the run's ``VariationalSettings``."""
    iv, lam2, beta_eff = s.init_var, fam.lam2(), s.beta_effective
    start_loss, start_n = None, None  # L_D(w*), N of the Fisher pass
    warm = {
        n: v.detach().to(fam.logvar[n]).expand(fam.shape[n])
        for n, v in (init_variance or {}).items()
        if n in fam.logvar and bool((torch.as_tensor(v) > 0).all())
    }
    if iv == "fisher" and len(warm) < len(fam.logvar):
        # A rough curvature is enough for a start: the Fisher of ``init_samples`` samples; L_D(w*) of
        # the rest comes from a forward pass.
        head, rest = data, None
        if s.init_samples is not None:
            head, rest, _ = split_for_curvature(data, s.init_samples, s.seed)
        curv = fisher(
            model, head, kind="mc", mc_samples=1, seed=s.seed, loss=s.loss,
            batch_size=s.batch_size, progress=False,
        )  # fmt: skip
        F, loss, n = curv.diag, curv.mean_loss, curv.n_samples
        if s.init_samples is not None:  # collective: also where this rank's ``rest`` is empty
            loss, n = with_rest(model, loss, n, rest, get_loss(s.loss), s.batch_size)
        start_loss, start_n = loss, n
    ref = dict(model.named_parameters())
    for n, lv in fam.logvar.items():
        if n in warm:
            v = _per_filter(warm[n], lv.shape)
        elif iv == "fisher":
            h = _per_filter(F[n].to(lv), lv.shape)
            v = beta_eff / (h + beta_eff / lam2[fam.layer[n]])
        elif iv == "weights":
            v = _per_filter(_weight_var(ref[n].detach().to(lv)), lv.shape)
        else:
            v = torch.full(lv.shape, float(iv), dtype=lv.dtype, device=lv.device)
        with torch.no_grad():
            lv.copy_(v.log().reshape(lv.shape))
        lv.requires_grad_(True)
    notes = {
        "fisher": "fisher: beta/(F_ii + beta/lambda^2), Monte Carlo Fisher (1 label per input)",
        "weights": "weights: 0.05*Var(filter weights) + 1e-8 (Task2Vec)",
    }
    note = notes.get(iv, f"constant: {iv!r}") if isinstance(iv, str) else f"constant: {iv!r}"
    note = f"init_variance for {sorted(warm)}; else {note}" if warm else note
    return Start(note, start_loss, start_n)


def _weight_var(w: torch.Tensor) -> torch.Tensor:
    """Task2Vec's 0.05·Var(filter weights) + 1e-8 per filter (per whole vector for ≤1-D), parameter-shaped."""
    rows = w.reshape(w.shape[0], -1) if w.ndim >= 2 else w.reshape(1, -1)
    v = 0.05 * rows.var(dim=1, correction=1 if rows.shape[1] > 1 else 0) + 1e-8
    return (
        v.reshape((-1,) + (1,) * (w.ndim - 1)).expand(w.shape) if w.ndim >= 2 else v.expand(w.shape)
    )
