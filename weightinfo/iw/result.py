"""Result of an information-in-the-weights estimate: totals, the "where" maps and the settings that made them.

Units: nats (``.bits`` divides by ln 2). Conventions, stated in every ``to_dict()``: L_D is the **mean**
per-sample loss, β is **per sample** (β_sum = N·β, β_PAC = N·β), curvature is a mean over samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .._base.table import RowTable
from ..curvature.result import layer_of
from ..posterior.gaussian import NATS_PER_BIT


@dataclass(frozen=True)
class InformationTable(RowTable):
    """Rows ``layer, type, n_params, nats, bits, share, nats_per_param`` (one per module)."""

    def __str__(self) -> str:
        return self._render_layers("nats", "nats_per_param", ("nats", "nats/param"), type_width=16)


@dataclass(frozen=True)
class InformationResult:
    """Information in the weights IW = KL(Q*‖P) at the optimum of C_β = E_Q[L_D] + β·KL(Q‖P).

    Attributes
    ----------
    nats : IW in nats (``bits`` in bits).
    expected_loss : E_{w∼Q*}[L_D(w)] (mean per-sample loss), Monte Carlo over ``mc_samples`` weight draws,
        with ``expected_loss_stderr`` (NaN when not estimated).
    expected_loss_quadratic : L_D(w*) + ½ tr(HΣ*) under the quadratic model (Fisher form), else None.
    train_loss : L_D(w*) at the trained weights.
    lagrangian : C_β = expected_loss + β·nats.
    per_parameter : nats per weight, shaped like each parameter; sums to ``nats``.
    posterior_variance : σ² of Q* per weight (diagonal of Σ*).
    prior_scale : λ_l per layer; beta : β per sample.
    """

    nats: float
    beta: float
    expected_loss: float
    expected_loss_stderr: float
    train_loss: float
    per_parameter: dict[str, torch.Tensor] = field(repr=False)
    posterior_variance: dict[str, torch.Tensor] = field(repr=False)
    prior_scale: dict[str, float] = field(repr=False)
    method: str = "fisher"
    structure: str = "diag"
    curvature: str = "fisher"
    loss: str = "cross_entropy"
    convention: str = "corrected"
    prior_mean: str = "zero"
    n_samples: int = 0
    mc_samples: int = 0
    seed: int = 0
    expected_loss_quadratic: float | None = None
    approximation: str | None = None
    layer_types: dict[str, str] = field(default_factory=dict, repr=False)
    extra: dict = field(default_factory=dict, repr=False)

    @property
    def bits(self) -> float:
        return self.nats / NATS_PER_BIT

    @property
    def lagrangian(self) -> float:
        return self.expected_loss + self.beta * self.nats

    @property
    def n_params(self) -> int:
        return sum(v.numel() for v in self.per_parameter.values())

    @property
    def per_layer(self) -> InformationTable:
        """Nats per module (parameters grouped by owning module), their share of the total and per weight."""
        groups: dict[str, list[torch.Tensor]] = {}
        for name, v in self.per_parameter.items():
            groups.setdefault(layer_of(name), []).append(v)
        rows = []
        for layer, vs in groups.items():
            nats = float(sum(v.sum() for v in vs))
            n = int(sum(v.numel() for v in vs))
            rows.append(
                {
                    "layer": layer,
                    "type": self.layer_types.get(layer, ""),
                    "n_params": n,
                    "nats": nats,
                    "bits": nats / NATS_PER_BIT,
                    "share": nats / self.nats if self.nats != 0 else float("nan"),
                    "nats_per_param": nats / n,
                }
            )
        return InformationTable(
            rows, title=f"information in the weights: {self.nats:.6g} nats (β = {self.beta:g})"
        )

    def per_filter(self, name: str) -> torch.Tensor:
        """Nats per output unit/filter of parameter ``name`` (sum over every axis but the first)."""
        v = self.per_parameter[name]
        return v.reshape(v.shape[0], -1).sum(1) if v.ndim > 1 else v.clone()

    def top_k(self, k: int = 10) -> list[dict]:
        """The k weights holding the most nats: ``{"parameter", "index", "nats"}``, largest first."""
        flat = torch.cat([v.reshape(-1) for v in self.per_parameter.values()])
        names = list(self.per_parameter)
        sizes = [v.numel() for v in self.per_parameter.values()]
        vals, idx = torch.topk(flat, min(k, flat.numel()))
        out, offsets = [], [0]
        for s in sizes:
            offsets.append(offsets[-1] + s)
        for v, i in zip(vals.tolist(), idx.tolist()):
            j = next(j for j in range(len(sizes)) if offsets[j] <= i < offsets[j + 1])
            shape = self.per_parameter[names[j]].shape
            index = (
                list(torch.unravel_index(torch.tensor(i - offsets[j]), shape)) if len(shape) else []
            )
            out.append({"parameter": names[j], "index": [int(t) for t in index], "nats": v})
        return out

    def to_dict(self) -> dict:
        """JSON-ready summary (totals, settings, conventions, per-layer table; not the per-weight tensors)."""
        return {
            "nats": self.nats,
            "bits": self.bits,
            "beta": self.beta,
            "expected_loss": self.expected_loss,
            "expected_loss_stderr": None
            if math.isnan(self.expected_loss_stderr)
            else self.expected_loss_stderr,
            "expected_loss_quadratic": self.expected_loss_quadratic,
            "train_loss": self.train_loss,
            "lagrangian": self.lagrangian,
            "method": self.method,
            "structure": self.structure,
            "curvature": self.curvature,
            "loss": self.loss,
            "convention": self.convention,
            "approximation": self.approximation,
            "prior_mean": self.prior_mean,
            "prior_scale": dict(self.prior_scale),
            "n_samples": self.n_samples,
            "n_params": self.n_params,
            "mc_samples": self.mc_samples,
            "seed": self.seed,
            "conventions": {
                "units": "nats",
                "loss": "mean per-sample loss L_D",
                "beta": "per sample (beta_sum = N*beta, beta_PAC = N*beta)",
                "curvature": "mean over samples",
            },
            "per_layer": self.per_layer.to_dict(),
            "extra": self.extra,
        }

    def to_dataframe(self):
        """``per_layer`` as a DataFrame: ``layer, type, n_params, nats, bits, share`` (fraction of IW),
        ``nats_per_param``; one row per module."""
        return self.per_layer.to_dataframe()
