"""Hutchinson estimators of the trace and the diagonal of a symmetric matrix from products only.

For probes v with E[v vᵀ] = I (Rademacher ±1 entries, or standard Gaussian),

    tr M     = E[vᵀ M v]        (Hutchinson 1989, Commun. Stat. Simul. Comput. 18(3):1059–1076),
    diag M   = E[v ⊙ M v]       (Bekas, Kokiopoulou & Saad 2007, Appl. Numer. Math. 57:1214–1229).

With m probes the estimate is the sample mean and its standard error the sample standard deviation
over √m. For Rademacher probes Var[vᵀMv] = 2 Σ_{i≠j} M_ij² and Var[(v ⊙ Mv)_i] = Σ_{j≠i} M_ij² (a
diagonal matrix is recovered exactly by one probe); Gaussian probes add 2 Σ_i M_ii² to the trace
variance.

Conventions: ``op`` is anything ``as_operator`` accepts (a ``CurvatureOperator``, a dense tensor, a
scipy ``LinearOperator``); probes are drawn in float64 from ``torch.Generator().manual_seed(seed)``,
one probe after another, so a result depends only on ``seed`` and ``n_probes``, not on ``chunk``
(how many probes share one pass over the data). Units are those of M (for the Fisher/GGN/Hessian
of the mean loss: nats per sample per unit w²).

Distributed: the probes depend only on ``seed``, so they are the same on every rank, and the products of a
``CurvatureOperator`` are reduced over ranks (``weightinfo._base.distributed``): every rank gets the
estimate for the union of the shards, equal to the single-process estimate with the same seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .._base.checks import check_choice
from .operators import as_operator

DISTRIBUTIONS = ("rademacher", "gaussian")

__all__ = ["DISTRIBUTIONS", "Estimate", "hutchinson_diagonal", "hutchinson_trace"]


@dataclass(frozen=True)
class Estimate:
    """A Monte-Carlo estimate ``value`` ± ``stderr`` (standard error of the mean over the probes).

    ``value``/``stderr`` are floats, or float64 tensors for per-entry estimates
    (``hutchinson_diagonal``).

    >>> Estimate(2.0, 0.5, 10).to_dict()
    {'value': 2.0, 'stderr': 0.5, 'n_probes': 10}
    """

    value: float | torch.Tensor
    stderr: float | torch.Tensor
    n_probes: int

    def to_dict(self) -> dict:
        """JSON-ready: tensors become (nested) lists of floats."""

        def conv(x):
            return x.tolist() if isinstance(x, torch.Tensor) else float(x)

        return {
            "value": conv(self.value),
            "stderr": conv(self.stderr),
            "n_probes": int(self.n_probes),
        }

    def to_dataframe(self):
        """``value, stderr, n_probes`` (units of the matrix estimated): one row for a scalar estimate, one row
        per entry (flat ``index`` column, row-major) for a tensor estimate."""
        from .._base.frames import dataframe

        if not isinstance(self.value, torch.Tensor):
            return dataframe([self.to_dict()])
        v = self.value.reshape(-1).tolist()
        s = torch.as_tensor(self.stderr).expand(self.value.shape).reshape(-1).tolist()
        n = int(self.n_probes)
        return dataframe(
            [
                {"index": i, "value": a, "stderr": b, "n_probes": n}
                for i, (a, b) in enumerate(zip(v, s))
            ]
        )

    def __str__(self) -> str:
        if isinstance(self.value, torch.Tensor):
            return f"Estimate(tensor{tuple(self.value.shape)}, n_probes={self.n_probes})"
        return f"{self.value:.6g} ± {self.stderr:.2g} (n_probes={self.n_probes})"


def check_n_probes(n_probes: int, *, minimum: int = 2) -> int:
    """``n_probes`` as an int ≥ ``minimum`` (2: a standard error needs two samples)."""
    if isinstance(n_probes, bool) or int(n_probes) != n_probes or n_probes < minimum:
        raise ValueError(
            f"n_probes must be an integer >= {minimum} (a standard error needs two probes), "
            f"got {n_probes!r}"
        )
    return int(n_probes)


def probe_chunks(
    n: int, n_probes: int, distribution: str, seed: int, chunk: int
) -> Iterator[torch.Tensor]:
    """Yield probes as float64 (n, c) blocks, c ≤ ``chunk``, drawn one at a time from ``seed``.

    >>> torch.cat(list(probe_chunks(3, 4, "rademacher", 0, chunk=3)), 1).abs().unique()
    tensor([1.], dtype=torch.float64)
    """
    check_choice("distribution", distribution, DISTRIBUTIONS)
    g = torch.Generator().manual_seed(int(seed))
    done = 0
    while done < n_probes:
        c = min(chunk, n_probes - done)
        cols = []
        for _ in range(c):
            if distribution == "rademacher":
                cols.append(torch.randint(0, 2, (n,), generator=g).to(torch.float64) * 2 - 1)
            else:
                cols.append(torch.randn(n, generator=g, dtype=torch.float64))
        done += c
        yield torch.stack(cols, dim=1)


def _mean_and_stderr(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard error over the first axis (unbiased variance)."""
    m = samples.shape[0]
    return samples.mean(0), samples.std(0, unbiased=True) / math.sqrt(m)


