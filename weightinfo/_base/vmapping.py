"""``torch.func.vmap`` over samples, with a loop over the samples for forwards that vmap cannot batch.

A forward with data-dependent Python control flow (``if mask.all(): ...``, ``.item()``: Hugging Face
``transformers`` builds its attention masks that way) raises under ``vmap``; :func:`map_samples` then calls the
function once per sample and stacks the results, which is slower but gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.func import vmap
from torch.utils._pytree import tree_flatten, tree_map

_MARKERS = ("data-dependent control flow", ".item()")


def cannot_vmap(error: BaseException) -> bool:
    """Whether ``error`` is vmap refusing a forward with data-dependent control flow."""
    return isinstance(error, RuntimeError) and any(m in str(error) for m in _MARKERS)


def map_samples(fn: Callable, in_dims: tuple = (0,)) -> Callable:
    """``vmap(fn, in_dims)``, where every entry of ``in_dims`` is 0 (map over the leading dimension of every
    tensor in that argument) or None (pass the argument as it is); a loop over the samples where vmap cannot
    batch ``fn`` (see the module doc)."""
    if any(d not in (0, None) for d in in_dims):
        raise ValueError(f"in_dims entries must be 0 or None, got {in_dims}")

    def run(*args):
        try:
            return vmap(fn, in_dims=in_dims)(*args)
        except RuntimeError as e:
            if not cannot_vmap(e):
                raise
        mapped = [a for a, d in zip(args, in_dims) if d == 0]
        leaves = [t for t in tree_flatten(mapped)[0] if isinstance(t, torch.Tensor)]
        n = leaves[0].shape[0]
        outs = [
            fn(
                *(
                    a if d is None else tree_map(lambda t, i=i: t[i], a)
                    for a, d in zip(args, in_dims)
                )
            )
            for i in range(n)
        ]
        return tree_map(lambda *ts: torch.stack(ts), outs[0], *outs[1:])

    return run
