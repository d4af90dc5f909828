"""Dynamics of the information in the weights (Achille, Paolini & Soatto 2019, §2.3–§4; paper.md §1.3, §4, §5).

Modules are added as they are built (issue 11).
"""

from .tracker import Tracker

__all__: list[str] = ["Tracker"]
