"""``weightinfo datasets`` and ``weightinfo models``: what can be used here.

``datasets`` lists every dataset name with whether it loads offline on this machine and from
where; ``models`` lists every model with the first line of its builder's docstring and the
datasets it is the suggested model for (with the suggested kwargs). ``--plain`` prints plain
lines instead of tables.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from ._common import STATE, DataRootOpt, say, stdout_console, user_errors

_MISSING = "files not found (set $WEIGHTINFO_DATA, or use --data-root / --download)"


def _availability(name: str, root: Path | None) -> tuple[bool, str]:
    """Whether dataset ``name`` can be loaded offline here, and from where."""
    import importlib.util
    import os

    from ..data.images import SPLIT_STEMS, SUBSET_STEMS
    from ..data.locate import find_files

    def files(subdirs, stems):
        found = find_files(subdirs, stems, root)
        return None if found is None else str(found[0])

    def module(mod: str, what: str) -> tuple[bool, str]:
        ok = importlib.util.find_spec(mod) is not None
        return ok, what if ok else f"needs the Python package {mod!r}"

    if name == "digits":
        return module("sklearn", "bundled with scikit-learn")
    if name == "two-moons":
        return module("sklearn", "generated (scikit-learn make_moons)")
    if name == "mnist1d":
        return module("mnist1d", "generated offline (mnist1d)")
    full = files(["mnist", os.path.join("MNIST", "raw")], SPLIT_STEMS)
    subset = files(["mnist-10k"], SUBSET_STEMS)
    if name == "fashion-mnist":
        where = files(["fashion-mnist", os.path.join("FashionMNIST", "raw")], SPLIT_STEMS)
        return where is not None, where or _MISSING
    if name == "mnist-full":
        return full is not None, full or _MISSING
    if name == "mnist-10k":
        return subset is not None, subset or _MISSING
    if name == "mnist":
        if full:
            return True, f"full split: {full}"
        return subset is not None, f"10k subset: {subset}" if subset else _MISSING
    return False, "unknown"


def datasets(data_root: DataRootOpt = None) -> None:
    """List dataset names and whether each is available offline here."""
    from rich.table import Table

    from ..data import DATASET_NAMES

    with user_errors():
        rows = [(n, *_availability(n, data_root)) for n in DATASET_NAMES]
    if STATE.plain:
        for n, ok, where in rows:
            say(f"{n:<15} {'yes' if ok else 'no':<4} {where}")
    else:
        table = Table(title="datasets", title_justify="left")
        for col in ("name", "offline", "source"):
            table.add_column(col, no_wrap=col != "source")
        for n, ok, where in rows:
            table.add_row(n, "[green]yes[/]" if ok else "[red]no[/]", where)
        stdout_console().print(table)
    say("Also: binary-<name> (two classes), npz:PATH (arrays x, y [, x_test, y_test]).")


def models() -> None:
    """List model names, with the datasets each is the default for."""
    from rich.table import Table

    from ..data import DATASET_NAMES
    from ..models import MODELS, default_model_for
    from ..models.registry import _BUILDERS

    defaults: dict[str, list[str]] = {m: [] for m in MODELS}
    for d in DATASET_NAMES:
        with contextlib.suppress(ValueError):
            s = default_model_for(d)
            kw = ", ".join(
                f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in s.kwargs.items()
            )
            defaults[s.name].append(f"{d}" + (f" ({kw})" if kw else ""))
    rows = []
    for m in MODELS:
        doc = (_BUILDERS[m].__doc__ or "").strip().splitlines()
        line = re.sub(r":\w+:`([^`]*)`", r"\1", doc[0] if doc else "").replace("``", "")
        rows.append((m, line, "; ".join(defaults[m])))
    if STATE.plain:
        for m, doc, d in rows:
            say(f"{m:<9} {doc}" + (f"  [default for {d}]" if d else ""))
        return
    table = Table(title="models", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("description")
    table.add_column("default for")
    for r in rows:
        table.add_row(*r)
    stdout_console().print(table)
