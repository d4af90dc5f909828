"""``weightinfo reproduce EXPERIMENT``: rerun an experiment documented in ``docs/results/``.

These commands are the one definition of each experiment's options: the scripts in the repository's
``experiments/`` folder run them (``python experiments/certificates.py ARGS`` is
``weightinfo reproduce certificates ARGS``). Their defaults are read from the experiment modules.

* ``weightinfo reproduce random-labels``: an MLP fit to 0, 25, 50 and 100 % random labels and the
  information in its weights with both methods at the same β and λ
  (:func:`weightinfo.experiments.random_labels.run`, defaults
  :data:`~weightinfo.experiments.random_labels.DEFAULTS`); writes ``random_labels.json``, ``.png`` and
  ``.md`` and prints the table. ``--quick`` runs a reduced version on the bundled digits in seconds (its
  own defaults, :data:`~weightinfo.experiments.random_labels.QUICK`; explicit options still override them).
* ``weightinfo reproduce certificates``: the PAC-Bayes risk certificates of
  ``docs/results/certificates.md`` (:mod:`weightinfo.experiments.certificates`): Fashion-MNIST (PBB
  protocol, information-posterior grid and optimised posterior), binary MNIST (Dziugaite & Roy style),
  digits; ``--which`` picks some (default all). Writes ``certificates_<name>.json``, ``.png`` and ``.md``
  and prints the certificates. ``--quick`` runs tiny settings (digits in seconds).
* ``weightinfo reproduce invariance``: the information in the weights of ≥ 8 LeNets (augmentation × random
  labels × training weight noise) against the effective information and the nuisance Fisher of their noisy
  activations, at one β and λ (:func:`weightinfo.experiments.invariance.run_invariance`, settings
  :data:`~weightinfo.experiments.invariance.INVARIANCE`); writes ``invariance.json``, ``.png`` and ``.md``.
  ``--quick``: digits, tiny settings, seconds.
* ``weightinfo reproduce fig1``: ln|F + δI|, tr F, ‖H − F‖/‖F‖ (exact, dense) and decision-boundary changes
  over the full-batch training of a 2-16-16-1 tanh network on two moons, the paper's Fig 1
  (:func:`weightinfo.experiments.fig1.run_fig1`, settings :data:`~weightinfo.experiments.fig1.FIG1`); writes
  ``fig1.json``, ``.png`` and ``.md``. ``--quick``: a few hundred steps, seconds.
* ``weightinfo reproduce fig3``: the zigzag toy of the paper's Fig 3 — E ln F, the paper-style (seeds pooled)
  and the seed-averaged Shannon information and the entropy of the piece reached vs SGD batch size
  (:func:`weightinfo.experiments.fig3.run_fig3`, settings :data:`~weightinfo.experiments.fig3.FIG3`); writes
  ``fig3.json``, ``.png`` and ``.md``. ``--quick``: 20 datasets × 3 seeds, 500 steps, seconds.
* ``weightinfo reproduce temperature``: Prop 2.8 at equal loss — plain SGD at temperatures T = η/B (11 (η, B)
  pairs, 10 distinct T, several seeds) on digits, each run stopped where its training loss first reaches each
  target L*, and there ln|F + δI| (exact, dense), tr F and the loss; Spearman ρ(T, ln|F|) and ρ(T, tr F) per
  target, paired by seed, with the residual loss spread
  (:func:`weightinfo.experiments.temperature.run_temperature`, settings
  :data:`~weightinfo.experiments.temperature.TEMPERATURE`); writes ``temperature.json``, ``.png`` and ``.md``.
  ``--quick``: 128 images, 4 (η, B), 2 seeds, seconds.
* ``weightinfo reproduce fig4``: Fig 4 — tr F after a fixed number of epochs vs batch size (fixed η and fixed
  η/B) and vs the number of classes k (same N, 10-output model), LeNet on Fashion-MNIST
  (:func:`weightinfo.experiments.fig4.run_fig4`, settings :data:`~weightinfo.experiments.fig4.FIG4`); writes
  ``fig4.json``, ``.png`` and ``.md``. ``--quick``: 128 images, 1 epoch, seconds.
* ``weightinfo reproduce critical-periods``: Critical Learning Periods — an All-CNN (width 0.25) on 4 000
  Fashion-MNIST images with a blur deficit (28→7→28) removed at epoch e, a short-deficit window at onsets o, the
  vertical-flip control, tr F per epoch and the per-layer normalised Fisher
  (:func:`weightinfo.experiments.critical_periods.run_critical_periods`, settings
  :data:`~weightinfo.experiments.critical_periods.CRITICAL_PERIODS`); writes ``critical_periods.json``, ``.png``
  and ``.md``. ``--quick``: 256 images, width 0.125, seconds.

Outputs go to a fresh folder ``runs/<experiment>-<UTC time>`` unless ``--out`` names one, so a run from
the repository never replaces the documented results unless asked to (``--out docs/results``). A
``--quick`` run records ``"quick": true`` in its JSON and says so on the first line of its report.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

import typer

from ..experiments.certificates import RUNS as CERTIFICATE_RUNS
from ..experiments.random_labels import DEFAULTS as RL_DEFAULTS
from ..experiments.random_labels import QUICK as RL_QUICK
from ._common import STATE, Quiet, command_line, info, say, user_errors

app = typer.Typer(
    name="reproduce",
    help="Rerun an experiment documented in docs/results/ (tables, plots, JSON).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Where results go without ``--out``: a fresh folder per run below this one.
RUNS_DIR = Path("runs")


def fresh_run_folder(experiment: str, root: Path = RUNS_DIR) -> Path:
    """Create and return a new folder ``root/<experiment>-<UTC time>`` (``-2``, ``-3``, ... if taken)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    root.mkdir(parents=True, exist_ok=True)
    for i in range(1, 1000):
        path = root / (f"{experiment}-{stamp}" if i == 1 else f"{experiment}-{stamp}-{i}")
        try:
            path.mkdir()  # claims the name: two runs started in the same second get two folders
        except FileExistsError:
            continue
        return path
    raise ValueError(f"--out: no free folder name for {experiment}-{stamp} in {root}")


