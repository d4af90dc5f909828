"""Data-parallel reductions over the ranks of an initialised ``torch.distributed`` process group.

Convention (every data-dependent routine of weightinfo that calls into this module):

* **each rank passes its own shard** of the data set (a DataLoader over a ``DistributedSampler``, or its own
  ``(X, Y)`` tensors; shards may have unequal sizes, but every rank needs at least one sample);
* every rank gets the result **for the union of the shards**: sums are taken on each rank, all-reduced in
  **float64**, and means are over the **global** N = Σ_ranks N_r — so the result equals the single-process
  result on the concatenated data up to the order of floating-point summation (1e-12 relative in float64);
* every rank gets the **same** result (the reduced tensors are identical on all ranks), so decisions taken on
  them (stopping rules, iterative solvers, Lanczos) stay in lock step;
* random draws that must agree (Hutchinson/SLQ probes, weight draws w ~ Q) use the same seed on all ranks;
  per-sample draws (Monte Carlo labels, local-reparameterisation noise) use :func:`rank_seed`, the caller's
  seed on rank 0 and a derived one on the other ranks, so that single-process results are unchanged and the
  ranks' draws are independent (the distributed estimate differs from the single-process one only within its
  Monte Carlo error).

Without an initialised default group (``torch.distributed`` unavailable or ``init_process_group`` not called)
every function here is the identity of one process: rank 0 of a world of size 1, nothing reduced.

The reductions run on the tensor's device; the ``gloo`` backend reduces CPU tensors, ``nccl`` CUDA tensors.
All functions are **collective** where they reduce: every rank must call them, in the same order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import TypeVar

import torch

__all__ = [
    "active",
    "all_gather_objects",
    "all_gather_rows",
    "all_reduce_max",
    "all_reduce_sum",
    "local_share",
    "barrier",
    "global_count",
    "is_main",
    "main_only",
    "rank",
    "rank_generator",
    "rank_seed",
    "reduce_sums",
    "shard_bounds",
    "shard_counts",
    "world_size",
]

T = TypeVar("T")


def active(group=None) -> bool:
    """True when ``torch.distributed`` is available and the default process group is initialised."""
    del group  # a sub-group implies an initialised default group
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank(group=None) -> int:
    """This process's rank in ``group`` (default group); 0 without one."""
    return torch.distributed.get_rank(group) if active() else 0


def world_size(group=None) -> int:
    """Number of ranks in ``group`` (default group); 1 without one."""
    return torch.distributed.get_world_size(group) if active() else 1


def is_main(group=None) -> bool:
    """True on rank 0 (and always without a process group): the rank that prints and writes files."""
    return rank(group) == 0


def _reducing(group) -> bool:
    return active() and world_size(group) > 1


def all_reduce_sum(tensor: torch.Tensor, group=None) -> torch.Tensor:
    """Σ over ranks of ``tensor`` as a new float64 tensor on the tensor's device (collective).

    Without a process group (or with one rank): ``tensor`` as float64, unchanged in value.
    """
    out = tensor.detach().to(torch.float64).clone()
    if _reducing(group):
        torch.distributed.all_reduce(out, op=torch.distributed.ReduceOp.SUM, group=group)
    return out


def all_reduce_max(value: int | float, group=None) -> int | float:
    """Maximum of a Python number over ranks (collective); the value itself without a group."""
    if not _reducing(group):
        return value
    t = torch.tensor([float(value)], dtype=torch.float64, device=_device(group))
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX, group=group)
    return type(value)(t.item())


def global_count(n: int, group=None) -> int:
    """Σ over ranks of a local sample count (collective); ``n`` without a group."""
    if not _reducing(group):
        return int(n)
    t = torch.tensor([int(n)], dtype=torch.int64, device=_device(group))
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM, group=group)
    return int(t.item())


def shard_counts(n: int, group=None) -> list[int]:
    """The local counts of all ranks, in rank order (collective); ``[n]`` without a group."""
    if not _reducing(group):
        return [int(n)]
    t = torch.zeros(world_size(group), dtype=torch.int64, device=_device(group))
    t[rank(group)] = int(n)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM, group=group)
    return [int(v) for v in t.tolist()]


