"""PAC-Bayes risk certificates: pure float64 functions of plain Python floats (no torch), all in **nats**.

Notation (as in Pérez-Ortiz et al. 2021, "Tighter risk certificates for neural networks", §2): n = size of the bound set actually used, L̂ = empirical Gibbs risk of
Q on it (loss in [0, 1]), KL = KL(Q‖P) in nats, δ = confidence of the PAC-Bayes step, δ′ = confidence of the
Monte Carlo step, m = MC samples.

====================  ============================================================  ==================
function              bound                                                         module
====================  ============================================================  ==================
kl, kl_inverse_*      binary kl(q‖p) and its upper/lower inverses (bisection 1e−12)  ``binary_kl``
pac_bayes_kl          Maurer: kl⁻¹(L̂, (KL + ln(2√n/δ))/n), n ≥ 8                   ``kl_bounds``
seeger                Seeger: kl⁻¹(L̂, (KL + ln((n+1)/δ))/n)                         ``kl_bounds``
classic, quad         L̂ + √(B/2n);  (√(L̂ + B/2n) + √(B/2n))²,  B = KL + ln(2√n/δ)    ``relaxed``
lambda_bound          Thiemann f_λ (λ = None → λ*, equal to quad), optimal_lambda     ``relaxed``
mcallester, linear    McAllester 1999 (+2);  McAllester 2013 / paper Eq. 3 (β_PAC>½)  ``mcallester``
catoni                fixed C, or Zhou et al.'s union over γ (α = 1e−4, ε = δ)        ``catoni``
mc_sample_bound       kl⁻¹(L̂_m, ln(1/δ′)/m) (two-sided: ln(2/δ′))                    ``monte_carlo``
per_example_mc_bound  kl⁻¹(L̂, ln(1/δ′)/(m·n))                                       ``monte_carlo``
union_delta, …        δ/K or 6δ/(π²j²); D&R prior grid λ_j = c·e^{−j/b}; D&R bound   ``union``
certificate           two-step certificate → BoundResult                            ``certificate``
====================  ============================================================  ==================

Every function validates its arguments (``ValueError`` naming the parameter and value). The plain bound
functions may return values above 1 (the kl-inverse forms never do); :func:`certificate` returns them as is
and flags them ``vacuous``.
"""

from .binary_kl import KL_INVERSE_TOL, kl, kl_inverse_lower, kl_inverse_upper
from .catoni_bounds import catoni
from .kl_bounds import pac_bayes_kl, seeger
from .mcallester_bounds import linear, mcallester
from .monte_carlo import mc_sample_bound, per_example_mc_bound
from .relaxed import classic, lambda_bound, optimal_lambda, quad
from .two_step import BOUNDS, BoundResult, certificate
from .union import dziugaite_roy, prior_scale_grid, prior_scale_index, union_delta

__all__ = [
    "kl",
    "kl_inverse_upper",
    "kl_inverse_lower",
    "KL_INVERSE_TOL",
    "pac_bayes_kl",
    "seeger",
    "quad",
    "lambda_bound",
    "optimal_lambda",
    "classic",
    "mcallester",
    "catoni",
    "linear",
    "mc_sample_bound",
    "per_example_mc_bound",
    "union_delta",
    "prior_scale_grid",
    "prior_scale_index",
    "dziugaite_roy",
    "certificate",
    "BoundResult",
    "BOUNDS",
]
