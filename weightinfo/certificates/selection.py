"""The configurations ``certify`` chooses among, declared before any data is seen, and the rules that size them.

A certificate chosen as the smallest of K candidate certificates computed on the same bound set is valid
only if each of them is issued at δ/K (union bound). :data:`DEFAULT_SEARCH` is the declared set that
``certify(model, data)`` and ``weightinfo certify`` use when the caller pins none of the settings it varies;
its size K is paid in full and recorded in the certificate, together with every candidate. (PAC-Bayes
bounds hold for every posterior at once, so paying for the posterior settings is conservative: only the
prior scale λ strictly needs the union bound. Paying for the whole declared set keeps one simple rule.)

The set is a fixed list, not a function of the data. Two sizes follow declared rules of the data *sizes*
(never of their content): the posterior's epochs (:func:`posterior_epochs_for`) and the Monte Carlo
repetitions (:func:`weightinfo.certificates.options.mc_repetitions_for`).

Why these candidates (measured on digits, binary MNIST and Fashion-MNIST: ``docs/results/certificates.md``):
with a prior mean trained on half the data, the information posterior Q* of Achille, Paolini & Soatto (2019,
Eq. 8) centred at the prior mean costs almost no KL and certifies about the prior's own risk; the PBB
posterior (Pérez-Ortiz et al. 2021, ``fquad``) can lower the risk at a KL price. Both families are in the set
at the two prior scales that won in the tuned runs (0.01, 0.03).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .options import POSTERIORS

__all__ = [
    "DEFAULT_SEARCH",
    "FISHER_EXAMPLES",
    "Candidate",
    "posterior_epochs_for",
]


@dataclass(frozen=True)
class Candidate:
    """One configuration of a declared set: the prior scale λ and the posterior that goes with it.

    posterior : ``"optimize"`` (PBB ``fquad`` posterior trained with Adam at ``lr`` for ``epochs``; None:
        :func:`posterior_epochs_for`) or ``"information"`` (Q* at β per sample).
    init : where the posterior is centred (information) or starts (optimize): ``"prior"`` (the prior mean
        w0) or ``"model"`` (the weights of the model passed to ``certify``).
    """

    posterior: str
    prior_scale: float
    beta: float | None = None
    lr: float | None = None
    epochs: int | None = None
    init: str = "prior"

    def __post_init__(self):
        if self.posterior not in POSTERIORS:
            raise ValueError(f"posterior must be one of {POSTERIORS}, got {self.posterior!r}")
        lam = float(self.prior_scale)
        if not math.isfinite(lam) or lam <= 0:
            raise ValueError(f"prior_scale must be > 0, got {self.prior_scale!r}")
        if self.posterior == "information" and (self.beta is None or not self.beta > 0):
            raise ValueError(f"an information candidate needs a β > 0, got {self.beta!r}")
        if self.init not in ("prior", "model"):
            raise ValueError(f"init must be 'prior' or 'model', got {self.init!r}")

    @property
    def label(self) -> str:
        """A short human-readable name, e.g. ``information λ=0.01 β=0.0001``."""
        if self.posterior == "information":
            return f"information λ={self.prior_scale:g} β={self.beta:g}"
        parts = [f"optimize λ={self.prior_scale:g}"]
        if self.lr is not None:
            parts.append(f"lr={self.lr:g}")
        if self.epochs is not None:
            parts.append(f"epochs={self.epochs}")
        return " ".join(parts)

    def to_dict(self) -> dict:
        return asdict(self)


#: The declared set of ``certify``'s automatic selection (K = 6): the information posterior at λ ∈ {0.01,
#: 0.03} × β ∈ {1e-4, 1e-3}, centred at the prior mean, and the PBB posterior at λ ∈ {0.01, 0.03}, Adam
#: lr 1e-3, epochs by :func:`posterior_epochs_for`.
DEFAULT_SEARCH: tuple[Candidate, ...] = (
    *(Candidate("information", lam, beta=b) for lam in (0.01, 0.03) for b in (1e-4, 1e-3)),
    *(Candidate("optimize", lam, lr=1e-3) for lam in (0.01, 0.03)),
)

#: At most this many posterior-set examples feed the Fisher of the information posterior (a seeded random
#: subset; the diagonal Fisher of a few thousand examples is as good as the whole set's for Q*).
FISHER_EXAMPLES = 5000


def posterior_epochs_for(n_posterior: int) -> int:
    """Epochs of the optimised posterior when a candidate leaves them open: about 2·10⁵ examples seen,
    between 1 and 20 epochs (20 on digits, 4 on Fashion-MNIST's 60,000 images)."""
    return int(min(20, max(1, math.ceil(2e5 / int(n_posterior)))))