def reduce_sums(
    sums: Mapping[str, torch.Tensor | float | int], group=None
) -> dict[str, torch.Tensor | float | int]:
    """Σ over ranks of every entry of a dict, in one all-reduce of one float64 buffer (collective).

    Tensors come back as float64 tensors of the same shape and device; Python ints and floats come back as
    ints (exact below 2⁵³) and floats. Without a group the values are returned as they are (tensors cast to
    float64)."""
    keys = list(sums)
    if not _reducing(group):
        return {
            k: v.detach().to(torch.float64) if isinstance(v, torch.Tensor) else v
            for k, v in sums.items()
        }
    tensors = [v for v in sums.values() if isinstance(v, torch.Tensor)]
    device = tensors[0].device if tensors else _device(group)
    flat = [
        (
            v.detach().reshape(-1).to(device=device, dtype=torch.float64)
            if isinstance(v, torch.Tensor)
            else torch.tensor([float(v)], dtype=torch.float64, device=device)
        )
        for v in sums.values()
    ]
    buf = torch.cat(flat) if flat else torch.zeros(0, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(buf, op=torch.distributed.ReduceOp.SUM, group=group)
    out, i = {}, 0
    for k, v, f in zip(keys, sums.values(), flat):
        part = buf[i : i + f.numel()]
        i += f.numel()
        if isinstance(v, torch.Tensor):
            out[k] = part.reshape(v.shape).to(v.device).clone()
        elif isinstance(v, int) and not isinstance(v, bool):
            out[k] = int(round(part.item()))
        else:
            out[k] = float(part.item())
    return out


def barrier(group=None) -> None:
    """Wait for every rank (collective); nothing without a group."""
    if _reducing(group):
        torch.distributed.barrier(group=group)


def main_only(fn: Callable[..., T], *args, group=None, **kwargs) -> T | None:
    """Run ``fn(*args, **kwargs)`` on rank 0 only, then wait for every rank (collective).

    For writing files and printing: the barrier is passed even if ``fn`` raises on rank 0 (the exception is
    re-raised after it), so the other ranks never wait forever for a writer that failed. Returns ``fn``'s value
    on rank 0, None on the others."""
    result, error = None, None
    if is_main(group):
        try:
            result = fn(*args, **kwargs)
        except BaseException as e:  # re-raised after the barrier
            error = e
    barrier(group)
    if error is not None:
        raise error
    return result


def rank_seed(seed: int, group=None) -> int:
    """``seed`` on rank 0 (and without a group), a 63-bit seed derived from (seed, rank) on the other ranks.

    For draws that must be independent across ranks (Monte Carlo labels, per-sample noise)."""
    r = rank(group)
    if r == 0:
        return int(seed)
    digest = hashlib.sha256(f"{int(seed)}/rank{r}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def rank_generator(gen: torch.Generator, group=None) -> torch.Generator:
    """A generator for draws that must be independent across ranks, taken from a **shared** ``gen``.

    Without a group (or with one rank) ``gen`` itself, so single-process draws are unchanged. Under a group
    every rank draws one 62-bit integer s from ``gen`` (so ``gen`` advances identically on every rank and stays
    usable for shared draws afterwards) and returns a new generator seeded with :func:`rank_seed` (s) — s on
    rank 0, a derived seed on the others (collective in the sense that every rank must call it)."""
    if not _reducing(group):
        return gen
    s = int(torch.randint(0, 2**62, (1,), generator=gen, device=gen.device).item())
    return torch.Generator(device=gen.device).manual_seed(rank_seed(s, group))


def all_gather_rows(t: torch.Tensor, group=None) -> torch.Tensor:
    """The ranks' tensors concatenated along dim 0, in rank order (collective; shards may differ in length).

    For data that one computation needs whole (a small prior set trained identically on every rank); ``t``
    itself without a group."""
    if not _reducing(group):
        return t
    counts = shard_counts(int(t.shape[0]), group)
    most = max(counts)
    pad = torch.zeros((most, *t.shape[1:]), dtype=t.dtype, device=t.device)
    pad[: t.shape[0]] = t
    parts = [torch.empty_like(pad) for _ in counts]
    torch.distributed.all_gather(parts, pad.contiguous(), group=group)
    return torch.cat([p[:c] for p, c in zip(parts, counts)])


def all_gather_objects(obj, group=None) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` (picklable objects; collective); ``[obj]`` without a group."""
    if not _reducing(group):
        return [obj]
    out = [None] * world_size(group)
    torch.distributed.all_gather_object(out, obj, group=group)
    return out


def shard_bounds(n: int, group=None) -> tuple[int, int]:
    """This rank's contiguous share ``[start, stop)`` of ``n`` rows: rank r gets ⌊rN/W⌋ … ⌊(r+1)N/W⌋.

    The shard sizes differ by at most one; ``(0, n)`` without a group. The command line splits its data set
    this way."""
    r, w = rank(group), world_size(group)
    return (r * n) // w, ((r + 1) * n) // w


def _device(group) -> torch.device:
    """Device for small bookkeeping tensors: CUDA for the NCCL backend, else CPU."""
    backend = torch.distributed.get_backend(group)
    if backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def local_share(k: int, n_local: int | None) -> int:
    """This rank's part of k samples drawn from the union of the shards, in proportion to its shard of
    ``n_local`` rows (collective; rounding so the parts sum to min(k, N), at least 1 each); ``n_local=None``
    (a loader of unknown length): ⌈k/W⌉ per rank."""
    if n_local is None:
        return -(-k // world_size())
    counts = shard_counts(n_local)
    N, r = sum(counts), rank()
    before = sum(counts[:r])
    k = min(k, N)
    return max(1, round(k * (before + n_local) / N) - round(k * before / N))
