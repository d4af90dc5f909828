"""Linear operators on weight space: a dense matrix or a scipy operator behind the interface of
:class:`~weightinfo.curvature.products.CurvatureOperator` (``shape``, ``matvec``, ``matmat``, ``to_scipy``), so
that the matrix-free estimators (Hutchinson, stochastic Lanczos) take any of them (:func:`as_operator`)."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["MatrixOperator", "as_operator", "to_scipy"]


class MatrixOperator:
    """A dense symmetric matrix behind the interface of ``CurvatureOperator`` (tests, small M).

    >>> MatrixOperator(torch.diag(torch.tensor([1.0, 2.0]))).matvec(torch.ones(2))
    tensor([1., 2.], dtype=torch.float64)
    """

    def __init__(self, matrix):
        M = torch.as_tensor(np.asarray(matrix) if not isinstance(matrix, torch.Tensor) else matrix)
        if M.ndim != 2 or M.shape[0] != M.shape[1]:
            raise ValueError(f"MatrixOperator needs a square matrix, got shape {tuple(M.shape)}")
        self.matrix = M.detach().to(torch.float64)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.matrix.shape)

    @property
    def dtype(self) -> torch.dtype:
        return torch.float64

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        return (self.matrix @ v.to(self.matrix.device, torch.float64)).to(v.device)

    def matmat(self, V: torch.Tensor) -> torch.Tensor:
        return (self.matrix @ V.to(self.matrix.device, torch.float64)).to(V.device)

    def __matmul__(self, v: torch.Tensor) -> torch.Tensor:
        return self.matvec(v) if v.ndim == 1 else self.matmat(v)

    def to_dense(self) -> torch.Tensor:
        return self.matrix.clone()

    def to_scipy(self):
        return to_scipy(self)


class _ScipyWrapped:
    """A scipy ``LinearOperator`` (anything with ``shape`` and a numpy ``matvec``)."""

    def __init__(self, op):
        self.op = op

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.op.shape)

    @property
    def dtype(self) -> torch.dtype:
        return torch.float64

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        out = self.op.matvec(v.detach().cpu().numpy().astype(np.float64))
        return torch.as_tensor(np.asarray(out, dtype=np.float64).reshape(-1)).to(v.device)

    def matmat(self, V: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.matvec(V[:, j]) for j in range(V.shape[1])], dim=1)

    def to_scipy(self):
        return self.op


def to_scipy(op):
    """``op`` (``shape``, torch ``matvec``/``matmat``) as a float64 symmetric scipy ``LinearOperator``."""
    from scipy.sparse.linalg import LinearOperator

    def mv(x):
        x = np.asarray(x, dtype=np.float64)
        return op.matvec(torch.from_numpy(x.reshape(-1).copy())).numpy()

    def mm(X):
        X = np.asarray(X, dtype=np.float64)
        return op.matmat(torch.from_numpy(X.copy())).numpy()

    return LinearOperator(op.shape, matvec=mv, rmatvec=mv, matmat=mm, rmatmat=mm, dtype=np.float64)


def as_operator(op):
    """Anything square and linear → an object with ``shape``, ``matvec``, ``matmat``, ``to_scipy``.

    Accepts anything with ``shape``, ``matvec``, ``matmat`` and ``to_scipy`` (a ``CurvatureOperator``, a
    ``MatrixOperator``: returned as is), a 2-D torch tensor or numpy
    array, or a ``scipy.sparse.linalg.LinearOperator``.

    >>> as_operator(torch.eye(3)).shape
    (3, 3)
    """
    if isinstance(op, (MatrixOperator, _ScipyWrapped)):
        return op
    if isinstance(op, (torch.Tensor, np.ndarray)):
        return MatrixOperator(op)
    if hasattr(op, "shape") and hasattr(op, "matvec"):
        shape = tuple(op.shape)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"operator must be square, got shape {shape}")
        if hasattr(op, "to_scipy") and hasattr(op, "matmat"):
            return op
        return _ScipyWrapped(op)
    raise TypeError(f"cannot use {type(op).__name__} as a linear operator")
