"""The HTML report (`aesformer-hf report`, `score --html`): every image once, sorted by score, with its thumbnail,
distribution, label and mode; errors listed; nothing from the network; and in a real browser (headless Chromium)
the page shows all of it and its filters work."""

from __future__ import annotations

import base64
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from aesformer_hf.cli import main as cli_main
from aesformer_hf.commands import report as report_command
from aesformer_hf.report import (
    DEFAULT_THUMBNAIL_SIZE,
    DEFAULT_TOP,
    distribution_svg,
    histogram_svg,
    read_score_output,
    render_report,
)

from . import browser
from .conftest import random_image


class ReportPage(HTMLParser):
    """The cards of each section (`top`, `bottom`, `all`) as their attributes, and the error table's rows."""

    def __init__(self, text: str):
        super().__init__()
        self.sections: dict[str, list[dict]] = {}
        self.errors: list[list[str]] = []
        self.images: list[dict] = []
        self.external: list[str] = []
        self._section = None
        self._cell = None
        self._row: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._section = attrs.get("id")
        for name in ("src", "href"):
            if re.match(r"(https?:)?//", attrs.get(name) or ""):
                self.external.append(attrs[name])
        if tag == "li" and "card" in (attrs.get("class") or "").split():
            self.sections.setdefault(self._section, []).append(attrs)
        if tag == "img":
            self.images.append(attrs)
        if self._section == "errors" and tag == "tr":
            self._row = []
        if self._row is not None and tag == "td":
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None:
            self._row.append(self._cell)
            self._cell = None
        if tag == "tr" and self._row:
            self.errors.append(self._row)
            self._row = None

    def scores(self, section: str = "all") -> list[float]:
        return [float(card["data-score"]) for card in self.sections.get(section, [])]

    def names(self, section: str = "all") -> list[str]:
        return [card["data-name"] for card in self.sections.get(section, [])]


def _report(argv) -> int:
    return cli_main(["report", *map(str, argv)])


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report-photos")
    for seed in range(6):
        random_image(seed, size=(60 + 10 * seed, 90)).save(folder / f"photo{seed}.jpg")
    random_image(9, size=(300, 200)).save(folder / "large.png")
    (folder / "broken.jpg").write_bytes(b"not an image")
    return folder


def test_module_and_command_defaults_agree():
    assert report_command.DEFAULT_THUMBNAIL_SIZE == DEFAULT_THUMBNAIL_SIZE
    assert report_command.DEFAULT_TOP == DEFAULT_TOP


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_report_of_a_score_output_holds_every_image_sorted_by_score(
    suffix, photos, saved_model_dir, tmp_path, capsys
):
    scores = tmp_path / f"scores{suffix}"
    argv = ["score", str(photos), "--model", str(saved_model_dir), "--output", str(scores), "--no-progress"]
    assert cli_main(argv) == 1  # broken.jpg skipped
    page_path = tmp_path / "report.html"
    capsys.readouterr()
    assert _report([scores, "--output", page_path, "--model-name", "tiny-aesformer", "--top", 3]) == 0
    assert "7 image(s) rated, 1 not rated" in capsys.readouterr().err
    text = page_path.read_text(encoding="utf-8")
    page = ReportPage(text)
    rows = read_score_output(scores)
    rated = {row["path"]: row for row in rows if row["error"] is None}
    # Every rated image exactly once, best first; the sections agree with it.
    assert sorted(page.names()) == sorted(rated)
    assert page.scores() == sorted(page.scores(), reverse=True)
    for card in page.sections["all"]:
        row = rated[card["data-name"]]
        assert float(card["data-score"]) == pytest.approx(row["score"], rel=1e-5)
        assert (card["data-label"], card["data-mode"]) == (row["label"], row["mode"])
    assert page.names("top") == page.names()[:3] and page.names("bottom") == page.names()[::-1][:3]
    # The error, by name and reason; the model and the score output named.
    assert page.errors == [[str(photos / "broken.jpg"), next(r["error"] for r in rows if r["error"])]]
    assert "tiny-aesformer" in text and scores.name in text
    # Thumbnails: embedded JPEGs no larger than 96 px, one per card; no URL anywhere.
    assert len(page.images) == len(page.sections["all"]) + 6
    for image in page.images:
        assert image["src"].startswith("data:image/jpeg;base64,") and image["loading"] == "lazy"
        thumbnail = Image.open(io.BytesIO(base64.b64decode(image["src"].split(",", 1)[1])))
        assert max(thumbnail.size) <= DEFAULT_THUMBNAIL_SIZE
        assert thumbnail.size == (int(image["width"]), int(image["height"]))
    assert page.external == [] and not re.search(r"(src|href)=\"?(https?:)?//", text)
    assert "content-visibility:auto" in text


