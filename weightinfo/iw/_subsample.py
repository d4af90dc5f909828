"""Estimate the curvature on a subset of the data while L_D still covers all of it.

The Fisher form costs one forward-backward pass over the samples its curvature is averaged over — the same
work as a training epoch over them. F_D = (1/N) Σ_i F_i is a mean over samples, so the mean over a uniformly
drawn subset of k samples is an unbiased Monte Carlo estimate of it, exactly like the sampled labels of
``kind="mc"``; L_D(w*) is then a cheap forward pass over the remaining samples.

* an ``(X, Y)`` tuple: a seeded random subset of k rows (``torch.randperm``), the rest in their order;
* a DataLoader: its first batches up to k samples (random if the loader shuffles), then the rest of the same
  pass; the split batch is cut at k.

Distributed (``weightinfo._base.distributed``): k is the number of samples over all ranks. With ``(X, Y)``
tuples rank r takes k_r = round(k·C_{r+1}/N) − round(k·C_r/N) of its N_r rows (C_r = N_0 + … + N_{r−1}, so
Σ k_r = min(k, N) and the shares follow the shard sizes; at least 1), drawn with ``rank_seed(seed)``; with a DataLoader
each rank takes ⌈k / world_size⌉.
"""

from __future__ import annotations

import itertools

import torch

from .._base import distributed as dist
from .._base.checks import check_int


def split_for_curvature(data, k: int, seed: int):
    """``(head, rest, n_head)``: the curvature data (k samples) and the rest (None when nothing is left)."""
    k = check_int("curvature_samples", k, 1)
    is_tuple = (
        isinstance(data, tuple)
        and len(data) == 2
        and all(isinstance(t, torch.Tensor) for t in data)
    )
    if dist.active() and dist.world_size() > 1:
        k = dist.local_share(k, data[0].shape[0] if is_tuple else None)
        seed = dist.rank_seed(seed)
    if is_tuple:
        X, Y = data
        if k >= X.shape[0]:
            return data, None, X.shape[0]
        g = torch.Generator().manual_seed(int(seed))
        perm = torch.randperm(X.shape[0], generator=g).to(X.device)
        head, tail = perm[:k], perm[k:].sort().values
        return (X[head], Y[head]), (X[tail], Y[tail]), k
    it = iter(data)
    head, n = [], 0
    for batch in it:
        x, y = batch[0], batch[1]
        take = min(k - n, x.shape[0])
        head.append((x[:take], y[:take]))
        n += take
        if take < x.shape[0]:
            return head, itertools.chain([(x[take:], y[take:])], it), n
        if n >= k:
            break
    first = next(it, None)
    return head, (None if first is None else itertools.chain([first], it)), n
