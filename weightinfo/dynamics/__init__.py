"""Dynamics of the information in the weights (Achille, Paolini & Soatto 2019, §2.3–§4; paper.md §1.3, §4, §5).

* :mod:`.shannon` — ``shannon_information``: the Shannon information I(w; D) from the posteriors of K training
  runs (the empirical mixture by Monte Carlo, ≤ ln K; or the moment-matched Gaussian upper bound).
"""

from .shannon import PosteriorsError, ShannonInformation, shannon_information

__all__ = ["shannon_information", "ShannonInformation", "PosteriorsError"]
