"""Nuisance transforms: identity at θ = 0, their own derivative, geometry, and the checks."""

from __future__ import annotations

import math

import pytest
import torch

from weightinfo.activations.nuisances import (
    IMAGE_ONLY,
    NUISANCES,
    NuisanceError,
    apply_nuisance,
    check_nuisance,
    get_nuisance,
    nuisance_tangent,
)


def _images(n=3, c=2, h=7, w=8, seed=0):
    return torch.rand(
        n, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )


@pytest.mark.parametrize("name", NUISANCES)
def test_identity_at_zero_and_own_derivative(name):
    x = _images()
    g = get_nuisance(name)
    assert torch.equal(g(x, 0.0), x)
    tangent = check_nuisance(name, x)
    h = 1e-6
    fd = (g(x, h) - g(x, -h)) / (2 * h)
    # bicubic resampling (rotate, scale) is C¹ with a jump in the second derivative at θ = 0: FD error O(h)
    assert float((fd - tangent).abs().max()) <= 1e-4 * float(tangent.abs().max())
    assert float(tangent.abs().max()) > 0


@pytest.mark.parametrize("name", ["brightness", "contrast", "gaussian-noise"])
def test_vector_nuisances(name):
    x = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    g = get_nuisance(name)
    assert torch.equal(g(x, 0.0), x)
    tangent = check_nuisance(name, x)
    fd = (g(x, 1e-6) - g(x, -1e-6)) / 2e-6
    assert torch.allclose(fd, tangent, atol=1e-8)


def test_translation_by_whole_pixels_is_a_roll():
    x = _images()
    tx, ty = get_nuisance("translate-x"), get_nuisance("translate-y")
    rolled = torch.roll(x, 1, dims=-1)
    assert torch.allclose(tx(x, 1.0)[..., 1:-1], rolled[..., 1:-1], atol=1e-12)  # interior pixels
    assert torch.allclose(tx(x, 1.0), rolled, atol=1e-12)  # periodic boundary: every pixel
    assert torch.allclose(ty(x, -2.0), torch.roll(x, -2, dims=-2), atol=1e-12)
    # sub-pixel shifts compose along an odd size: two half-pixel shifts are one pixel
    x7 = _images(w=7)
    assert torch.allclose(tx(tx(x7, 0.5), 0.5), torch.roll(x7, 1, dims=-1), atol=1e-12)
    # the image mean is invariant (periodic, band-limited shift)
    assert torch.allclose(tx(x, 0.3).mean((1, 2, 3)), x.mean((1, 2, 3)), atol=1e-14)


def test_rotation_direction_and_scale():
    x = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    x[0, 0, 2, 3] = 1.0  # right of the centre
    y = get_nuisance("rotate")(x, math.pi / 2)
    assert abs(float(y[0, 0, 3, 2]) - 1.0) < 1e-12  # now below the centre
    x = _images(h=5, w=5)
    assert torch.allclose(
        get_nuisance("rotate")(x, math.pi / 2), torch.rot90(x, -1, (-2, -1)), atol=1e-12
    )
    # scale by e^θ = 2: the pixel one column right of the centre lands two columns right of it
    x = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    x[0, 0, 2, 3] = 1.0
    assert abs(float(get_nuisance("scale")(x, math.log(2))[0, 0, 2, 4]) - 1.0) < 1e-12


def test_contrast_keeps_the_mean_and_scales_deviations():
    x = _images()
    y = get_nuisance("contrast")(x, math.log(3.0))
    m = x.mean((1, 2, 3), keepdim=True)
    assert torch.allclose(y, m + 3.0 * (x - m), atol=1e-12)


def test_gaussian_noise_direction_is_fixed_per_example():
    x = _images(n=4)
    e = nuisance_tangent("gaussian-noise", x)
    assert torch.equal(nuisance_tangent("gaussian-noise", x[[3, 1]]), e[[3, 1]])
    other = nuisance_tangent(get_nuisance("gaussian-noise", seed=1), x)
    assert not torch.allclose(other, e)
    assert torch.equal(apply_nuisance("gaussian-noise", x, 0.5), x + 0.5 * e)
    assert 0.7 < float(e.std()) < 1.3


@pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad")
def test_errors():
    x = _images()
    with pytest.raises(NuisanceError, match="unknown nuisance"):
        get_nuisance("shear")
    for name in IMAGE_ONLY:
        with pytest.raises(NuisanceError, match="image batches"):
            check_nuisance(name, torch.randn(3, 5))
    with pytest.raises(NuisanceError, match="not the identity"):
        check_nuisance(lambda x, t: x + 1e-3 + t, x)
    check_nuisance(lambda x, t: x * (1 + 1e-8) + t, x)  # within 1e-6 relative
    with pytest.raises(NuisanceError, match="does not move"):
        check_nuisance(lambda x, t: x + 0 * t, x)
    with pytest.raises(NuisanceError, match="does not move"):
        check_nuisance(lambda x, t: x + float(t), x)  # θ detached
    with pytest.raises(NuisanceError, match="not finite"):
        check_nuisance(lambda x, t: x + torch.sqrt(t), x)
    with pytest.raises(NuisanceError, match="shaped like x"):
        check_nuisance(lambda x, t: (x + t)[:1], x)
