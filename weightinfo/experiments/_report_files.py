"""The three files of a reproduction's report, written the same way for every experiment."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["argv_command", "caption_command", "finish", "write_report"]


def write_report(
    result: dict[str, Any],
    out_dir: str | os.PathLike,
    stem: str,
    *,
    plot: Callable[[dict[str, Any], Path], Path],
    markdown: Callable[[dict[str, Any]], str],
) -> list[Path]:
    """``<stem>.json``, ``<stem>.png`` and ``<stem>.md`` in ``out_dir``, each written atomically.

    The JSON records ``made_by`` (:func:`weightinfo._base.provenance.made_by`: commit, command, torch
    threads, CPU kernels, ``quick`` from the result) and the markdown opens with it; a result that already has
    one (a run that took it at its start, or a saved JSON rendered again) keeps it."""
    from .._base.atomic import atomic_write
    from .._base.provenance import made_by
    from ..report import write_json_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = dict(result, made_by=result.get("made_by") or made_by(quick=result.get("quick")))
    payload = {k: v for k, v in result.items() if k != "files"}
    paths = [write_json_atomic(out / f"{stem}.json", payload)]
    paths.append(plot(result, out / f"{stem}.png"))
    text = markdown(result).encode("utf-8")
    paths.append(atomic_write(out / f"{stem}.md", lambda fh: fh.write(text)))
    return paths


def caption_command(fig, result: dict[str, Any]) -> None:
    """Print the command that made ``result`` along the bottom edge of ``fig``: the figure's caption names it
    (issue 11 §4), so a PNG found on its own still says how to make it again. Leave the bottom ~3 % free."""
    cmd = (result.get("made_by") or {}).get("command") or result.get("command")
    if cmd:
        fig.text(0.01, 0.005, cmd, fontsize=7, wrap=True)


def argv_command() -> str:
    """This process's command line as the reproductions record it in their ``command`` field: the Python
    executable's name and the arguments, shell-quoted."""
    return " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])


def finish(
    out: dict[str, Any],
    out_dir: str | os.PathLike | None,
    *,
    reading: Callable[[dict[str, Any]], list[str]],
    write_outputs: Callable[[dict[str, Any], str | os.PathLike], list[Path]],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """The last step of every reproduction: ``out["analysis_summary"]`` from ``reading``, then (with ``out_dir``)
    the report files, their paths in ``out["files"]``, one ``wrote PATH`` line each. Returns ``out``."""
    out["analysis_summary"] = reading(out)
    if out_dir is not None:
        out["files"] = [str(p) for p in write_outputs(out, out_dir)]
        for p in out["files"]:
            log(f"wrote {p}")
    return out
