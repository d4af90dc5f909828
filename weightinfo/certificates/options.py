"""The options of :func:`weightinfo.certify`, grouped into small frozen, validated objects.

* :class:`PriorOptions` — the prior P = N(w0, λ² I): where w0 comes from (``source``), λ or a grid of λ
  (``scale``), the share of ``data`` that trains w0 when ``certify(model, data)`` splits it, and the SGD that
  trains it.
* :class:`PosteriorOptions` — the posterior Q = N(μ, diag σ²): optimised on a PAC-Bayes objective (Pérez-Ortiz
  et al. 2021, "Tighter risk certificates for neural networks"; Dziugaite & Roy 2017) or the information
  posterior Q* of Achille, Paolini & Soatto 2019, Eq. 8, with its β (or a grid of β).
* :class:`MonteCarloOptions` — the Monte Carlo estimate of the Gibbs risk: estimator, draws, screening draws,
  δ′ and the seed of the draws.

Each object checks its fields when it is made, so a bad value fails before any work. ``certify`` also takes
the historical flat keywords (``prior_epochs=``, ``mc_samples=``, …); :data:`FLAT_KEYWORDS` maps each one onto
its object and field. Where w0 or Q comes from is a ``source``, not a ``kind``: ``kind`` names how a
curvature takes the expectation over labels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .._base.checks import check_choice, check_int, check_momentum, check_positive
from .posterior_fit import OBJECTIVES, OPTIMIZERS, SIGMA_INITS, SURROGATES

PRIORS = ("data", "init")
POSTERIORS = ("optimize", "information")
MC_ESTIMATORS = ("standard", "per_example")
POSTERIOR_INITS = ("prior", "model")
#: Per-example Monte Carlo draws m·n aimed at when ``samples`` / ``screen`` are left open.
MC_DRAWS = 1_000_000
MC_SCREEN_DRAWS = 100_000
#: Weight draws of the standard estimator when ``samples`` is left open.
MC_STANDARD_SAMPLES = 1000


def check_confidence(name: str, value) -> float:
    """A confidence parameter in the open interval (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")
    return float(value)


def grid(value, name: str) -> list[float]:
    """A number or a non-empty list/tuple of numbers, each finite and > 0, as a list of floats."""
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ValueError(f"{name} grid is empty")
    out = []
    for s in values:
        s = float(s)
        if not math.isfinite(s) or s <= 0:
            raise ValueError(f"{name} must be > 0, got {s!r}")
        out.append(s)
    return out


def mc_repetitions_for(n: int, draws: float) -> int:
    """Per-example repetitions m so that m·n ≥ ``draws`` (at least 1, at most 1000)."""
    return int(min(1000, max(1, math.ceil(float(draws) / int(n)))))


def _freeze(value):
    """Lists become tuples so that a frozen option object cannot be changed through a field."""
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True)
class PriorOptions:
    """The prior P = N(w0, λ² I).

    source : ``"data"`` — w0 = ``state`` if given (a state dict trained on the prior data only, used exactly),
        else a re-initialised copy of the model (``init_state`` if given) trained by ERM on the prior data
        (SGD with ``momentum``, constant ``lr``, ``batch_size``, at most ``epochs``; dropout active where the
        model has it); ``"init"`` — w0 = ``init_state`` (data-free).
    holdout, patience, holdout_min : early stopping of that training: a seeded share ``holdout`` of the
        prior data (still prior data, never bound data) is held out, and w0 is the epoch's weights with the
        lowest held-out 0-1 error, training stopping after ``patience`` epochs without improvement. Only
        when the held-out part has at least ``holdout_min`` examples: a smaller one is too noisy to stop on
        (measured on digits, 72 held-out images: early stopping raised the certificate from 0.090 to 0.108,
        ``docs/results/certificates.md``), and the prior then trains on all its data for ``epochs`` epochs,
        as it does with ``holdout=0``.
    schedule : the learning-rate schedule of that SGD: ``"cosine"`` (the default: to 0 over ``epochs``, so
        the last epochs settle; measured on Fashion-MNIST, a constant rate with early stopping stopped at a
        held-out error of 0.126 against 0.111 for 50 constant-rate epochs) or ``None`` (constant).
    scale : λ, the prior's standard deviation (the same for every weight), or a grid of λ (union bound).
    fraction : the share of ``data`` that trains w0 when ``certify(model, data)`` splits it
        (:func:`weightinfo.data.splits.prior_bound_split`); the rest is the bound set.
    """

    source: str = "data"
    scale: float | tuple[float, ...] = 0.03
    state: Mapping | None = None
    init_state: Mapping | None = None
    fraction: float = 0.5
    epochs: int = 30
    lr: float = 0.05
    batch_size: int = 64
    momentum: float = 0.9
    holdout: float = 0.1
    patience: int = 10
    holdout_min: int = 1000
    schedule: str | None = "cosine"

    def __post_init__(self):
        check_choice("prior", self.source, PRIORS)
        if not 0.0 <= float(self.holdout) < 1.0:
            raise ValueError(f"prior_holdout must lie in [0, 1), got {self.holdout!r}")
        check_int("prior_patience", self.patience, 1)
        check_int("prior_holdout_min", self.holdout_min, 1)
        check_choice("prior_schedule", self.schedule, (None, "cosine"))
        object.__setattr__(self, "scale", _freeze(self.scale))
        grid(self.scale, "prior_scale")
        if not 0.0 < float(self.fraction) < 1.0:
            raise ValueError(f"prior_fraction must lie in (0, 1), got {self.fraction!r}")
        check_int("prior_epochs", self.epochs, 0)
        check_positive("prior_lr", self.lr)
        check_int("prior_batch_size", self.batch_size, 1)
        check_momentum("prior_momentum", self.momentum)
        if self.state is not None and self.source != "data":
            raise ValueError("prior_state is a data-dependent prior mean: use it with prior='data'")
        if self.state is not None and self.init_state is not None:
            raise ValueError(
                "pass prior_state (trained prior mean) or init_state (its start), not both"
            )
        if self.source == "init" and self.init_state is None:
            raise ValueError("prior='init' needs the initial weights: pass init_state=")

    @property
    def scales(self) -> list[float]:
        """The λ grid (one point when ``scale`` is a number)."""
        return grid(self.scale, "prior_scale")

    def holdout_for(self, n_prior: int) -> float:
        """The share held out for early stopping from ``n_prior`` prior examples (0 below ``holdout_min``)."""
        return float(self.holdout) if self.holdout * int(n_prior) >= self.holdout_min else 0.0

    @property
    def trains(self) -> bool:
        """Whether w0 is trained on the prior data (``source="data"`` without a given ``state``)."""
        return self.source == "data" and self.state is None


