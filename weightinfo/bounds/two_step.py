"""Two-step PAC-Bayes risk certificate (Dziugaite & Roy 2017; Pérez-Ortiz et al. 2021).

1. û = Monte Carlo upper bound on the empirical Gibbs risk L̂_S(Q) (prob. ≥ 1 − δ′ over the MC draws):
   standard estimator kl⁻¹(L̂_m, ln(1/δ′)/m) by default, per-example kl⁻¹(L̂, ln(1/δ′)/(m·n)) as an option,
   two-sided ln(2/δ′) on request (to reproduce D&R / PBB numbers).
2. certificate = PAC-Bayes bound evaluated at û (prob. ≥ 1 − δ over the bound set); default Maurer's
   kl⁻¹(û, (KL + ln(2√n/δ))/n).

Every bound is non-decreasing in the empirical risk, so plugging û in is valid; by a union bound the
certificate holds with probability ≥ 1 − δ − δ′. KL is in **nats** (``kl_bits`` = KL/ln 2). A certificate ≥ 1
is returned as is and flagged ``vacuous``; it is never clipped.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from . import _validate as V
from .catoni_bounds import catoni
from .kl_bounds import pac_bayes_kl, seeger
from .mcallester_bounds import linear, mcallester
from .monte_carlo import mc_sample_bound, per_example_mc_bound
from .relaxed import classic, lambda_bound, quad
from .union import dziugaite_roy

#: Bound names accepted by :func:`certificate` and the function each one calls.
BOUNDS = {
    "kl": pac_bayes_kl,
    "seeger": seeger,
    "quad": quad,
    "lambda": lambda_bound,
    "classic": classic,
    "mcallester": mcallester,
    "catoni": catoni,
    "linear": linear,
    "dziugaite_roy": dziugaite_roy,
}


@dataclass(frozen=True)
class BoundResult:
    """One risk certificate and everything needed to reproduce it.

    Attributes
    ----------
    risk_bound : the certificate on the true Gibbs risk (may be ≥ 1: then ``vacuous`` is True).
    mc_upper : û, the MC upper bound on the empirical Gibbs risk fed to the PAC-Bayes bound.
    emp_risk : the MC estimate itself (L̂_m, or the per-example mean).
    kl_nats, kl_bits : KL(Q‖P) in nats and bits.
    n : bound-set size. m : network samples (standard) or repetitions (per-example).
    delta, delta_mc : δ of the PAC-Bayes step and δ′ of the MC step; ``confidence`` = 1 − δ − δ′.
    bound : bound name (a key of ``BOUNDS``). estimator : ``"network"`` or ``"per_example"``.
    two_sided : whether the MC step used ln(2/δ′). options : extra bound arguments (``lam``, ``C``, …).
    vacuous : ``risk_bound >= 1``.
    """

    risk_bound: float
    mc_upper: float
    emp_risk: float
    kl_nats: float
    n: int
    m: int
    delta: float
    delta_mc: float
    bound: str
    estimator: str = "network"
    two_sided: bool = False
    options: dict = field(default_factory=dict)

    @property
    def kl_bits(self) -> float:
        return self.kl_nats / math.log(2.0)

    @property
    def vacuous(self) -> bool:
        return not self.risk_bound < 1.0

    @property
    def confidence(self) -> float:
        return 1.0 - self.delta - self.delta_mc

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(kl_bits=self.kl_bits, vacuous=self.vacuous, confidence=self.confidence)
        d["options"] = dict(self.options)
        d["units"] = {"kl": "nats (kl_bits in bits)", "risk": "0-1 risk in [0, 1]"}
        return d

    def to_dataframe(self):
        """One row, the scalar fields of :meth:`to_dict` (risks in [0, 1], ``kl_nats`` in nats)."""
        from .._base.frames import one_row

        return one_row(self.to_dict())


def total_confidence(delta, delta_mc) -> float:
    """1 − δ − δ′, the probability the two-step certificate holds with (union bound over the PAC-Bayes step
    and the MC step); ``ValueError`` naming both unless each is in (0, 1) and δ + δ′ < 1."""
    d = V.confidence("delta", delta)
    d_mc = V.confidence("delta_mc", delta_mc)
    if not d + d_mc < 1.0:
        raise ValueError(
            f"delta + delta_mc must be < 1 (the certificate holds with probability >= 1 - delta - delta_mc), "
            f"got delta={delta!r}, delta_mc={delta_mc!r}"
        )
    return 1.0 - d - d_mc


def certificate(
    emp_risk_mc: float,
    kl: float,
    n: int,
    m: int,
    delta: float,
    delta_mc: float,
    bound: str = "kl",
    per_example: bool = False,
    *,
    two_sided: bool = False,
    **options,
) -> BoundResult:
    """Two-step certificate: û from the MC bound, then the PAC-Bayes bound ``bound`` at û.

    Parameters
    ----------
    emp_risk_mc : MC estimate of the empirical Gibbs risk on the bound set, in [0, 1].
    kl : KL(Q‖P) in nats. n : bound-set size actually used. m : network samples (or repetitions).
    delta : δ of the PAC-Bayes step; delta_mc : δ′ of the MC step (both in (0, 1), and δ + δ′ < 1: the
        certificate holds with probability ≥ 1 − δ − δ′).
    bound : one of ``"kl"`` (Maurer, default), ``"seeger"``, ``"quad"``, ``"lambda"``, ``"classic"``,
        ``"mcallester"``, ``"catoni"``, ``"linear"``, ``"dziugaite_roy"``.
    per_example : use the per-example estimator kl⁻¹(L̂, ln(1/δ′)/(m·n)) instead of the standard one.
    two_sided : MC step with ln(2/δ′) (D&R, PBB).
    **options : passed to the bound (``lam`` for "lambda", ``C``/``alpha`` for "catoni", ``beta_pac`` for
        "linear", ``j`` for "dziugaite_roy", ``variant`` for "mcallester").

    Examples
    --------
    >>> r = certificate(0.02, 500.0, 30000, 150000, 0.025, 0.01, two_sided=True)
    >>> round(r.mc_upper, 6), round(r.risk_bound, 6), r.vacuous
    (0.021199, 0.059196, False)
    """
    if bound not in BOUNDS:
        raise ValueError(f"bound must be one of {tuple(BOUNDS)}, got {bound!r}")
    q = V.unit_interval("emp_risk_mc", emp_risk_mc)
    total_confidence(delta, delta_mc)
    if per_example:
        u = per_example_mc_bound(q, m, n, delta_mc, two_sided=two_sided)
    else:
        u = mc_sample_bound(q, m, delta_mc, two_sided=two_sided)
    value = BOUNDS[bound](u, kl, n, delta, **options)
    return BoundResult(
        risk_bound=float(value),
        mc_upper=u,
        emp_risk=q,
        kl_nats=float(kl),
        n=V.count("n", n),
        m=V.count("m", m),
        delta=float(delta),
        delta_mc=float(delta_mc),
        bound=bound,
        estimator="per_example" if per_example else "network",
        two_sided=bool(two_sided),
        options=dict(options),
    )
