"""Reference networks (plain ``nn.Module`` subclasses) and a name-based registry.

``build_model(name, input_shape, n_classes, **kwargs)`` builds one of :data:`MODELS`:
``mlp`` (:class:`MLP`), ``lenet`` (:class:`LeNet`), ``allcnn`` (:class:`AllCNN`) and ``resnet18``
(:class:`ResNet18`). Networks with BatchNorm or Dropout must be measured in eval mode
(:func:`set_eval`, :func:`eval_mode`).
"""

from .adapter import ModelAdapter, adapt
from .allcnn import AllCNN
from .lenet import LeNet
from .mlp import MLP
from .modes import eval_mode, has_batchnorm, has_dropout, is_mode_dependent, set_eval
from .registry import MODELS, ModelSuggestion, build_model, count_parameters, default_model_for
from .resnet import ResNet18

__all__ = [
    "MODELS",
    "MLP",
    "AllCNN",
    "LeNet",
    "ModelAdapter",
    "ModelSuggestion",
    "adapt",
    "ResNet18",
    "build_model",
    "count_parameters",
    "default_model_for",
    "eval_mode",
    "has_batchnorm",
    "has_dropout",
    "is_mode_dependent",
    "set_eval",
]
