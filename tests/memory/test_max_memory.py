"""max_memory= (issue 12 §2): split batches give the unsplit result; one sample too big is a clear error."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import weightinfo
from weightinfo._base import memory


def _case(n=40):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, 1, 6, 6, generator=g, dtype=torch.float64)
    Y = torch.randint(0, 3, (n,), generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Tanh(), nn.Flatten(), nn.Linear(32, 3)).double()
    return model, (X, Y)


def _rows(model, data, max_memory):
    return memory.rows_that_fit(model, data, max_memory)


@pytest.mark.parametrize("structure", ["diag", "kfac"])
@pytest.mark.parametrize("loader", [False, True])
def test_fisher_split_equals_unsplit(structure, loader):
    model, (X, Y) = _case()
    data = DataLoader(TensorDataset(X, Y), batch_size=40) if loader else (X, Y)
    ref = weightinfo.fisher(model, data, structure=structure, batch_size=40)
    per = memory.per_sample_bytes(model, X[:1])
    limit = 7 * per + per // 2  # 7 rows per batch
    assert _rows(model, data, limit) == 7
    out = weightinfo.fisher(model, data, structure=structure, batch_size=40, max_memory=limit)
    for k in ref.diag:
        torch.testing.assert_close(out.diag[k], ref.diag[k], rtol=1e-12, atol=1e-300)
    for a, b in zip(ref.blocks, out.blocks):
        for factor in ("A", "G"):  # the Kronecker factors themselves
            if hasattr(a, factor):
                torch.testing.assert_close(
                    getattr(b, factor), getattr(a, factor), rtol=1e-12, atol=1e-15
                )
    if ref.mean_loss is not None:
        assert out.mean_loss == pytest.approx(ref.mean_loss, rel=1e-12)


def test_information_split_equals_unsplit():
    model, data = _case()
    kw = dict(beta=0.05, prior_scale=1.0, batch_size=40, mc_samples=2)
    ref = weightinfo.information(model, data, **kw)
    out = weightinfo.information(
        model, data, **kw, max_memory=f"{5 * memory.per_sample_bytes(model, data[0][:1])}B"
    )
    assert out.nats == pytest.approx(ref.nats, rel=1e-12)
    for k in ref.per_parameter:
        torch.testing.assert_close(
            out.per_parameter[k], ref.per_parameter[k], rtol=1e-12, atol=1e-15
        )


def test_one_sample_too_big_is_a_clear_error():
    model, data = _case()
    with pytest.raises(MemoryError, match=r"one sample needs ~\d+ bytes .* > max_memory=100"):
        weightinfo.fisher(model, data, max_memory=100)
    with pytest.raises(MemoryError, match="max_memory=1000"):
        weightinfo.information(model, data, beta=0.1, prior_scale=1.0, max_memory="1kB")


def test_variational_refuses_max_memory():
    model, data = _case()
    with pytest.raises(ValueError, match="method='fisher' only"):
        weightinfo.information(
            model, data, beta=0.1, prior_scale=1.0, method="variational", max_memory="1GB"
        )


@pytest.mark.parametrize(
    "value,expected",
    [(2048, 2048), ("2kB", 2000), ("2 KiB", 2048), ("1.5GB", 1_500_000_000), ("3MiB", 3 << 20)],
)
def test_parse_bytes(value, expected):
    assert memory.parse_bytes(value) == expected


@pytest.mark.parametrize("bad", ["lots", "-1GB", 0, True, "1PB"])
def test_parse_bytes_rejects(bad):
    with pytest.raises(ValueError, match="max_memory"):
        memory.parse_bytes(bad)


def test_out_of_memory_restarts_with_half_the_batch():
    """A device OOM (simulated) restarts the whole computation with half the rows, down to 1, then a clear error."""
    model, data = _case()
    seen = []

    def run(d, bs):
        seen.append(bs)
        if bs > 5:
            raise torch.OutOfMemoryError("simulated")
        return weightinfo.fisher(model, d, batch_size=bs)

    out = memory.guarded(model, data, 40, None, run)
    assert seen == [40, 20, 10, 5]
    torch.testing.assert_close(
        out.diag["3.weight"], weightinfo.fisher(model, data).diag["3.weight"], rtol=1e-12, atol=0
    )

    def never(d, bs):
        raise torch.OutOfMemoryError("simulated")

    with pytest.raises(MemoryError, match="batch of 1 sample"):
        memory.guarded(model, data, 4, None, never)
