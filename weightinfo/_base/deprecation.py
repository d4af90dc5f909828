"""Old spellings kept for one release: a keyword or attribute renamed to the glossary's term still works and
raises a ``DeprecationWarning`` naming the new spelling (``docs/glossary.md`` lists every rename)."""

from __future__ import annotations

import functools
import warnings

__all__ = ["renamed_kwargs", "warn_renamed"]


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
