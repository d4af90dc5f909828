"""One self-contained HTML page of what one or more run folders measured: ``weightinfo report RUN_DIR ... --out``.

:func:`write_report` reads the files the commands write into a folder and renders one section per kind of
result, each with one column per run (side by side when several runs are given):

=================  ===================================================  ===========================================
section (``id``)   files                                                written by
=================  ===================================================  ===========================================
``comparison``     the headline numbers of all the files, one column    (several runs only)
                   per run
``files``          which expected files were found and which were       —
                   absent, per run
``settings``       the checkpoint metadata (``run.json``, or any        ``weightinfo train --out DIR/run.pt``;
                   ``*.json`` of format ``weightinfo-checkpoint``) and  the commands each file records
                   each file's settings and recorded command
``where``          ``report.json``, ``where.png``                       ``weightinfo measure --out DIR``
``curve``          ``curve.json``, ``curve.png``                        ``weightinfo measure --betas ... --out DIR``
``certificate``    ``certificate.json``, ``certificate.png``            ``weightinfo certify --out DIR``
``tracker``        ``track.jsonl`` (plotted again here, with units)     ``weightinfo train --track ... --out DIR/x.pt``
``activations``    ``activations.json``, ``activations.png``            ``weightinfo activations --out DIR``
=================  ===================================================  ===========================================

Nothing is left out silently: a section whose files are absent from a run says so in that run's column, with
the command that writes them, and the ``files`` section lists every expected file as found or absent. An
unreadable file is named with its error. Numbers have 4 significant digits (:func:`format_number`) and units;
every string from a file is HTML-escaped. Images are embedded as ``data:image/png;base64`` and the style is
inline: the page loads nothing (no network, no other file). It is written atomically
(:func:`weightinfo._base.atomic.atomic_write`).

The tests parse the page with the standard library's ``html.parser``. They do not open it in a headless
browser: none installs from the project's own files without network at run time (Playwright and pyppeteer
download their browser builds on first use, outside the package registries; a system Chromium would be an
extra machine-level install), so rendering in a browser is left to a person.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._base.atomic import atomic_write
from . import _sections as S
from ._markup import STYLE, code, esc, missing, table
from ._markup import fmt as format_number

__all__ = ["SECTIONS", "Run", "build_report", "format_number", "read_run", "write_report"]

META_NAME = "run.json"


@dataclass(frozen=True)
class _Section:
    id: str
    title: str
    files: tuple[
        str, ...
    ]  # expected files; the first listed is the one the section cannot do without
    writer: str  # the command that writes them
    render: Callable[[Any], str]


#: The sections of a run, in page order.
SECTIONS: tuple[_Section, ...] = (
    _Section("settings", "Run settings and commands", (META_NAME,), "weightinfo train --out RUN_DIR/run.pt", S.settings),
    _Section("where", "Where is the information: per layer and per filter", ("report.json", "where.png"), "weightinfo measure --out RUN_DIR", S.where),
    _Section("curve", "β curve: loss versus information", ("curve.json", "curve.png"), "weightinfo measure --betas 1e-6,1e-5,1e-4 --out RUN_DIR", S.curve),
    _Section("certificate", "PAC-Bayes certificate and its terms", ("certificate.json", "certificate.png"), "weightinfo certify --out RUN_DIR", S.certificate),
    _Section("tracker", "Tracker curves during training", ("track.jsonl",), "weightinfo train --track trace,loss --out RUN_DIR/run.pt", S.tracker),
    _Section("activations", "Activations profile: effective information and invariance", ("activations.json", "activations.png"), "weightinfo activations --out RUN_DIR", S.activations),
)  # fmt: skip
#: Every file name the report reads (the checkpoint metadata may also have another ``*.json`` name).
KNOWN_FILES: tuple[str, ...] = tuple(f for s in SECTIONS for f in s.files)
_PNGS = tuple(f for f in KNOWN_FILES if f.endswith(".png"))
_JSONS = tuple(f for f in KNOWN_FILES if f.endswith(".json"))


@dataclass
class Run:
    """What :func:`read_run` found in one run folder."""

    dir: Path
    name: str
    json: dict[str, Any] = field(default_factory=dict)  # file name → parsed JSON
    png: dict[str, bytes] = field(default_factory=dict)
    track: list[dict] | None = None  # track.jsonl's records (None: absent)
    meta_name: str | None = None  # the checkpoint metadata's file name
    errors: dict[str, str] = field(default_factory=dict)  # file name → why it could not be read
    extra: list[str] = field(default_factory=list)  # other files present (track.png, run.pt, ...)

    def has(self, name: str) -> bool:
        if name == META_NAME:
            return self.meta_name is not None
        if name == "track.jsonl":
            return self.track is not None
        return name in self.json or name in self.png


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _checkpoint_meta(folder: Path, run: Run) -> None:
    """``run.json``, else the first ``*.json`` whose ``format`` is ``weightinfo-checkpoint``."""
    names = [META_NAME] + sorted(
        p.name for p in folder.glob("*.json") if p.name not in _JSONS and p.name != META_NAME
    )
    for name in names:
        path = folder / name
        if not path.is_file():
            continue
        try:
            data = _read_json(path)
        except (OSError, ValueError) as e:
            if name == META_NAME:
                run.errors[name] = str(e)
            continue
        if isinstance(data, dict) and data.get("format") == "weightinfo-checkpoint":
            run.json[name], run.meta_name = data, name
            return


def read_run(folder: str | os.PathLike, name: str | None = None) -> Run:
    """The known files of ``folder``; ``ValueError`` when it is not a folder or holds none of them."""
    folder = Path(folder)
    if not folder.exists():
        raise ValueError(f"run folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise ValueError(f"run folder {str(folder)!r} is not a folder")
    run = Run(folder, name or folder.resolve().name or str(folder))
    _checkpoint_meta(folder, run)
    for f in _JSONS:
        if f != META_NAME and (folder / f).is_file():
            try:
                run.json[f] = _read_json(folder / f)
            except (OSError, ValueError) as e:
                run.errors[f] = str(e)
    for f in _PNGS:
        if (folder / f).is_file():
            run.png[f] = (folder / f).read_bytes()
    track = folder / "track.jsonl"
    if track.is_file():
        try:
            lines = track.read_text(encoding="utf-8").splitlines()
            run.track = [
                r for r in (json.loads(x) for x in lines if x.strip()) if isinstance(r, dict)
            ]
        except (OSError, ValueError) as e:
            run.errors["track.jsonl"] = str(e)
    known = (
        set(run.json)
        | set(run.png)
        | set(run.errors)
        | ({"track.jsonl"} if run.track is not None else set())
    )
    if not known:
        raise ValueError(
            f"run folder {str(folder)!r} holds none of the files weightinfo writes "
            f"({', '.join(KNOWN_FILES)}, or a checkpoint's metadata *.json)"
        )
    run.extra = sorted(
        p.name
        for p in folder.iterdir()
        if p.is_file() and p.name not in known and not p.name.startswith(".")
    )
    return run


# ------------------------------------------------------------------------------------------------
# Headline numbers, side by side
# ------------------------------------------------------------------------------------------------


def _get(run: Run, file: str, *path) -> Any:
    v = run.json.get(file)
    for p in path:
        if isinstance(v, dict):
            v = v.get(p)
        elif isinstance(v, list) and isinstance(p, int) and -len(v) <= p < len(v):
            v = v[p]
        else:
            return None
    return v


def _pct(v: Any) -> float | None:
    return None if v is None else 100 * float(v)


def _model(run: Run) -> str | None:
    """``name(k=v, ...)`` of the checkpoint's architecture, as ``weightinfo certify`` records its model."""
    arch = _get(run, run.meta_name or "", "architecture") or {}
    if not arch.get("name"):
        return None
    args = ", ".join(f"{k}={v}" for k, v in (arch.get("kwargs") or {}).items())
    return f"{arch['name']}({args})" if args else str(arch["name"])


