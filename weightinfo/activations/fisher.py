"""Fisher information of noisy activations about a nuisance, and about the input (paper §3, Prop 3.2).

Under the linearised channel of :mod:`.channel`, z | x ∼ N(μ(x), Σ_z(x)), μ = f_ℓ(x; w*), Σ_z = J Σ Jᵀ
(Σ: the posterior variances, J = ∂f_ℓ/∂w). For a nuisance x(θ) = g(x, θ) (:mod:`.nuisances`), the Fisher
information of θ in z at θ = 0 is, for one input,

    F(x) = μ̇ᵀ Σ_z⁻¹ μ̇  +  ½ tr(Σ_z⁻¹ Σ̇_z Σ_z⁻¹ Σ̇_z),     ˙ = d/dθ at θ = 0,

the **mean term** (the corrected Prop 3.2: O(1/β), it scales as 1/c when Σ is scaled by c) and the
**covariance term** (β-independent: invariant to scaling Σ). :func:`activation_fisher` reports their means over
the samples of ``data``, per layer, in **nats per unit θ², per sample** (a Fisher information of the scalar θ).

How the derivatives are taken (exact autodiff, no finite differences): ġ = ∂_θ g(x, θ)|₀ by forward mode through
the nuisance (:func:`~.nuisances.nuisance_tangent`); then μ̇ = ∇_x μ · ġ by ``torch.func.jvp`` through the layer,
and Ȧ = d/dt [J(x + t ġ) Σ^{1/2}] by forward-over-reverse (``jvp`` of the ``jacrev`` weight Jacobian), so
Σ̇_z = Ȧ Aᵀ + A Ȧᵀ with A = J Σ^{1/2}; all vectorised over examples with ``vmap`` and solved in float64.

**Singular Σ_z.** Σ_z has rank ≤ k (the number of noisy weights), and is singular e.g. for a conv feature map
with few noisy weights. ``jitter`` = 0 (default): Σ_z⁻¹ is the pseudo-inverse on the range of Σ_z, the exact
Fisher of the degenerate Gaussian when μ̇ and Σ̇_z stay in that range; if either leaves it (relative part >
1e-5), the Fisher is infinite and :class:`InfiniteFisherError` says so. ``jitter`` = ε > 0: Σ_z + ε·(tr Σ_z/d)·I
(isotropic noise at ε times the mean eigenvalue; finite, ε-dependent when the range is left).

**Solvers** (``method``). ``"exact"``: eigendecomposition of the dense d × d Σ_z, O(d³) per sample.
``"lowrank"`` (jitter > 0): Woodbury through the k × k matrix, O(d k²): the same number as ``"exact"`` with the
same jitter (measured: 3e-13 relative on LeNet ``conv1``, d = 384, k = 156), for wide layers with few noisy
weights (conv feature maps). ``"auto"`` (default): the cheaper exact one (lowrank when jitter > 0 and 2k < d).
``"diag"``: Σ_z replaced by its diagonal, O(d k): an **approximation**, exact only when Σ_z is diagonal (a Linear
layer whose own weights are the noisy ones, diagonal posterior); it drops the correlations that shared weights
create between units and cannot see a singular Σ_z. Measured against ``"exact"`` (tests/activations/
test_activation_fisher.py: LeNet 1×8×8, every weight noisy, σ² = 1e-3, 4 uniform random inputs; diag/exact of
the total): output layer 1.04 (translate-x), 1.16 (brightness); ``fc1`` 1.54, 2.41; ``conv2`` 0.35, 2.00 (its
covariance term 0.02× under translate-x). So diag gives an order of magnitude for wide layers, not a
measurement. Memory: two float64 tensors of chunk × d × k (k: noisy weights acting before the layer), the chunk
≤ ``batch_size`` examples with chunk · d · k · 8 bytes ≤ 512 MiB (:meth:`~.channel.Channel.chunk_size`; one
example above 4 GiB raises :class:`~.channel.JacobianMemoryError`, naming the layer, d and k). The ``"diag"``
solver needs the same Jacobians, so it does not lower this memory.

Architectures: any ``nn.Module`` in eval mode (see :mod:`.channel`: eval BatchNorm, in-place ops after the layer,
attention with its fused fast path switched off); ReLU layers have units that are exactly 0 with zero Jacobian
rows, so Σ_z is singular there and the pseudo-inverse (jitter = 0) or a jitter is what makes the Fisher finite.

Distributed (``weightinfo._base.distributed``): under an initialised process group each rank passes its own
shard of ``data``; :func:`activation_fisher`'s means, standard errors and ``n_samples`` are over the union
(sums and counts all-reduced in float64, the same on every rank), while ``per_sample`` keeps this rank's
samples. :func:`input_fisher` returns per-sample values and is not reduced (each rank has its shard's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from .._base import distributed as dist
from .._base.batches import count_batches, iter_batches
from .._base.checks import check_choice, check_int, check_positive
from .._base.progress import progress_enabled
from ._gaussian import (
    METHODS,
    InfiniteFisherError,
    Solver,
    choose_method,
    linearised,
    reaching,
)
from .channel import Channel
from .nuisances import check_nuisance, get_nuisance, nuisance_name, nuisance_tangent

__all__ = [
    "ActivationFisher",
    "InfiniteFisherError",
    "InputFisher",
    "activation_fisher",
    "input_fisher",
]

OUTPUT = "output"
UNITS = "nats per unit theta^2, per sample (Fisher information of the nuisance parameter theta at theta = 0)"


def _stderr(v: torch.Tensor) -> float:
    return float(v.std(unbiased=True) / math.sqrt(v.numel())) if v.numel() > 1 else float("nan")


def _union_moments(groups: dict[str, dict[str, torch.Tensor]]):
    """Means, stderrs and N of per-sample vectors over the union of the ranks' shards (collective, float64).

    Two passes, as one process computes them: Σ v and n are reduced for the global mean, then Σ (v − mean)²
    for the unbiased variance, so the result equals the single-process one up to summation order."""
    flat = {f"{g}/{k}": v.double() for g, d in groups.items() for k, v in d.items()}
    red = dist.reduce_sums(
        {**{k: v.sum() for k, v in flat.items()}, "\0n": len(next(iter(flat.values())))}
    )
    n = red.pop("\0n")
    means = {k: float(v) / n for k, v in red.items()}
    sq = dist.reduce_sums({k: ((v - means[k]) ** 2).sum() for k, v in flat.items()})
    mean_of = {g: {} for g in groups}
    stderr_of = {g: {} for g in groups}
    for key, m in means.items():
        g, k = key.split("/", 1)
        mean_of[g][k] = m
        stderr_of[g][k] = math.sqrt(float(sq[key]) / (n - 1) / n) if n > 1 else float("nan")
    return mean_of, stderr_of, n


def _nan_none(v: float) -> float | None:
    return None if math.isnan(v) else v


@dataclass(frozen=True)
class ActivationFisher:
    """Fisher information of a nuisance θ in the noisy activations of each layer, mean over samples.

    Attributes
    ----------
    nuisance : its name. mean_term, covariance_term : ``{layer: value}`` (key ``"output"`` for the model's
        output), E_x[μ̇ᵀ Σ_z⁻¹ μ̇] and E_x[½ tr(Σ_z⁻¹ Σ̇ Σ_z⁻¹ Σ̇)], nats per unit θ² per sample.
    per_layer : their sum. stderr, mean_term_stderr, covariance_term_stderr : standard errors over samples.
    per_sample : the per-sample total per layer (float64 tensors; this rank's shard under a process group). method : solver per layer. dim : units per
    layer. n_noisy : noisy weights k. jitter : ε (0: pseudo-inverse on the range of Σ_z).
    """

    nuisance: str
    mean_term: dict[str, float]
    covariance_term: dict[str, float]
    mean_term_stderr: dict[str, float]
    covariance_term_stderr: dict[str, float]
    stderr: dict[str, float]
    method: dict[str, str]
    dim: dict[str, int]
    n_noisy: dict[str, int]
    n_samples: int
    jitter: float
    per_sample: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)

    @property
    def per_layer(self) -> dict[str, float]:
        """Mean term + covariance term per layer (nats per unit θ², per sample)."""
        return {k: self.mean_term[k] + self.covariance_term[k] for k in self.mean_term}

    def to_dict(self) -> dict:
        """JSON-ready summary with units and conventions (not the per-sample tensors)."""
        return {
            "nuisance": self.nuisance,
            "per_layer": self.per_layer,
            "mean_term": dict(self.mean_term),
            "covariance_term": dict(self.covariance_term),
            "stderr": {k: _nan_none(v) for k, v in self.stderr.items()},
            "mean_term_stderr": {k: _nan_none(v) for k, v in self.mean_term_stderr.items()},
            "covariance_term_stderr": {
                k: _nan_none(v) for k, v in self.covariance_term_stderr.items()
            },
            "method": dict(self.method),
            "dim": dict(self.dim),
            "n_noisy": dict(self.n_noisy),
            "n_samples": self.n_samples,
            "jitter": self.jitter,
            "units": UNITS,
            "conventions": {
                "channel": "z | x ~ N(f_l(x; w*), J Sigma J^T), linearised in the weights (Def 3.1)",
                "mean_term": "E_x[mu'^T Sigma_z^-1 mu'] (corrected Prop 3.2, O(1/beta))",
                "covariance_term": "E_x[1/2 tr(Sigma_z^-1 Sigma_z' Sigma_z^-1 Sigma_z')] (beta-independent)",
                "singular": "pseudo-inverse on the range of Sigma_z"
                if self.jitter == 0
                else "Sigma_z + jitter * tr(Sigma_z)/dim * I",
                "normalisation": "mean over samples",
            },
        }

    def to_dataframe(self):
        """One row per layer (``"output"`` for the model's output): ``layer``, ``fisher`` (= ``per_layer``),
        ``mean_term``, ``covariance_term`` and their standard errors (nats per unit θ², per sample), ``method``,
        ``dim``, ``n_noisy``."""
        from .._base.frames import dataframe

        return dataframe(
            [
                {
                    "layer": k,
                    "fisher": v,
                    "stderr": self.stderr[k],
                    "mean_term": self.mean_term[k],
                    "mean_term_stderr": self.mean_term_stderr[k],
                    "covariance_term": self.covariance_term[k],
                    "covariance_term_stderr": self.covariance_term_stderr[k],
                    "method": self.method[k],
                    "dim": self.dim[k],
                    "n_noisy": self.n_noisy[k],
                }
                for k, v in self.per_layer.items()
            ]
        )


@dataclass(frozen=True)
class InputFisher:
    """F_{z|x} = ∇_x μᵀ Σ_z⁻¹ ∇_x μ (the mean term of the Fisher of the input in the noisy activations).

    trace, logdet : per-sample tr F and ln det F (float64 tensors; nats per unit of x², and nats). The log-det is
    −inf for every sample when dim z < dim x (F has rank ≤ dim z; ``logdet_defined`` False, Eq 10 unavailable),
    and −inf for a sample whose F is numerically singular.
    """

    layer: str
    trace: torch.Tensor = field(repr=False)
    logdet: torch.Tensor = field(repr=False)
    logdet_defined: bool
    dim_z: int
    dim_x: int
    n_noisy: int
    method: str
    jitter: float

    @property
    def n_samples(self) -> int:
        return int(self.trace.numel())

    @property
    def mean_trace(self) -> float:
        return float(self.trace.mean())

    @property
    def trace_stderr(self) -> float:
        return _stderr(self.trace)

    @property
    def mean_logdet(self) -> float:
        return float(self.logdet.mean())

    def to_dict(self) -> dict:
        ld = self.mean_logdet
        return {
            "layer": self.layer,
            "mean_trace": self.mean_trace,
            "trace_stderr": _nan_none(self.trace_stderr),
            "mean_logdet": ld if math.isfinite(ld) else None,
            "logdet_defined": self.logdet_defined,
            "dim_z": self.dim_z,
            "dim_x": self.dim_x,
            "n_noisy": self.n_noisy,
            "n_samples": self.n_samples,
            "method": self.method,
            "jitter": self.jitter,
            "units": "trace: nats per unit of x^2, per sample; logdet: nats",
        }

    def to_dataframe(self):
        """One row per sample: ``sample``, ``trace`` (nats per unit of x²), ``logdet`` (nats; −inf where F is
        singular)."""
        from .._base.frames import dataframe

        return dataframe(
            [
                {"sample": i, "trace": t, "logdet": d}
                for i, (t, d) in enumerate(zip(self.trace.tolist(), self.logdet.tolist()))
            ]
        )


def _layers(layers) -> list[str | None]:
    if layers is None or isinstance(layers, str):
        return [layers]
    if (
        not isinstance(layers, Sequence)
        or not layers
        or not all(n is None or isinstance(n, str) for n in layers)
    ):
        raise ValueError(
            "layers must be None (the output), a module name or a non-empty list of them, "
            f"got {layers!r}"
        )
    return list(dict.fromkeys(layers))


def _key(layer: str | None) -> str:
    return OUTPUT if layer is None else layer


def _finite(name: str, where: str, v: torch.Tensor) -> torch.Tensor:
    if not bool(torch.isfinite(v).all()):
        raise ValueError(f"{where}: the {name} is not finite (NaN/Inf) for some sample")
    return v


def _chunked(ch: Channel, x: torch.Tensor, d: int):
    """(offset, slice) of ``x`` in the channel's memory-bounded chunks (:meth:`~.channel.Channel.chunk_size`)."""
    a = 0
    for xc in ch.chunks(x, d):
        yield a, xc
        a += len(xc)


def _setup(model, posterior, layers, batch_size, jitter, method):
    check_int("batch_size", batch_size, 1)
    jitter = check_positive("jitter", jitter, allow_zero=True)
    check_choice("method", method, METHODS)
    if method == "lowrank" and jitter == 0:
        raise ValueError(
            "method='lowrank' needs jitter > 0: it inverts Σ_z + λI through the k × k matrix"
        )
    chans = {_key(layer): Channel.of(model, posterior, layer) for layer in _layers(layers)}
    return chans, jitter


def _batches(model, data, batch_size, progress, desc):
    """Enumerated input batches on the model's device and in its floating dtype (labels dropped)."""
    p = next(model.parameters())
    batches = iter_batches(data, device=p.device, batch_size=batch_size)
    disable = not progress_enabled(progress is not False)  # the package rule: only on a terminal
    bar = tqdm(
        batches, total=count_batches(data, batch_size), desc=desc, disable=disable, leave=False
    )
    for b, (x, _) in enumerate(bar):
        yield b, (x.to(p.dtype) if x.is_floating_point() else x)


def activation_fisher(
    model: nn.Module,
    data,
    posterior,
    nuisance,
    layers=None,
    *,
    batch_size: int = 32,
    progress: bool | None = None,
    jitter: float = 0.0,
    method: str = "auto",
) -> ActivationFisher:
    """Fisher information of the nuisance θ in the noisy activations of ``layers``, averaged over ``data``.

    Parameters
    ----------
    model : any ``nn.Module`` (BatchNorm/Dropout in eval mode). data : ``(X, Y)`` tuple or DataLoader (labels
        unused). posterior : an ``InformationResult`` or ``{parameter name: variance}`` (see :mod:`.channel`).
    nuisance : a name of :data:`~.nuisances.NUISANCES` or a callable ``(x, θ) -> x'``, the identity at θ = 0.
    layers : ``None`` (the model's output, key ``"output"``), a module name, or a list of them.
    jitter : ε ≥ 0, see the module docstring (0: pseudo-inverse, infinite Fisher raised).
    method : ``"auto"``, ``"exact"``, ``"lowrank"``, ``"diag"`` (see the module docstring).

    Raises
    ------
    ValueError : an unknown layer, a posterior that does not match the model, a layer no noise reaches, a
        non-finite result; :class:`~.nuisances.NuisanceError` for a bad nuisance;
        :class:`InfiniteFisherError` when the direction leaves the support of a singular Σ_z (jitter = 0).
    """
    chans, jitter = _setup(model, posterior, layers, batch_size, jitter, method)
    fn, name = get_nuisance(nuisance), nuisance_name(nuisance)
    mean_terms = {k: [] for k in chans}
    cov_terms = {k: [] for k in chans}
    used, dims, n_noisy = {}, {}, {}
    for b, x in _batches(model, data, batch_size, progress, "activation Fisher"):
        v = check_nuisance(fn, x) if b == 0 else nuisance_tangent(fn, x)
        for key, ch in chans.items():
            where = f"activation_fisher, layer {key!r}, nuisance {name!r}"
            if b == 0:
                ch = chans[key] = reaching(ch, x, where)
                dims[key], n_noisy[key] = ch.dim(x), ch.n_noisy
            d, k = dims[key], n_noisy[key]
            used[key] = choose_method(method, d, k, jitter)
            for a, xc in _chunked(ch, x, d):  # memory: chunk · d · k ≤ JACOBIAN_CHUNK_BYTES
                mu_dot, A, A_dot = linearised(ch, xc, v[a : a + len(xc)])
                solver = Solver(A, used[key], jitter, where)
                mean_terms[key].append(
                    _finite(
                        "mean term",
                        where,
                        solver.quad(mu_dot[:, :, None], "mean derivative")[:, 0, 0],
                    )
                )
                cov_terms[key].append(_finite("covariance term", where, solver.cov_term(A_dot)))
    mt = {k: torch.cat(v) for k, v in mean_terms.items()}
    ct = {k: torch.cat(v) for k, v in cov_terms.items()}
    tot = {k: mt[k] + ct[k] for k in chans}
    if dist.world_size() > 1:  # the union's means and stderrs over the global N (module docstring)
        mean_of, stderr_of, n_samples = _union_moments({"m": mt, "c": ct, "t": tot})
    else:
        mean_of = {g: {k: float(v.mean()) for k, v in d.items()} for g, d in (("m", mt), ("c", ct))}
        stderr_of = {
            g: {k: _stderr(v) for k, v in d.items()} for g, d in (("m", mt), ("c", ct), ("t", tot))
        }
        n_samples = int(next(iter(tot.values())).numel())
    return ActivationFisher(
        nuisance=name,
        mean_term=mean_of["m"],
        covariance_term=mean_of["c"],
        mean_term_stderr=stderr_of["m"],
        covariance_term_stderr=stderr_of["c"],
        stderr=stderr_of["t"],
        method=used,
        dim=dims,
        n_noisy=n_noisy,
        n_samples=n_samples,
        jitter=jitter,
        per_sample=tot,
    )


def input_fisher(
    model: nn.Module,
    data,
    posterior,
    layer: str | None = None,
    *,
    batch_size: int = 32,
    progress: bool | None = None,
    jitter: float = 0.0,
    method: str = "auto",
) -> InputFisher:
    """F_{z|x} = ∇_x μᵀ Σ_z⁻¹ ∇_x μ per sample at ``layer`` (None: the output): its trace and log-det.

    The mean term of the Fisher of the input (corrected Prop 3.2), dim x × dim x; the trace is always reported;
    the log-det (for Eq 10) only exists when dim z ≥ dim x, otherwise it is −inf with ``logdet_defined=False``.
    ``jitter`` / ``method`` / errors as in :func:`activation_fisher` (an input direction leaving the range of a
    singular Σ_z raises :class:`InfiniteFisherError`).
    """
    if layer is not None and not isinstance(layer, str):
        raise ValueError(f"layer must be None (the output) or one module name, got {layer!r}")
    chans, jitter = _setup(model, posterior, layer, batch_size, jitter, method)
    ((key, ch),) = chans.items()
    where = f"input_fisher, layer {key!r}"
    traces, logdets = [], []
    d = dim_x = n_noisy = 0
    used = method
    for b, x in _batches(model, data, batch_size, progress, "input Fisher"):
        if b == 0:
            ch = reaching(ch, x, where)
            d, n_noisy = ch.dim(x), ch.n_noisy
        used = choose_method(method, d, n_noisy, jitter)
        Fs = []
        for _, xc in _chunked(ch, x, d):
            G = ch.input_jacobians(xc)
            dim_x = G.shape[2]
            Fs.append(
                Solver(linearised(ch, xc, None), used, jitter, where).quad(G, "input Jacobian")
            )
        F = torch.cat(Fs)
        F = 0.5 * (F + F.mT)
        traces.append(_finite("trace", where, F.diagonal(dim1=1, dim2=2).sum(1)))
        if d < dim_x:
            logdets.append(torch.full((F.shape[0],), -math.inf, dtype=F.dtype))
            continue
        ev = torch.linalg.eigvalsh(F)
        ok = ev[:, 0] > 1e-12 * ev[:, -1].clamp_min(0)
        logdets.append(torch.where(ok, ev.clamp_min(1e-300).log().sum(1), -math.inf))
    return InputFisher(
        layer=key,
        trace=torch.cat(traces),
        logdet=torch.cat(logdets),
        logdet_defined=d >= dim_x,
        dim_z=int(d),
        dim_x=int(dim_x),
        n_noisy=int(n_noisy),
        method=used,
        jitter=jitter,
    )