def hutchinson_trace(
    op,
    n_probes: int = 100,
    distribution: str = "rademacher",
    seed: int = 0,
    *,
    chunk: int = 16,
) -> Estimate:
    """tr M ≈ (1/m) Σ_j v_jᵀ M v_j (Hutchinson 1989), with standard error std/√m.

    ``chunk`` probes share one pass over the data (``op.matmat``); m = ``n_probes`` ≥ 2.

    >>> est = hutchinson_trace(torch.diag(torch.tensor([1.0, 2.0, 3.0])), n_probes=4)
    >>> est.value, est.stderr  # a diagonal matrix is exact under Rademacher probes
    (6.0, 0.0)
    """
    A = as_operator(op)
    m = check_n_probes(n_probes)
    n = A.shape[0]
    samples = []
    for V in probe_chunks(n, m, distribution, seed, max(1, int(chunk))):
        samples.append((V * A.matmat(V)).sum(0))
    mean, se = _mean_and_stderr(torch.cat(samples))
    return Estimate(float(mean), float(se), m)


def hutchinson_diagonal(
    op,
    n_probes: int = 100,
    seed: int = 0,
    distribution: str = "rademacher",
    *,
    chunk: int = 16,
) -> Estimate:
    """diag M ≈ (1/m) Σ_j v_j ⊙ M v_j (Bekas et al. 2007): per-entry float64 value/stderr (n,).

    >>> M = torch.tensor([[2.0, 1.0], [1.0, 3.0]])
    >>> est = hutchinson_diagonal(M, n_probes=50)
    >>> bool(((est.value - torch.diagonal(M)).abs() <= 3 * est.stderr).all())
    True
    """
    A = as_operator(op)
    m = check_n_probes(n_probes)
    n = A.shape[0]
    # Chan et al. (1979) pairwise update of mean and sum of squared deviations: no cancellation.
    count, mean, m2 = 0, torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    for V in probe_chunks(n, m, distribution, seed, max(1, int(chunk))):
        S = (V * A.matmat(V)).to(torch.float64).cpu()  # (n, c)
        c = S.shape[1]
        bmean = S.mean(1)
        bm2 = ((S - bmean[:, None]) ** 2).sum(1)
        delta = bmean - mean
        tot = count + c
        mean = mean + delta * (c / tot)
        m2 = m2 + bm2 + delta**2 * (count * c / tot)
        count = tot
    se = torch.sqrt(m2 / (m - 1)) / math.sqrt(m)
    return Estimate(mean, se, m)
