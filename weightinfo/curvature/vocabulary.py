"""One meaning per keyword: the value sets of ``curvature``, ``kind`` and ``structure``.

The glossary (``docs/glossary.md`` in the repository) defines every keyword of the library; this module holds
the value sets that code and tests check against, and re-exports the helpers that keep an old spelling working for one
release (:mod:`weightinfo._base.deprecation`):

* ``curvature`` — **which matrix**: the Fisher F = (1/N) Σ_i E_{y∼p_w(·|x_i)}[∇_w log p ∇_w log pᵀ]
  (Achille, Paolini & Soatto 2019, Remark 2.6), the generalised Gauss–Newton matrix G = (1/N) Σ_i J_iᵀ Λ_i J_i
  (Schraudolph 2002), or the Hessian H = ∇²_w L_D of the mean loss.
* ``kind`` — **how the expectation over labels is taken**: ``"exact"`` (the defining expectation, every label),
  ``"mc"`` (labels drawn from the model, unbiased) or ``"empirical"`` (the data labels in the Fisher's
  outer-product form: the empirical Fisher, a different matrix). The Hessian of the mean loss has no
  expectation over model labels; its kind is always ``"exact"``.
* ``structure`` — **which entries are kept**: ``"diag"`` (one number per weight), ``"filter"`` (one number per
  output unit or filter, from the diagonal), ``"kfac"`` (Kronecker blocks, Martens & Grosse 2015) or ``"full"``
  (the dense matrix). A function accepts the subset it implements.
* ``method`` — the **algorithm**; its values depend on the function (the glossary lists them).
"""

from __future__ import annotations

from .._base.deprecation import renamed_kwargs, warn_renamed

CURVATURES = ("fisher", "ggn", "hessian")
KINDS = ("exact", "mc", "empirical")
STRUCTURES = ("diag", "filter", "kfac", "full")

__all__ = ["CURVATURES", "KINDS", "STRUCTURES", "renamed_kwargs", "warn_renamed"]