def test_score_html_writes_the_report_with_and_without_output(photos, saved_model_dir, tmp_path, capsys):
    base = ["score", str(photos / "photo1.jpg"), str(photos / "photo2.jpg"), "--model", str(saved_model_dir)]
    printed = tmp_path / "printed.html"
    assert cli_main([*base, "--no-progress", "--html", str(printed)]) == 0
    written = tmp_path / "written.html"
    output = tmp_path / "scores.csv"
    assert cli_main([*base, "--no-progress", "--output", str(output), "--html", str(written)]) == 0
    capsys.readouterr()
    first, second = ReportPage(printed.read_text()), ReportPage(written.read_text())
    assert first.sections["all"] == second.sections["all"] and len(first.names()) == 2
    assert str(saved_model_dir) in printed.read_text()  # --model names the model
    # A bad --html is refused before anything is rated.
    assert cli_main([*base, "--no-progress", "--html", str(tmp_path / "report.txt")]) == 2
    assert "--html" in capsys.readouterr().err


def test_report_errors_are_one_line(tmp_path, capsys):
    not_scores = tmp_path / "other.jsonl"
    not_scores.write_text('{"name": "x"}\n')
    cases = [
        ([tmp_path / "missing.jsonl", "--output", tmp_path / "r.html"], "no such file"),
        ([not_scores, "--output", tmp_path / "r.html"], "not a score output"),
        ([not_scores, "--output", tmp_path / "r.pdf"], "HTML"),
        ([not_scores, "--output", tmp_path / "no" / "r.html"], "does not exist"),
        ([not_scores, "--output", tmp_path / "r.html", "--thumbnail-size", "3"], "--thumbnail-size"),
    ]
    for argv, expected in cases:
        capsys.readouterr()
        assert _report(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("report: ") and expected in err[0], err
    assert not (tmp_path / "r.html").exists()


def test_pieces_draw_what_they_are_given():
    svg = distribution_svg([0.0, 0.5, 0.25, 0.25])
    assert svg.count("<path") == 1 and svg.count("M") == 3 and "2: 50%" in svg
    hist = histogram_svg([4.1, 4.2, 5.9, 6.0, 6.05])
    counts = [int(c) for c in re.findall(r"<title>[^<]*: (\d+)</title>", hist)]
    assert sum(counts) == 5 and max(counts) == 2
    page, summary = render_report(
        [{"image_id": "a", "row": 0, "score": 5.0, "label": "low", "mode": "vision", "distribution": None}],
        thumbnails=True,
    )
    assert summary.rated == 1 and summary.missing_thumbnails == 1 and "no thumbnail" in page


def _handmade_scores(folder: Path, count: int = 24) -> Path:
    """A score output with both labels and both modes over small images (no model needed)."""
    rows = []
    for i in range(count):
        path = folder / f"img-{i:02d}.jpg"
        random_image(100 + i, size=(48, 64)).save(path)
        score = 2.0 + (i * 7.3) % 7  # not in input order
        distribution = [0.1] * 10
        rows.append(
            {
                "path": str(path),
                "score": score,
                "label": "high" if score > 5 else "low",
                "mode": "multimodal" if i % 3 == 0 else "vision",
                "distribution": distribution,
                "error": None,
            }
        )
    rows.append(
        {"path": str(folder / "gone.jpg"), "score": None, "label": None, "mode": None, "distribution": None}
        | {"error": "gone.jpg: missing"}
    )
    scores = folder / "scores.jsonl"
    scores.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return scores


def test_report_in_a_browser_shows_every_image_sorted_and_filters(tmp_path, capsys):
    browser.require_chromium()
    scores = _handmade_scores(tmp_path)
    page_path = tmp_path / "report.html"
    assert _report([scores, "--output", page_path, "--model-name", "handmade"]) == 0
    url = page_path.as_uri()

    page = ReportPage(browser.dump_dom(url))
    expected = sorted(
        (row for row in read_score_output(scores) if row["error"] is None), key=lambda r: -r["score"]
    )
    assert page.names() == [row["path"] for row in expected]  # every image, best first, as rendered
    assert page.scores() == sorted(page.scores(), reverse=True)
    assert not any("hidden" in card for card in page.sections["all"])
    assert page.errors == [[str(tmp_path / "gone.jpg"), "gone.jpg: missing"]]
    assert page.external == []

    # The filters, run by the page's own script from the address: low multimodal images only, worst first.
    filtered = ReportPage(browser.dump_dom(url + "#label=low&mode=multimodal&order=asc"))
    shown = [card for card in filtered.sections["all"] if "hidden" not in card]
    wanted = [r for r in expected if r["label"] == "low" and r["mode"] == "multimodal"][::-1]
    assert [card["data-name"] for card in shown] == [r["path"] for r in wanted] and wanted
    assert len(filtered.sections["all"]) == len(expected)  # the others hidden, not removed

    picture = tmp_path / "report.png"
    browser.screenshot(url, picture)
    assert Image.open(picture).size == (1280, 900)
