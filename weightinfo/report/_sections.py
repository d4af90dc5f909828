"""The sections of :mod:`weightinfo.report.html`, one function per section, each rendering one run's column.

A renderer takes a loaded run (``name``, ``dir``, ``json``: file name → parsed JSON, ``png``: file name → bytes,
``track``: the tracker's records, ``meta_name``: the checkpoint metadata file) and returns HTML. What a section
needs and does not find is said in a notice by :mod:`weightinfo.report.html`, not here.
"""

from __future__ import annotations

import io
import math
from typing import Any

from ._markup import code, esc, fmt, fmt_pm, kv_table, missing, png_tag, table


def image(run, name: str, alt: str) -> str:
    """The run's PNG ``name`` embedded, or a notice when it is absent or not a PNG."""
    data = run.png.get(name)
    if data is None:
        return missing(f"{code(name)} absent: no image.")
    try:
        return png_tag(data, alt)
    except ValueError:
        return missing(f"{code(name)} is not a PNG file; not shown.")


# ------------------------------------------------------------------------------------------------
# Run settings and commands
# ------------------------------------------------------------------------------------------------


def train_command(meta: dict, meta_name: str) -> str | None:
    """The ``weightinfo train`` command equivalent to a checkpoint's recorded ``config`` (None without one)."""
    c = meta.get("config")
    if not isinstance(c, dict) or "dataset" not in c:
        return None
    words = ["weightinfo", "train", "--dataset", str(c["dataset"])]
    if c.get("model"):
        words += ["--model", str(c["model"])]
    for k, v in (c.get("model_kwargs") or {}).items():
        if k == "widths" and isinstance(v, list):
            words += ["--widths", ",".join(str(w) for w in v) or "none"]
        else:
            words += ["--model-arg", f"{k}={v}"]
    flags = (
        "epochs",
        "lr",
        "optimizer",
        "batch_size",
        "momentum",
        "weight_decay",
        "schedule",
        "loss",
    )
    flags += ("seed", "label_noise", "data_seed")
    for k in flags:
        if c.get(k) is not None:
            words += [f"--{k.replace('_', '-')}", str(c[k])]
    stem = meta.get("weights_file") or meta_name.removesuffix(".json") + ".pt"
    return " ".join(words + ["--out", f"RUN_DIR/{stem}"])


def _made_by_rows(name: str, made: Any) -> list[tuple[str, Any, str]]:
    if not isinstance(made, dict):
        return []
    return [
        (f"{name}: code commit", made.get("commit"), ""),
        (f"{name}: torch threads", made.get("threads"), ""),
        (f"{name}: CPU kernels", made.get("cpu_capability"), ""),
    ]


