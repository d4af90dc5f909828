"""``weightinfo certify``: a PAC-Bayes risk certificate (Pérez-Ortiz et al. 2021) for a network on a dataset.

The training set is split with ``Dataset.prior_bound_split(prior_fraction, seed)``: the prior part trains the
prior mean (``--prior data``), the rest is the bound set (independent of the prior); the posterior is trained
on the whole training set. Writes ``certificate.json`` (``Certificate.to_dict()``, atomic) and
``certificate.png`` (the bound's terms) to ``--out``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from ._common import (
    STATE,
    CheckpointOpt,
    DatasetOpt,
    EpochsOpt,
    ModelOpt,
    ModelSource,
    Quiet,
    WidthsOpt,
    all_or_nothing,
    check_output,
    command_line,
    info,
    load_source,
    say,
    user_errors,
)


def plot_terms(cert, path: Path) -> Path:
    """Stacked bar: empirical risk, MC gap (û − L̂), complexity gap (bound − û)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    terms = [
        ("empirical risk", cert.empirical_risk),
        ("MC gap", cert.mc_upper - cert.empirical_risk),
        ("complexity gap", cert.risk_bound - cert.mc_upper),
    ]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    bottom = 0.0
    for label, v in terms:
        ax.bar(["certificate"], [v], bottom=bottom, label=f"{label} {v:.4f}")
        bottom += v
    if cert.test_error is not None:
        ax.axhline(
            cert.test_error, color="k", ls="--", label=f"Gibbs test error {cert.test_error:.4f}"
        )
    ax.set_ylabel("0-1 risk")
    ax.set_title(f"risk bound {cert.risk_bound:.4f} (KL {cert.kl_nats:.1f} nats, n {cert.n_bound})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _floats(text: str, option: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(
            f"{option} must be a number or comma-separated numbers, got {text!r}"
        ) from None
    if not values:
        raise ValueError(f"{option} needs at least one value")
    return values


