"""Named nuisance transforms x ↦ g(x, θ) of input batches, differentiable in a scalar θ, with g(x, 0) = x.

A nuisance is a one-parameter family of input transformations; the activation Fisher (:mod:`.fisher`) measures
how much the noisy activations of a layer tell about θ at θ = 0. Names (:data:`NUISANCES`):

========================  ============================================================================  =========
name                      g(x, θ)                                                                        inputs
========================  ============================================================================  =========
``"translate-x"``         content moved θ pixels to the right (columns): g(x, θ)[u] = x[u − θ]          images
``"translate-y"``         content moved θ pixels down (rows)                                             images
``"rotate"``              content rotated by θ radians about the centre, from +x (right) to +y (down)   images
``"scale"``               content magnified by the factor e^θ about the image centre                     images
``"brightness"``          x + θ                                                                           any
``"contrast"``            m + e^θ (x − m), m the mean of each example over all its entries               any
``"gaussian-noise"``      x + θ ε, ε a fixed standard normal draw per example (below)                    any
========================  ============================================================================  =========

Images are batches ``(N, C, H, W)``; the image-only nuisances refuse any other shape (:class:`NuisanceError`).
Any callable ``(x, θ) -> x'`` (θ a 0-dim tensor of ``x``'s dtype) is accepted as well.

**Boundaries.** ``translate-x`` / ``translate-y`` are *Fourier* (band-limited) shifts along one axis: the image is
treated as **periodic** (content leaving one edge re-enters at the other), a shift by an integer number of
pixels is exactly ``torch.roll`` of every pixel, sub-pixel shifts are trigonometric interpolation (smooth in θ,
which bilinear interpolation is not: it has a kink at every integer shift, θ = 0 included), and the image mean is
exactly invariant. For an even size the Nyquist component is multiplied by cos(πθ) (the shifted image stays
real), so sub-pixel shifts compose exactly (s then t = s + t) only along odd sizes. ``rotate`` / ``scale``
resample with ``grid_sample`` in **bicubic** mode (C¹ in the sampling position, so d/dθ at θ = 0 exists and
equals the two-sided limit; bilinear would give a one-sided derivative) with **zero padding** (pixels brought in
from outside the image are 0; ``align_corners=True``: the centre is ((W − 1)/2, (H − 1)/2) in pixels). Their
second derivative in θ jumps at θ = 0, so a central difference with step h agrees with the exact derivative to
O(h) only (1e-6 relative at h = 1e-6).

**Exact identity.** Every named transform is written as x + (change that is exactly 0 at θ = 0), so
g(x, 0) == x bit for bit (e.g. ``rotate`` is x + W_θ x − W_0 x with W the resampling, W_0 x = x to rounding).

**gaussian-noise.** ε is drawn per example from a generator seeded by a CRC-32 of ``seed`` and the example's
values (in float64): the same example gets the same ε in every batch, order and batch size, so θ ↦ x + θε is
one fixed smooth direction per example (θ is the noise standard deviation). ``get_nuisance("gaussian-noise",
seed=s)`` picks another direction.

:func:`check_nuisance` checks a nuisance on a batch and returns its tangent ∂_θ g(x, θ)|₀ (exact autodiff:
forward mode, or reverse-over-reverse for operations without forward mode such as ``grid_sample``).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable

import torch
from torch.autograd import forward_ad as fwAD
from torch.nn import functional as F

__all__ = [
    "NUISANCES",
    "NuisanceError",
    "apply_nuisance",
    "check_nuisance",
    "get_nuisance",
    "nuisance_name",
    "nuisance_tangent",
]

NUISANCES = (
    "translate-x",
    "translate-y",
    "rotate",
    "scale",
    "brightness",
    "contrast",
    "gaussian-noise",
)
IMAGE_ONLY = ("translate-x", "translate-y", "rotate", "scale")
IDENTITY_RTOL = 1e-6


class NuisanceError(ValueError):
    """A nuisance that is unknown, does not apply to the input, is not the identity at θ = 0, or has no usable
    (finite, non-zero) derivative in θ."""


def _theta(theta, x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(theta, dtype=x.dtype, device=x.device)


def _image(name: str, x: torch.Tensor) -> None:
    if x.ndim != 4:
        raise NuisanceError(
            f"nuisance {name!r} acts on image batches (N, C, H, W); got an input of shape {tuple(x.shape)} "
            "(vector inputs take 'brightness', 'contrast', 'gaussian-noise' or a callable)"
        )
    if name in ("rotate", "scale") and min(x.shape[-2:]) < 2:
        raise NuisanceError(
            f"nuisance {name!r} needs images of at least 2x2 pixels, got {tuple(x.shape)}"
        )


def _fourier_shift(x: torch.Tensor, theta: torch.Tensor, dim: int) -> torch.Tensor:
    """x shifted by θ samples along ``dim`` (periodic, band-limited); exactly x at θ = 0."""
    n = x.shape[dim]
    spec = torch.fft.rfft(x, dim=dim)
    shape = [1] * x.ndim
    shape[dim] = spec.shape[dim]
    k = torch.arange(spec.shape[dim], dtype=x.dtype, device=x.device).reshape(shape)
    angle = -2.0 * math.pi * k * theta / n
    return x + torch.fft.irfft(
        spec * torch.complex(torch.cos(angle) - 1, torch.sin(angle)), n=n, dim=dim
    )


def _warp(x: torch.Tensor, theta: torch.Tensor, kind: str) -> torch.Tensor:
    """Bicubic resampling about the centre: rotation by θ or magnification by e^θ; exactly x at θ = 0."""
    h, w = x.shape[-2:]
    rows = torch.arange(h, dtype=x.dtype, device=x.device) - (h - 1) / 2
    cols = torch.arange(w, dtype=x.dtype, device=x.device) - (w - 1) / 2
    py, px = torch.meshgrid(rows, cols, indexing="ij")

    def grid(t):  # source pixel of every output pixel, normalised to [-1, 1] (align_corners=True)
        if kind == "rotate":  # inverse rotation R(−t)
            c, s = torch.cos(t), torch.sin(t)
            sx, sy = c * px + s * py, -s * px + c * py
        else:  # inverse magnification e^{−t}
            sx, sy = torch.exp(-t) * px, torch.exp(-t) * py
        g = torch.stack((sx / ((w - 1) / 2), sy / ((h - 1) / 2)), dim=-1)
        return g.unsqueeze(0).expand(x.shape[0], h, w, 2)

    def sample(t):
        return F.grid_sample(x, grid(t), mode="bicubic", padding_mode="zeros", align_corners=True)

    return x + (sample(theta) - sample(torch.zeros_like(theta)))


def _noise_direction(x: torch.Tensor, seed: int) -> torch.Tensor:
    rows = []
    for xi in x.detach().to("cpu", torch.float64):
        crc = zlib.crc32(
            xi.contiguous().numpy().tobytes(), zlib.crc32(f"seed={int(seed)}".encode())
        )
        gen = torch.Generator().manual_seed(crc)
        rows.append(torch.randn(xi.shape, generator=gen, dtype=torch.float64))
    return torch.stack(rows).to(device=x.device, dtype=x.dtype)


def _make(name: str, seed: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def fn(x: torch.Tensor, theta) -> torch.Tensor:
        t = _theta(theta, x)
        if name in IMAGE_ONLY:
            _image(name, x)
        if name == "translate-x":
            return _fourier_shift(x, t, -1)
        if name == "translate-y":
            return _fourier_shift(x, t, -2)
        if name in ("rotate", "scale"):
            return _warp(x, t, name)
        if name == "brightness":
            return x + t
        if name == "contrast":
            m = x.reshape(x.shape[0], -1).mean(1).reshape((-1,) + (1,) * (x.ndim - 1))
            return x + torch.expm1(t) * (x - m)
        return x + t * _noise_direction(x, seed)  # gaussian-noise

    fn.__name__ = name
    fn.nuisance_name = name
    return fn


def get_nuisance(
    nuisance, *, seed: int = 0
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The transform ``(x, θ) -> x'`` of a name of :data:`NUISANCES`, or ``nuisance`` itself if callable.

    ``seed`` chooses the fixed direction ε of ``"gaussian-noise"`` (ignored by the others).
    """
    if callable(nuisance):
        return nuisance
    if not isinstance(nuisance, str) or nuisance not in NUISANCES:
        raise NuisanceError(
            f"unknown nuisance {nuisance!r}; expected one of {', '.join(map(repr, NUISANCES))} "
            "or a callable (x, theta) -> x'"
        )
    return _make(nuisance, seed)


