"""Where file-backed datasets are looked for, and the opt-in downloader.

Search order (first match wins), see :func:`search_roots`:

1. the explicit ``root`` argument (also accepted: ``root`` *being* the dataset folder),
2. ``$WEIGHTINFO_DATA`` (several roots may be joined with ``os.pathsep``),
3. the user cache ``$XDG_CACHE_HOME/weightinfo`` (default ``~/.cache/weightinfo``),
4. the system folders of :data:`SYSTEM_DATA_DIRS` (Debian's ``/usr/share/datasets``).

Under each root a dataset lives in a named subfolder (e.g. ``fashion-mnist/``) or in
torchvision's layout (e.g. ``FashionMNIST/raw/``). Files may be gzip-compressed or not.

Nothing is ever fetched unless asked (``download=True``); downloads go to the user cache.
A dataset that cannot be found raises :class:`DatasetNotFoundError`, a
:class:`FileNotFoundError` whose message lists every folder searched and how to get the data.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "ENV_VAR",
    "SYSTEM_DATA_DIRS",
    "DatasetNotFoundError",
    "download_files",
    "find_files",
    "not_found_message",
    "search_roots",
    "user_cache_dir",
]

#: Environment variable naming extra data roots.
ENV_VAR = "WEIGHTINFO_DATA"

#: System-wide data roots searched last (``apt-get install dataset-fashion-mnist``).
SYSTEM_DATA_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"),)


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not on this machine (message: where we looked, how to get them)."""


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/weightinfo``, or ``~/.cache/weightinfo`` when the variable is unset."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "weightinfo"


def search_roots(root: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The data roots to search, in order, each labelled with where it came from."""
    roots: list[tuple[str, Path]] = []
    if root is not None:
        roots.append(("root argument", Path(root).expanduser()))
    for part in os.environ.get(ENV_VAR, "").split(os.pathsep):
        if part.strip():
            roots.append((f"${ENV_VAR}", Path(part.strip()).expanduser()))
    roots.append(("user cache", user_cache_dir()))
    roots.extend(("system", p) for p in SYSTEM_DATA_DIRS)
    seen: set[Path] = set()
    unique = []
    for label, path in roots:
        if path not in seen:
            seen.add(path)
            unique.append((label, path))
    return unique


def _candidates(stem: str) -> list[str]:
    """File names accepted for an IDX stem: plain, gzip, and the ``train-images.idx3`` spelling."""
    names = [stem, stem + ".gz"]
    dotted = stem.replace("-idx", ".idx")
    if dotted != stem:
        names += [dotted, dotted + ".gz"]
    return names


def _match(directory: Path, stems: Mapping[str, str]) -> dict[str, Path] | None:
    found: dict[str, Path] = {}
    for key, stem in stems.items():
        for name in _candidates(stem):
            if (directory / name).is_file():
                found[key] = directory / name
                break
        else:
            return None
    return found


def find_files(
    subdirs: Sequence[str],
    stems: Mapping[str, str],
    root: str | os.PathLike | None = None,
    searched: list[str] | None = None,
) -> tuple[Path, dict[str, Path]] | None:
    """Find the first folder holding every file of ``stems`` (key -> IDX file stem).

    Looks in ``<r>/<subdir>`` for every root ``r`` of :func:`search_roots` and every
    ``subdir`` (e.g. ``"fashion-mnist"``, ``"FashionMNIST/raw"``), and in the explicit
    ``root`` itself. Returns ``(folder, {key: path})`` or ``None``; every folder tried is
    appended (with its origin) to ``searched`` for error messages.
    """
    for label, base in search_roots(root):
        dirs = [base / sub for sub in subdirs]
        if label == "root argument":
            dirs.insert(0, base)
        for directory in dirs:
            if searched is not None:
                searched.append(f"{directory}  ({label})")
            if directory.is_dir():
                files = _match(directory, stems)
                if files is not None:
                    return directory, files
    return None


def not_found_message(
    name: str, searched: Sequence[str], files: Sequence[str], how: str, folder: str | None = None
) -> str:
    """Error text for a missing dataset: the files wanted, every folder searched, remedies."""
    lines = [f"dataset {name!r} not found. Files looked for (.gz or not): {', '.join(files)}."]
    lines.append("Searched, in order:")
    lines += [f"  - {s}" for s in searched]
    if not os.environ.get(ENV_VAR, "").strip():
        lines.append(f"  (${ENV_VAR} is not set)")
    lines.append("To get it:")
    lines.append(how)
    lines.append(
        f"  - or put the files in <DIR>/{folder or name}/ and set ${ENV_VAR}=<DIR>, "
        "or pass root=<DIR>"
    )
    lines.append(
        f"  - or pass download=True (CLI: --download) to fetch them into {user_cache_dir()} "
        "(needs internet)"
    )
    return "\n".join(lines)


def download_files(urls: Mapping[str, str], dest: str | os.PathLike, timeout: float = 60.0) -> Path:
    """Fetch ``{file name: url}`` into the folder ``dest`` (only files not already there).

    Each file is written to a temporary name and renamed once complete, so an interrupted
    download leaves nothing behind. Raises :class:`DatasetNotFoundError` (with the URL and
    the reason) when a file cannot be fetched, e.g. on a machine without internet.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for filename, url in urls.items():
        target = dest / filename
        if target.is_file():
            continue
        fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{filename}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                shutil.copyfileobj(resp, out)
            os.replace(tmp, target)
        except (urllib.error.URLError, OSError, ValueError) as err:
            raise DatasetNotFoundError(
                f"could not download {url} into {dest}: {err}. Without internet, copy the "
                f"files there by hand or set ${ENV_VAR} to a folder that holds them."
            ) from err
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return dest
