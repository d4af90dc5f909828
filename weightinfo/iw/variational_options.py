"""Typed, validated settings of the variational estimator (``weightinfo.iw.variational``).

:class:`VariationalOptions` holds the estimator's own knobs; a field left at None takes the default, or the
``preset``'s (Task2Vec, Achille et al. ICCV 2019), and explicit values override the preset. They are validated
once, when the object is made. :class:`VariationalSettings` adds the arguments every estimator shares (β,
structure, loss, seed, ...) — the complete, frozen description of a run that every step of it reads; what
changes during a run (the family, the optimiser, the monitor, the start) lives in explicit state objects.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .._base.checks import check_choice, check_int, check_positive
from .._base.likelihoods import LOSSES

PRESETS = ("task2vec",)
STRUCTURES = ("diag", "filter")
LOCAL_REPARAM = ("exact", "all", "none")
_DEFAULTS = dict(
    max_epochs=50, lr=0.1, lr_decay=0.3, tol=3e-3, init_var="fisher", learn_prior_scale=False,
    local_reparam="exact", input_floor=0.0,
)  # fmt: skip
_TASK2VEC = dict(
    max_epochs=2, lr=1e-2, lr_decay=1.0, tol=0.0, init_var="weights", learn_prior_scale=True,
    local_reparam="all", input_floor=1e-2,
)  # fmt: skip
TASK2VEC_BETA = 1e-7  # Task2Vec's β (the KL counted twice: the effective β is 2·1e-7)

__all__ = ["VariationalOptions", "VariationalSettings", "PRESETS"]


@dataclass(frozen=True, kw_only=True)
class VariationalOptions:
    """The variational estimator's options (see ``variational_information`` for each); None: the default.

    >>> VariationalOptions(preset="task2vec").lr, VariationalOptions(preset="task2vec", lr=0.1).lr
    (0.01, 0.1)
    """

    preset: str | None = None
    learn_prior_scale: bool | None = None
    init_var: str | float | None = None
    lr: float | None = None
    lr_decay: float | None = None
    max_epochs: int | None = None
    tol: float | None = None
    checks_per_epoch: int = 8
    init_samples: int | None = 4096
    local_reparam: str | bool | None = None
    input_floor: float | None = None

    def __post_init__(self):
        if self.preset is not None:
            check_choice("preset", self.preset, PRESETS)
        defaults = dict(_DEFAULTS, **(_TASK2VEC if self.preset else {}))
        for k, v in defaults.items():
            if getattr(self, k) is None:
                self._set(k, v)
        mode = {True: "exact", False: "none"}.get(self.local_reparam, self.local_reparam)
        self._set("local_reparam", check_choice("local_reparam", mode, LOCAL_REPARAM))
        self._set("max_epochs", check_int("max_epochs", self.max_epochs, 1))
        self._set("checks_per_epoch", check_int("checks_per_epoch", self.checks_per_epoch, 1))
        if self.init_samples is not None:
            self._set("init_samples", check_int("init_samples", self.init_samples, 1))
        self._set("lr", check_positive("lr", self.lr))
        self._set("lr_decay", check_positive("lr_decay", self.lr_decay))
        self._set("tol", check_positive("tol", self.tol, allow_zero=True))
        self._set("input_floor", check_positive("input_floor", self.input_floor, allow_zero=True))
        if isinstance(self.init_var, str):
            check_choice("init_var", self.init_var, ("fisher", "weights"))
        else:
            self._set("init_var", check_positive("init_var", self.init_var))

    def _set(self, name, value) -> None:
        object.__setattr__(self, name, value)

    @classmethod
    def build(cls, options: VariationalOptions | None, kwargs: dict) -> VariationalOptions:
        """``options``, or the options from keywords; ``TypeError`` naming unknown keywords or both forms."""
        if options is not None:
            if not isinstance(options, VariationalOptions):
                raise TypeError(
                    f"variational options must be a VariationalOptions, got {type(options).__name__}"
                )
            if kwargs:
                raise TypeError(
                    f"pass the variational options either as VariationalOptions or as keywords, not both "
                    f"(got {sorted(kwargs)} besides the options object)"
                )
            return options
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(
                f"unexpected argument(s) {unknown} for method='variational'; its options are "
                f"{sorted(known)}, state_path and init_variance"
            )
        return cls(**kwargs)


@dataclass(frozen=True, kw_only=True)
class VariationalSettings(VariationalOptions):
    """The options plus the shared arguments: everything that defines a variational run."""

    beta: float
    kl_factor: float
    structure: str
    loss: str
    seed: int
    batch_size: int
    mc_samples: int | None
    prior_mean_label: str

    @classmethod
    def resolve(
        cls,
        options: VariationalOptions,
        *,
        beta,
        structure,
        loss,
        seed,
        batch_size,
        mc_samples,
        prior_mean,
        convention,
        approximation,
    ) -> VariationalSettings:
        """Validate the shared arguments for the variational method and merge them with ``options``."""
        if convention not in (None, "corrected"):
            raise ValueError(
                f"convention={convention!r} is not available for method='variational': it minimises C_β "
                "directly, so only the corrected convention (None or 'corrected') applies"
            )
        if approximation is not None:
            raise ValueError("approximation applies to the Fisher method; use approximation=None")
        if structure in ("kfac", "full"):
            raise ValueError(
                f"structure={structure!r} is not supported by method='variational'; use 'diag' or 'filter'"
            )
        check_choice("structure", structure, STRUCTURES)
        check_choice("loss", loss, LOSSES)
        if beta is None:
            beta = TASK2VEC_BETA if options.preset else None
        if beta is None:
            raise ValueError("beta is required (a finite number > 0, per sample)")
        fields = {f.name: getattr(options, f.name) for f in dataclasses.fields(VariationalOptions)}
        return cls(
            **fields,
            beta=check_positive("beta", beta),
            kl_factor=2.0 if options.preset else 1.0,
            structure="filter" if options.preset else structure,
            loss=loss,
            seed=check_int("seed", seed),
            batch_size=check_int("batch_size", batch_size, 1),
            mc_samples=None if mc_samples is None else check_int("mc_samples", mc_samples, 0),
            prior_mean_label=prior_mean if isinstance(prior_mean, str) else "custom",
        )

    @property
    def beta_effective(self) -> float:
        """The β that multiplies KL in the objective (2β for Task2Vec)."""
        return self.beta * self.kl_factor