def _last_track(key: str) -> Callable[[Run], Any]:
    return lambda r: next(
        (x.get(key) for x in reversed(r.track or []) if x.get(key) is not None), None
    )


#: (label, unit, value of a run) of the comparison table.
HEADLINES: tuple[tuple[str, str, Callable[[Run], Any]], ...] = (
    ("dataset", "", lambda r: _get(r, r.meta_name or "", "dataset", "requested_name") or _get(r, "certificate.json", "record", "dataset")),
    ("model", "", lambda r: _model(r) or _get(r, "certificate.json", "record", "model_name")),
    ("parameters", "", lambda r: _get(r, r.meta_name or "", "n_parameters") or _get(r, "report.json", "n_params")),
    ("training epochs", "", lambda r: _get(r, r.meta_name or "", "metrics", "epochs_run")),
    ("train accuracy", "%", lambda r: _pct(_get(r, r.meta_name or "", "metrics", "train_accuracy"))),
    ("test accuracy", "%", lambda r: _pct(_get(r, r.meta_name or "", "metrics", "test_accuracy"))),
    ("IW, information in the weights", "nats", lambda r: _get(r, "report.json", "nats")),
    ("IW", "bits", lambda r: _get(r, "report.json", "bits")),
    ("β of IW (per sample)", "", lambda r: _get(r, "report.json", "beta")),
    ("E_Q[L_D]", "nats/sample", lambda r: _get(r, "report.json", "expected_loss")),
    ("L_D(w*)", "nats/sample", lambda r: _get(r, "report.json", "train_loss")),
    ("C_β", "nats/sample", lambda r: _get(r, "report.json", "lagrangian")),
    ("β-curve points", "", lambda r: None if "curve.json" not in r.json else len(_get(r, "curve.json", "rows") or [])),
    ("risk bound", "", lambda r: _get(r, "certificate.json", "risk_bound")),
    ("empirical risk", "", lambda r: _get(r, "certificate.json", "empirical_risk")),
    ("KL(Q‖P)", "nats", lambda r: _get(r, "certificate.json", "kl_nats")),
    ("KL(Q‖P)", "bits", lambda r: _get(r, "certificate.json", "kl_bits")),
    ("n (bound set)", "", lambda r: _get(r, "certificate.json", "n_bound")),
    ("δ", "", lambda r: _get(r, "certificate.json", "delta")),
    ("Gibbs test error", "", lambda r: _get(r, "certificate.json", "test_error")),
    ("tracked tr F, last record", "", _last_track("trace")),
    ("tracked loss, last record", "nats/sample", _last_track("loss")),
    ("IW of the activations' posterior", "nats", lambda r: _get(r, "activations.json", "information_nats")),
)  # fmt: skip