@dataclass(frozen=True)
class PosteriorOptions:
    """The posterior Q = N(μ, diag σ²).

    source : ``"optimize"`` — μ from the prior mean (``init="prior"``, PBB; the default) or the model's
        weights (``init="model"``), σ from ``sigma_init``, trained for ``epochs`` on ``objective`` (``fquad``,
        ``flambda``, ``fclassic``) of the ``surrogate`` loss with ``optimizer`` (Adam or RMSprop) at ``lr``,
        ×0.1 after ``lr_drop_epoch``; ``learn_prior_scale`` learns λ with it (Dziugaite & Roy 2017).
        ``"information"`` — Q* = ``information(model, data, beta=β, prior_scale=λ, method="fisher")``
        (Achille, Paolini & Soatto 2019, Eq. 8), centred at the model's weights (``init="model"``, the
        default) or at the prior mean (``init="prior"``).
    beta : β of the information posterior, per training sample (the mean-loss convention L_D + β·KL), or a
        grid of β; only a number for ``source="optimize"``, where it is unused.
    """

    source: str = "optimize"
    objective: str = "fquad"
    init: str | None = None
    epochs: int = 20
    lr: float = 5e-3
    batch_size: int = 128
    beta: float | tuple[float, ...] = 1e-3
    surrogate: str = "bounded_ce"
    sigma_init: str = "prior"
    sigma_factor: float = 1.0
    optimizer: str = "adam"
    lr_drop_epoch: int | None = None
    learn_prior_scale: bool = False

    def __post_init__(self):
        check_choice("posterior", self.source, POSTERIORS)
        check_choice("objective", self.objective, OBJECTIVES)
        if self.init is None:
            object.__setattr__(self, "init", "prior" if self.source == "optimize" else "model")
        check_choice("posterior_init", self.init, POSTERIOR_INITS)
        check_choice("surrogate", self.surrogate, SURROGATES)
        check_choice("posterior_sigma_init", self.sigma_init, SIGMA_INITS)
        check_choice("posterior_optimizer", self.optimizer, OPTIMIZERS)
        check_int("posterior_epochs", self.epochs, 0)
        check_positive("posterior_lr", self.lr)
        check_int("batch_size", self.batch_size, 1)
        check_positive("posterior_sigma_factor", self.sigma_factor)
        if self.lr_drop_epoch is not None:
            check_int("posterior_lr_drop_epoch", self.lr_drop_epoch, 0)
        if self.learn_prior_scale and self.source != "optimize":
            raise ValueError("learn_prior_scale applies to posterior='optimize' only")
        object.__setattr__(self, "beta", _freeze(self.beta))
        if self.source == "optimize" and isinstance(self.beta, tuple):
            raise ValueError("a beta grid only applies to posterior='information'")
        if self.source == "information":
            grid(self.beta, "beta")

    @property
    def betas(self) -> list:
        """The β grid of the information posterior; ``[None]`` for the optimised posterior."""
        return grid(self.beta, "beta") if self.source == "information" else [None]