def certify_cmd(
    ctx: typer.Context,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Folder for certificate.json/.png.")
    ] = None,
    verify: Annotated[
        Path | None,
        typer.Option(
            "--verify",
            help="Check a certificate.json instead of computing one: recompute its bound from the "
            "recorded terms (exit 0 if consistent, 2 if not).",
        ),
    ] = None,
    dataset: DatasetOpt = None,
    model: ModelOpt = None,
    checkpoint: CheckpointOpt = None,
    prior: Annotated[Literal["data", "init"], typer.Option(help="Prior mean.")] = "data",
    prior_scale: Annotated[
        str,
        typer.Option(
            help="Prior P = N(w0, λ² I): λ, the prior's standard deviation, one number for every weight "
            "of every layer; or a comma-separated grid of λ (each point certified at δ/K, union bound)."
        ),
    ] = "0.03",
    objective: Annotated[
        Literal["fquad", "flambda", "fclassic"], typer.Option(help="Posterior objective.")
    ] = "fquad",
    posterior: Annotated[
        Literal["optimize", "information"], typer.Option(help="Posterior Q.")
    ] = "optimize",
    test_fraction: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Fraction of the test set for test errors.")
    ] = 1.0,
    prior_fraction: Annotated[
        float, typer.Option(help="Share of the training set for the prior.")
    ] = 0.5,
    mc_samples: Annotated[int, typer.Option(min=1, help="MC weight draws m.")] = 1000,
    mc: Annotated[
        Literal["standard", "per_example"], typer.Option(help="MC estimator.")
    ] = "standard",
    delta: Annotated[float, typer.Option(help="δ of the PAC-Bayes step.")] = 0.025,
    delta_mc: Annotated[float, typer.Option(help="δ′ of the MC step.")] = 0.01,
    posterior_epochs: Annotated[int, typer.Option(min=1, help="Posterior epochs.")] = 20,
    beta: Annotated[
        str,
        typer.Option(
            help="β per sample of the information posterior (--posterior information; mean-loss "
            "convention L_D + β·KL, β·N for a summed loss): the price in loss of one nat in the weights. "
            "Or a comma-separated grid of β (each point certified at δ/K, union bound)."
        ),
    ] = "0.001",
    prior_epochs: Annotated[
        int, typer.Option(min=1, help="Epochs of the prior mean's SGD (--prior data).")
    ] = 30,
    prior_lr: Annotated[float, typer.Option(help="Learning rate of the prior mean's SGD.")] = 0.05,
    prior_batch_size: Annotated[
        int, typer.Option(min=1, help="Batch size of the prior mean's SGD.")
    ] = 64,
    prior_momentum: Annotated[
        float, typer.Option(help="Momentum of the prior mean's SGD, in [0, 1).")
    ] = 0.9,
    k_union: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Certificates computed on this bound set in all (δ/K each; default the grid size).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split, prior, posterior and draws.")] = 0,
    widths: WidthsOpt = None,
    epochs: EpochsOpt = None,
    quiet: Quiet = False,
) -> None:
    """PAC-Bayes risk certificate of the stochastic (Gibbs) predictor, prob. ≥ 1 − δ − δ′."""
    from .._base.checks import check_momentum
    from ..bounds.two_step import total_confidence
    from ..certificates import MonteCarloOptions, PosteriorOptions, PriorOptions, certify
    from ..models.compat import check_fits
    from ..report import write_json_atomic

    quiet = quiet or STATE.quiet
    if verify is not None:
        _verify(verify)
        return
    with user_errors():
        if out is None:
            raise ValueError("--out FOLDER is required (or --verify certificate.json)")
        check_output(out, "--out", folder=True)
        scales = _floats(prior_scale, "--prior-scale")
        betas = _floats(beta, "--beta")
        check_momentum("--prior-momentum", prior_momentum)
        total_confidence(delta, delta_mc)  # before any training: δ, δ′ in (0, 1), δ + δ′ < 1
        # certify offers a subset of the model-source options; the others keep their defaults.
        src = ModelSource(dataset, model, checkpoint, widths=widths, epochs=epochs, train_seed=seed)
        ck, ds, name, _, _ = load_source(src, quiet=quiet)
        check_fits(ck.meta.get("architecture", {}), ds)
        pi, bi = ds.prior_bound_split(prior_fraction, seed)
        n_test = int(round(test_fraction * ds.n_test))
        test = (ds.x_test[:n_test], ds.y_test[:n_test]) if n_test > 0 else None
        info(f"certifying on {name}: prior set {len(pi)}, bound set {len(bi)}", quiet)
        cert = certify(
            ck.model.eval(),
            prior_data=(ds.x_train[pi], ds.y_train[pi]),
            posterior_data=(ds.x_train, ds.y_train),
            bound_data=(ds.x_train[bi], ds.y_train[bi]),
            test_data=test,
            prior=PriorOptions(
                source=prior,
                scale=tuple(scales) if len(scales) > 1 else scales[0],
                init_state=ck.init_state_dict,
                epochs=prior_epochs,
                lr=prior_lr,
                batch_size=prior_batch_size,
                momentum=prior_momentum,
            ),
            posterior=PosteriorOptions(
                source=posterior,
                objective=objective,
                epochs=posterior_epochs,
                beta=tuple(betas) if len(betas) > 1 else betas[0],
            ),
            mc=MonteCarloOptions(estimator=mc, samples=mc_samples, delta_mc=delta_mc),
            delta=delta,
            seed=seed,
            prior_indices=pi,
            bound_indices=bi,
            k_union=k_union,
        )
        say(
            f"risk bound {cert.risk_bound:.4f} ({'vacuous' if cert.vacuous else 'non-vacuous'}; "
            f"prob. ≥ {cert.confidence:.3f}); empirical Gibbs risk {cert.empirical_risk:.4f}, "
            f"MC upper {cert.mc_upper:.4f}; KL {cert.kl_nats:.2f} nats; n {cert.n_bound}, m {cert.m}"
        )
        if cert.k_union > 1:
            chosen = f"λ {cert.prior_scale:g}" + (f", β {cert.beta:g}" if cert.beta else "")
            say(f"union bound over K = {cert.k_union} (δ/K each); chosen {chosen}")
        if cert.test_error is not None:
            say(
                f"test error: Gibbs {cert.test_error:.4f}, mean network {cert.mean_test_error:.4f}, "
                f"majority vote {cert.majority_vote_test_error:.4f}"
            )
        record = dict(cert.to_dict())
        record["record"] = dict(
            record["record"] or {},
            dataset=name,
            split={"seed": seed, "prior_fraction": prior_fraction, "test_fraction": test_fraction},
            checkpoint=None if checkpoint is None else str(checkpoint),
            command=command_line(ctx, env=True),
        )
        with all_or_nothing(out) as stage:
            write_json_atomic(stage / "certificate.json", record)
            plot_terms(cert, stage / "certificate.png")
        for name in ("certificate.json", "certificate.png"):
            info(f"wrote {Path(out) / name}", quiet)


def _verify(path: Path) -> None:
    """``--verify``: the checks of :func:`weightinfo.certificates.verify_certificate` on a certificate file."""
    import json

    from ..certificates import verify_certificate

    with user_errors():
        try:
            cert = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise ValueError(f"--verify {str(path)!r}: cannot read a certificate ({e})") from None
        if not isinstance(cert, dict):
            raise ValueError(f"--verify {str(path)!r}: not a certificate (a JSON object)")
        result = verify_certificate(cert)
    say(str(result))
    if not result.ok:
        say(f"{path}: NOT consistent with its recorded terms")
        raise typer.Exit(2)
    say(f"{path}: consistent (risk bound {float(cert['risk_bound']):.6f} recomputed)")
