"""Lanczos, SLQ log-determinants and top eigenvalues against dense linear algebra."""

from __future__ import annotations

import pytest
import torch

from tests.curvature.cases import tanh_mlp_data
from weightinfo.curvature.hutchinson import hutchinson_trace
from weightinfo.curvature.lanczos import lanczos, slq_logdet, top_eigenvalues
from weightinfo.curvature.products import CurvatureOperator, MatrixOperator


def spd(n: int, seed: int = 0, decay: bool = True) -> torch.Tensor:
    """Random orthogonal basis with eigenvalues spread over decades (like a Fisher spectrum)."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    ev = torch.logspace(1, -4, n, dtype=torch.float64) if decay else torch.rand(n, generator=g) + 1
    return (Q * ev) @ Q.t()


def test_lanczos_basis_is_orthonormal_and_tridiagonalises():
    M = spd(40, seed=1)
    v0 = torch.randn(40, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    T = lanczos(M, v0, n_steps=25, return_basis=True)
    Q = T.basis
    assert Q.shape == (40, 25) and T.alpha.shape == (25,) and T.beta.shape == (24,)
    torch.testing.assert_close(Q.t() @ Q, torch.eye(25, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(Q.t() @ M @ Q, T.matrix(), atol=1e-10, rtol=0)
    torch.testing.assert_close(Q[:, 0], v0 / v0.norm(), atol=1e-15, rtol=0)
    # extreme Ritz values converge first
    theta, tau2 = T.ritz()
    assert float(theta.max()) == pytest.approx(float(torch.linalg.eigvalsh(M).max()), rel=1e-10)
    assert float(tau2.sum()) == pytest.approx(1.0, abs=1e-12)


def test_lanczos_stops_on_invariant_subspace():
    D = torch.diag(torch.tensor([1.0, 1.0, 2.0, 2.0, 5.0], dtype=torch.float64))
    T = lanczos(D, torch.ones(5), n_steps=5)
    assert T.alpha.numel() == 3  # three distinct eigenvalues
    torch.testing.assert_close(T.ritz()[0], torch.tensor([1.0, 2.0, 5.0], dtype=torch.float64))


def test_slq_logdet_within_three_standard_errors_and_shrinking():
    M = spd(60, seed=3)
    delta = 1e-3
    exact = float(torch.logdet(M + delta * torch.eye(60, dtype=torch.float64)))
    few = slq_logdet(MatrixOperator(M), delta, n_probes=20, n_steps=25, seed=0)
    many = slq_logdet(M, delta, n_probes=320, n_steps=25, seed=1)
    for est in (few, many):
        assert abs(est.value - exact) <= 3 * est.stderr, (est, exact)
    assert many.stderr < few.stderr / 2.5  # ≈ 1/4 expected


def test_slq_with_full_krylov_space_equals_hutchinson_on_the_matrix_log():
    """With s = P steps the quadrature is exact: SLQ = Hutchinson on ln(M + δI), probe by probe."""
    M = spd(15, seed=4)
    delta = 0.01
    w, V = torch.linalg.eigh(M)
    L = (V * torch.log(w + delta)) @ V.t()
    slq = slq_logdet(M, delta, n_probes=12, n_steps=50, seed=7)
    ref = hutchinson_trace(L, n_probes=12, seed=7)
    assert slq.value == pytest.approx(ref.value, rel=1e-9)
    assert slq.stderr == pytest.approx(ref.stderr, rel=1e-7)


def test_slq_logdet_of_ggn_operator():
    model, data = tanh_mlp_data()
    op = CurvatureOperator(model, data, "ggn")
    G = op.to_dense()
    delta = 1e-2
    exact = float(torch.logdet(G + delta * torch.eye(G.shape[0], dtype=torch.float64)))
    est = slq_logdet(op, delta, n_probes=16, n_steps=20, seed=0)
    assert abs(est.value - exact) <= 3 * est.stderr
    assert est.n_probes == 16


def test_top_eigenvalues_of_ggn_and_hessian():
    model, data = tanh_mlp_data()
    for curvature, which in (("ggn", "LA"), ("hessian", "LM")):
        op = CurvatureOperator(model, data, curvature)
        ev = torch.linalg.eigvalsh(op.to_dense())
        top = top_eigenvalues(op, 4, which=which)
        if which == "LA":
            ref = ev.flip(0)[:4]
        else:
            ref = ev[torch.argsort(ev.abs(), descending=True)[:4]].sort(descending=True).values
        torch.testing.assert_close(top, ref, rtol=1e-6, atol=1e-10 * float(ev.abs().max()))
        assert bool((top[:-1] >= top[1:]).all())


def test_top_eigenvalues_dense_path_and_vectors():
    M = spd(6, seed=5, decay=False)
    vals, vecs = top_eigenvalues(M, 6, return_eigenvectors=True)
    torch.testing.assert_close(vals, torch.linalg.eigvalsh(M).flip(0), rtol=1e-12, atol=0)
    torch.testing.assert_close(M @ vecs, vecs * vals, atol=1e-12, rtol=0)
    vals3, vecs3 = top_eigenvalues(spd(30, seed=6), 3, return_eigenvectors=True)
    assert vecs3.shape == (30, 3)
    torch.testing.assert_close(spd(30, seed=6) @ vecs3, vecs3 * vals3, atol=1e-9, rtol=0)


def test_bad_inputs_raise():
    M = spd(8, seed=7)
    with pytest.raises(ValueError, match="damping"):
        slq_logdet(M, -1e-3, n_probes=4)
    with pytest.raises(ValueError, match="n_probes"):
        slq_logdet(M, 1e-3, n_probes=1)
    with pytest.raises(ValueError, match="n_steps"):
        slq_logdet(M, 1e-3, n_probes=4, n_steps=0)
    with pytest.raises(ValueError, match="k must"):
        top_eigenvalues(M, 9)
    with pytest.raises(ValueError, match="k must"):
        top_eigenvalues(M, 0)
    with pytest.raises(ValueError, match="which"):
        top_eigenvalues(M, 2, which="SM")
    indefinite = torch.diag(torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="not positive definite"):
        slq_logdet(indefinite, 0.0, n_probes=3)
    with pytest.raises(ValueError, match="v0"):
        lanczos(M, torch.ones(3), n_steps=2)
    with pytest.raises(ValueError, match="non-zero"):
        lanczos(M, torch.zeros(8), n_steps=2)