@dataclass(frozen=True)
class MonteCarloOptions:
    """The Monte Carlo step: û = kl⁻¹(L̂_m, ln(1/δ′)/m) (Langford & Caruana 2002), with probability ≥ 1 − δ′.

    estimator : ``"per_example"`` (the default: an independent weight draw per example and repetition,
        N = m·n, any architecture: exact local reparameterisation in ``nn.Linear`` on 2-D input, real
        per-example draws of conv and other weights, see :func:`.risk.gibbs_error_per_example`; tighter
        than the standard estimator at equal compute) or ``"standard"`` (``samples``
        networks, each on the whole bound set; the estimator of published PBB numbers).
    samples : m; left open (None): 1000 networks for ``"standard"``, m·n ≥ 10⁶ for ``"per_example"``
        (:func:`mc_repetitions_for`, 1 ≤ m ≤ 1000).
    screen : draws per grid point when the grid has more than one point; the chosen point is re-estimated with
        ``samples`` fresh draws. Left open: ``samples`` if that is given, else 1000 networks (standard) or
        m·n ≥ 10⁵ (per-example). seed : seed of the draws (default: certify's ``seed``). majority_votes :
        networks in the majority vote reported on the test data.
    """

    estimator: str = "per_example"
    samples: int | None = None
    screen: int | None = None
    delta_mc: float = 0.01
    seed: int | None = None
    majority_votes: int = 32

    def __post_init__(self):
        check_choice("mc", self.estimator, MC_ESTIMATORS)
        check_confidence("delta_mc", self.delta_mc)
        if self.samples is not None:
            check_int("mc_samples", self.samples, 1)
        if self.screen is not None:
            check_int("mc_screen", self.screen, 1)
        if self.seed is not None:
            check_int("mc_seed", self.seed)
        check_int("majority_votes", self.majority_votes, 1)

    def draws(self, n: int) -> int:
        """m on a set of n examples (``samples``, or the rule above when it is left open)."""
        if self.samples is not None:
            return int(self.samples)
        if self.estimator == "standard":
            return MC_STANDARD_SAMPLES
        return mc_repetitions_for(n, MC_DRAWS)

    def screen_draws(self, n: int) -> int:
        """Draws per grid point when screening on n examples (``screen``, or the rule above)."""
        if self.screen is not None:
            return int(self.screen)
        if self.samples is not None:
            return int(self.samples)
        if self.estimator == "standard":
            return MC_STANDARD_SAMPLES
        return mc_repetitions_for(n, MC_SCREEN_DRAWS)


