"""Fixtures for the data tests.

* ``isolated``: hides every real data root (``$WEIGHTINFO_DATA``, the user cache, the
  system folders) behind empty temporary ones, so lookup tests see only what they create.
* ``real_dataset``: loads a real dataset once per session (found the normal way, e.g.
  via ``$WEIGHTINFO_DATA`` set by the top-level conftest) or skips the test with the
  reason when its files are not on this machine.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from weightinfo.data import load_dataset, locate


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Empty search roots ``ns.root``, ``ns.env``, ``ns.cache``, ``ns.system`` (not created).

    ``$WEIGHTINFO_DATA`` is unset, ``ns.cache`` is ``$XDG_CACHE_HOME/weightinfo``.
    """
    ns = SimpleNamespace(
        env=tmp_path / "env",
        cache=tmp_path / "xdg" / "weightinfo",
        system=tmp_path / "system",
        root=tmp_path / "root",
    )
    monkeypatch.delenv(locate.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(locate, "SYSTEM_DATA_DIRS", (ns.system,))
    return ns


_REAL: dict[str, object] = {}


@pytest.fixture(scope="session")
def real_dataset():
    """``real_dataset(name, **kw)``: a cached real dataset, or ``pytest.skip`` if absent."""

    def load(name: str, **kwargs):
        key = (name, tuple(sorted(kwargs.items())))
        if key not in _REAL:
            try:
                _REAL[key] = load_dataset(name, **kwargs)
            except FileNotFoundError as err:
                _REAL[key] = err
        value = _REAL[key]
        if isinstance(value, FileNotFoundError):
            first = str(value).splitlines()[0]
            pytest.skip(
                f"real data for {name!r} not on this machine ({first}); "
                f"set $WEIGHTINFO_DATA to a folder holding it"
            )
        return value

    return load