def _comparison(runs: Sequence[Run]) -> str:
    """The headline numbers, one row per quantity that some run has, one column per run."""
    lines = list(HEADLINES)
    per_layer = ("activations.json", "effective_information", "per_layer")
    layers = dict.fromkeys(k for r in runs for k in (_get(r, *per_layer) or {}))
    for layer in layers:
        lines.append((f"I_eff of {layer}", "nats", lambda r, k=layer: _get(r, *per_layer, k)))
    body = []
    for label, unit, get in lines:
        values = [get(r) for r in runs]
        if any(v is not None for v in values):
            body.append([f"{label} ({unit})" if unit else label, *values])
    heads = ["quantity", *(r.name for r in runs)]
    note = "<p class='note'>–: not measured in that run (its file is absent).</p>"
    return table(heads, body, cls="comparison") + note


# ------------------------------------------------------------------------------------------------
# The page
# ------------------------------------------------------------------------------------------------


def _files(run: Run) -> str:
    rows = []
    for s in SECTIONS:
        for f in s.files:
            shown = run.meta_name if f == META_NAME and run.meta_name else f
            state = (
                "found"
                if run.has(f)
                else ("unreadable: " + run.errors[f] if f in run.errors else "absent")
            )
            rows.append([shown, s.title, state])
    out = table(["file", "section", "state"], rows)
    absent = [f for s in SECTIONS for f in s.files if not run.has(f)]
    if absent:
        out += missing(
            "Expected files absent from "
            + code(str(run.dir))
            + ": "
            + ", ".join(code(f) for f in absent)
            + "."
        )
    if run.extra:
        out += f"<p class='note'>Other files in the folder (not shown): {esc(', '.join(run.extra))}.</p>"
    return out