def nuisance_name(nuisance) -> str:
    """A display name: the name itself, or the callable's ``nuisance_name`` / ``__name__``."""
    if isinstance(nuisance, str):
        return nuisance
    return str(
        getattr(nuisance, "nuisance_name", getattr(nuisance, "__name__", type(nuisance).__name__))
    )


def apply_nuisance(nuisance, x: torch.Tensor, theta) -> torch.Tensor:
    """g(x, θ) for a name or callable ``nuisance``."""
    return get_nuisance(nuisance)(x, _theta(theta, x))


def nuisance_tangent(nuisance, x: torch.Tensor) -> torch.Tensor:
    """∂_θ g(x, θ) at θ = 0 (shaped like ``x``), after checking g(x, 0) = x and that the derivative is finite.

    Forward mode (``torch.autograd.forward_ad``) when every operation supports it, else the exact reverse-over-reverse
    Jacobian-vector product (``torch.autograd.functional.jvp``; ``grid_sample`` has no forward mode).
    Raises :class:`NuisanceError` otherwise (named).
    """
    fn, name = get_nuisance(nuisance), nuisance_name(nuisance)
    x = x.detach()
    zero, one = _theta(0.0, x), _theta(1.0, x)
    try:
        with fwAD.dual_level():
            out, tangent = fwAD.unpack_dual(fn(x, fwAD.make_dual(zero, one)))
    except NuisanceError:
        raise
    except Exception:  # no forward-mode rule for some operation: exact double-backward JVP
        try:
            with torch.enable_grad():
                out, tangent = torch.autograd.functional.jvp(lambda t: fn(x, t), zero, one)
        except NuisanceError:
            raise
        except Exception as err:
            raise NuisanceError(f"nuisance {name!r} is not differentiable in theta: {err}") from err
    if not torch.is_tensor(out) or tuple(out.shape) != tuple(x.shape):
        shape = tuple(out.shape) if torch.is_tensor(out) else type(out).__name__
        raise NuisanceError(
            f"nuisance {name!r} must return a tensor shaped like x {tuple(x.shape)}, got {shape}"
        )
    out = out.detach()
    tangent = torch.zeros_like(x) if tangent is None else tangent.detach()  # None: g ignores θ
    # One host read for the three checks (each is a decision: raise or go on).
    scale, err, finite = (
        torch.stack(
            [
                x.abs().max().to(torch.float64),
                (out - x).abs().max().to(torch.float64),
                torch.isfinite(tangent).all().to(torch.float64),
            ]
        ).tolist()
        if x.numel()
        else (0.0, 0.0, 1.0)
    )
    if not err <= IDENTITY_RTOL * scale:
        raise NuisanceError(
            f"nuisance {name!r} is not the identity at theta = 0: max |g(x, 0) - x| = {err:.3g} > "
            f"{IDENTITY_RTOL:g} * max |x| = {IDENTITY_RTOL * scale:.3g}"
        )
    if not finite:
        raise NuisanceError(f"nuisance {name!r}: d/dtheta g(x, theta) at theta = 0 is not finite")
    return tangent


def check_nuisance(nuisance, x: torch.Tensor) -> torch.Tensor:
    """Check ``nuisance`` on the batch ``x`` and return its tangent ∂_θ g(x, θ)|₀; raise :class:`NuisanceError`.

    Checks: a known name (image-only names need ``(N, C, H, W)`` input); g(x, 0) = x within 1e-6 relative
    (max |g(x, 0) − x| ≤ 1e-6 · max |x|); the output is shaped like x; the derivative in θ exists (autodiff) and
    is finite; and it is **not zero on the whole batch**. A derivative that vanishes everywhere makes every
    Fisher identically 0, which is almost always a bug (a θ the callable ignores or detaches) rather than a
    measurement; it is refused too (also for a batch the nuisance cannot move, such as blank images under a
    translation).
    """
    tangent = nuisance_tangent(nuisance, x)
    if x.numel() and not bool((tangent != 0).any()):
        raise NuisanceError(
            f"nuisance {nuisance_name(nuisance)!r} does not move this batch: d/dtheta g(x, theta) = 0 at "
            "theta = 0 for every example (does the callable use theta, without detaching it?)"
        )
    return tangent