def settings(run) -> str:
    """The commands that made the files (recorded, or reconstructed and said so) and each file's settings."""
    cmds, prov, parts = [], [], []
    meta = run.json.get(run.meta_name) if run.meta_name else None
    if isinstance(meta, dict):
        line = train_command(meta, run.meta_name)
        if line:
            cmds.append(
                (run.meta_name, line, f"reconstructed from {run.meta_name}'s config (not recorded)")
            )
        arch, ds = meta.get("architecture") or {}, meta.get("dataset") or {}
        tc = meta.get("train_config") or {}
        rows = [
            ("made by", meta.get("created_by"), ""),
            ("created", meta.get("created"), ""),
            ("model", arch.get("name"), ""),
            ("model options", arch.get("kwargs"), ""),
            ("parameters", meta.get("n_parameters"), ""),
            ("dataset", ds.get("requested_name") or ds.get("name"), ""),
            ("training / test samples", f"{ds.get('n_train')} / {ds.get('n_test')}", ""),
            ("split seed", ds.get("data_seed", ds.get("seed")), ""),
            *((f"training: {k}", v, "") for k, v in tc.items()),
            (
                "weightinfo / torch",
                f"{meta.get('weightinfo_version')} / {meta.get('torch_version')}",
                "",
            ),
        ]
        parts.append(f"<h4>Training ({esc(run.meta_name)})</h4>" + kv_table(rows))
    rep = run.json.get("report.json")
    if isinstance(rep, dict):
        keys = ("method", "structure", "curvature", "loss", "convention", "prior_mean", "n_samples")
        rows = [("β (per sample)", rep.get("beta"), "")]
        rows += [(k.replace("_", " "), rep.get(k), "") for k in keys]
        rows += [("prior scale λ per layer", rep.get("prior_scale"), "")]
        rows += [
            ("weight draws for E_Q[L_D]", rep.get("mc_samples"), ""),
            ("seed", rep.get("seed"), ""),
        ]
        parts.append("<h4>Measurement (report.json)</h4>" + kv_table(rows))
        cmds.append(("report.json", None, "command not recorded by `weightinfo measure`"))
    cert = run.json.get("certificate.json")
    if isinstance(cert, dict):
        rec = cert.get("record") or {}
        cmd = (cert.get("made_by") or {}).get("command") or rec.get("command")
        cmds.append(("certificate.json", cmd, "recorded" if cmd else "command not recorded"))
        prov += _made_by_rows("certificate.json", cert.get("made_by"))
        rows = [("dataset", rec.get("dataset"), ""), ("model", rec.get("model_name"), "")]
        rows += [("split", rec.get("split"), ""), ("checkpoint", rec.get("checkpoint"), "")]
        parts.append("<h4>Certificate (certificate.json)</h4>" + kv_table(rows))
    act = run.json.get("activations.json")
    if isinstance(act, dict):
        cmd = (act.get("made_by") or {}).get("command")
        note = (
            "recorded"
            if cmd
            else "command not recorded (written by `weightinfo measure --activations`?)"
        )
        cmds.append(("activations.json", cmd, note))
        prov += _made_by_rows("activations.json", act.get("made_by"))
        opts = act.get("options") or {k: v for k, v in act.items() if not isinstance(v, dict)}
        parts.append(
            "<h4>Activations (activations.json)</h4>"
            + kv_table((k.replace("_", " "), v, "") for k, v in opts.items())
        )
    if run.track:
        first = run.track[0]
        rows = [
            (k.replace("_", " "), first.get(k), "") for k in ("n_probe", "batch_size", "trace_kind")
        ]
        rows += [("records", len(run.track), "")]
        parts.append("<h4>Tracker (track.jsonl)</h4>" + kv_table(rows))
    head = "<h3>Commands</h3>"
    if cmds:
        items = "".join(
            f"<li>{esc(src)}: "
            + (f"<pre>{esc(cmd)}</pre>" if cmd else "")
            + f"<span class='note'>{esc(note)}</span></li>"
            for src, cmd, note in cmds
        )
        head += f"<ul>{items}</ul>"
    else:
        head += missing("No file of this run records a command.")
    if prov:
        head += kv_table(prov)
    return head + "<h3>Settings</h3>" + "".join(parts)


# ------------------------------------------------------------------------------------------------
# Where is the information; the β curve
# ------------------------------------------------------------------------------------------------


def where(run) -> str:
    rep = run.json.get("report.json")
    out = []
    if isinstance(rep, dict):
        extra = rep.get("extra") or {}
        out.append(
            f"<p>IW = <b>{esc(fmt(rep.get('nats'), 'nats'))}</b> = {esc(fmt(rep.get('bits'), 'bits'))} at "
            f"β = {esc(fmt(rep.get('beta')))} per sample (N = {esc(fmt(rep.get('n_samples')))}; "
            f"{esc(rep.get('method'))}/{esc(rep.get('structure'))}/{esc(rep.get('curvature'))}).</p>"
        )
        rows = rep.get("per_layer") or []
        body = [
            [r.get("layer") or "<root>", r.get("type"), r.get("n_params"), r.get("nats"), r.get("bits"),
             None if r.get("share") is None else 100 * r["share"], r.get("nats_per_param")]
            for r in rows
        ]  # fmt: skip
        n = sum(int(r.get("n_params") or 0) for r in rows)
        total = [
            "total",
            "",
            n,
            rep.get("nats"),
            rep.get("bits"),
            100.0,
            (rep.get("nats") or 0) / n if n else None,
        ]
        out.append(
            table(
                ["layer", "type", "#params", "IW", "IW", "share", "IW per weight"],
                body,
                units=["", "", "", "nats", "bits", "%", "nats/param"],
                total=total,
            )
        )
        out.append(
            kv_table(
                [
                    (
                        "E_Q[L_D]",
                        fmt_pm(rep.get("expected_loss"), rep.get("expected_loss_stderr")),
                        "",
                    ),
                    ("  unit of the losses", "nats per sample", ""),
                    ("L_D(w*)", rep.get("train_loss"), "nats/sample"),
                    ("C_β = E_Q[L_D] + β·IW", rep.get("lagrangian"), "nats/sample"),
                    ("prior mean term ‖w*−w0‖²/2λ²", extra.get("mean_term"), "nats"),
                    ("curvature trace", extra.get("curvature_trace"), ""),
                    ("β·N (summed-loss convention)", extra.get("beta_sum"), ""),
                ]
            )
        )
    out.append("<h4>Per layer and per filter / output unit (where.png)</h4>")
    out.append(image(run, "where.png", f"where the information is, {run.name}"))
    return "".join(out)


