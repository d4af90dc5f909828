"""PAC-Bayes risk certificates of networks: ``weightinfo.certify(model, ...)`` → :class:`Certificate`.

See :mod:`weightinfo.certificates.certificate` (the two-step certificate), ``options`` (its option objects
:class:`PriorOptions`, :class:`PosteriorOptions`, :class:`MonteCarloOptions`), ``inputs`` (the data checks),
``selection`` (the declared set :data:`DEFAULT_SEARCH` of the automatic selection and its
:class:`Candidate`), ``posterior_fit`` (data-dependent prior and bound-driven posterior), ``risk`` (Monte Carlo Gibbs risk,
bounded cross-entropy) and ``record`` (what a certificate certifies, by content; :func:`verify_certificate`).
"""

from .certificate import Certificate, certify
from .options import (
    MC_ESTIMATORS,
    POSTERIORS,
    PRIORS,
    MonteCarloOptions,
    PosteriorOptions,
    PriorOptions,
)
from .posterior_fit import OBJECTIVES, fit_posterior, train_prior_mean
from .record import Verification
from .record import verify as verify_certificate
from .risk import P_MIN, bounded_ce
from .selection import DEFAULT_SEARCH, Candidate

__all__ = [
    "certify",
    "Certificate",
    "PriorOptions",
    "PosteriorOptions",
    "MonteCarloOptions",
    "Candidate",
    "DEFAULT_SEARCH",
    "PRIORS",
    "POSTERIORS",
    "MC_ESTIMATORS",
    "OBJECTIVES",
    "P_MIN",
    "bounded_ce",
    "fit_posterior",
    "train_prior_mean",
    "verify_certificate",
    "Verification",
]
