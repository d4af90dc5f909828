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
        str | None,
        typer.Option(
            help="Pin the prior P = N(w0, λ² I): λ, the prior's standard deviation, one number for every "
            "weight of every layer; or a comma-separated grid of λ (each point certified at δ/K, union "
            "bound). Default: chosen from the declared set.",
            show_default=False,
        ),
    ] = None,
    objective: Annotated[
        Literal["fquad", "flambda", "fclassic"], typer.Option(help="Posterior objective.")
    ] = "fquad",
    posterior: Annotated[
        Literal["optimize", "information"] | None,
        typer.Option(help="Pin the posterior Q. Default: chosen from the declared set."),
    ] = None,
    test_fraction: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Fraction of the test set for test errors.")
    ] = 1.0,
    prior_fraction: Annotated[
        float, typer.Option(help="Share of the training set for the prior.")
    ] = 0.5,
    mc_samples: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="MC draws m (networks, or per-example repetitions). Default: m·n ≥ 10⁶ per-example "
            "draws, or 1000 networks for --mc standard.",
            show_default=False,
        ),
    ] = None,
    mc: Annotated[
        Literal["per_example", "standard"],
        typer.Option(
            help="MC estimator: per_example (a weight draw per example; tighter) or standard "
            "(whole networks; the estimator of published PBB numbers)."
        ),
    ] = "per_example",
    delta: Annotated[float, typer.Option(help="δ of the PAC-Bayes step.")] = 0.025,
    delta_mc: Annotated[float, typer.Option(help="δ′ of the MC step.")] = 0.01,
    posterior_epochs: Annotated[
        int | None,
        typer.Option(min=1, help="Pin the posterior's epochs.", show_default=False),
    ] = None,
    beta: Annotated[
        str | None,
        typer.Option(
            help="Pin β per sample of the information posterior (--posterior information; mean-loss "
            "convention L_D + β·KL, β·N for a summed loss): the price in loss of one nat in the weights. "
            "Or a comma-separated grid of β (each point certified at δ/K, union bound).",
            show_default=False,
        ),
    ] = None,
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
    prior_holdout: Annotated[
        float | None,
        typer.Option(
            help="Share of the prior data held out to early-stop the prior's training (0: none). "
            "Default: that of weightinfo.certificates.PriorOptions.",
            show_default=False,
        ),
    ] = None,
    k_union: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Certificates computed on this bound set in all (δ/K each; default the declared set's "
            "or the grid's size).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split, prior, posterior and draws.")] = 0,
    widths: WidthsOpt = None,
    epochs: EpochsOpt = None,
    quiet: Quiet = False,
) -> None:
    """PAC-Bayes risk certificate of the stochastic (Gibbs) predictor, prob. ≥ 1 − δ − δ′.

    By default the configuration is chosen from a declared set (union bound over all of it, K in the
    output); pinning --prior-scale, --posterior, --beta or --posterior-epochs certifies that grid instead.
    Without --checkpoint or --epochs the model is the dataset's reference model (LeNet on MNIST and
    Fashion-MNIST, an MLP on 8x8 digits) at its seeded initial weights: certify trains the prior mean and
    the posteriors itself.
    """
    from .._base import distributed as dist
    from .._base.checks import check_momentum
    from ..bounds.two_step import total_confidence
    from ..certificates import certify
    from ..models.compat import check_fits

    quiet = quiet or STATE.quiet
    if verify is not None:
        _verify(verify)
        return
    from .._base.provenance import made_by

    made = made_by(command=command_line(ctx, env=True))  # the code at the start of the run
    with user_errors():
        if out is None:
            raise ValueError("--out FOLDER is required (or --verify certificate.json)")
        check_output(out, "--out", folder=True)
        pinned = {}
        if prior_scale is not None:
            scales = _floats(prior_scale, "--prior-scale")
            pinned["prior_scale"] = scales if len(scales) > 1 else scales[0]
        if beta is not None:
            betas = _floats(beta, "--beta")
            pinned["beta"] = betas if len(betas) > 1 else betas[0]
        if posterior_epochs is not None:
            pinned["posterior_epochs"] = posterior_epochs
        check_momentum("--prior-momentum", prior_momentum)
        total_confidence(delta, delta_mc)  # before any training: δ, δ′ in (0, 1), δ + δ′ < 1
        ck, ds, name, model_name = _model_and_data(
            dataset, model, checkpoint, widths, epochs, seed, quiet
        )
        check_fits(ck.meta.get("architecture", {}), ds)
        pi, bi = ds.prior_bound_split(prior_fraction, seed)
        n_test = int(round(test_fraction * ds.n_test))
        info(f"certifying {model_name} on {name}: prior set {len(pi)}, bound set {len(bi)}", quiet)
        # Under torchrun every rank takes its contiguous share of each set (rank 0 alone writes).
        pi, bi = _share(pi), _share(bi)
        rows = _share(range(ds.n_train))
        lo, hi = rows.start, rows.stop
        test = None
        if n_test > 0:
            t = _share(range(n_test))
            test = (ds.x_test[t.start : t.stop], ds.y_test[t.start : t.stop])
        extra = {} if prior_holdout is None else {"prior_holdout": prior_holdout}
        cert = certify(
            ck.model.eval(),
            prior_data=(ds.x_train[pi], ds.y_train[pi]),
            posterior_data=(ds.x_train[lo:hi], ds.y_train[lo:hi]),
            bound_data=(ds.x_train[bi], ds.y_train[bi]),
            test_data=test,
            prior=prior,
            posterior=posterior,
            mc=mc,
            init_state=ck.init_state_dict,
            prior_epochs=prior_epochs,
            prior_lr=prior_lr,
            prior_batch_size=prior_batch_size,
            prior_momentum=prior_momentum,
            objective=objective,
            mc_samples=mc_samples,
            delta_mc=delta_mc,
            delta=delta,
            seed=seed,
            prior_indices=pi,
            bound_indices=bi,
            k_union=k_union,
            log=lambda line: info(line, quiet),
            **pinned,
            **extra,
        )
        # Under torchrun only rank 0 reports and writes (the others wait for it).
        extra_record = dict(
            dataset=name,
            model_name=model_name,
            split={"seed": seed, "prior_fraction": prior_fraction, "test_fraction": test_fraction},
            checkpoint=None if checkpoint is None else str(checkpoint),
            command=command_line(ctx, env=True),
        )
        dist.main_only(_write, cert, model_name, made, extra_record, out, quiet)


