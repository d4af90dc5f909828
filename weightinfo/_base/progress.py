"""Whether to draw progress bars: the one rule for training, the curvature code and the command line."""

from __future__ import annotations

import sys

__all__ = ["progress_enabled"]


def progress_enabled(requested: bool) -> bool:
    """Show progress bars only when ``requested`` and stderr is a terminal (never in logs or pipes)."""
    if not requested:
        return False
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # no stderr, or a closed one
        return False