def _section_column(s: _Section, run: Run) -> str:
    absent = [f for f in s.files if not run.has(f)]
    head = "".join(
        missing(f"{code(f)} could not be read: {esc(run.errors[f])}")
        for f in s.files
        if f in run.errors
    )
    if s.id != "settings" and len(absent) == len(s.files):
        return head + missing(
            f"Not measured in this run: {', '.join(code(f) for f in absent)} absent from {code(str(run.dir))} "
            f"(written by {code(s.writer)})."
        )
    if absent:
        head += missing(
            f"Absent: {', '.join(code(f) for f in absent)} (written by {code(s.writer)})."
        )
    return head + s.render(run)


def _columns(runs: Sequence[Run], render: Callable[[Run], str]) -> str:
    cols = "".join(f"<div class='run'><h3>{esc(r.name)}</h3>{render(r)}</div>" for r in runs)
    return f"<div class='runs'>{cols}</div>"


def _unique_names(runs: list[Run]) -> None:
    seen: dict[str, int] = {}
    for r in runs:
        seen[r.name] = seen.get(r.name, 0) + 1
    for i, r in enumerate(runs):
        if seen[r.name] > 1:
            r.name = f"{r.name} [{i + 1}]"


def build_report(run_dirs: Sequence[str | os.PathLike], *, title: str | None = None) -> str:
    """The HTML page of ``run_dirs`` (each read with :func:`read_run`), as a string."""
    if not run_dirs:
        raise ValueError("give at least one run folder")
    runs = [read_run(d) for d in run_dirs]
    _unique_names(runs)
    title = title or "weightinfo report: " + ", ".join(r.name for r in runs)
    nav = [("comparison", "Comparison")] if len(runs) > 1 else []
    nav += [("files", "Files")] + [(s.id, s.title) for s in SECTIONS]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        "<p class='note'>Run folders: "
        + ", ".join(f"{esc(r.name)} = {code(str(r.dir))}" for r in runs)
        + ". "
        "Information in nats (1 nat = 1/ln 2 bits); L_D is the mean per-sample loss and β is per sample.</p>",
        "<nav><ul>"
        + "".join(f"<li><a href='#{i}'>{esc(t)}</a></li>" for i, t in nav)
        + "</ul></nav>",
    ]
    if len(runs) > 1:
        parts.append(
            f"<section id='comparison'><h2>Comparison of the runs</h2>{_comparison(runs)}</section>"
        )
    parts.append(f"<section id='files'><h2>Files</h2>{_columns(runs, _files)}</section>")
    for s in SECTIONS:
        body = _columns(runs, lambda r, s=s: _section_column(s, r))
        parts.append(f"<section id='{s.id}'><h2>{esc(s.title)}</h2>{body}</section>")
    parts.append("<p class='note'>Written by <code>weightinfo report</code>.</p></body></html>")
    return "\n".join(parts) + "\n"


def write_report(
    run_dirs: Sequence[str | os.PathLike], out: str | os.PathLike, *, title: str | None = None
) -> Path:
    """Write :func:`build_report` of ``run_dirs`` to ``out`` (UTF-8, atomically); return ``out``."""
    data = build_report(run_dirs, title=title).encode("utf-8")
    return atomic_write(out, lambda fh: fh.write(data))
