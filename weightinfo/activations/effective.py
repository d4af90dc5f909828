"""Effective information in the activations (Achille, Paolini & Soatto 2019, Definition 3.1 and Eq 10).

    I_eff(x; z) = I(X; Z),   X uniform over the N inputs of ``data``,   Z | x = f_ℓ(x; w* + n),   n ∼ N(0, Σ),

Σ the posterior variance (diagonal) of the noisy weights (:mod:`.channel`). In **nats**. X is the empirical
distribution, so I = H(Z) − E_x H(Z | x) with Z a mixture of N components, and 0 ≤ I ≤ ln N: the ceiling
``ln N`` (``EffectiveInformation.ceiling``) is reached when the components do not overlap, 0 when all inputs
are identical.

Estimators (``estimator=``):

* ``"gaussian"`` (``"auto"``): the linearised channel z | x_i ∼ N(μ_i, Σ_z(x_i)), Σ_z = J Σ Jᵀ, exact when the
  layer is linear in its noisy weights. I = E_i E_{z∼N_i}[ln N_i(z) − ln (1/N) Σ_j N_j(z)] by Monte Carlo over
  ``samples`` reparameterised draws z = μ_i + L_i ε per input, the mixture density summed over all N components
  (log-sum-exp). **Unbiased** for the linearised channel's I (no component is subsampled, so there is no
  log-mean-exp bias); ``stderr`` is the Monte Carlo standard error (stratified by input). Each term is ≤ ln N,
  so every estimate is ≤ ln N.
* ``"mc"``: no linearisation. ``samples`` real weight draws per input fit a Gaussian q_i by moments (mean and
  covariance of z, capturing the mean shift and spread the nonlinearity causes), and ``samples`` fresh draws
  evaluate the Barber–Agakov bound ln N + E[ln q(x | z)], q(i | z) = q_i(z) / Σ_j q_j(z). Given the fit, its
  expectation is a **lower bound** on the true I(X; Z) of the nonlinear channel; the gap is the mismatch of
  the decoder q (non-Gaussian z, plus the error of a covariance fitted from ``samples`` draws). Where the channel
  is Gaussian it converges to the ``"gaussian"`` value as ``samples`` grows. ``stderr`` covers the evaluation
  draws, not the fit. Needs ``samples`` > dim z (default max(64, 4·dim z)).
* ``"brunel-nadal"``: the small-noise formula of Eq 10 (Brunel & Nadal 1998),
  I ≈ h(X) − E_x[½ ln((2πe)^{dim x} / |F_{z|x}|)], F_{z|x} = ∇_xμᵀ Σ_z⁻¹ ∇_xμ (the corrected mean term of
  Prop 3.2; the covariance term ½ tr(Σ⁻¹∂Σ Σ⁻¹∂Σ) is **omitted**, which biases the value down since it adds a
  positive semi-definite matrix to F). Eq 10 is for a **continuous** x: h(X) is a differential entropy, which the
  empirical distribution does not have (its ln N is a discrete entropy, in other units of measure), so the caller
  supplies it as ``input_entropy`` (nats) and it is an error to omit it. The data then serve as a sample of that
  continuous law: the value estimates I(x; z) for the continuous x, not the empirical I above, may exceed
  ln N, and is only indicative next to the other two; ``stderr`` is the standard error of E_x over the N inputs.
  Needs dim z ≥ dim x (else |F_{z|x}| = 0 and the formula gives −∞: a ``ValueError`` naming both dims).

A singular Σ_z (dim z above the rank of J Σ Jᵀ, e.g. a conv layer with more units than noisy weights) leaves z | x
without a density: the components are then mutually singular and I is degenerate. This raises a ``ValueError``;
``activation_variance`` = ν > 0 adds independent noise ε ∼ N(0, ν I) to z and measures I(X; Z + ε), a **lower
bound** on I(X; Z) by data processing that rises to it as ν → 0 (ν in squared activation units).

Distributed (``weightinfo._base.distributed``): under an initialised process group each rank passes its own
shard of the inputs; X is uniform over the union (N = Σ_ranks N_r). Each rank computes its inputs' components
(the Jacobians: the costly part), the components are gathered (every rank holds the whole mixture, N · dim z²
numbers) and each rank evaluates the terms of its own inputs against all N; the sums are all-reduced.
``"gaussian"`` draws z for every component in order from ``seed`` (each rank evaluates its own), so it equals
the single-process value up to summation order; ``"brunel-nadal"`` is deterministic; ``"mc"`` draws its weights
per rank (``rank_generator``): another draw, within its ``stderr``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from .._base import distributed as dist
from .._base.batches import iter_batches
from .._base.checks import check_choice, check_int, check_positive
from ._gaussian import reaching
from .channel import Channel
from .mixture import GaussianMixture, SingularCovarianceError, mixture_terms, stratified_mean

__all__ = ["ESTIMATORS", "EffectiveInformation", "effective_information"]

ESTIMATORS = ("auto", "gaussian", "mc", "brunel-nadal")
DEFAULT_SAMPLES = 32
EFF_BATCH_SIZE = 16


@dataclass(frozen=True)
class EffectiveInformation:
    """I_eff(x; z) per layer, nats (``bits`` in bits), with its standard error and how it was estimated.

    ``per_layer[name]``, ``stderr[name]``, ``estimator[name]``, ``dims[name]`` (dim z), ``samples[name]`` (draws
    per input; 0 for ``"brunel-nadal"``). ``n``: the number of inputs N; ``ceiling`` = ln N, the largest value of
    the empirical I(X; Z) (not a bound on the ``"brunel-nadal"`` value). ``activation_variance``: ν of the
    added activation noise (0: none); ``input_entropy``: h(X) of ``"brunel-nadal"``, nats.
    """

    per_layer: dict[str, float]
    stderr: dict[str, float]
    estimator: dict[str, str]
    dims: dict[str, int]
    samples: dict[str, int]
    n: int
    seed: int = 0
    activation_variance: float = 0.0
    input_entropy: float | None = None
    extra: dict = field(default_factory=dict, repr=False)

    @property
    def ceiling(self) -> float:
        """ln N, nats."""
        return math.log(self.n)

    @property
    def bits(self) -> dict[str, float]:
        return {k: v / math.log(2) for k, v in self.per_layer.items()}

    def to_dict(self) -> dict:
        """JSON-ready: per-layer nats, standard errors (None when undefined), settings and conventions."""
        return {
            "per_layer": dict(self.per_layer),
            "stderr": {k: None if math.isnan(v) else v for k, v in self.stderr.items()},
            "bits": self.bits,
            "estimator": dict(self.estimator),
            "dims": dict(self.dims),
            "samples": dict(self.samples),
            "n": self.n,
            "ceiling": self.ceiling,
            "seed": self.seed,
            "activation_variance": self.activation_variance,
            "input_entropy": self.input_entropy,
            "conventions": {
                "units": "nats",
                "definition": "I(X; Z), X uniform over the N inputs, Z = f_layer(X; w* + n), n ~ N(0, Σ)",
                "ceiling": "ln N",
            },
            "extra": self.extra,
        }

    def to_dataframe(self):
        """One row per layer: ``layer``, ``nats`` (I_eff), ``bits``, ``stderr`` [nats], ``estimator``, ``dim``
        (dim z), ``samples`` (draws per input)."""
        from .._base.frames import dataframe

        bits = self.bits
        return dataframe(
            [
                {
                    "layer": k,
                    "nats": v,
                    "bits": bits[k],
                    "stderr": self.stderr[k],
                    "estimator": self.estimator[k],
                    "dim": self.dims[k],
                    "samples": self.samples[k],
                }
                for k, v in self.per_layer.items()
            ]
        )

    def __str__(self) -> str:
        lines = [f"effective information, nats (N = {self.n}, ceiling ln N = {self.ceiling:.4f})"]
        for k, v in self.per_layer.items():
            lines.append(
                f"  {k:<20} {v:10.4f} ± {self.stderr[k]:.2g}  ({self.estimator[k]}, dim z = {self.dims[k]})"
            )
        return "\n".join(lines)


def effective_information(
    model: nn.Module,
    data,
    posterior,
    layers=None,
    *,
    estimator: str = "auto",
    samples: int | None = None,
    seed: int = 0,
    batch_size: int = EFF_BATCH_SIZE,
    activation_variance: float = 0.0,
    input_entropy: float | None = None,
    progress: bool | None = None,
) -> EffectiveInformation:
    """I_eff(x; z) = I(X; Z) of the noisy activations of ``layers``, X uniform over the inputs of ``data`` (nats).

    Parameters
    ----------
    model : the network, in eval mode; its current weights are w*.
    data : ``(X, Y)`` tensors, a DataLoader of ``(x, y)`` batches, or a tensor ``X`` (labels are not used).
    posterior : an ``InformationResult`` or a dict {parameter name: variance}; its variances Σ are the weight noise.
    layers : ``None`` (the model's output, key ``"output"``), a module name, or a list of them (``None`` or
        ``"output"``, when no module has that name, stand for the output).
    estimator : ``"auto"`` (= ``"gaussian"``), ``"gaussian"``, ``"mc"`` or ``"brunel-nadal"`` (module docstring).
    samples : draws of z per input (≥ 2); default 32 for ``"gaussian"``, max(64, 4·dim z) for ``"mc"``.
    seed : seed of the draws. batch_size : inputs per Jacobian / sampling pass (the result does not depend on it
        except through the order of random draws); the Jacobians of a batch are taken in chunks of at most
        512 MiB (:meth:`~.channel.Channel.chunk_size`), counting only the noisy weights acting before the layer.
    activation_variance : ν ≥ 0, variance of isotropic noise added to z (a lower bound; for singular Σ_z).
    input_entropy : h(X), the differential entropy of the input law in nats; required by ``"brunel-nadal"`` only.
    progress : progress bar (None: only on a terminal).

    Cost: ``"gaussian"`` / ``"mc"`` evaluate N² · samples Gaussian log-densities in dimension dim z (O(dim z²)
    each) and hold N · dim z² numbers; Jacobians take min(batch_size, chunk) · dim z · k numbers, k the noisy
    weights acting before the layer (one example above 4 GiB: :class:`~.channel.JacobianMemoryError`).

    Raises ``ValueError`` for an unknown layer or estimator, a posterior that does not match the model, empty data
    or data with NaN/Inf, a layer no noisy weight acts before, a Jacobian over the memory limit, a singular Σ_z (see ``activation_variance``), and for ``"brunel-nadal"`` a missing
    ``input_entropy`` or dim z < dim x.
    """
    estimator = check_choice("estimator", estimator, ESTIMATORS)
    resolved = "gaussian" if estimator == "auto" else estimator
    batch_size = check_int("batch_size", batch_size, 1)
    seed = check_int("seed", seed)
    nu = check_positive("activation_variance", activation_variance, allow_zero=True)
    if samples is not None:
        samples = check_int("samples", samples, 2)
    if resolved == "brunel-nadal":
        if input_entropy is None:
            raise ValueError(
                "estimator='brunel-nadal' needs input_entropy= (h(X), the differential entropy of the continuous "
                "input law, nats): Eq 10 is for continuous x, and the empirical distribution's ln N is a discrete "
                "entropy that cannot stand in for it"
            )
        input_entropy = float(input_entropy)
        if not math.isfinite(input_entropy):
            raise ValueError(f"input_entropy must be finite, got {input_entropy!r}")
    elif input_entropy is not None:
        raise ValueError(
            f"input_entropy is used by estimator='brunel-nadal' only (got estimator={estimator!r})"
        )
    names = _layer_names(model, layers)
    channels = {key: Channel.of(model, posterior, layer) for key, layer in names.items()}
    param = next(model.parameters())
    device = param.device
    x = _inputs(data, device, param.dtype)
    if len(x):  # only the noisy weights acting before the layer (the others give zero columns of J)
        channels = {
            k: reaching(ch, x, f"effective_information, layer {k!r}") for k, ch in channels.items()
        }

    n, rows = len(x), None
    if dist.world_size() > 1:  # this rank's components lo … hi − 1 of the N over all ranks
        counts = dist.shard_counts(len(x))
        n, lo = sum(counts), sum(counts[: dist.rank()])
        rows = (lo, lo + len(x))
    out, err, dims, draws = {}, {}, {}, {}
    disable = None if progress is None else not progress
    with tqdm(total=len(x) * len(names), desc="I_eff", disable=disable, leave=False) as bar:
        for key, ch in channels.items():
            dims[key] = d = ch.dim(x)
            gen = torch.Generator(device=device).manual_seed(seed)
            s = 0 if resolved == "brunel-nadal" else samples or _default_samples(resolved, d)
            draws[key] = s
            try:
                if resolved == "brunel-nadal":
                    out[key], err[key] = _brunel_nadal(
                        ch, x, nu, batch_size, input_entropy, key, bar
                    )
                    continue
                if resolved == "gaussian":
                    mix = _linearised(ch, x, nu, batch_size, key)
                    terms = mixture_terms(mix, s, gen, bar=bar, rows=rows)
                else:
                    g = dist.rank_generator(gen)  # draws of the weights per rank
                    mix, z = _moment_matched(ch, x, nu, s, g, batch_size, key)
                    terms = mixture_terms(mix, z=z, bar=bar, rows=rows)
            except SingularCovarianceError as e:
                raise ValueError(f"{e}. {_singular_hint(ch, x, d, resolved, s)}") from None
            out[key], err[key] = _stratified(terms, n)
    return EffectiveInformation(
        per_layer=out,
        stderr=err,
        estimator={k: resolved for k in names},
        dims=dims,
        samples=draws,
        n=n,
        seed=seed,
        activation_variance=nu,
        input_entropy=input_entropy,
    )


# -- inputs -----------------------------------------------------------------------------------------------


def _layer_names(model: nn.Module, layers) -> dict[str, str | None]:
    """{result key: module name or None (the output)}."""
    if layers is None or isinstance(layers, str):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise ValueError(
            "layers is empty: pass None (the output), a module name or a list of names"
        )
    modules = {n for n, _ in model.named_modules() if n}
    out: dict[str, str | None] = {}
    for name in layers:
        if name is not None and not isinstance(name, str):
            raise TypeError(
                f"layers must hold module names (str) or None, got {type(name).__name__}"
            )
        if name is None or (name == "output" and name not in modules):
            out["output"] = None
        else:
            out[name] = name
    return out


def _inputs(data, device, dtype) -> torch.Tensor:
    """All inputs of ``data`` (validated: finite, non-empty) as one tensor on ``device`` (floats in ``dtype``)."""
    if isinstance(data, torch.Tensor):
        data = (data, torch.zeros(data.shape[0] if data.ndim else 0))
    x = torch.cat([x for x, _ in iter_batches(data, batch_size=1024)])
    return x.to(device=device, dtype=dtype) if x.is_floating_point() else x.to(device)


def _stratified(terms: torch.Tensor, n: int) -> tuple[float, float]:
    """:func:`~.mixture.stratified_mean` of the terms (N, S); under a process group each rank holds its
    components' rows and the sums are reduced (the union's N)."""
    if dist.world_size() == 1:
        return stratified_mean(terms)
    s = terms.shape[1]
    red = dist.reduce_sums({"t": terms.sum(), "v": terms.var(dim=1, unbiased=True).sum()})
    return float(red["t"]) / (n * s), math.sqrt(float(red["v"]) / s) / n


def _default_samples(estimator: str, d: int) -> int:
    return DEFAULT_SAMPLES if estimator == "gaussian" else max(64, 4 * d)


def _singular_hint(ch: Channel, x: torch.Tensor, d: int, estimator: str, s: int) -> str:
    """Why Σ_z may be singular and what to do (counts the noisy weights that reach the layer, one example)."""
    jac = ch.jacobians(x[:1])
    k = sum(int(((j[0] != 0).any(0) & (ch.var[n].reshape(-1) > 0)).sum()) for n, j in jac.items())
    why = f"{k} noisy weight(s) reach it, so rank Σ_z ≤ {k} < dim z = {d}; " if k < d else ""
    if estimator == "mc" and s <= d:
        why += f"{s} draws give a fitted covariance of rank ≤ {s - 1} < dim z = {d}; "
    elif estimator != "mc":
        why += (
            "z | x lies on a subspace, components on different subspaces are mutually singular "
            "and I_eff is degenerate; "
        )
    more = ", more samples (> dim z)" if estimator == "mc" else ""
    return (
        f"{why}put noise on more weights, choose another layer{more}, or pass activation_variance > 0 "
        "(I(X; Z + ε) ≤ I(X; Z): a lower bound)"
    )


def _eye(d: int, nu: float, device) -> torch.Tensor:
    return nu * torch.eye(d, dtype=torch.float64, device=device)


# -- the estimators ----------------------------------------------------------------------------------------


def _linearised(ch: Channel, x, nu, batch_size, key) -> GaussianMixture:
    """The linearised channel's components N(μ(x_i), Σ_z(x_i) + νI)."""
    mus, covs = [], []
    for a in range(0, len(x), batch_size):
        xb = x[a : a + batch_size]
        mus.append(ch.mean(xb).double())
        covs.append(ch.covariances(xb))
    cov = torch.cat(covs) + _eye(mus[0].shape[1], nu, x.device)
    what = f"layer {key!r}: Σ_z(x)" + (" + νI" if nu else "")
    return _mixture(torch.cat(mus), cov, what)


