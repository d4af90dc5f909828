"""What the command-line tests share: a runner, the small digits model options, ``invoke`` and ``ok``.

A module that trains checkpoints on the fly also marks itself
``pytestmark = pytest.mark.usefixtures("isolated_cache")`` (``tests/conftest.py``).
"""

from __future__ import annotations

from typer.testing import CliRunner

from weightinfo.cli import app

runner = CliRunner()
# A one-hidden-layer MLP trained for one epoch on digits: the cheapest model a command can train on the fly.
SMALL = ["--dataset", "digits", "--widths", "16", "--epochs", "1"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def ok(*args):
    result = invoke(*args)
    assert result.exit_code == 0, (result.output, result.exception)
    return result
