"""Input validation shared by every public entry point.

Every check raises ``ValueError`` (or ``TypeError`` for wrong kinds of object) with a message that names the
offending parameter, layer or batch: weightinfo never returns a silent NaN.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

# Modules whose training-mode forward differs from eval mode: curvature of a model left in training mode
# would mix batch statistics or dropout noise into every per-sample quantity.
_MODE_DEPENDENT = (nn.modules.batchnorm._BatchNorm, nn.modules.dropout._DropoutNd, nn.AlphaDropout)


def check_choice(name: str, value: str, allowed: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``allowed``; otherwise raise a ``ValueError`` naming both."""
    if value not in allowed:
        raise ValueError(
            f"unknown {name}={value!r}; expected one of {', '.join(map(repr, allowed))}"
        )
    return value


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> float:
    """Raise unless ``value`` is a finite number > 0 (or >= 0 with ``allow_zero``)."""
    v = float(value)
    if not (v == v and abs(v) != float("inf")) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return v


def check_momentum(name: str, value) -> float:
    """Raise unless ``value`` is an SGD momentum in [0, 1) (heavy ball diverges for μ ≥ 1); return it."""
    v = float(value)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
    return v


def check_int(name: str, value, minimum: int | None = None) -> int:
    """Raise unless ``value`` is an integer (not a bool; 3.0 is accepted) and ``>= minimum``; return it.

    Anything else (None, a string, NaN, ±Inf) is a ``ValueError`` naming ``name`` too.
    """
    try:
        integral = not isinstance(value, (bool, str)) and int(value) == value
    except (TypeError, ValueError, OverflowError):  # None, NaN, ±Inf, other objects
        integral = False
    if not integral or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ValueError(f"{name} must be an integer{bound}, got {value!r}")
    return int(value)


def check_finite_tensor(name: str, t: torch.Tensor) -> None:
    """Raise if ``t`` holds NaN or Inf (only floating tensors can)."""
    if t.is_floating_point() or t.is_complex():
        if not bool(torch.isfinite(t).all()):
            n_bad = int((~torch.isfinite(t)).sum())
            raise ValueError(f"{name} contains {n_bad} NaN/Inf value(s)")


def check_model(model: nn.Module) -> None:
    """Check that ``model`` is an ``nn.Module`` with finite parameters, in eval mode where it matters.

    Raises
    ------
    TypeError
        If ``model`` is not an ``nn.Module``.
    ValueError
        If a parameter holds NaN/Inf (named), the model has no trainable parameter, or a BatchNorm/Dropout
        module is in training mode (named: call ``model.eval()`` first).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    n = 0
    for name, p in model.named_parameters():
        if p.requires_grad:
            n += 1
            check_finite_tensor(f"parameter {name!r}", p.detach())
    if n == 0:
        raise ValueError("model has no parameter with requires_grad=True")
    for name, m in model.named_modules():
        if isinstance(m, _MODE_DEPENDENT) and m.training:
            raise ValueError(
                f"module {name or '<root>'!r} ({type(m).__name__}) is in training mode; its output depends on "
                "the batch or on random dropout masks. Call model.eval() before measuring curvature."
            )


def named_trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    """Trainable parameters keyed exactly like ``model.named_parameters()``."""
    return {k: p for k, p in model.named_parameters() if p.requires_grad}


def as_list(x: Iterable) -> list:
    return list(x)