def _mixture(mus: torch.Tensor, cov: torch.Tensor, what: str) -> GaussianMixture:
    """The mixture of the components; under a process group those of every rank, in rank order (gathered)."""
    if dist.world_size() > 1:
        mus, cov = dist.all_gather_rows(mus), dist.all_gather_rows(cov)
    return GaussianMixture.from_covariances(mus, cov, what)


def _moment_matched(ch: Channel, x, nu, s, gen, batch_size, key):
    """Gaussians fitted to ``s`` weight draws per input, and ``s`` fresh draws (N, s, d) to evaluate them."""
    mus, covs, zs = [], [], []
    for a in range(0, len(x), batch_size):
        xb = x[a : a + batch_size]
        fit = ch.sample(xb, s, gen).double()  # (s, b, d)
        mu = fit.mean(0)
        c = fit - mu
        mus.append(mu)
        covs.append(torch.einsum("sbd,sbe->bde", c, c) / (s - 1))
        z = ch.sample(xb, s, gen).double().transpose(0, 1)  # (b, s, d)
        if nu:
            z = z + math.sqrt(nu) * torch.randn(
                z.shape, generator=gen, dtype=z.dtype, device=z.device
            )
        zs.append(z)
    cov = torch.cat(covs) + _eye(mus[0].shape[1], nu, x.device)
    what = f"layer {key!r}: the covariance of z fitted to {s} weight draws" + (
        " + νI" if nu else ""
    )
    return _mixture(torch.cat(mus), cov, what), torch.cat(zs)


