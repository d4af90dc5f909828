"""Train/eval-mode helpers for networks with BatchNorm or Dropout.

BatchNorm (batch statistics) and Dropout (random masks) make a network's training-mode output
depend on the rest of the batch or on random draws. Curvature (Fisher, Hessian) and information in
the weights are defined for the deterministic function computed in **eval mode**, so every
measurement must run on ``model.eval()``; :func:`eval_mode` does that temporarily and restores each
module's own flag afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

_BATCHNORM = (nn.modules.batchnorm._BatchNorm,)
_DROPOUT = (nn.modules.dropout._DropoutNd, nn.AlphaDropout, nn.FeatureAlphaDropout)


def has_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` contains a BatchNorm layer (any dimension, including SyncBatchNorm)."""
    return any(isinstance(m, _BATCHNORM) for m in model.modules())


def has_dropout(model: nn.Module) -> bool:
    """Whether ``model`` contains a Dropout layer with a non-zero drop probability."""
    return any(isinstance(m, _DROPOUT) and getattr(m, "p", 0.0) > 0 for m in model.modules())


def is_mode_dependent(model: nn.Module) -> bool:
    """Whether ``model``'s output differs between train and eval mode (BatchNorm or Dropout)."""
    return has_batchnorm(model) or has_dropout(model)


def set_eval(model: nn.Module) -> nn.Module:
    """Put ``model`` in eval mode and return it (convenience for chaining)."""
    return model.eval()


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run the ``with`` body with ``model`` in eval mode, then restore every module's flag."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in flags:
            m.training = training
