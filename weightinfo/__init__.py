"""weightinfo: where is the information in a deep neural network (Achille, Paolini & Soatto, 2019).

Conventions everywhere: information in nats (bits only on request); L_D is the **mean** per-sample loss and
every curvature matrix (Fisher, GGN, Hessian) is a **mean** over samples.
"""

from . import bounds
from ._base.version import __version__
from .activations import EffectiveInformation, activation_fisher, effective_information
from .certificates import (
    Certificate,
    MonteCarloOptions,
    PosteriorOptions,
    PriorOptions,
    certify,
)
from .checkpoint import load_checkpoint, save_checkpoint, train_or_load
from .curvature import (
    Curvature,
    CurvatureOperator,
    Estimate,
    fisher,
    ggn,
    hessian,
    hutchinson_diagonal,
    hutchinson_trace,
    slq_logdet,
    top_eigenvalues,
)
from .data import Dataset, corrupt_labels, first_classes, load_dataset
from .dynamics import Tracker, shannon_information
from .iw import (
    InformationCurve,
    InformationResult,
    LagrangianResult,
    information,
    information_curve,
    lagrangian,
)
from .models import ModelAdapter, adapt, build_model
from .posterior import DiagGaussian, GaussianPrior, make_prior
from .training import evaluate, train

__all__ = [
    "__version__",
    "bounds",
    "activation_fisher",
    "certify",
    "Certificate",
    "PriorOptions",
    "PosteriorOptions",
    "MonteCarloOptions",
    "fisher",
    "ggn",
    "hessian",
    "Curvature",
    "CurvatureOperator",
    "Estimate",
    "hutchinson_trace",
    "hutchinson_diagonal",
    "slq_logdet",
    "top_eigenvalues",
    "information",
    "information_curve",
    "shannon_information",
    "effective_information",
    "EffectiveInformation",
    "lagrangian",
    "InformationResult",
    "InformationCurve",
    "LagrangianResult",
    "make_prior",
    "GaussianPrior",
    "DiagGaussian",
    "load_dataset",
    "Dataset",
    "corrupt_labels",
    "first_classes",
    "build_model",
    "adapt",
    "ModelAdapter",
    "train",
    "Tracker",
    "evaluate",
    "load_checkpoint",
    "save_checkpoint",
    "train_or_load",
]