def _brunel_nadal(ch: Channel, x, nu, batch_size, h, key, bar) -> tuple[float, float]:
    """h(X) − E_x[½ ln((2πe)^{dim x} / |∇_xμᵀ (Σ_z + νI)⁻¹ ∇_xμ|)] and the standard error of E_x."""
    dx, dz = x[0].numel(), ch.dim(x)
    if dz < dx:
        raise ValueError(
            f"estimator='brunel-nadal' needs dim z ≥ dim x, but layer {key!r} is compressive: dim z = {dz} < "
            f"dim x = {dx}, so |F_z|x| = 0 and Eq 10 gives −∞; use estimator='gaussian'"
        )
    terms = []
    for a in range(0, len(x), batch_size):
        xb = x[a : a + batch_size]
        cov = ch.covariances(xb) + _eye(dz, nu, x.device)
        mix = GaussianMixture.from_covariances(
            ch.mean(xb).double(), cov, f"layer {key!r}: Σ_z(x)" + (" + νI" if nu else "")
        )
        white = torch.linalg.solve_triangular(mix.chol, ch.input_jacobians(xb), upper=False)
        fisher = white.transpose(1, 2) @ white  # ∇_xμᵀ Σ_z⁻¹ ∇_xμ, (b, dx, dx)
        chol, info = torch.linalg.cholesky_ex(fisher)
        piv = chol.diagonal(dim1=1, dim2=2).square().amin(1)
        bad = (info > 0) | ~(piv > 1e-12 * fisher.diagonal(dim1=1, dim2=2).amax(1))
        if bool(bad.any()):
            i = a + int(bad.nonzero()[0])
            raise ValueError(
                f"estimator='brunel-nadal': F_z|x is singular at input {i} of layer {key!r} (∇_x μ has rank "
                f"< dim x = {dx}), so Eq 10 gives −∞"
            )
        logdet = 2 * chol.diagonal(dim1=1, dim2=2).log().sum(1)
        terms.append(h - 0.5 * (dx * math.log(2 * math.pi * math.e) - logdet))
        bar.update(len(xb))
    t = torch.cat(terms)
    if dist.world_size() > 1:  # two passes over the union: the global mean, then Σ (t − mean)²
        red = dist.reduce_sums({"t": t.sum(), "n": len(t)})
        n, mean = red["n"], float(red["t"]) / red["n"]
        sq = float(dist.all_reduce_sum(((t - mean) ** 2).sum()))
        return mean, (math.sqrt(sq / (n - 1)) / math.sqrt(n) if n > 1 else float("nan"))
    se = float(t.std(unbiased=True)) / math.sqrt(len(t)) if len(t) > 1 else float("nan")
    return float(t.mean()), se
