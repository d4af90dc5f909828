"""shannon_information (issue 11 §2) against closed forms of I(w; D) (paper.md §1.3).

Tolerances: ``stderr`` is the Monte Carlo error given the K posteriors; on top of it the K datasets are a
finite sample, so the target I(w; run index) differs from the K → ∞ value by O(1/√K) (measured below from the
spread of the closed-form Gaussian estimator over seeds) and by a small finite-K bias.
"""

import math

import pytest
import torch

import weightinfo
from weightinfo.dynamics import PosteriorsError, shannon_information

F64 = torch.float64


def _pairs(means: torch.Tensor, var: float, split: int | None = None):
    """One (mean, variance) pair per row of ``means``; optionally split the coordinates into two parameters."""
    d = means.shape[1]
    out = []
    for m in means:
        v = torch.full((d,), var, dtype=F64)
        if split is None:
            out.append(({"w": m.clone()}, {"w": v}))
        else:
            out.append(({"a": m[:split], "b": m[split:]}, {"a": v[:split], "b": v[split:]}))
    return out


@pytest.mark.parametrize("d", [1, 3])
def test_gaussian_means_converge_to_the_channel_capacity_formula(d):
    """w_k ∼ N(0, τ²) per coordinate, Q_k = N(w_k, σ²): I(w; k) → d·½ ln(1 + τ²/σ²) as K → ∞.

    Measured (K = 2000, τ² = σ² = 1, 16 samples per run, seed 0): d = 1: mixture 0.3435 ± 0.0035,
    gaussian 0.3435, closed form 0.3466; d = 3: mixture 1.0284 ± 0.0060, gaussian 1.0333, closed form 1.0397.
    Dataset sampling: the moment-matched value ½ ln(1 + s²/σ²) has sd ≈ ¼·√(2/K) ≈ 0.008 per coordinate.
    """
    K, tau2, sig2 = 2000, 1.0, 1.0
    g = torch.Generator().manual_seed(0)
    P = _pairs(
        torch.randn(K, d, generator=g, dtype=F64) * math.sqrt(tau2),
        sig2,
        split=1 if d > 1 else None,
    )
    exact = d * 0.5 * math.log1p(tau2 / sig2)
    mix = shannon_information(P, "mixture", samples=16, seed=0)
    gau = shannon_information(P, "gaussian")
    fluct = 3 * 0.008 * math.sqrt(d)  # 3 sd of the dataset-sampling fluctuation
    assert mix.k == K and mix.dimension == d and mix.stderr > 0
    assert abs(mix.nats - exact) <= 3 * mix.stderr + fluct, (mix.nats, mix.stderr, exact)
    assert abs(gau.nats - exact) <= fluct, (gau.nats, exact)
    assert gau.nats >= mix.nats - 3 * mix.stderr
    assert gau.stderr == 0.0


def test_identical_posteriors_give_zero_and_separated_ones_give_ln_k():
    K = 5
    same = _pairs(torch.ones(K, 4, dtype=F64) * 0.3, 0.1, split=2)
    for est in ("mixture", "gaussian"):
        assert abs(shannon_information(same, est).nats) < 1e-12
    far = _pairs(torch.arange(K, dtype=F64)[:, None].repeat(1, 2) * 100.0, 1.0)
    r = shannon_information(far, "mixture", samples=8)
    assert abs(r.nats - math.log(K)) < 1e-3 and r.ceiling == pytest.approx(math.log(K))
    assert r.nats <= r.ceiling
    assert shannon_information(far, "gaussian").nats > math.log(K)  # an upper bound, not capped


def test_linear_gaussian_channel():
    """y ∼ N(Xθ0, s²I), ridge endpoint w*(y) = A y, A = (XᵀX + αI)⁻¹Xᵀ, Q(w | y) = N(w*(y), σ²I):
    w = A y + noise is a Gaussian channel, I(w; y) = ½ ln|s² AAᵀ + σ²I| − ½ ln|σ²I|.

    Measured (n = 8, p = 3, α = 0.5, s² = 1, σ² = 0.05, K = 2000, seeds 0–3): closed form 2.1122; mixture
    2.108, 2.072, 2.080, 2.102 (± 0.0066); the diagonal moment-matched Gaussian tends to ½ Σ ln(1 + s²(AAᵀ)_ii/σ²)
    = 2.1385 ≥ I (Hadamard) and gave 2.157, 2.100, 2.098, 2.132: the dataset-sampling sd is ≈ 0.025, so the
    tolerance is 3 stderr + 0.08 (≈ 3 sd).
    """
    n, p, alpha, s2, sig2, K = 8, 3, 0.5, 1.0, 0.05, 2000
    X = torch.randn(n, p, generator=torch.Generator().manual_seed(123), dtype=F64)
    theta0 = torch.tensor([1.0, -0.5, 0.25], dtype=F64)
    A = torch.linalg.solve(X.T @ X + alpha * torch.eye(p, dtype=F64), X.T)
    C = s2 * A @ A.T
    exact = 0.5 * torch.logdet(C + sig2 * torch.eye(p, dtype=F64)).item() - 0.5 * p * math.log(sig2)
    diag_limit = 0.5 * torch.log1p(C.diag() / sig2).sum().item()
    assert diag_limit >= exact
    g = torch.Generator().manual_seed(0)
    Y = X @ theta0 + math.sqrt(s2) * torch.randn(K, n, generator=g, dtype=F64)
    P = _pairs(Y @ A.T, sig2, split=2)
    mix = shannon_information(P, "mixture", samples=16, seed=0)
    gau = shannon_information(P, "gaussian")
    assert abs(mix.nats - exact) <= 3 * mix.stderr + 0.08, (mix.nats, mix.stderr, exact)
    assert abs(gau.nats - diag_limit) <= 0.08
    assert gau.nats >= mix.nats - 3 * mix.stderr


