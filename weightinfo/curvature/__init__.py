"""Curvature of a network's weights: Fisher (exact, MC, empirical), GGN, Hessian; diag, KFAC, full.

Entry points: :func:`fisher`, :func:`ggn`, :func:`hessian` (results are :class:`Curvature` objects) and the
matrix-free layer — :class:`CurvatureOperator` with :func:`hutchinson_trace`, :func:`hutchinson_diagonal`,
:func:`slq_logdet` and :func:`top_eigenvalues`. Keywords mean one thing everywhere (``vocabulary``):
``curvature`` which matrix (``CURVATURES``), ``kind`` how the expectation over labels is taken (``KINDS``),
``structure`` which entries are kept (``STRUCTURES``, each function a subset), ``method`` the algorithm.
"""

from .fisher_matrix import fisher, ggn
from .hessian_matrix import hessian
from .hutchinson import Estimate, hutchinson_diagonal, hutchinson_trace
from .lanczos import slq_logdet, top_eigenvalues
from .products import CurvatureOperator, ggn_vector_product, hessian_vector_product
from .result import Curvature, DenseBlock, DiagBlock, KronBlock, LayerTable
from .vocabulary import CURVATURES, KINDS, STRUCTURES

__all__ = [
    "fisher",
    "ggn",
    "hessian",
    "Curvature",
    "CurvatureOperator",
    "DiagBlock",
    "DenseBlock",
    "KronBlock",
    "LayerTable",
    "Estimate",
    "ggn_vector_product",
    "hessian_vector_product",
    "hutchinson_trace",
    "hutchinson_diagonal",
    "slq_logdet",
    "top_eigenvalues",
    "CURVATURES",
    "KINDS",
    "STRUCTURES",
]
