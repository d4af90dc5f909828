"""Which code and which command made a results file.

Every report of ``weightinfo reproduce`` records :func:`made_by`: the commit of the code that ran, the
command line, the number of torch threads, the CPU kernels torch runs with and whether the run was a
``--quick`` smoke test. A number in ``docs/results/`` is only worth as much as the way back to it:
rerunning the recorded command at the recorded commit gives it back bit for bit with the recorded thread
count and kernels. Both change the order in which floats are summed, and a long training run turns the
last-bit differences into another network (the Fashion-MNIST prior of ``docs/results/README.md``).

* :func:`code_commit`: ``git rev-parse HEAD`` of the repository holding the ``weightinfo`` package, with
  ``+dirty`` when the package itself has uncommitted changes (results written elsewhere in the tree, e.g.
  by an earlier run into ``docs/results/``, do not count: they are outputs, not code), ``"unknown"``
  outside a git checkout or without git.
* :func:`current_command`: this process's command line as a user would type it again, with the
  environment variables that change the numbers or where the data come from.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["ENV_VARS", "code_commit", "current_command", "made_by", "made_by_line"]

#: Environment variables written in front of the recorded command (thread count, data location).
ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "WEIGHTINFO_DATA")

_PACKAGE = Path(__file__).resolve().parents[1]


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def code_commit(package_dir: str | os.PathLike | None = None) -> str:
    """The commit of the code in ``package_dir`` (default: this ``weightinfo`` package) with ``+dirty``
    if the package has uncommitted changes (tracked or untracked, .gitignore respected);
    ``"unknown"`` outside a git checkout or without git."""
    pkg = Path(package_dir) if package_dir is not None else _PACKAGE
    sha = _git(pkg, "rev-parse", "HEAD")
    if not sha:
        return "unknown"
    status = _git(pkg, "status", "--porcelain", "--", ".")
    if status is None:
        return "unknown"
    return f"{sha}+dirty" if status else sha


def current_command(argv: list[str] | None = None, environ=None) -> str:
    """The command line of this process, e.g. ``OMP_NUM_THREADS=1 python -m weightinfo.cli reproduce
    certificates --which digits``: the variables of :data:`ENV_VARS` that are set, the program (``python
    -m MODULE`` for a module run with ``-m``, the bare name of a console script, ``python FILE`` for a
    script) and the arguments, shell-quoted."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None) if argv is None else None
    argv = list(sys.argv if argv is None else argv)
    environ = os.environ if environ is None else environ
    words = [f"{k}={shlex.quote(environ[k])}" for k in ENV_VARS if environ.get(k)]
    prog = argv[0] if argv else "python"
    if spec is not None and spec.name:  # run as `python -m NAME`: argv[0] is NAME's file
        words += ["python", "-m", spec.name.removesuffix(".__main__")]
    elif prog.endswith(".py"):
        words += ["python", _relative(prog)]
    else:
        words.append(Path(prog).name)
    return " ".join(words + [shlex.quote(a) for a in argv[1:]])


def _relative(path: str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


def made_by(*, quick: bool | None = None, command: str | None = None) -> dict[str, Any]:
    """``{"commit", "command", "threads", "quick", "cpu_capability"}`` of this run (``command`` default:
    :func:`current_command`; ``threads``: ``torch.get_num_threads()``; ``cpu_capability``: the vector
    instruction set torch's kernels run with, e.g. ``"AVX512"`` or ``"AVX2"``)."""
    import torch

    return {
        "commit": code_commit(),
        "command": command if command is not None else current_command(),
        "threads": torch.get_num_threads(),
        "quick": bool(quick) if quick is not None else None,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def made_by_line(info: dict[str, Any]) -> str:
    """The first line of a report: ``Made by `COMMAND` at commit SHA (N torch threads).``"""
    quick = (
        " **Quick smoke-test settings: not the documented numbers.**" if info.get("quick") else ""
    )
    cpu = f", {info['cpu_capability']} kernels" if info.get("cpu_capability") else ""
    return (
        f"Made by `{info['command']}` at commit {info['commit']} "
        f"({info['threads']} torch thread{'s' if info['threads'] != 1 else ''}{cpu}).{quick}"
    )
