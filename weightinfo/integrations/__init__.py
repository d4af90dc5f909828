"""Hooks into other tools: PyTorch Lightning (:mod:`.lightning`) and TensorBoard (:mod:`.tensorboard`).

Neither tool is a dependency of weightinfo: each module imports its tool only when used, and says which
package to install when it is missing (``pip install lightning``, ``pip install tensorboard``).
"""

__all__ = ["InformationCallback", "TensorBoardWriter", "log_where_map"]


def __getattr__(name):
    if name == "InformationCallback":
        from .lightning import InformationCallback

        return InformationCallback
    if name in ("TensorBoardWriter", "log_where_map"):
        from . import tensorboard

        return getattr(tensorboard, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
