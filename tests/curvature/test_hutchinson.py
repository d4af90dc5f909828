"""Hutchinson trace and diagonal: within 3 standard errors of the truth, errors falling as 1/√m."""

from __future__ import annotations

import json

import pytest
import torch

from tests.curvature.cases import tanh_mlp_data
from weightinfo.curvature.hutchinson import Estimate, hutchinson_diagonal, hutchinson_trace
from weightinfo.curvature.products import CurvatureOperator, MatrixOperator


def spd(n: int = 30, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g, dtype=torch.float64)
    return A @ A.t() / n + 0.1 * torch.eye(n, dtype=torch.float64)


def small_ggn():
    return CurvatureOperator(*tanh_mlp_data(), "ggn")


@pytest.mark.parametrize("distribution", ["rademacher", "gaussian"])
def test_trace_within_three_standard_errors_and_shrinking(distribution):
    M = spd()
    exact = float(torch.trace(M))
    few = hutchinson_trace(MatrixOperator(M), n_probes=50, distribution=distribution, seed=1)
    many = hutchinson_trace(M, n_probes=800, distribution=distribution, seed=2)
    for est in (few, many):
        assert abs(est.value - exact) <= 3 * est.stderr
        assert est.stderr > 0
    assert many.stderr < few.stderr / 2.5  # ≈ 1/4 expected (√16)


def test_trace_stderr_matches_rademacher_variance():
    M = spd(20, seed=3)
    est = hutchinson_trace(M, n_probes=2000, seed=0)
    off = M - torch.diag(torch.diagonal(M))
    sd_theory = float(torch.sqrt(2 * (off**2).sum()))
    assert abs(est.stderr * 2000**0.5 / sd_theory - 1) < 0.1


def test_trace_of_curvature_operator():
    op = small_ggn()
    exact = float(torch.trace(op.to_dense()))
    est = hutchinson_trace(op, n_probes=40, seed=0)
    assert abs(est.value - exact) <= 3 * est.stderr
    assert op.n_products >= 40


def test_diagonal_within_three_standard_errors_and_shrinking():
    M = spd(40, seed=4)
    d = torch.diagonal(M)
    few = hutchinson_diagonal(M, n_probes=60, seed=0)
    many = hutchinson_diagonal(M, n_probes=960, seed=1)
    for est in (few, many):
        assert est.value.shape == d.shape and est.value.dtype == torch.float64
        z = (est.value - d).abs() / est.stderr
        assert float((z <= 3).double().mean()) >= 0.95  # per entry; ≈ 99.7 % for a normal mean
        assert float(z.max()) < 4.5
        # the sum is itself an unbiased trace estimate
    ratio = many.stderr / few.stderr
    assert float(ratio.median()) == pytest.approx(0.25, rel=0.2)


def test_diagonal_of_curvature_operator_and_gaussian_probes():
    op = small_ggn()
    d = torch.diagonal(op.to_dense())
    est = hutchinson_diagonal(op, n_probes=200, seed=3, distribution="gaussian", chunk=50)
    z = (est.value - d).abs() / est.stderr.clamp_min(1e-300)
    assert float((z <= 3).double().mean()) >= 0.95


def test_diagonal_matrix_is_exact_under_rademacher():
    D = torch.diag(torch.tensor([1.0, -2.0, 0.5, 7.0], dtype=torch.float64))
    est = hutchinson_diagonal(D, n_probes=5, seed=9)
    assert torch.equal(est.value, torch.diagonal(D))
    assert float(est.stderr.max()) <= 1e-15
    tr = hutchinson_trace(D, n_probes=5)
    assert tr.value == pytest.approx(6.5, abs=1e-14) and tr.stderr <= 1e-14


def test_result_does_not_depend_on_chunk():
    M = spd(12, seed=5)
    a = hutchinson_trace(M, n_probes=23, seed=4, chunk=1)
    b = hutchinson_trace(M, n_probes=23, seed=4, chunk=7)
    assert a.value == pytest.approx(b.value, rel=1e-13)
    assert a.stderr == pytest.approx(b.stderr, rel=1e-10)
    da = hutchinson_diagonal(M, n_probes=23, seed=4, chunk=1)
    db = hutchinson_diagonal(M, n_probes=23, seed=4, chunk=100)
    torch.testing.assert_close(da.value, db.value, rtol=1e-13, atol=1e-15)
    torch.testing.assert_close(da.stderr, db.stderr, rtol=1e-9, atol=1e-15)
    c = hutchinson_trace(M, n_probes=23, seed=5)
    assert c.value != a.value  # the seed matters


def test_estimate_to_dict_is_json_ready():
    est = hutchinson_diagonal(spd(3), n_probes=4)
    d = est.to_dict()
    json.dumps(d)
    assert d["n_probes"] == 4 and len(d["value"]) == 3
    assert isinstance(hutchinson_trace(spd(3), n_probes=3), Estimate)
    assert "±" in str(hutchinson_trace(spd(3), n_probes=3))


def test_bad_inputs_raise():
    M = spd(5)
    with pytest.raises(ValueError, match="n_probes"):
        hutchinson_trace(M, n_probes=1)
    with pytest.raises(ValueError, match="n_probes"):
        hutchinson_diagonal(M, n_probes=0)
    with pytest.raises(ValueError, match="distribution"):
        hutchinson_trace(M, n_probes=4, distribution="uniform")
    with pytest.raises(ValueError, match="square"):
        hutchinson_trace(torch.ones(3, 4), n_probes=4)
