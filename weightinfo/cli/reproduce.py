"""``weightinfo reproduce EXPERIMENT``: rerun an experiment documented in ``docs/results/``.

* ``weightinfo reproduce random-labels``: an MLP fit to 0, 25, 50 and 100 % random labels and the
  information in its weights with both methods at the same β and λ
  (:func:`weightinfo.experiments.random_labels.run`); writes ``random_labels.json``, ``.png`` and
  ``.md`` to ``--out`` (default ``docs/results``) and prints the table. ``--quick`` runs a reduced
  version on the bundled digits in seconds (its own defaults, :data:`~weightinfo.experiments.
  random_labels.QUICK`; explicit options still override them).
* ``weightinfo reproduce certificates``: the PAC-Bayes risk certificates of
  ``docs/results/certificates.md`` (:mod:`weightinfo.experiments.certificates`): Fashion-MNIST (PBB
  protocol, information-posterior grid and optimised posterior), binary MNIST (Dziugaite & Roy style),
  digits; ``--which`` picks one (default all). Writes ``certificates_<name>.json``, ``.png`` and ``.md``
  to ``--out`` and prints the certificates. ``--quick`` runs tiny settings (digits in seconds).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from ..experiments.random_labels import DEFAULTS as RL_DEFAULTS
from ..experiments.random_labels import QUICK as RL_QUICK
from ._common import STATE, Quiet, info, say, user_errors

app = typer.Typer(
    name="reproduce",
    help="Rerun an experiment documented in docs/results/ (tables, plots, JSON).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _pairs(text: str) -> list[tuple[float, float]]:
    from ..experiments.random_labels import parse_pairs

    try:
        return parse_pairs(text)
    except ValueError:
        raise ValueError(
            f"--sensitivity must be BETA:LAMBDA pairs, e.g. 3e-7:0.05,1e-7:0.07, or 'none'; got {text!r}"
        ) from None


def _list(text: str | None, kind, option: str) -> list | None:
    if text is None:
        return None
    parts = [p.strip() for p in text.replace(" ", ",").split(",") if p.strip()]
    try:
        values = [kind(p) for p in parts]
    except ValueError:
        raise ValueError(f"{option} must be a comma-separated list, got {text!r}") from None
    if not values:
        raise ValueError(f"{option} needs at least one value")
    return values


def _csv(values) -> str:
    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


_D, _Q = RL_DEFAULTS, RL_QUICK
# The keys of weightinfo.experiments.certificates.RUNS (not imported here: it loads torch).
CERT_RUNS = ("fashion", "binary-mnist", "digits")


@app.command("random-labels")
def random_labels_cmd(
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", "-d", help=f"Dataset name. Default {_D['dataset']}."),
    ] = None,
    n_train: Annotated[
        int | None,
        typer.Option(
            min=0, help=f"Training images (seeded subset; 0: all). Default {_D['n_train']}."
        ),
    ] = None,
    fractions: Annotated[
        str | None,
        typer.Option(help=f"Fractions of random labels. Default {_csv(_D['fractions'])}."),
    ] = None,
    widths: Annotated[
        str | None, typer.Option(help=f"MLP hidden widths. Default {_csv(_D['widths'])}.")
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            min=1,
            help=f"Most training epochs (training stops once the mean training loss is "
            f"≤ {_D['fit_loss']:g}). Default {_D['max_epochs']}.",
        ),
    ] = None,
    beta: Annotated[
        float | None,
        typer.Option(
            help=f"β per sample (mean loss), the same for every run. Default {_D['beta']:g}."
        ),
    ] = None,
    prior_scale: Annotated[
        float | None,
        typer.Option(
            "--prior-scale",
            help=f"λ of P = N(w0, λ² I), w0 = initial weights. Default {_D['prior_scale']:g}.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Initial weights, data order, label noise.")] = 0,
    methods: Annotated[
        str | None, typer.Option(help=f"fisher and/or variational. Default {_csv(_D['methods'])}.")
    ] = None,
    sensitivity: Annotated[
        str | None,
        typer.Option(
            help="Further BETA:LAMBDA pairs measured on the same networks, comma-separated, or "
            f"'none'. Default {','.join(f'{b:g}:{lam:g}' for b, lam in _D['sensitivity']) or 'none'}."
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for random_labels.json/.png/.md.")
    ] = Path("docs/results"),
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help=f"Reduced run in seconds: {_Q['n_train']} {_Q['dataset']} images, MLP "
            f"{_csv(_Q['widths'])}, fractions {_csv(_Q['fractions'])}, β {_Q['beta']:g}, "
            f"λ {_Q['prior_scale']:g} (options given still apply).",
        ),
    ] = False,
    quiet: Quiet = False,
) -> None:
    """Information in the weights of an MLP fit to 0-100 % random labels (both methods, same β, λ)."""
    from ..experiments.random_labels import run

    quiet = quiet or STATE.quiet
    with user_errors():
        base = {**RL_DEFAULTS, **(RL_QUICK if quick else {})}
        given = {
            "dataset": dataset,
            "n_train": n_train,
            "fractions": _list(fractions, float, "--fractions"),
            "widths": _list(widths, int, "--widths"),
            "max_epochs": epochs,
            "beta": beta,
            "prior_scale": prior_scale,
            "methods": _list(methods, str, "--methods"),
            "sensitivity": None if sensitivity is None else _pairs(sensitivity),
        }
        s = {**base, **{k: v for k, v in given.items() if v is not None}}
        words = ["weightinfo", "reproduce", "random-labels"] + (["--quick"] if quick else [])
        for name, value in (
            ("--dataset", dataset),
            ("--n-train", n_train),
            ("--fractions", fractions),
            ("--widths", widths),
            ("--epochs", epochs),
            ("--beta", beta),
            ("--prior-scale", prior_scale),
            ("--seed", seed or None),
            ("--methods", methods),
            ("--sensitivity", sensitivity),
            ("--out", out),
        ):
            if value is not None:
                words += [name, str(value)]
        result = run(
            dataset=s["dataset"],
            n_train=s["n_train"] or None,
            fractions=s["fractions"],
            widths=s["widths"],
            epochs=s["max_epochs"],
            beta=s["beta"],
            prior_scale=s["prior_scale"],
            seed=seed,
            methods=s["methods"],
            out_dir=out,
            progress=lambda msg: info(msg, quiet),
            lr=s["lr"],
            batch_size=s["batch_size"],
            fit_loss=s["fit_loss"],
            data_seed=s["data_seed"],
            mc_samples=s["mc_samples"],
            variational_epochs=s["variational_epochs"],
            variational_tol=s["variational_tol"],
            variational_lr=s["variational_lr"],
            sensitivity=s["sensitivity"],
            command=" ".join(shlex.quote(w) for w in words),
            quick=quick,
        )
    ms = result["settings"]["methods"]
    say(
        "random labels  train acc  test acc  "
        + "  ".join(f"IW {m} (nats)" for m in ms)
        + "  mean term (nats)"
    )
    for r in result["rows"]:
        cells = [
            f"{100 * r['fraction']:>12g}%",
            f"{100 * r['train_acc']:>8.1f}%",
            f"{100 * r['test_acc']:>7.1f}%",
        ]
        cells += [f"{r[f'iw_{m}']:>{len(m) + 10},.0f}" for m in ms]
        cells += [f"{r['mean_term']:>16,.0f}"]
        say("  ".join(cells))
    for m in ms:
        ok = result["ordering"][m]["iw_strictly_increasing"]
        say(f"{m}: IW {'rises strictly' if ok else 'does NOT rise strictly'} with the fraction")
    say(f"computed in {result['time_s']:.1f} s; wrote {', '.join(result['files'])}")


@app.command("certificates")
def certificates_cmd(
    which: Annotated[
        str,
        typer.Option(
            "--which", "-w", help=f"Experiment: {', '.join(CERT_RUNS)} or all (in that order)."
        ),
    ] = "all",
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for certificates_<name>.json/.png/.md.")
    ] = Path("docs/results"),
    quick: Annotated[
        bool,
        typer.Option("--quick", help="Tiny settings (smoke test; digits runs in seconds)."),
    ] = False,
    seed: Annotated[int, typer.Option(help="Split, initial weights, data order, MC draws.")] = 0,
    prior_cache: Annotated[
        Path | None,
        typer.Option(
            "--prior-cache",
            help="File keeping the trained prior mean between runs (Fashion-MNIST, digits); reused "
            "only if it holds the very same prior settings.",
        ),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """PAC-Bayes risk certificates: Fashion-MNIST (PBB), binary MNIST (D&R style), digits."""
    from ..experiments._certificates_report import table
    from ..experiments.certificates import RUNS

    quiet = quiet or STATE.quiet
    with user_errors():
        if which not in (*CERT_RUNS, "all"):
            raise ValueError(f"--which must be one of {', '.join(CERT_RUNS)}, all; got {which!r}")
        names = list(CERT_RUNS) if which == "all" else [which]
        results = {}
        for name in names:
            kw = {} if name == "binary-mnist" else {"prior_cache": prior_cache}
            results[name] = RUNS[name](
                out, quick=quick, seed=seed, log=lambda msg: info(msg, quiet), **kw
            )
    for line in table(results):
        say(line)
    for name, res in results.items():
        b = res["best"]
        say(
            f"{name}: best certificate {b['risk_bound']:.4f} ({b['posterior']}, K = {b['k_union']}), "
            f"{res['total_wall_s']:.0f} s; wrote {', '.join(res.get('files', []))}"
        )