@pytest.mark.parametrize("seed", range(6))
def test_mixture_below_ln_k_and_gaussian_above_mixture(seed):
    g = torch.Generator().manual_seed(seed)
    K = int(torch.randint(2, 12, (1,), generator=g))
    d = int(torch.randint(1, 6, (1,), generator=g))
    scale = float(torch.rand(1, generator=g)) * 5
    P = [
        (
            {"w": torch.randn(d, generator=g, dtype=F64) * scale},
            {"w": torch.rand(d, generator=g, dtype=F64) * 2 + 0.05},
        )
        for _ in range(K)
    ]
    mix = shannon_information(P, samples=32, seed=seed)
    gau = shannon_information(P, "gaussian")
    assert -1e-9 <= mix.nats + 3 * mix.stderr and mix.nats <= math.log(K)
    assert gau.nats >= mix.nats - 3 * mix.stderr - 1e-9


def test_float32_parameter_shapes_and_result_fields():
    g = torch.Generator().manual_seed(0)
    P = [
        (
            {
                "conv.weight": torch.randn(2, 1, 3, 3, generator=g),
                "fc.bias": torch.randn(4, generator=g),
            },
            {"conv.weight": torch.full((2, 1, 3, 3), 0.5), "fc.bias": torch.full((4,), 0.5)},
        )
        for _ in range(3)
    ]
    r = weightinfo.shannon_information(P, samples=4, seed=1)
    assert r == shannon_information(P, samples=4, seed=1)  # seeded
    d = r.to_dict()
    assert d["dimension"] == 22 and d["k"] == 3 and d["units"] == "nats"
    assert r.bits == pytest.approx(r.nats / math.log(2))


def test_invalid_posteriors_raise_named_errors():
    ok = ({"w": torch.zeros(2)}, {"w": torch.ones(2)})
    with pytest.raises(PosteriorsError, match="K >= 2"):
        shannon_information([ok])
    with pytest.raises(PosteriorsError, match=r"posteriors\[1\].*names"):
        shannon_information([ok, ({"v": torch.zeros(2)}, {"v": torch.ones(2)})])
    with pytest.raises(PosteriorsError, match=r"posteriors\[1\] 'w': shapes"):
        shannon_information([ok, ({"w": torch.zeros(3)}, {"w": torch.ones(3)})])
    with pytest.raises(PosteriorsError, match="not finite"):
        shannon_information([ok, ({"w": torch.tensor([0.0, float("nan")])}, {"w": torch.ones(2)})])
    with pytest.raises(PosteriorsError, match="> 0"):
        shannon_information([ok, ({"w": torch.zeros(2)}, {"w": torch.tensor([1.0, 0.0])})])
    with pytest.raises(TypeError):
        shannon_information({"w": ok})
    with pytest.raises(ValueError, match="estimator"):
        shannon_information([ok, ok], "kde")
    with pytest.raises(ValueError, match="samples"):
        shannon_information([ok, ok], samples=0)


def test_chunked_uncached_path_matches(monkeypatch):
    """Networks too large to keep the stacked float64 means: same draws, same value, block by block."""
    import weightinfo.dynamics.shannon as mod

    g = torch.Generator().manual_seed(3)
    P = _pairs(torch.randn(4, 50, generator=g, dtype=F64) * 0.3, 0.2, split=20)
    monkeypatch.setattr(mod, "_CHUNK_ELEMENTS", 8 * 4 * 7)  # 7 coordinates per block
    cached = shannon_information(P, samples=8, seed=2)
    monkeypatch.setattr(mod, "_CACHE_ELEMENTS", 0)
    uncached = shannon_information(P, samples=8, seed=2)
    assert uncached.nats == pytest.approx(cached.nats, abs=1e-12)
    monkeypatch.undo()
    whole = shannon_information(P, samples=8, seed=2)  # other draws: agree within Monte Carlo error
    assert abs(whole.nats - cached.nats) <= 4 * math.hypot(whole.stderr, cached.stderr)
