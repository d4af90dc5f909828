"""Binary MNIST certificates in the style of Dziugaite & Roy (2017): the settings (:data:`BINARY`) and the
steps of :func:`weightinfo.experiments.certificates.run_binary_mnist`.

The prior is data-free, P = N(w0, λ² I) at the initial weights w0; the posterior starts at the SGD solution
(:func:`sgd_solution`) and is optimised for each λ of the grid λ = c·exp(−j/b) (Dziugaite & Roy 2017),
the grid paid for by a union bound (:func:`certify_binary`).
"""

from __future__ import annotations

import time

import torch

from ..certificates import certify
from ..models import build_model

__all__ = ["BINARY", "binary_settings", "certify_binary", "sgd_solution"]

BINARY = dict(
    widths=(600,),
    sgd_epochs=20,
    sgd_lr=0.01,
    sgd_batch=100,
    c=0.1,
    b=100,
    # Dziugaite & Roy's (2017) recipe and code (run D in docs/results/certificates.md): λ learnt with the
    # posterior (closed-form optimum, clamped to the grid) and rounded onto λ = c·exp(−j/b), j = 0..j_max;
    # σ starts at 2|w| around the SGD solution; logistic loss / ln 2 as the surrogate, RMSprop with a ×0.1
    # drop. f_quad instead of D&R's square-root objective (its KL gradient is too weak at this n: run D).
    js=None,
    j_max=499,
    learn_prior_scale=True,
    surrogate="logistic",
    sigma_init="abs_w",
    sigma_factor=2.0,
    optimizer="rmsprop",
    posterior_epochs=400,
    posterior_lr=3e-3,
    lr_drop_epoch=200,
    batch_size=100,
    mc_samples=50,
    objective="fquad",
    # Certificates computed on this bound set in all: runs A and B (7 λ), then run D's 12 configurations
    # (11 used, 1 spare) × the 500 admissible λ (the learnt λ picks its grid point from the data), plus two
    # exploratory λ outside that grid (j = −34, −33): 7 + 12·500 + 2.
    k_union=6009,
)


def binary_settings(quick: bool, overrides: dict) -> tuple[dict, list[int]]:
    """``BINARY`` with the overrides (and the smoke-test settings), and the grid indices j of λ."""
    s = dict(BINARY, **overrides)
    if quick:
        s.update(sgd_epochs=1, posterior_epochs=1, mc_samples=5, js=(400,), k_union=None)
    # An explicit j list, or every j in [0, j_max] (the admissible λ of the learnt-λ recipe).
    js = list(s["js"]) if s.get("js") is not None else list(range(int(s["j_max"]) + 1))
    return s, js


def sgd_solution(ds, s, seed):
    """The MLP at its initial weights w0 (seeded), then trained by SGD on all training images.

    Returns (model in eval mode, w0, SGD seconds, train error, test error)."""
    from torch.utils.data import DataLoader, TensorDataset

    from ..training import train

    torch.manual_seed(seed)
    model = build_model("mlp", ds.input_shape, ds.n_classes, widths=tuple(s["widths"]))
    w0 = {k: v.detach().clone() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        TensorDataset(ds.x_train, ds.y_train),
        batch_size=s["sgd_batch"],
        shuffle=True,
        generator=gen,
    )
    t = time.perf_counter()
    train(
        model,
        loader,
        epochs=s["sgd_epochs"],
        lr=s["sgd_lr"],
        optimizer="sgd",
        momentum=0.9,
        seed=seed,
        progress=False,
    )
    t_sgd = time.perf_counter() - t
    model.eval()
    with torch.no_grad():
        sgd_train = float((model(ds.x_train).argmax(-1) != ds.y_train).float().mean())
        sgd_test = float((model(ds.x_test).argmax(-1) != ds.y_test).float().mean())
    return model, w0, t_sgd, sgd_train, sgd_test


def certify_binary(model, w0, ds, s, grid, seed):
    """The optimised posterior from the SGD solution, prior N(w0, λ² I) with λ on ``grid``."""
    return certify(
        model,
        posterior_data=(ds.x_train, ds.y_train),
        bound_data=(ds.x_train, ds.y_train),
        test_data=(ds.x_test, ds.y_test),
        prior="init",
        init_state=w0,
        prior_scale=grid,
        posterior="optimize",
        posterior_init="model",
        objective=s["objective"],
        posterior_epochs=s["posterior_epochs"],
        posterior_lr=s["posterior_lr"],
        batch_size=s["batch_size"],
        surrogate=s.get("surrogate", "bounded_ce"),
        posterior_sigma_init=s.get("sigma_init", "prior"),
        posterior_sigma_factor=s.get("sigma_factor", 1.0),
        posterior_optimizer=s.get("optimizer", "adam"),
        learn_prior_scale=s.get("learn_prior_scale", False),
        posterior_lr_drop_epoch=s.get("lr_drop_epoch"),
        mc="per_example",
        mc_samples=s["mc_samples"],
        seed=seed,
        k_union=s.get("k_union"),
    )
