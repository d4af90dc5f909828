"""docs/results/schemas.md documents every field of the result files in docs/results/, and nothing else.

Each ``## <heading>`` of schemas.md with a table is one file layout; :data:`SECTIONS` says which files in
docs/results/ have it. The first column of a table row names one or more field paths in backticks:
``key``, ``settings.key``, ``runs[].key`` (a key of every element of a list of dicts), ``analysis.key``.
"Common fields" rows hold for every file. Checked both ways:

* every field of every file, to the documented depth, has a row: the top-level keys, the keys of
  ``settings`` and ``analysis``, the keys of every top-level list of dicts, and the keys of any dict (``P.*``)
  or list of dicts (``P[].*``) that the section documents one level further;
* every row names a field that at least one of the section's files has (so the document cannot drift).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
SCHEMAS = RESULTS / "schemas.md"

COMMON = "Common fields"
#: Section heading in schemas.md -> the files (globs under docs/results/) with that layout.
SECTIONS = {
    "`random_labels.json`": ("random_labels.json",),
    "`certificates_<which>.json`": ("certificates_*.json",),
    "`invariance.json`": ("invariance.json",),
    "`fig1.json`": ("fig1.json",),
    "`fig3.json`": ("fig3.json",),
    "`fig4.json`": ("fig4.json",),
    "`temperature.json`": ("temperature.json",),
    "`critical_periods.json`": ("critical_periods.json",),
    "`certify/<run>/certificate.json`": ("certify/*/certificate.json",),
}
#: JSON files in docs/results/ without a section: the hand-kept archive of all certificate runs.
NOT_DOCUMENTED = {"certificates.json"}
#: Dicts whose keys are always documented.
ALWAYS_EXPANDED = ("settings", "analysis")


def parse_schemas(text: str) -> dict[str, list[str]]:
    """``{section heading: [documented paths]}`` for every ``## `` section with table rows."""
    sections: dict[str, list[str]] = {}
    heading = None
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
            continue
        if heading is None or not line.startswith("| `"):
            continue
        first = line.split(" | ")[0].lstrip("| ")
        sections.setdefault(heading, []).extend(re.findall(r"`([^`]+)`", first))
    return sections


def _split(path: str) -> list[str]:
    """``a[].b.c`` -> ``["a", "[]", "b", "c"]``."""
    parts: list[str] = []
    for part in path.split("."):
        if part.endswith("[]"):
            parts += [part[:-2], "[]"]
        else:
            parts.append(part)
    return parts


def resolve(data, path: str) -> bool:
    """Whether ``path`` names a field of ``data`` (``[]``: some element of a list has it)."""
    values = [data]
    for part in _split(path):
        nxt = []
        for v in values:
            if part == "[]" and isinstance(v, list):
                nxt += v
            elif isinstance(v, dict) and part in v:
                nxt.append(v[part])
        values = nxt
    return bool(values)


def field_paths(data: dict, documented: set[str]) -> set[str]:
    """The field paths of ``data`` to the documented depth: top level, ``settings.*``, ``analysis.*``, every
    top-level list of dicts, and every dict or list of dicts that ``documented`` expands one level further."""
    prefixes = {p.rsplit(".", 1)[0] for p in documented if "." in p}
    out: set[str] = set()

    def walk(value, path: str, top: bool) -> None:
        out.add(path)
        if isinstance(value, dict) and (path in ALWAYS_EXPANDED or path in prefixes):
            for k, v in value.items():
                walk(v, f"{path}.{k}", False)
        elif isinstance(value, list) and (top or f"{path}[]" in prefixes):
            for item in value:
                if isinstance(item, dict):
                    for k, v in item.items():
                        walk(v, f"{path}[].{k}", False)

    for key, value in data.items():
        walk(value, key, True)
    return out


def _files(globs) -> list[Path]:
    return sorted(p for g in globs for p in RESULTS.glob(g))


def _section_files(heading: str) -> list[Path]:
    """The files of a section; fails (rather than passing vacuously) when docs/results/ has none of them."""
    files = _files(SECTIONS[heading])
    assert files, (
        f"{heading}: no file in docs/results/ matches {SECTIONS[heading]}, so the section cannot be checked "
        "(add the result file)"
    )
    return files


@functools.cache
def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def documented() -> dict[str, list[str]]:
    return parse_schemas(SCHEMAS.read_text(encoding="utf-8"))


def test_every_section_is_mapped_to_files(documented):
    assert COMMON in documented
    tables = set(documented) - {COMMON}
    assert tables == set(SECTIONS), (
        f"sections of schemas.md without files in SECTIONS: {sorted(tables - set(SECTIONS))}; "
        f"SECTIONS without a section in schemas.md: {sorted(set(SECTIONS) - tables)}"
    )
    for heading in SECTIONS:
        _section_files(heading)


def test_every_result_file_has_a_section():
    covered = {p for globs in SECTIONS.values() for p in _files(globs)}
    for path in sorted(RESULTS.rglob("*.json")):
        if path.name in NOT_DOCUMENTED and path.parent == RESULTS:
            assert path not in covered, f"{path.name} has a section: drop it from NOT_DOCUMENTED"
            continue
        assert path in covered, f"{path.relative_to(RESULTS)} has no section in schemas.md"


def test_no_path_documented_twice(documented):
    common = set(documented[COMMON])
    for heading, paths in documented.items():
        dupes = sorted({p for p in paths if paths.count(p) > 1})
        assert not dupes, f"{heading}: documented twice: {dupes}"
        if heading != COMMON:
            both = sorted(common & set(paths))
            assert not both, f"{heading}: already in {COMMON}: {both}"


@pytest.mark.parametrize("heading", sorted(SECTIONS))
def test_every_field_is_documented(documented, heading):
    rows = set(documented.get(heading, [])) | set(documented[COMMON])
    for path in _section_files(heading):
        missing = sorted(field_paths(_load(path), rows) - rows)
        assert not missing, f"{path.relative_to(RESULTS)}: not in section {heading}: {missing}"


@pytest.mark.parametrize("heading", sorted(SECTIONS))
def test_every_documented_field_exists(documented, heading):
    files = [_load(p) for p in _section_files(heading)]
    absent = [p for p in documented.get(heading, []) if not any(resolve(d, p) for d in files)]
    assert not absent, f"section {heading} documents fields no file has: {absent}"


def test_every_common_field_exists(documented):
    files = [_load(p) for globs in SECTIONS.values() for p in _files(globs)]
    absent = [p for p in documented[COMMON] if not any(resolve(d, p) for d in files)]
    assert not absent, f"{COMMON} documents fields no file has: {absent}"


def test_the_checks_can_fail():
    data = {
        "settings": {"a": 1, "b": {"deep": 1}},
        "runs": [{"x": 1}, {"y": [{"z": 1}]}],
        "best": {"p": 1, "q": 2},
        "note": "text",
    }
    shallow = field_paths(data, set())
    assert shallow == {"settings", "settings.a", "settings.b", "runs", "runs[].x", "runs[].y"} | {
        "best",
        "note",
    }
    deep = field_paths(data, {"best.p", "runs[].y[].z"})
    assert {"best.p", "best.q", "runs[].y[].z"} <= deep
    assert resolve(data, "runs[].y[].z") and not resolve(data, "runs[].w")
    assert not resolve(data, "settings.a.b")
    text = "## Common fields\n| `x` | int |\n## `f.json`\n| field |\n| `a`, `b.c` | int | — | `not` |\n"
    assert parse_schemas(text) == {"Common fields": ["x"], "`f.json`": ["a", "b.c"]}
