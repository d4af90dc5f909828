"""Validation of the ``input_shape`` / ``n_classes`` pair every reference network is built from."""

from __future__ import annotations

from collections.abc import Sequence


def check_n_classes(n_classes: int) -> int:
    """Return ``n_classes`` as an int, raising ``ValueError`` unless it is >= 1."""
    if isinstance(n_classes, bool) or int(n_classes) != n_classes or int(n_classes) < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    return int(n_classes)


def check_input_shape(input_shape: Sequence[int]) -> tuple[int, ...]:
    """Return the per-sample ``input_shape`` as a tuple of positive ints (no batch dimension)."""
    try:
        shape = tuple(int(s) for s in input_shape)
    except TypeError:
        raise TypeError(f"input_shape must be a sequence of ints, got {input_shape!r}") from None
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"input_shape must be non-empty with positive sizes, got {input_shape!r}")
    return shape


def check_image_shape(
    model: str, input_shape: Sequence[int], *, min_size: int = 1
) -> tuple[int, int, int]:
    """Return ``(C, H, W)`` for a convolutional network, or raise a ``ValueError`` naming ``model``.

    ``min_size`` is the smallest height/width the network's downsampling can handle.
    """
    shape = check_input_shape(input_shape)
    if len(shape) != 3:
        raise ValueError(
            f"{model} expects image inputs with per-sample shape (channels, height, width), "
            f"got {shape}; use 'mlp' for flat inputs"
        )
    if min(shape[1:]) < min_size:
        raise ValueError(
            f"{model} needs images of at least {min_size}x{min_size}, got {shape[1]}x{shape[2]}"
        )
    return shape  # type: ignore[return-value]


def scale_width(channels: int, width: float) -> int:
    """``channels * width`` rounded, at least 1: the channel count of a width-scaled layer."""
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width!r}")
    return max(1, int(round(channels * width)))
