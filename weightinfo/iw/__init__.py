"""Information in the weights: the Lagrangian C_β = E_Q[L_D] + β·KL(Q‖P), its optimum and where it sits.

Entry points: :func:`information` (Fisher-form closed forms or the variational estimator),
:func:`information_curve` (the loss-vs-information trade-off over β) and :func:`lagrangian` (C_β of any Gaussian
Q). Results carry totals in nats and per-parameter / per-filter / per-layer maps. Conventions: L_D is the mean
per-sample loss, β is per sample, units are nats.
"""

from .curve import InformationCurve, information_curve
from .estimate import information
from .objective import LagrangianResult, lagrangian
from .points import FisherOptions
from .result import InformationResult, InformationTable
from .variational_options import VariationalOptions

__all__ = [
    "information",
    "information_curve",
    "lagrangian",
    "InformationResult",
    "InformationTable",
    "InformationCurve",
    "LagrangianResult",
    "FisherOptions",
    "VariationalOptions",
]
