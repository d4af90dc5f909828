"""Build reference networks by name: ``build_model(name, input_shape, n_classes, **kwargs)``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from torch import nn

from .allcnn import AllCNN
from .lenet import LeNet
from .mlp import MLP
from .resnet import ResNet18

_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "mlp": MLP,
    "lenet": LeNet,
    "allcnn": AllCNN,
    "resnet18": ResNet18,
}

#: Names accepted by :func:`build_model`.
MODELS: tuple[str, ...] = tuple(_BUILDERS)


def build_model(name: str, input_shape: Sequence[int], n_classes: int, **kwargs) -> nn.Module:
    """Build the reference network ``name`` (one of :data:`MODELS`) for the given data shape.

    ``input_shape`` is the per-sample shape (no batch dimension), ``n_classes`` the number of
    outputs; ``kwargs`` go to the model's constructor (e.g. ``widths`` for ``mlp``, ``width`` for
    ``allcnn``/``resnet18``). Weights are drawn from torch's global RNG: seed it for a
    reproducible initialisation.

    >>> build_model("mlp", (1, 8, 8), 10, widths=(32,)).layers[0].weight.shape
    torch.Size([32, 64])
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown model={name!r}; expected one of {', '.join(map(repr, MODELS))}")
    try:
        return _BUILDERS[name](tuple(input_shape), n_classes, **kwargs)
    except TypeError as e:
        if "unexpected keyword argument" in str(e):
            raise TypeError(f"model {name!r}: {e}") from None
        raise


def count_parameters(model: nn.Module, *, trainable_only: bool = True) -> int:
    """Number of scalar parameters in ``model`` (only ``requires_grad`` ones by default)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class ModelSuggestion(NamedTuple):
    """A model name and constructor kwargs suggested for a dataset."""

    name: str
    kwargs: dict


_DEFAULTS: dict[str, ModelSuggestion] = {
    "digits": ModelSuggestion("mlp", {"widths": (256, 256)}),
    "mnist": ModelSuggestion("lenet", {}),
    "fashion-mnist": ModelSuggestion("lenet", {}),
    "mnist1d": ModelSuggestion("mlp", {"widths": (100, 100)}),
    "two-moons": ModelSuggestion("mlp", {"widths": (64, 64)}),
}


def default_model_for(dataset_name: str) -> ModelSuggestion:
    """Suggest a small reference model for ``dataset_name`` (``binary-<name>`` as for ``<name>``).

    >>> default_model_for("digits")
    ModelSuggestion(name='mlp', kwargs={'widths': (256, 256)})
    """
    base = dataset_name.removeprefix("binary-")
    if base not in _DEFAULTS:
        known = ", ".join(map(repr, _DEFAULTS))
        raise ValueError(f"no default model for dataset {dataset_name!r}; known: {known}")
    s = _DEFAULTS[base]
    return ModelSuggestion(s.name, dict(s.kwargs))
