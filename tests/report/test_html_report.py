"""``weightinfo report``: the HTML page made from the commands' real outputs, checked with ``html.parser``.

The run folders are written once per session by the CLI itself on tiny settings (digits, a 16-unit MLP, 2
epochs): ``run1`` has every file (train with the tracker, measure with a β curve, certify, activations),
``run2`` only a checkpoint and a measurement. The page is not opened in a browser: no headless browser installs
from the project's own files without network at run time (see :mod:`weightinfo.report.html`).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.cli_helpers import invoke, ok
from weightinfo.report.html import SECTIONS, build_report, format_number

PNG = b"\x89PNG\r\n\x1a\n"
SECTION_IDS = [s.id for s in SECTIONS]
TINY = ["--dataset", "digits", "--widths", "16", "--epochs", "2"]


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("report-runs")
    run1, run2 = base / "run1", base / "run2"
    ok("train", *TINY, "--out", run1 / "run.pt", "--track", "trace,loss", "--track-probe", 50)
    measure = ["measure", "--n-samples", 150, "--mc-samples", 2]
    ok(*measure, "--checkpoint", run1 / "run.pt", "--out", run1, "--betas", "1e-5,1e-3")
    ok("certify", "--dataset", "digits", "--widths", "16", "--out", run1, "--prior-scale", 0.03,
       "--posterior", "information", "--beta", "1e-3", "--prior-epochs", 1, "--mc-samples", 3,
       "--test-fraction", 0.1)  # fmt: skip
    ok("activations", "--checkpoint", run1 / "run.pt", "--out", run1, "--n-inputs", 6,
       "--n-samples", 100, "--nuisance", "translate-x,brightness")  # fmt: skip
    ok("train", "--dataset", "digits", "--widths", "8", "--epochs", 1, "--out", run2 / "run.pt")
    ok(*measure, "--checkpoint", run2 / "run.pt", "--out", run2)
    return run1, run2


class Page(HTMLParser):
    """Sections, images, links, tables, notices and text of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.sections: list[str] = []
        self.runs_per_section: dict[str, int] = {}
        self.imgs: list[dict] = []
        self.urls: list[str] = []
        self.tags: set[str] = set()
        self.tables: list[dict] = []  # {"cls", "rows": [[cell text]]}
        self.missing: list[str] = []
        self.chunks: list[str] = []
        self._cell: list[str] | None = None
        self._in_missing = 0
        self.feed(text)
        self.text = re.sub(r"\s+", " ", "".join(self.chunks))

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.add(tag)
        for k in ("src", "href"):
            if a.get(k) is not None:
                self.urls.append(a[k])
        if tag == "section":
            self.sections.append(a["id"])
        elif tag == "div" and a.get("class") == "run":
            sec = self.sections[-1]
            self.runs_per_section[sec] = self.runs_per_section.get(sec, 0) + 1
        elif tag == "img":
            self.imgs.append(a)
        elif tag == "table":
            self.tables.append({"cls": a.get("class"), "section": self.sections[-1:], "rows": []})
        elif tag == "tr":
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "p" and a.get("class") == "missing":
            self._in_missing = 1
            self.missing.append("")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1]["rows"][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "p":
            self._in_missing = 0

    def handle_data(self, data):
        self.chunks.append(data)
        if self._cell is not None:
            self._cell.append(data)
        if self._in_missing:
            self.missing[-1] += data


def _report(tmp_path, *dirs) -> tuple[Page, Path]:
    out = tmp_path / "report.html"
    ok("report", *dirs, "--out", out)
    return Page(out.read_text(encoding="utf-8")), out


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def _check_self_contained(page: Page) -> None:
    assert all(not u.startswith(("http://", "https://", "//")) for u in page.urls), page.urls
    assert all(u.startswith(("data:image/png;base64,", "#")) for u in page.urls), page.urls
    assert not page.tags & {"script", "link", "iframe", "object", "embed"}
    for img in page.imgs:
        data = base64.b64decode(img["src"].removeprefix("data:image/png;base64,"), validate=True)
        assert data.startswith(PNG) and len(data) > 1000, img["alt"]


def test_one_run_shows_every_section_image_and_number(runs, tmp_path):
    run1, _ = runs
    page, _ = _report(tmp_path, run1)
    assert page.sections == ["files", *SECTION_IDS]  # no comparison for a single run
    assert all(page.runs_per_section[s] == 1 for s in page.sections)
    _check_self_contained(page)
    alts = " | ".join(i["alt"] for i in page.imgs)
    for what in (
        "where the information",
        "loss versus information",
        "certificate",
        "tracker",
        "activations",
    ):
        assert what in alts, alts
    assert page.missing == []  # every expected file is there
    t = page.text
    rep, cert, act = (
        _read(run1 / f) for f in ("report.json", "certificate.json", "activations.json")
    )
    assert f"IW = {format_number(rep['nats'], 'nats')}" in t
    assert format_number(rep["bits"], "bits") in t
    for row in rep["per_layer"]:
        assert format_number(row["nats"], "nats") in t
    assert f"Risk bound {format_number(cert['risk_bound'])}" in t
    for key, unit in (("kl_nats", "nats"), ("kl_bits", "bits"), ("empirical_risk", "")):
        assert format_number(cert[key], unit) in t
    assert format_number(cert["n_bound"]) in t and format_number(cert["delta"]) in t
    for row in _read(run1 / "curve.json")["rows"]:
        assert format_number(row["beta"]) in t and format_number(row["nats"], "nats") in t
    for v in act["effective_information"]["per_layer"].values():
        assert format_number(v) in t
    track = [json.loads(x) for x in (run1 / "track.jsonl").read_text().splitlines()]
    assert format_number(track[-1]["trace"]) in t
    # the commands: recorded ones verbatim, the training one reconstructed and said so
    assert cert["made_by"]["command"] in t and act["made_by"]["command"] in t
    assert "weightinfo train --dataset digits --model mlp --widths 16 --epochs 2" in t
    assert "reconstructed from run.json" in t


def test_two_runs_side_by_side_with_a_comparison_and_missing_files(runs, tmp_path):
    run1, run2 = runs
    page, _ = _report(tmp_path, run1, run2)
    assert page.sections == ["comparison", "files", *SECTION_IDS]
    assert all(page.runs_per_section[s] == 2 for s in page.sections if s != "comparison")
    _check_self_contained(page)
    (comp,) = [tb for tb in page.tables if tb["cls"] == "comparison"]
    assert comp["rows"][0] == ["quantity", "run1", "run2"]
    assert all(len(r) == 3 for r in comp["rows"])
    rows = {r[0]: r[1:] for r in comp["rows"][1:]}
    iw = [format_number(_read(d / "report.json")["nats"]) for d in (run1, run2)]
    assert rows["IW, information in the weights (nats)"] == iw
    assert rows["risk bound"] == [
        format_number(_read(run1 / "certificate.json")["risk_bound"]),
        "–",
    ]
    assert rows["model"] == ["mlp(widths=[16])", "mlp(widths=[8])"]
    # run2 has no curve, certificate, tracker or activations: each is named, none silently left out
    notices = " ".join(page.missing)
    for f in (
        "curve.json",
        "certificate.json",
        "certificate.png",
        "track.jsonl",
        "activations.json",
    ):
        assert f in notices, f
    assert "run1" not in notices and str(run2) in notices


def test_absent_image_and_unreadable_file_are_said(runs, tmp_path):
    run1, _ = runs
    run = tmp_path / "partial"
    run.mkdir()
    for f in ("run.json", "report.json", "certificate.json"):
        shutil.copy(run1 / f, run / f)
    (run / "curve.json").write_text("{not json")
    meta = _read(run / "run.json")
    meta["created_by"] = "<script>alert('x')</script> & co"
    (run / "run.json").write_text(json.dumps(meta))
    text = build_report([run])
    page = Page(text)
    assert "<script>" not in text and "&lt;script&gt;" in text
    assert "<script>alert('x')</script> & co" in page.text  # shown as text, escaped in the source
    notices = " ".join(page.missing)
    assert "where.png" in notices and "certificate.png" in notices
    assert "curve.json could not be read" in notices


def test_errors_name_the_folder_and_write_nothing(runs, tmp_path):
    out = tmp_path / "r.html"
    r = invoke("report", runs[0], tmp_path / "nope", "--out", out)
    assert r.exit_code == 2 and "does not exist" in r.output
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hello")
    r = invoke("report", tmp_path / "empty", "--out", out)
    assert r.exit_code == 2 and "holds none of the files" in r.output
    assert not out.exists()