#: ``certify``'s flat keyword → (option group, field). The group keywords themselves (``prior=``,
#: ``posterior=``, ``mc=``) take the ``source``/``estimator`` string or a whole option object.
FLAT_KEYWORDS: dict[str, tuple[str, str]] = {
    "prior_scale": ("prior", "scale"),
    "prior_state": ("prior", "state"),
    "init_state": ("prior", "init_state"),
    "prior_fraction": ("prior", "fraction"),
    "prior_epochs": ("prior", "epochs"),
    "prior_lr": ("prior", "lr"),
    "prior_batch_size": ("prior", "batch_size"),
    "prior_momentum": ("prior", "momentum"),
    "prior_holdout": ("prior", "holdout"),
    "prior_patience": ("prior", "patience"),
    "prior_holdout_min": ("prior", "holdout_min"),
    "prior_schedule": ("prior", "schedule"),
    "objective": ("posterior", "objective"),
    "posterior_init": ("posterior", "init"),
    "posterior_epochs": ("posterior", "epochs"),
    "posterior_lr": ("posterior", "lr"),
    "batch_size": ("posterior", "batch_size"),
    "beta": ("posterior", "beta"),
    "surrogate": ("posterior", "surrogate"),
    "posterior_sigma_init": ("posterior", "sigma_init"),
    "posterior_sigma_factor": ("posterior", "sigma_factor"),
    "posterior_optimizer": ("posterior", "optimizer"),
    "posterior_lr_drop_epoch": ("posterior", "lr_drop_epoch"),
    "learn_prior_scale": ("posterior", "learn_prior_scale"),
    "mc_samples": ("mc", "samples"),
    "mc_screen": ("mc", "screen"),
    "delta_mc": ("mc", "delta_mc"),
    "mc_seed": ("mc", "seed"),
    "majority_votes": ("mc", "majority_votes"),
}

_GROUPS = {
    "prior": (PriorOptions, "source"),
    "posterior": (PosteriorOptions, "source"),
    "mc": (MonteCarloOptions, "estimator"),
}


def resolve_options(
    prior, posterior, mc, flat: Mapping
) -> tuple[PriorOptions, PosteriorOptions, MonteCarloOptions]:
    """The three option objects from ``certify``'s keywords.

    ``prior`` / ``posterior`` / ``mc`` are either the source or estimator (a string, completed by the flat keywords of
    their group) or an option object (then that group's flat keywords must not be given as well).
    """
    unknown = [k for k in flat if k not in FLAT_KEYWORDS]
    if unknown:
        raise TypeError(f"certify() got an unexpected keyword argument {unknown[0]!r}")
    given = {"prior": prior, "posterior": posterior, "mc": mc}
    out = []
    for group, (cls, name_field) in _GROUPS.items():
        value = given[group]
        kw = {f: flat[k] for k, (g, f) in FLAT_KEYWORDS.items() if g == group and k in flat}
        if isinstance(value, cls):
            if kw:
                names = [k for k, (g, _) in FLAT_KEYWORDS.items() if g == group and k in flat]
                raise ValueError(
                    f"{', '.join(names)} given both as keyword(s) and in {group}={cls.__name__}(...): "
                    "pass each setting once"
                )
            out.append(value)
        elif isinstance(value, str):
            out.append(cls(**{name_field: value}, **kw))
        else:
            raise TypeError(
                f"{group} must be a string or a {cls.__name__}, got {type(value).__name__}"
            )
    return tuple(out)
