"""``weightinfo report RUN_DIR [RUN_DIR ...] --out report.html``: one self-contained HTML page of what runs measured.

Reads the files ``train``, ``measure``, ``certify`` and ``activations`` write into each folder and renders them
with :func:`weightinfo.report.html.write_report`: settings and commands, where the information is, the β curve,
the certificate and its terms, the tracker curves and the activations profile, side by side for several folders
(with a comparison table of the headline numbers). Expected files that are absent are named on the page. A
folder that does not exist or holds none of those files is an error (exit code 2), checked before writing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import STATE, Quiet, check_output, info, say, user_errors


def report_cmd(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="Run folders (as written by train --out DIR/run.pt, measure/certify/activations "
            "--out DIR); several: side by side.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="HTML file to write (self-contained: images embedded)."),
    ] = Path("report.html"),
    title: Annotated[
        str | None, typer.Option(help="Page title (default: the folders' names).")
    ] = None,
    quiet: Quiet = False,
) -> None:
    """One self-contained HTML page of what the runs measured (several runs: side by side)."""
    quiet = quiet or STATE.quiet
    with user_errors():
        from ..report.html import read_run, write_report

        check_output(out, "--out", folder=False)
        for d in run_dirs:  # every folder checked before the work
            read_run(d)
        info(f"reading {len(run_dirs)} run folder(s)", quiet)
        path = write_report(run_dirs, out, title=title)
    say(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {len(run_dirs)} run(s))")
