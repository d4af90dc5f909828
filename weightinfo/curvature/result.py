"""The curvature result object: a block-diagonal matrix over a model's parameters.

A ``Curvature`` is a list of blocks, each covering some parameters (named exactly like
``model.named_parameters()``): a ``DiagBlock`` (one number per weight), a ``DenseBlock`` (a full matrix over
several tensors, in the order given) or a ``KronBlock`` (A ⊗ G over one layer's weight and optional bias).
Trace, diagonal and log-determinant are exact for the stored structure. All values are float64 and follow the
normalisation of the computation that produced them (the Fisher is a **mean** over samples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .._base.checks import check_choice, check_positive
from .._base.table import RowTable
from .vocabulary import CURVATURES, KINDS, warn_renamed


def layer_of(param_name: str) -> str:
    """Module that owns a parameter: ``'features.0.weight' -> 'features.0'`` (``''`` for the root)."""
    return param_name.rpartition(".")[0]


@dataclass(frozen=True)
class DiagBlock:
    """Diagonal curvature of the named tensors: ``values[name]`` is shaped like the parameter."""

    values: dict[str, torch.Tensor]

    @property
    def names(self) -> list[str]:
        return list(self.values)

    def diag(self) -> dict[str, torch.Tensor]:
        return dict(self.values)

    def trace(self) -> float:
        return float(sum(v.sum() for v in self.values.values()))

    def logdet(self, damping: float) -> float:
        return float(sum(torch.log(v + damping).sum() for v in self.values.values()))


@dataclass(frozen=True)
class DenseBlock:
    """A dense symmetric matrix over the flattened, concatenated tensors ``names`` (with ``shapes``)."""

    names: list[str]
    shapes: list[torch.Size]
    matrix: torch.Tensor

    def diag(self) -> dict[str, torch.Tensor]:
        d = torch.diagonal(self.matrix)
        out, i = {}, 0
        for n, s in zip(self.names, self.shapes):
            k = math.prod(s)
            out[n] = d[i : i + k].reshape(s).clone()
            i += k
        return out

    def trace(self) -> float:
        return float(torch.diagonal(self.matrix).sum())

    def eigvalsh(self) -> torch.Tensor:
        return torch.linalg.eigvalsh(self.matrix)

    def logdet(self, damping: float) -> float:
        eye = torch.eye(self.matrix.shape[0], dtype=self.matrix.dtype, device=self.matrix.device)
        sign, val = torch.linalg.slogdet(self.matrix + damping * eye)
        if sign <= 0:
            raise ValueError(f"matrix + {damping}·I is not positive definite; increase damping")
        return float(val)


@dataclass(frozen=True)
class KronBlock:
    """Kronecker-factored block A ⊗ G of one layer (KFAC).

    The layer's weight W (out × in, flattened row-major together with the bias as an extra input column when
    ``bias_name`` is set) has curvature ≈ G ⊗ A in row-major vec order, i.e. F[(o,i),(o',i')] = G[o,o'] A[i,i'],
    with A the (in [+1]) × (in [+1]) input second moment and G the out × out output-gradient second moment.
    """

    weight_name: str
    bias_name: str | None
    weight_shape: torch.Size
    A: torch.Tensor
    G: torch.Tensor

    @property
    def names(self) -> list[str]:
        return [self.weight_name] + ([self.bias_name] if self.bias_name else [])

    def diag(self) -> dict[str, torch.Tensor]:
        d = torch.outer(torch.diagonal(self.G), torch.diagonal(self.A))  # (out, in[+1])
        if self.bias_name:
            return {
                self.weight_name: d[:, :-1].reshape(self.weight_shape).clone(),
                self.bias_name: d[:, -1].clone(),
            }
        return {self.weight_name: d.reshape(self.weight_shape).clone()}

    def trace(self) -> float:
        return float(torch.diagonal(self.A).sum() * torch.diagonal(self.G).sum())

    def logdet(self, damping: float) -> float:
        a = torch.linalg.eigvalsh(self.A).clamp_min(0)
        g = torch.linalg.eigvalsh(self.G).clamp_min(0)
        return float(torch.log(torch.outer(g, a) + damping).sum())


Block = DiagBlock | DenseBlock | KronBlock


@dataclass(frozen=True)
class LayerTable(RowTable):
    """Per-layer summary rows (one dict per module): ``layer, type, n_params, trace, share, mean``."""

    def __str__(self) -> str:
        return self._render_layers("trace", "mean", ("trace", "mean"), type_width=18)


@dataclass(frozen=True)
class Curvature:
    """A curvature matrix of a model's parameters (Fisher, GGN or Hessian), block by block.

    Attributes (one meaning each, as in the glossary ``docs/glossary.md``)
    ----------
    curvature : which matrix, ``"fisher"``, ``"ggn"`` or ``"hessian"``.
    kind : how the expectation over labels is taken, ``"exact"``, ``"mc"`` or ``"empirical"`` (the empirical
        Fisher); always ``"exact"`` for the Hessian.
    structure : ``"diag"``, ``"kfac"`` or ``"full"``.
    loss : the likelihood (``weightinfo._base.likelihoods``); n_samples : number of samples averaged over.
    blocks : the blocks; together they cover every trainable parameter exactly once.
    layer_types : module name → class name, for the per-layer table.
    mc_samples : labels drawn from the model per input (``kind="mc"``), else None; seed : seed of the draws.
    stderr : for stochastic diagonals (Hutchinson), the standard error of each diagonal entry.
    mean_loss : L_D at the model's weights (mean per-sample loss over the same samples, nats), where the
        pass that computed the curvature had the outputs anyway (diagonal Fisher/GGN); else None.
    method : the algorithm where a function offers a choice (``hessian``: ``"exact"`` or ``"hutchinson"``),
        else None; n_probes : Hutchinson probe vectors (``method="hutchinson"``), else None.

    ``quantity`` (``"empirical_fisher"`` for the empirical Fisher, else ``curvature``) is the deprecated
    name of the pair (curvature, kind); a first positional argument ``"empirical_fisher"`` is read as
    curvature ``"fisher"`` with a ``DeprecationWarning``.
    """

    curvature: str
    kind: str
    structure: str
    loss: str
    n_samples: int
    blocks: list = field(repr=False)
    layer_types: dict[str, str] = field(default_factory=dict, repr=False)
    param_order: list[str] = field(default_factory=list, repr=False)
    mc_samples: int | None = None
    seed: int | None = None
    stderr: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    mean_loss: float | None = None
    method: str | None = None
    n_probes: int | None = None

    def __post_init__(self):
        if self.curvature == "empirical_fisher":  # the old ``quantity`` spelling, positional
            warn_renamed("empirical_fisher", "curvature='fisher', kind='empirical'", "Curvature")
            object.__setattr__(self, "curvature", "fisher")
        check_choice("curvature", self.curvature, CURVATURES)
        check_choice("kind", self.kind, KINDS)

    @property
    def label(self) -> str:
        """Display name: ``"empirical_fisher"`` for the empirical Fisher, else ``curvature``."""
        return "empirical_fisher" if self.kind == "empirical" else self.curvature

    @property
    def quantity(self) -> str:
        """Deprecated: ``label`` (the pair ``curvature``, ``kind`` in one word)."""
        warn_renamed("quantity", "curvature (which matrix), kind, or label", "Curvature attribute")
        return self.label

    @property
    def diag(self) -> dict[str, torch.Tensor]:
        """Diagonal, keyed and ordered exactly like ``model.named_parameters()``, each shaped like its parameter."""
        merged: dict[str, torch.Tensor] = {}
        for b in self.blocks:
            merged.update(b.diag())
        order = self.param_order or list(merged)
        return {k: merged[k] for k in order}

    def trace(self) -> float:
        """tr(M) = Σ_i M_ii (same normalisation as the matrix)."""
        return float(sum(b.trace() for b in self.blocks))

    def logdet(self, damping: float) -> float:
        """ln det(M + δI) in nats, exact for the stored structure. ``damping`` δ must be ≥ 0 (> 0 if singular)."""
        check_positive("damping", damping, allow_zero=True)
        val = sum(b.logdet(damping) for b in self.blocks)
        if not math.isfinite(val):
            raise ValueError(
                f"log det(M + {damping}·I) is not finite: the matrix is singular; use damping > 0"
            )
        return float(val)

    @property
    def n_params(self) -> int:
        return sum(v.numel() for v in self.diag.values())

    def per_layer(self) -> LayerTable:
        """Trace per module (parameters grouped by owning module), its share of the total and mean per weight."""
        groups: dict[str, list[torch.Tensor]] = {}
        for name, v in self.diag.items():
            groups.setdefault(layer_of(name), []).append(v)
        total = self.trace()
        rows = []
        for layer, vs in groups.items():
            t = float(sum(v.sum() for v in vs))
            n = int(sum(v.numel() for v in vs))
            rows.append(
                {
                    "layer": layer,
                    "type": self.layer_types.get(layer, ""),
                    "n_params": n,
                    "trace": t,
                    "share": t / total if total > 0 else float("nan"),
                    "mean": t / n,
                }
            )
        return LayerTable(
            rows, title=f"{self.label} ({self.kind}, {self.structure}), N={self.n_samples}"
        )

    def to_dataframe(self):
        """:meth:`per_layer` as a DataFrame: ``layer, type, n_params, trace`` (tr of the module's block, units of
        the matrix: nats per sample per weight²), ``share`` (fraction of the total trace), ``mean`` (trace /
        n_params); one row per module."""
        return self.per_layer().to_dataframe()

    def to_dict(self) -> dict:
        """JSON-ready summary: settings, total trace and the per-layer table (not the full tensors).

        ``"quantity"`` (= ``label``) is kept for one release for readers of older reports; use ``"curvature"``
        and ``"kind"``.
        """
        return {
            "curvature": self.curvature,
            "kind": self.kind,
            "quantity": self.label,
            "structure": self.structure,
            "method": self.method,
            "loss": self.loss,
            "normalisation": "mean over samples",
            "n_samples": self.n_samples,
            "n_params": self.n_params,
            "mc_samples": self.mc_samples,
            "seed": self.seed,
            "n_probes": self.n_probes,
            "trace": self.trace(),
            "per_layer": self.per_layer().to_dict(),
        }
