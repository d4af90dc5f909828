"""Information in the weights: the Lagrangian C_β = E_Q[L_D] + β·KL(Q‖P), its optimum and where it sits.

Entry point :func:`information` (Fisher-form closed forms or the variational estimator); the result
:class:`InformationResult` carries the total in nats, per-parameter / per-filter / per-layer maps and the
settings. Conventions: L_D is the mean per-sample loss, β is per sample, units are nats.
"""

from .estimate import information
from .result import InformationResult, InformationTable

__all__ = ["information", "InformationResult", "InformationTable"]
