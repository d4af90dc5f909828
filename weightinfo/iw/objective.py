"""The Information Lagrangian C_β(D; P, Q) of a given post-distribution Q (Achille et al. 2019, Def. 2.1).

    C_β = E_{w∼Q}[L_D(w)] + β · KL(Q ‖ P)

L_D is the **mean** per-sample loss (nats per sample), β is **per sample** (summed-loss conventions use
β_sum = N·β; the PAC-Bayes β_PAC of Eq. 3 is N·β as well), KL is in nats. E_Q[L_D] is a Monte Carlo estimate
(:func:`weightinfo.posterior.sampling.expected_loss`: each draw is one weight sample evaluated on all the data),
KL(Q‖P) is the closed form of :func:`weightinfo.posterior.gaussian.kl_diag`. This evaluates C_β for *any*
Q; the information in the weights is KL at the minimising Q* (see ``variational_information``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from .._base.checks import check_model, check_positive, named_trainable
from ..curvature.result import layer_of
from ..posterior.gaussian import NATS_PER_BIT, DiagGaussian, kl_diag
from ..posterior.prior import GaussianPrior
from ..posterior.sampling import local_reparam_mode, posterior_mc_loss


@dataclass(frozen=True)
class LagrangianResult:
    """C_β = E_Q[L_D] + β·KL(Q‖P) for one Q.

    Attributes
    ----------
    expected_loss : Monte Carlo E_Q[L_D] (mean per-sample loss, nats), ``expected_loss_stderr`` its standard
        error over the ``mc_samples`` draws (NaN for one draw).
    kl_nats : KL(Q‖P) in nats (closed form); ``kl_bits`` in bits.
    beta : β per sample (mean-loss convention).
    value : C_β = expected_loss + beta · kl_nats.
    """

    expected_loss: float
    expected_loss_stderr: float
    kl_nats: float
    beta: float
    loss: str = "cross_entropy"
    mc_samples: int = 0
    seed: int = 0
    n_samples: int = 0

    @property
    def value(self) -> float:
        return self.expected_loss + self.beta * self.kl_nats

    @property
    def kl_bits(self) -> float:
        return self.kl_nats / NATS_PER_BIT

    def to_dict(self) -> dict:
        se = self.expected_loss_stderr
        return {
            "value": self.value,
            "expected_loss": self.expected_loss,
            "expected_loss_stderr": None if math.isnan(se) else se,
            "kl_nats": self.kl_nats,
            "kl_bits": self.kl_bits,
            "beta": self.beta,
            "loss": self.loss,
            "mc_samples": self.mc_samples,
            "seed": self.seed,
            "n_samples": self.n_samples,
            "conventions": {
                "units": "nats",
                "loss": "mean per-sample loss L_D",
                "beta": "per sample (beta_sum = N*beta, beta_PAC = N*beta)",
                "value": "E_Q[L_D] + beta * KL(Q||P)",
            },
        }

    def to_dataframe(self):
        """One row, the scalar fields of :meth:`to_dict` (``value``, ``expected_loss`` in nats per sample,
        ``kl_nats``, ``kl_bits``, ``beta`` per sample, settings)."""
        from .._base.frames import one_row

        return one_row(self.to_dict())


def lagrangian(
    model: nn.Module,
    data,
    posterior: DiagGaussian,
    prior: GaussianPrior,
    beta: float,
    *,
    loss: str = "cross_entropy",
    mc_samples: int = 16,
    seed: int = 0,
    batch_size: int = 256,
    local_reparam: bool | str = False,
) -> LagrangianResult:
    """Evaluate C_β(D; P, Q) = E_{w∼Q}[L_D(w)] + β·KL(Q‖P) in nats (L_D mean per sample, β per sample).

    Parameters
    ----------
    model : ``nn.Module`` in eval mode; its architecture runs the sampled weights.
    data : DataLoader of ``(x, y)`` batches or a tuple ``(X, Y)``.
    posterior : Q = N(μ, diag σ²), keyed exactly like the model's trainable parameters.
    prior : P = N(w0, diag λ_l²) for the same parameters (e.g. ``make_prior``).
    beta : β > 0, finite, per sample.
    mc_samples : weight draws for E_Q[L_D], each evaluated on all of ``data``; seed : seeds them.
    local_reparam : ``False`` (weight draws), ``True``/``"exact"`` or ``"all"`` (see ``posterior.sampling``).

    Raises ``ValueError`` for a bad β, or keys/shapes of ``posterior``/``prior`` that do not match the model.

    >>> import torch
    >>> from weightinfo.posterior import DiagGaussian, make_prior
    >>> m = torch.nn.Linear(2, 2).double().eval()
    >>> q = DiagGaussian({k: p.detach().double() for k, p in m.named_parameters()},
    ...                  {k: torch.full_like(p, 1e-2, dtype=torch.float64) for k, p in m.named_parameters()})
    >>> X, Y = torch.randn(8, 2, dtype=torch.float64), torch.randint(0, 2, (8,))
    >>> r = lagrangian(m, (X, Y), q, make_prior(m, prior_scale=1.0), beta=0.1, mc_samples=4)
    >>> abs(r.value - (r.expected_loss + 0.1 * r.kl_nats)) < 1e-12
    True
    """
    beta = check_positive("beta", beta)
    check_model(model)
    mode = local_reparam_mode(local_reparam)
    params = named_trainable(model)
    _check_keys("posterior", posterior.mean, params)
    _check_keys("prior mean", prior.mean, params)
    missing = sorted({layer_of(k) for k in params} - set(prior.scale))
    if missing:
        raise ValueError(f"prior has no scale for layer(s) {missing}")
    kl = kl_diag(posterior, prior)
    e, se, n = posterior_mc_loss(model, data, posterior, loss, mc_samples, seed, batch_size, mode)
    return LagrangianResult(
        expected_loss=e,
        expected_loss_stderr=se,
        kl_nats=kl,
        beta=beta,
        loss=loss,
        mc_samples=int(mc_samples),
        seed=seed,
        n_samples=n,
    )


def _check_keys(what: str, tensors, params) -> None:
    extra = sorted(set(tensors) - set(params))
    missing = sorted(set(params) - set(tensors))
    if extra or missing:
        raise ValueError(
            f"{what} keys do not match the model's trainable parameters: missing {missing}, extra {extra}"
        )
    for k, p in params.items():
        if tuple(tensors[k].shape) != tuple(p.shape):
            raise ValueError(
                f"{what}[{k!r}] has shape {tuple(tensors[k].shape)}, parameter has {tuple(p.shape)}"
            )