# --------------------------------------------------------------------------------------------
# random-labels
# --------------------------------------------------------------------------------------------


def _pairs(text: str) -> list[tuple[float, float]]:
    from ..experiments.random_labels import parse_pairs

    try:
        return parse_pairs(text)
    except ValueError:
        raise ValueError(
            f"--sensitivity must be BETA:LAMBDA pairs, e.g. 3e-7:0.05,1e-7:0.07, or 'none'; got {text!r}"
        ) from None


def _list(text: str, kind, option: str) -> list:
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


#: How the list-valued options' text becomes values (the others arrive typed).
_PARSE = {
    "fractions": lambda t: _list(t, float, "--fractions"),
    "widths": lambda t: _list(t, int, "--widths"),
    "methods": lambda t: _list(t, str, "--methods"),
    "sensitivity": _pairs,
}


def random_labels_settings(quick: bool, given: dict[str, Any]) -> dict[str, Any]:
    """The experiment's settings: :data:`DEFAULTS`, then :data:`QUICK` with ``--quick``, then the options
    given (``None``: not given; list options as their command-line text)."""
    parsed = {k: (_PARSE[k](v) if k in _PARSE else v) for k, v in given.items() if v is not None}
    return {**RL_DEFAULTS, **(RL_QUICK if quick else {}), **parsed}


def _run_random_labels(s: dict[str, Any], **kw):
    """:func:`weightinfo.experiments.random_labels.run` with the settings ``s``."""
    from ..experiments.random_labels import run

    return run(
        dataset=s["dataset"],
        n_train=s["n_train"] or None,
        fractions=s["fractions"],
        widths=s["widths"],
        epochs=s["max_epochs"],
        beta=s["beta"],
        prior_scale=s["prior_scale"],
        seed=s["seed"],
        methods=s["methods"],
        lr=s["lr"],
        batch_size=s["batch_size"],
        fit_loss=s["fit_loss"],
        data_seed=s["data_seed"],
        mc_samples=s["mc_samples"],
        variational_epochs=s["variational_epochs"],
        variational_tol=s["variational_tol"],
        variational_lr=s["variational_lr"],
        sensitivity=s["sensitivity"],
        **kw,
    )


def _print_random_labels(result: dict[str, Any]) -> None:
    """The table (IW per method and fraction), the orderings and where the files are."""
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


_D, _Q = RL_DEFAULTS, RL_QUICK
_OUT_HELP = (
    "Output folder. Default: a fresh folder runs/{name}-<UTC time>; give --out docs/results to "
    "replace the documented results."
)


