"""Dynamics of the information in the weights (Achille, Paolini & Soatto 2019, §2.3–§4; paper.md §1.3, §4, §5).

* :mod:`.shannon` — ``shannon_information``: the Shannon information I(w; D) from the posteriors of K training
  runs (the empirical mixture by Monte Carlo, ≤ ln K; or the moment-matched Gaussian upper bound).
* :mod:`.experiment` — ``shannon_experiment``: resample datasets, train one or several seeds each,
  and report I(w; D | seed) (per-seed), I(w; D) (seed averaged inside Q(w|D)) and I(w; D, seed);
  ``prop29_information``: Prop 2.9 (corrected) via implicit differentiation, dense, for small models.
* :mod:`.tracker` — ``Tracker``: tr F (per layer), ln|F + δI|, IW, loss/accuracy, SGD temperature η/B and the
  gradient-noise scale on a fixed probe set during training, written to JSONL as it goes.
"""

from .experiment import (
    Prop29Information,
    ShannonExperiment,
    fisher_posterior,
    prop29_information,
    seed_averaged_information,
    shannon_experiment,
)
from .shannon import PosteriorsError, ShannonInformation, shannon_information
from .tracker import Tracker

__all__ = [
    "Tracker",
    "shannon_information",
    "ShannonInformation",
    "PosteriorsError",
    "shannon_experiment",
    "ShannonExperiment",
    "fisher_posterior",
    "seed_averaged_information",
    "prop29_information",
    "Prop29Information",
]
