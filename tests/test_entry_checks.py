"""Every computation that starts from (model, data) refuses bad input before it runs, naming it:
a batch size that is not a positive integer (one check, in ``weightinfo._base.batches``), NaN/Inf in a
weight (``check_model``) or in the data (``iter_batches``)."""

import math

import pytest
import torch

import weightinfo as wi
from weightinfo._base.batches import count_batches, iter_batches
from weightinfo._base.checks import check_int


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).eval()


DATA = (torch.randn(24, 4, generator=torch.Generator().manual_seed(1)), torch.arange(24) % 3)
IW = {"beta": 1e-3, "prior_scale": 0.1}

ENTRY_POINTS = {
    "fisher diag": lambda m, d, **kw: wi.fisher(m, d, **kw),
    "fisher kfac": lambda m, d, **kw: wi.fisher(m, d, structure="kfac", **kw),
    "fisher full": lambda m, d, **kw: wi.fisher(m, d, structure="full", **kw),
    "ggn": lambda m, d, **kw: wi.ggn(m, d, **kw),
    "hessian": lambda m, d, **kw: wi.hessian(m, d, **kw),
    "curvature operator": lambda m, d, **kw: wi.hutchinson_trace(
        wi.CurvatureOperator(m, d, "ggn", **kw), 2
    ),
    "information": lambda m, d, **kw: wi.information(m, d, **IW, **kw),
    "information kfac": lambda m, d, **kw: wi.information(m, d, structure="kfac", **IW, **kw),
    "information variational": lambda m, d, **kw: wi.information(
        m, d, method="variational", max_epochs=1, **IW, **kw
    ),
    "information_curve": lambda m, d, **kw: wi.information_curve(
        m, d, betas=[1e-3, 1e-2], prior_scale=0.1, **kw
    ),
    "effective_information": lambda m, d, **kw: wi.effective_information(
        m, d, {k: torch.full_like(p, 1e-3) for k, p in m.named_parameters()}, samples=2, **kw
    ),
}


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("batch_size", [0, -3, 2.5, None, True])
def test_batch_size_must_be_a_positive_integer(entry, batch_size):
    with pytest.raises(ValueError, match=r"batch_size must be an integer >= 1, got"):
        ENTRY_POINTS[entry](_model(), DATA, batch_size=batch_size)


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_non_finite_weight_or_data_is_named(entry):
    bad = _model()
    with torch.no_grad():
        bad[2].weight[1, 0] = math.nan
    with pytest.raises(ValueError, match=r"parameter '2\.weight' contains 1 NaN/Inf"):
        ENTRY_POINTS[entry](bad, DATA)
    X = DATA[0].clone()
    X[5, 1] = math.inf
    with pytest.raises(ValueError, match=r"data: input batch 0 contains 1 NaN/Inf"):
        ENTRY_POINTS[entry](_model(), (X, DATA[1]))


def test_batching_checks_its_batch_size_at_once():
    loader = [DATA]
    with pytest.raises(ValueError, match="batch_size"):
        iter_batches(loader, batch_size=0)  # eagerly, not at the first batch
    with pytest.raises(ValueError, match="batch_size"):
        count_batches(DATA, batch_size=0)  # was a ZeroDivisionError
    assert count_batches(DATA, batch_size=10) == 3 and count_batches(loader, 7) == 1
    assert [len(x) for x, _ in iter_batches(DATA, batch_size=10.0)] == [10, 10, 4]


@pytest.mark.parametrize("value", [None, "3", math.nan, math.inf, [1], 1.5, False])
def test_check_int_names_the_argument_for_any_value(value):
    with pytest.raises(ValueError, match=r"^k must be an integer >= 1, got "):
        check_int("k", value, 1)


def test_check_int_accepts_integral_values():
    assert check_int("k", 3.0, 1) == 3 and check_int("k", torch.tensor(4)) == 4
    assert check_int("k", 0, 0) == 0