def _write(cert, model_name: str, made, extra_record: dict, out, quiet: bool) -> None:
    """Report ``cert`` on stdout and write certificate.json/.png to ``out`` (rank 0 under torchrun)."""
    from ..report import write_json_atomic

    _report(cert, model_name)
    record = dict(cert.to_dict(), made_by=made)
    record["record"] = dict(record["record"] or {}, **extra_record)
    with all_or_nothing(out) as stage:
        write_json_atomic(stage / "certificate.json", record)
        plot_terms(cert, stage / "certificate.png")
    for name in ("certificate.json", "certificate.png"):
        info(f"wrote {Path(out) / name}", quiet)


def _share(rows):
    """This rank's contiguous share of ``rows`` (all of them without a process group)."""
    from .._base import distributed as dist

    lo, hi = dist.shard_bounds(len(rows))
    return rows[lo:hi]


def _model_and_data(dataset, model, checkpoint, widths, epochs, seed, quiet):
    """The model to certify and its data: a checkpoint; a model trained for ``epochs``; or (the default)
    the dataset's reference model at its seeded initial weights, untrained (certify trains the prior
    mean and the posteriors itself). Returns ``(checkpoint-like, dataset, dataset name, model name)``."""
    from types import SimpleNamespace

    from ..models import build_model
    from ._common import load_data, model_kwargs, resolve_model

    if dataset is not None and checkpoint is None and epochs is None:
        ds = load_data(dataset, seed=0, root=None, download=False)
        # The dataset's reference model when none is named (measured to certify best of MLP and LeNet:
        # docs/results/certificates.md).
        mname, kwargs = resolve_model(dataset, model, model_kwargs(widths, None, None))
        torch = __import__("torch")
        torch.manual_seed(int(seed))
        net = build_model(mname, ds.input_shape, ds.n_classes, **kwargs)
        init = {k: v.detach().clone() for k, v in net.state_dict().items()}
        arch = {
            "name": mname,
            "kwargs": kwargs,
            "input_shape": list(ds.input_shape),
            "n_classes": ds.n_classes,
        }
        ck = SimpleNamespace(model=net, init_state_dict=init, meta={"architecture": arch})
        return ck, ds, dataset, _describe(mname, kwargs)
    src = ModelSource(dataset, model, checkpoint, widths=widths, epochs=epochs, train_seed=seed)
    ck, ds, name, _, _ = load_source(src, quiet=quiet)
    arch = ck.meta.get("architecture", {})
    return (
        ck,
        ds,
        name,
        _describe(arch.get("name", type(ck.model).__name__), arch.get("kwargs", {})),
    )


def _describe(name: str, kwargs: dict) -> str:
    args = ", ".join(f"{k}={v}" for k, v in kwargs.items())
    return f"{name}({args})" if args else name


def _report(cert, model_name: str) -> None:
    """The certificate on stdout: bound, estimator, the chosen candidate and K, test errors."""
    say(
        f"risk bound {cert.risk_bound:.4f} ({'vacuous' if cert.vacuous else 'non-vacuous'}; "
        f"prob. ≥ {cert.confidence:.3f}); empirical Gibbs risk {cert.empirical_risk:.4f}, "
        f"MC upper {cert.mc_upper:.4f}; KL {cert.kl_nats:.2f} nats; n {cert.n_bound}, m {cert.m}"
    )
    estimator = "per-example" if cert.mc == "per_example" else "standard (whole networks)"
    say(f"model {model_name}; Monte Carlo estimator: {estimator}")
    chosen = f"{cert.posterior} λ {cert.prior_scale:g}" + (
        f", β {cert.beta:g}" if cert.beta is not None else ""
    )
    if cert.search:
        say(
            f"chosen from the declared set of {len(cert.search)} configurations: {chosen}; union bound "
            f"over K = {cert.k_union} (δ/K each)"
        )
    elif cert.k_union > 1:
        say(f"union bound over K = {cert.k_union} (δ/K each); chosen {chosen}")
    if cert.test_error is not None:
        say(
            f"test error: Gibbs {cert.test_error:.4f}, mean network {cert.mean_test_error:.4f}, "
            f"majority vote {cert.majority_vote_test_error:.4f}"
        )


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
