"""One meaning per keyword: the value sets of ``curvature``, ``kind`` and ``structure``.

The glossary (``docs/glossary.md`` in the repository) defines every keyword of the library; this module holds
the value sets that code and tests check against, and the helpers that keep an old spelling working for one
release:

* ``curvature`` — **which matrix**: the Fisher F = (1/N) Σ_i E_{y∼p_w(·|x_i)}[∇_w log p ∇_w log pᵀ]
  (Achille, Paolini & Soatto 2019, §1.1), the generalised Gauss–Newton matrix G = (1/N) Σ_i J_iᵀ Λ_i J_i
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

import functools
import warnings

CURVATURES = ("fisher", "ggn", "hessian")
KINDS = ("exact", "mc", "empirical")
STRUCTURES = ("diag", "filter", "kfac", "full")

__all__ = ["CURVATURES", "KINDS", "STRUCTURES", "renamed_kwargs", "warn_renamed"]


def warn_renamed(old: str, new: str, where: str, *, stacklevel: int = 3) -> None:
    """DeprecationWarning: ``old`` is now spelled ``new`` in ``where`` (the old spelling goes next release)."""
    warnings.warn(
        f"{where}: {old!r} is deprecated, use {new!r} (see docs/glossary.md); "
        "the old spelling will be removed in the next release",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def renamed_kwargs(**renames: str):
    """Decorator: keyword ``old=value`` still works as ``new=value`` for one release, with a warning.

    ``renames`` maps old → new keyword names. Passing both spellings is a ``TypeError``. The wrapped function
    keeps its own signature (``inspect.signature`` shows only the new names).

    >>> @renamed_kwargs(kind="curvature")
    ... def f(curvature="ggn"):
    ...     return curvature
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     f(kind="hessian"), w[0].category.__name__
    ('hessian', 'DeprecationWarning')
    """

    def decorate(fn):
        where = fn.__qualname__.removesuffix(".__init__")

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(
                            f"{where}: got both {old!r} (deprecated) and {new!r}; pass only {new!r}"
                        )
                    warn_renamed(f"{old}=", f"{new}=", where)
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return wrapper

    return decorate