def curve(run) -> str:
    cur = run.json.get("curve.json")
    out = []
    if isinstance(cur, dict):
        rows = [
            [r.get("beta"), r.get("nats"), r.get("bits"),
             ("html", esc(fmt_pm(r.get("expected_loss"), r.get("expected_loss_stderr")))),
             r.get("expected_loss_quadratic"), r.get("train_loss"), r.get("lagrangian")]
            for r in cur.get("rows") or []
        ]  # fmt: skip
        heads = ["β (per sample)", "IW", "IW", "E_Q[L_D] ± se", "quadratic model", "L_D(w*)", "C_β"]
        units = ["", "nats", "bits", "", "nats/sample", "nats/sample", "nats/sample"]
        out.append(table(heads, rows, units=units))
        out.append(
            "<p class='note'>Losses in nats per sample (mean per-sample loss); β per sample.</p>"
        )
    out.append(image(run, "curve.png", f"loss versus information curve, {run.name}"))
    return "".join(out)


# ------------------------------------------------------------------------------------------------
# The certificate
# ------------------------------------------------------------------------------------------------

CERT_GRID_KEYS = ("prior_scale", "beta", "kl_nats", "screen_emp", "screen_bound")


def certificate(run) -> str:
    c = run.json.get("certificate.json")
    out = []
    if isinstance(c, dict):
        vac = c.get("vacuous")
        out.append(
            f"<p>Risk bound <b>{esc(fmt(c.get('risk_bound')))}</b> (0-1 risk of the Gibbs predictor, "
            f"probability ≥ {esc(fmt(c.get('confidence')))}; "
            f"{'vacuous' if vac else 'non-vacuous' if vac is not None else 'vacuity not recorded'}).</p>"
        )
        rows = [
            ("risk bound", c.get("risk_bound"), ""),
            ("empirical risk (Monte Carlo)", c.get("empirical_risk"), ""),
            ("Monte Carlo upper bound", c.get("mc_upper"), ""),
            ("KL(Q‖P)", c.get("kl_nats"), "nats"),
            ("KL(Q‖P)", c.get("kl_bits"), "bits"),
            ("n (bound set)", c.get("n_bound"), ""),
            ("m (Monte Carlo draws)", c.get("m"), ""),
            ("δ (PAC-Bayes step)", c.get("delta"), ""),
            ("δ′ (Monte Carlo step)", c.get("delta_mc"), ""),
            ("confidence", c.get("confidence"), ""),
            ("bound", c.get("bound"), ""),
            ("Monte Carlo estimator", c.get("mc"), ""),
            ("prior", c.get("prior"), ""),
            ("prior scale λ", c.get("prior_scale"), ""),
            ("posterior", c.get("posterior"), ""),
            ("posterior objective", c.get("objective"), ""),
            ("β (per sample)", c.get("beta"), ""),
            ("K (union bound)", c.get("k_union"), ""),
            ("Gibbs test error", c.get("test_error"), ""),
            ("mean-network test error", c.get("mean_test_error"), ""),
            ("majority-vote test error", c.get("majority_vote_test_error"), ""),
            ("wall time", c.get("wall_time_s"), "s"),
        ]
        out.append(kv_table(rows))
        grid = [g for g in c.get("grid") or [] if isinstance(g, dict)]
        if grid:
            out.append(
                f"<h4>Candidates certified (K = {esc(fmt(c.get('k_union')))}, δ/K each)</h4>"
            )
            keys = [k for k in CERT_GRID_KEYS if any(k in g for g in grid)]
            units = ["nats" if k == "kl_nats" else "" for k in keys]
            out.append(
                table(
                    [k.replace("_", " ") for k in keys],
                    ([g.get(k) for k in keys] for g in grid),
                    units=units,
                )
            )
    out.append(image(run, "certificate.png", f"the certificate's terms, {run.name}"))
    return "".join(out)


# ------------------------------------------------------------------------------------------------
# Tracker curves
# ------------------------------------------------------------------------------------------------

TRACK_KEYS = ("trace", "logdet", "information", "loss", "accuracy", "temperature", "gradient_noise")
MAX_TRACK_ROWS = 40


def _track_x(records: list[dict]) -> tuple[str, str]:
    for key, label in (("epoch", "epoch"), ("step", "step [optimizer steps]")):
        if all(r.get(key) is not None for r in records):
            return key, label
    return "call", "tracker call"


