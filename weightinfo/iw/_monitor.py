"""When the variational estimator stops, and its running estimate of E_Q[L_D].

Checks run every ``check_every`` optimiser steps (a fraction of an epoch), not once per epoch: started from
the Fisher-form optimum, the log-variances usually settle within one or two epochs, and a per-epoch rule
would spend at least two whole epochs to notice. At each check we record

* the closed-form KL(Q‖P) — deterministic given σ², so its change is a clean convergence signal — and, for
  the record, its σ²-dependent part KL_σ (KL minus the mean term ½Σ(w − w0)²/λ²);
* the mean and standard error of the minibatch objectives Ĉ_β = L̂ + β·KL since the previous check.

The run has converged when, over the last ``patience`` intervals between checks,

    |ΔKL| ≤ tol · max(KL, 1 nat)    and    |ΔĈ_β| ≤ max(tol · max(1, |Ĉ_β|), 2·√(se₁² + se₀²)),

i.e. the information (the reported IW, to a relative ``tol``) has stopped moving and the objective has
stopped moving beyond its Monte Carlo noise
(a rule on Ĉ_β alone stops at random: one noise draw per step gives Ĉ_β a spread many times any useful
``tol``). ``tol = 0`` never stops early.

The running estimate of E_Q[L_D] is the sample-weighted mean of the minibatch losses L̂ over the steps since
the first check of the converged stretch (or, without convergence, over the last epoch's worth of samples),
with the standard error of those minibatch means. With the
exact local reparameterisation each L̂ is unbiased for E_Q[ℓ] under the Q of its step, so at convergence the
running mean estimates E_{Q*}[L_D] at no extra cost.
"""

from __future__ import annotations

import math
from collections import deque


class Monitor:
    """Convergence checks and the running E_Q[L_D] (see module docstring); its state resumes exactly."""

    def __init__(self, tol: float, check_every: int | None, patience: int = 2):
        self.tol, self.check_every, self.patience = float(tol), check_every, int(patience)
        self.epoch_samples: int | None = None
        self.epoch_steps: int | None = None
        self.steps = 0
        self.samples = 0
        self.trace: list[dict] = []
        self._win: list[tuple[float, int]] = []  # (objective, n) since the last check
        self._recent: deque[tuple[float, int]] = deque()  # (L̂, n) of the last epoch's worth
        self._recent_n = 0
        self._epoch_start = 0

    def step(
        self, objective: float, loss: float, kl: float, n: int, kl_var: float | None = None
    ) -> bool:
        """Record one optimiser step; True when a check ran and the run has converged.

        ``kl_var``: the part of KL that depends on σ² (KL minus the mean term ½Σ(w − w0)²/λ²), recorded at
        the checks."""
        self.steps += 1
        self.samples += n
        self._win.append((objective, n))
        self._recent.append((loss, n))
        self._recent_n += n
        if self.epoch_samples is not None:
            while self._recent_n - self._recent[0][1] >= self.epoch_samples:
                self._recent_n -= self._recent.popleft()[1]
        if self.check_every and self.steps % self.check_every == 0:
            self.check(kl, kl_var)
            return self.converged()
        return False

    def end_epoch(self, kl: float, kl_var: float | None = None) -> None:
        """At the end of a complete epoch: learn its size; check here when there is no step cadence."""
        if self.epoch_samples is None:
            self.epoch_samples = self.samples - self._epoch_start
            self.epoch_steps = self.steps
        self._epoch_start = self.samples
        if not self.check_every:
            self.check(kl, kl_var)

    def check(self, kl: float, kl_var: float | None = None) -> None:
        if not self._win:
            return
        mean, se = _mean_se(self._win)
        self.trace.append(
            {
                "step": self.steps,
                "samples": self.samples,
                "kl_nats": kl,
                "kl_variance_nats": kl if kl_var is None else kl_var,
                "objective": mean,
                "objective_stderr": se,
            }
        )
        self._win = []

    def converged(self) -> bool:
        t, tol = self.trace, self.tol
        if tol <= 0 or len(t) < self.patience + 1:
            return False
        for a, b in zip(t[-self.patience - 1 : -1], t[-self.patience :]):
            if abs(b["kl_nats"] - a["kl_nats"]) > tol * max(abs(b["kl_nats"]), 1.0):
                return False
            noise = 2.0 * math.hypot(_finite(a["objective_stderr"]), _finite(b["objective_stderr"]))
            if abs(b["objective"] - a["objective"]) > max(
                tol * max(1.0, abs(b["objective"])), noise
            ):
                return False
        return True

    def running(self) -> tuple[float, float, int]:
        """(mean L̂, its standard error, number of samples) over the last epoch's worth of steps — or, once
        converged, only over the stretch of checks that established convergence (earlier steps of a short run
        saw a different Q)."""
        recent = list(self._recent)
        if self.converged():
            start = self.trace[-self.patience - 1]["step"]
            recent = recent[-(self.steps - start) :]
        if not recent:
            return math.nan, math.nan, 0
        mean, se = _mean_se(recent)
        return mean, se, sum(n for _, n in recent)

    def state_dict(self) -> dict:
        return {
            "epoch_samples": self.epoch_samples,
            "epoch_steps": self.epoch_steps,
            "steps": self.steps,
            "samples": self.samples,
            "epoch_start": self._epoch_start,
            "trace": [dict(t) for t in self.trace],
            "win": [list(v) for v in self._win],
            "recent": [list(v) for v in self._recent],
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch_samples, self.epoch_steps = state["epoch_samples"], state["epoch_steps"]
        self.steps, self.samples = int(state["steps"]), int(state["samples"])
        self._epoch_start = int(state["epoch_start"])
        self.trace = [dict(t) for t in state["trace"]]
        self._win = [(float(a), int(b)) for a, b in state["win"]]
        self._recent = deque((float(a), int(b)) for a, b in state["recent"])
        self._recent_n = sum(n for _, n in self._recent)


def _mean_se(values) -> tuple[float, float]:
    """Sample-weighted mean of minibatch values and the standard error of that mean (NaN for one value)."""
    n = sum(m for _, m in values)
    mean = sum(v * m for v, m in values) / n
    k = len(values)
    if k < 2:
        return mean, math.nan
    w2 = sum((m / n) ** 2 for _, m in values)
    var = (
        sum(m * (v - mean) ** 2 for v, m in values) / n * k / (k - 1)
    )  # spread of a minibatch mean
    return mean, math.sqrt(var * w2)


def _finite(x: float) -> float:
    return 0.0 if not math.isfinite(x) else x