@app.command("random-labels")
def random_labels_cmd(
    ctx: typer.Context,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help=f"Reduced run in seconds (smoke test, marked as such): {_Q['n_train']} {_Q['dataset']} "
            f"images, MLP {_csv(_Q['widths'])}, fractions {_csv(_Q['fractions'])}, β {_Q['beta']:g}, "
            f"λ {_Q['prior_scale']:g} (options given still apply).",
        ),
    ] = False,
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help=f"Dataset name. Default {_D['dataset']}.")
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
    max_epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs",
            min=1,
            help=f"Most training epochs (training stops once the mean training loss is "
            f"≤ --fit-loss). Default {_D['max_epochs']}.",
        ),
    ] = None,
    lr: Annotated[
        float | None, typer.Option(help=f"Adam learning rate. Default {_D['lr']:g}.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help=f"Training batch size. Default {_D['batch_size']}.")
    ] = None,
    fit_loss: Annotated[
        float | None,
        typer.Option(
            help=f"Training target: mean training loss (nats). Default {_D['fit_loss']:g}."
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
    seed: Annotated[
        int | None,
        typer.Option(help=f"Initial weights, data order, label noise. Default {_D['seed']}."),
    ] = None,
    data_seed: Annotated[
        int | None, typer.Option(help=f"Training subset. Default {_D['data_seed']}.")
    ] = None,
    methods: Annotated[
        str | None, typer.Option(help=f"fisher and/or variational. Default {_csv(_D['methods'])}.")
    ] = None,
    mc_samples: Annotated[
        int | None,
        typer.Option(min=1, help=f"Weight draws for E_Q[L_D]. Default {_D['mc_samples']}."),
    ] = None,
    variational_epochs: Annotated[
        int | None,
        typer.Option(
            min=1, help=f"Epochs of the variational fit. Default {_D['variational_epochs']}."
        ),
    ] = None,
    variational_tol: Annotated[
        float | None,
        typer.Option(
            help="Stop the variational fit when C_β changes less (0: run every epoch). "
            f"Default {_D['variational_tol']:g}."
        ),
    ] = None,
    variational_lr: Annotated[
        float | None,
        typer.Option(
            help=f"Adam learning rate of the variational fit. Default {_D['variational_lr']:g}."
        ),
    ] = None,
    sensitivity: Annotated[
        str | None,
        typer.Option(
            help="Further BETA:LAMBDA pairs measured on the same networks, comma-separated, or "
            f"'none'. Default {','.join(f'{b:g}:{lam:g}' for b, lam in _D['sensitivity']) or 'none'}."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help=_OUT_HELP.format(name="random-labels")),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Information in the weights of an MLP fit to 0-100 % random labels (both methods, same β, λ)."""
    quiet = quiet or STATE.quiet
    given = {k: ctx.params[k] for k in RL_DEFAULTS if k in ctx.params}
    with user_errors():
        s = random_labels_settings(quick, given)
        command = command_line(ctx)
        folder = out if out is not None else fresh_run_folder("random-labels")
        result = _run_random_labels(
            s, out_dir=folder, progress=lambda msg: info(msg, quiet), command=command, quick=quick
        )
    _print_random_labels(result)
    say(f"results: {folder}")


# --------------------------------------------------------------------------------------------
# certificates
# --------------------------------------------------------------------------------------------


def certificate_runs(which: str) -> list[str]:
    """``--which``: one experiment, a comma-separated list of them, or ``all`` (in the order of RUNS)."""
    names = [w.strip() for w in which.split(",") if w.strip()]
    if names == ["all"]:
        return list(CERTIFICATE_RUNS)
    bad = [w for w in names if w not in CERTIFICATE_RUNS]
    if not names or bad:
        raise ValueError(
            f"--which must be one of {', '.join(CERTIFICATE_RUNS)}, all (or a comma-separated list); "
            f"got {which!r}"
        )
    return names


def _print_certificates(results: dict[str, dict]) -> None:
    from ..experiments.certificates import table

    for line in table(results):
        say(line)
    for name, res in results.items():
        b = res["best"]
        say(
            f"{name}: best certificate {b['risk_bound']:.4f} ({b['posterior']}, K = {b['k_union']}), "
            f"{res['total_wall_s']:.0f} s; wrote {', '.join(res.get('files', []))}"
        )


@app.command("certificates")
def certificates_cmd(
    which: Annotated[
        str,
        typer.Option(
            "--which",
            "-w",
            help=f"Experiment: {', '.join(CERTIFICATE_RUNS)}, a comma-separated list of them, or all "
            "(in that order).",
        ),
    ] = "all",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help=_OUT_HELP.format(name="certificates"))
    ] = None,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="Tiny settings (smoke test, marked as such; digits in seconds)."
        ),
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
    quiet = quiet or STATE.quiet
    with user_errors():
        names = certificate_runs(which)
        folder = out if out is not None else fresh_run_folder("certificates")
        results = {}
        for name in names:
            kw = {} if name == "binary-mnist" else {"prior_cache": prior_cache}
            results[name] = CERTIFICATE_RUNS[name](
                folder, quick=quick, seed=seed, log=lambda msg: info(msg, quiet), **kw
            )
    _print_certificates(results)
    say(f"results: {folder}")


def _run_reported(ctx: typer.Context, name: str, run, out: Path | None, quiet: bool, **kw) -> None:
    """Run a reproduction whose result carries ``analysis_summary`` and ``time_s`` (invariance, fig1, fig3,
    temperature, fig4, critical-periods) into ``out`` or a fresh ``runs/<name>-<time>`` folder, then print its summary."""
    quiet = quiet or STATE.quiet
    with user_errors():
        folder = out if out is not None else fresh_run_folder(name)
        result = run(folder, log=lambda msg: info(msg, quiet), command=command_line(ctx), **kw)
    for line in result["analysis_summary"]:
        say(line)
    say(f"computed in {result['time_s']:.1f} s; results: {folder}")


# --------------------------------------------------------------------------------------------
# invariance
# --------------------------------------------------------------------------------------------


@app.command("invariance")
def invariance_cmd(
    ctx: typer.Context,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="Digits, tiny settings, seconds (smoke test, marked as such)."
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Initial weights, data order, label noise, draws.")] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help=_OUT_HELP.format(name="invariance"))
    ] = None,
    quiet: Quiet = False,
) -> None:
    """IW vs effective information and nuisance Fisher of the activations across networks (§3)."""
    from ..experiments.invariance import run_invariance

    _run_reported(ctx, "invariance", run_invariance, out, quiet, quick=quick, seed=seed)


# --------------------------------------------------------------------------------------------
# fig1
# --------------------------------------------------------------------------------------------


@app.command("fig1")
def fig1_cmd(
    ctx: typer.Context,
    quick: Annotated[
        bool,
        typer.Option("--quick", help="A few hundred steps, seconds (smoke test, marked as such)."),
    ] = False,
    seed: Annotated[int, typer.Option(help="Initial weights.")] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help=_OUT_HELP.format(name="fig1"))
    ] = None,
    quiet: Quiet = False,
) -> None:
    """ln|F + δI|, tr F, ‖H − F‖/‖F‖ and boundary changes over training on two moons (Fig 1)."""
    from ..experiments.fig1 import run_fig1

    _run_reported(ctx, "fig1", run_fig1, out, quiet, quick=quick, seed=seed)


# --------------------------------------------------------------------------------------------
# fig3
# --------------------------------------------------------------------------------------------


@app.command("fig3")
def fig3_cmd(
    ctx: typer.Context,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="20 datasets × 3 seeds, 500 steps, seconds (smoke test, marked as such).",
        ),
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help=_OUT_HELP.format(name="fig3"))
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Zigzag toy: E ln F and the Shannon information (paper-style and seed-averaged) vs batch size (Fig 3)."""
    from ..experiments.fig3 import run_fig3

    _run_reported(ctx, "fig3", run_fig3, out, quiet, quick=quick)


# --------------------------------------------------------------------------------------------
# temperature
# --------------------------------------------------------------------------------------------


@app.command("temperature")
def temperature_cmd(
    ctx: typer.Context,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="128 images, 8 hidden units, 2 × 2 (η, B) × 2 seeds, 5 epochs, seconds (smoke test).",
        ),
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help=_OUT_HELP.format(name="temperature"))
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Prop 2.8 at equal loss: SGD temperature η/B vs ln|F + δI| and tr F where the loss first reaches L*."""
    from ..experiments.temperature import run_temperature

    _run_reported(ctx, "temperature", run_temperature, out, quiet, quick=quick)


# --------------------------------------------------------------------------------------------
# fig4
# --------------------------------------------------------------------------------------------


@app.command("fig4")
def fig4_cmd(
    ctx: typer.Context,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="128 images, 1 epoch, B ∈ {16, 64}, k ∈ {2, 4}, 1 seed (smoke test)."
        ),
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help=_OUT_HELP.format(name="fig4"))
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Fig 4: tr F after a fixed budget vs batch size (fixed η, fixed η/B) and vs number of classes k."""
    from ..experiments.fig4 import run_fig4

    _run_reported(ctx, "fig4", run_fig4, out, quiet, quick=quick)


# --------------------------------------------------------------------------------------------
# critical-periods
# --------------------------------------------------------------------------------------------


@app.command("critical-periods")
def critical_periods_cmd(
    ctx: typer.Context,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="256 images, All-CNN width 0.125, 1 clean epoch, e ∈ {0, 1} (smoke test, seconds).",
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help=_OUT_HELP.format(name="critical-periods")),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Critical learning periods: blur deficit removal epoch, sensitivity window, flip control, tr F per epoch."""
    from ..experiments.critical_periods import run_critical_periods

    _run_reported(ctx, "critical-periods", run_critical_periods, out, quiet, quick=quick)