def plot_track(records: list[dict]) -> bytes:
    """Every tracked scalar (and the per-layer trace) against the epoch, as PNG bytes, axes with units."""
    from ..dynamics.tracker import UNITS
    from .plots import figure

    xkey, xlabel = _track_x(records)
    xs = [r.get(xkey) for r in records]
    keys = [k for k in TRACK_KEYS if any(r.get(k) is not None for r in records)]
    layers = list(dict.fromkeys(k for r in records for k in (r.get("layer_trace") or {})))
    n = len(keys) + bool(layers)
    cols = min(3, max(1, n))
    rows = max(1, -(-n // cols))
    fig = figure(4.2 * cols, 3.2 * rows)

    def nan(v):
        return float("nan") if v is None else float(v)

    from matplotlib.ticker import MaxNLocator

    for i, key in enumerate(keys):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ys = [nan(r.get(key)) for r in records]
        err = [r.get(f"{key}_stderr") for r in records]
        if any(e for e in err):
            ax.errorbar(
                xs,
                ys,
                yerr=[e or 0.0 for e in err],
                marker="o",
                ms=3,
                capsize=2,
                label="probe ± se",
            )
        else:
            ax.plot(xs, ys, marker="o", ms=3, label="probe")
        if any(r.get(f"test_{key}") is not None for r in records):
            ax.plot(
                xs, [nan(r.get(f"test_{key}")) for r in records], marker="s", ms=3, label="test"
            )
        ax.set_xlabel(xlabel)
        ax.set_ylabel(UNITS.get(key, key))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if layers:
        ax = fig.add_subplot(rows, cols, n)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        for name in layers:
            ax.plot(
                xs,
                [nan((r.get("layer_trace") or {}).get(name)) for r in records],
                marker="o",
                ms=3,
                label=name,
            )
        ax.set_xlabel(xlabel)
        ax.set_ylabel("per-layer tr F [nats / weight²]")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(
        f"Tracked during training on {records[-1].get('n_probe')} probe samples (track.jsonl)"
    )
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def tracker(run) -> str:
    recs = run.track
    if not recs:
        return missing(f"{code('track.jsonl')} holds no records.")
    out = [png_tag(plot_track(recs), f"tracker curves, {run.name}")]
    xkey, _ = _track_x(recs)
    keys = [k for k in TRACK_KEYS if any(r.get(k) is not None for r in recs)]
    keys += [
        f"test_{k}"
        for k in ("loss", "accuracy")
        if any(r.get(f"test_{k}") is not None for r in recs)
    ]
    shown = recs
    if len(recs) > MAX_TRACK_ROWS:
        step = math.ceil(len(recs) / MAX_TRACK_ROWS)
        shown = recs[::step] + ([recs[-1]] if (len(recs) - 1) % step else [])
        out.append(f"<p class='note'>Every {step}th of {len(recs)} records, and the last.</p>")
    units = {
        "trace": "",
        "loss": "nats",
        "test_loss": "nats",
        "logdet": "nats",
        "information": "nats",
    }
    heads = [xkey] + [k if k not in ("trace",) else "tr F" for k in keys]
    out.append(
        table(
            heads,
            ([r.get(xkey)] + [r.get(k) for k in keys] for r in shown),
            units=[""] + [units.get(k, "") for k in keys],
        )
    )
    out.append(
        "<p class='note'>Units: tr F in nats per squared weight unit; losses in nats per sample; "
        "accuracy as a fraction; temperature η/B in learning rate per sample.</p>"
    )
    return "".join(out)


# ------------------------------------------------------------------------------------------------
# Activations
# ------------------------------------------------------------------------------------------------


def activations(run) -> str:
    a = run.json.get("activations.json")
    out = []
    if isinstance(a, dict):
        eff = a.get("effective_information") or {}
        fish = a.get("activation_fisher") or {}
        if a.get("information_nats") is not None:
            out.append(
                f"<p>IW of the information posterior: {esc(fmt(a['information_nats'], 'nats'))}.</p>"
            )
        out.append(
            f"<p>I_eff ceiling ln N = {esc(fmt(eff.get('ceiling'), 'nats'))} (N = {esc(fmt(eff.get('n')))} "
            "inputs). Fisher of each nuisance θ in nats per unit θ² per input: small = the layer is "
            "(effectively) invariant to it.</p>"
        )
        per, se = eff.get("per_layer") or {}, eff.get("stderr") or {}
        bits, dims = eff.get("bits") or {}, eff.get("dims") or {}
        names = list(fish)
        rows = [
            [
                layer,
                ("html", esc(fmt_pm(v, se.get(layer), "nats"))),
                bits.get(layer),
                dims.get(layer),
            ]
            + [(fish[n].get("per_layer") or {}).get(layer) for n in names]
            for layer, v in per.items()
        ]
        out.append(
            table(
                ["layer", "I_eff ± se", "I_eff", "units in z", *(f"F[{n}]" for n in names)],
                rows,
                units=["", "", "bits", "", *(["nats/θ²"] * len(names))],
            )
        )
    out.append(image(run, "activations.png", f"activations profile, {run.name}"))
    return "".join(out)
