"""An HTML report of a `score` output: one self-contained file to look at the ratings of a folder.

The page holds everything it shows: thumbnails as small base64 JPEGs (made by the package's image loader, so they
show the pixels that were rated, EXIF orientation applied), the distributions as inline SVG, a histogram of all
scores, the top and bottom images, every image sorted by score with filters by label, mode and name (a few lines of
inline JavaScript), and the inputs that could not be rated with their reasons. Nothing is fetched from the network.

It stays usable for tens of thousands of images: thumbnails are small (96 px by default, about 3 KB each), cards
are skipped by the browser's layout until they scroll into view (`content-visibility: auto`) and images are decoded
lazily (`loading="lazy"`, `decoding="async"`). `benchmarks/bench_report.py` measures size and time for 10,000 rows.

    from aesformer_hf.report import write_report_from_scores
    write_report_from_scores("scores.jsonl", "report.html", model_name="me/aesformer-t-ava")
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .scoring_output import FILES_LAYOUT, OutputLayout, display_text, output_format, read_rows

DEFAULT_THUMBNAIL_SIZE = 96
DEFAULT_TOP = 12
THUMBNAIL_QUALITY = 70
HISTOGRAM_BIN_WIDTH = 0.25


# -- reading a score output ----------------------------------------------------------------------------------------
def _columns(path: Path, fmt: str) -> list[str]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.ParquetFile(path).schema_arrow.names)
    if fmt == "csv":
        import csv

        with open(path, encoding="utf-8", newline="") as handle:
            return next(csv.reader(handle), [])
    with open(path, "rb") as handle:
        for line in handle:
            if line.strip():
                try:
                    row = json.loads(line)
                except ValueError:
                    break
                return list(row) if isinstance(row, dict) else []
    return []


def score_output_layout(path: str | os.PathLike) -> OutputLayout:
    """The key columns of a `score` output (`path` for files; `image_id` and/or `row` for datasets).

    ValueError for a file of another kind (a suffix other than .jsonl/.csv/.parquet, no key column).
    """
    path = Path(path)
    fmt = output_format(path)
    columns = _columns(path, fmt)
    if not columns:  # an empty output (nothing rated yet): any layout reads it
        return FILES_LAYOUT
    if "score" not in columns:
        raise ValueError(f"{os.fsdecode(path)}: no 'score' column (got {columns}); not a score output?")
    if "path" in columns:
        return FILES_LAYOUT
    if "image_id" in columns:
        keys = ("image_id", "row") if "row" in columns else ("image_id",)
        return OutputLayout(keys, "image_id")
    if "row" in columns:
        return OutputLayout(("row",), "row")
    raise ValueError(
        f"{os.fsdecode(path)}: no 'path', 'image_id' or 'row' column (got {columns}); not a score output?"
    )


def read_score_output(path: str | os.PathLike) -> list[dict]:
    """The rows of a `score` output (.jsonl, .csv or .parquet), with `score` a float and `distribution` a list."""
    return list(read_rows(path, score_output_layout(path)))


# -- pieces of the page --------------------------------------------------------------------------------------------
def thumbnail_data_uri(
    source, size: int = DEFAULT_THUMBNAIL_SIZE, quality: int = THUMBNAIL_QUALITY
) -> tuple[str, int, int] | None:
    """`(data URI of a JPEG no larger than size x size, width, height)`, or None when `source` cannot be read.

    Read by `load_image` (EXIF orientation, 16-bit, alpha and CMYK handled as for rating); a large JPEG is decoded
    at a reduced size first (DCT scaling), so camera photos cost little.
    """
    from PIL import Image

    from .models.aesformer.image_utils_aesformer import ImageLoadError, load_image

    try:
        image = load_image(source, draft_size=(2 * size, 2 * size))
    except (ImageLoadError, OSError, ValueError):
        return None
    image.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return (
        "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"),
        image.width,
        image.height,
    )


def distribution_svg(distribution: Sequence[float] | None, width: int = 96, height: int = 22) -> str:
    """The bin probabilities as a small bar chart: one inline `<svg>` with one `<path>` (cheap for the browser)."""
    if not distribution:
        return ""
    bins = len(distribution)
    peak = max(max(distribution), 1e-12)
    step = width / bins
    bars = []
    for i, p in enumerate(distribution):
        h = max(p / peak * (height - 1), 0.0)
        if h > 0:
            bars.append(f"M{i * step + 0.5:.1f} {height}v{-h:.1f}h{step - 1:.1f}v{h:.1f}z")
    tip = " · ".join(f"{i + 1}: {100 * p:.0f}%" for i, p in enumerate(distribution))
    return (
        f'<svg class="dist" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
        f'<title>{tip}</title><path d="{"".join(bars)}"/></svg>'
    )


def histogram_svg(scores: Sequence[float], bin_width: float = HISTOGRAM_BIN_WIDTH) -> str:
    """A histogram of `scores` (bins of `bin_width` between the whole numbers around them) as an inline `<svg>`."""
    if not scores:
        return '<p class="muted">No image was rated.</p>'
    low, high = math.floor(min(scores)), math.ceil(max(scores))
    if high <= low:
        high = low + 1
    count = max(1, round((high - low) / bin_width))
    counts = [0] * count
    for s in scores:
        counts[min(count - 1, max(0, int((s - low) / bin_width)))] += 1
    width, height, left, bottom, top = 720, 180, 40, 22, 8
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max(counts)
    bar_w = plot_w / count
    parts = [
        f'<svg class="hist" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="histogram of {len(scores)} scores">'
    ]
    for i, c in enumerate(counts):
        if not c:
            continue
        h = c / peak * plot_h
        x0 = low + i * bin_width
        parts.append(
            f'<rect x="{left + i * bar_w + 0.5:.1f}" y="{top + plot_h - h:.1f}" width="{max(bar_w - 1, 0.5):.1f}" '
            f'height="{h:.1f}"><title>{x0:.2f}–{x0 + bin_width:.2f}: {c}</title></rect>'
        )
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" class="axis"/>'
    )
    for value in range(low, high + 1):
        x = left + (value - low) / bin_width * bar_w
        parts.append(f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle">{value}</text>')
    parts.append(f'<text x="{left - 6}" y="{top + 10}" text-anchor="end">{peak}</text>')
    parts.append(f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text></svg>')
    return "".join(parts)


def row_name(row: dict) -> str:
    """What names a row: its `path`, else its `image_id`, else `row N`."""
    for key in ("path", "image_id"):
        if row.get(key) not in (None, ""):
            return display_text(str(row[key]))
    return f"row {row.get('row')}"


def _short_names(names: Sequence[str]) -> list[str]:
    """Paths relative to the folder they all share (the full path stays in the card's tooltip)."""
    paths = [n for n in names if os.sep in n or "/" in n]
    if len(paths) < 2 or len(paths) != len(names):
        return list(names)
    try:
        common = os.path.commonpath(names)
    except ValueError:  # absolute and relative mixed
        return list(names)
    if not common:
        return list(names)
    return [os.path.relpath(n, common) if n != common else os.path.basename(n) for n in names]


# -- the page ------------------------------------------------------------------------------------------------------
@dataclass
class ReportSummary:
    """What a report holds: `rated` images, `errors` (inputs not rated), `missing_thumbnails` (rated images whose
    file could not be read for a thumbnail, e.g. dataset rows or moved files) and the file's `bytes`."""

    rated: int = 0
    errors: int = 0
    missing_thumbnails: int = 0
    bytes: int = 0
    labels: dict = field(default_factory=dict)
    modes: dict = field(default_factory=dict)


_VARIABLES = (
    "--fg:#1d2329;--muted:#5f6b76;--line:#d9dee3;--bar:#3b6fb6;--high:#1f7a3f;--low:#a33b2b;--bg:#f6f7f9"
)
_PAGE_CSS = f"""
:root{{{_VARIABLES}}}
*{{box-sizing:border-box}}
body{{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}}
header,section{{padding:12px 20px}}
header{{background:#fff;border-bottom:1px solid var(--line)}}
h1{{font-size:20px;margin:0 0 4px}}h2{{font-size:16px;margin:0 0 8px}}
.muted{{color:var(--muted)}}
.facts{{display:flex;flex-wrap:wrap;gap:6px 18px;margin:6px 0 0;padding:0;list-style:none}}
.facts b{{font-variant-numeric:tabular-nums}}
.hist rect{{fill:var(--bar)}}.hist text{{font-size:11px;fill:var(--muted)}}.hist .axis{{stroke:var(--muted)}}
.controls{{display:flex;flex-wrap:wrap;gap:10px;align-items:center;margin:0 0 10px}}
table{{border-collapse:collapse;background:#fff}}
td,th{{border:1px solid var(--line);padding:3px 8px;text-align:left;font-size:12px}}
"""
# The cards of images (shared with the app, where they are scoped under its element).
_CARD_RULES = (
    (
        ".grid",
        "display:grid;grid-template-columns:repeat(auto-fill,minmax(132px,1fr));gap:8px;margin:0;padding:0;list-style:none",
    ),
    (
        ".card",
        "background:#fff;color:var(--fg);border:1px solid var(--line);border-radius:6px;padding:6px;"
        "content-visibility:auto;contain-intrinsic-size:auto 190px",
    ),
    (
        ".thumb",
        "display:flex;align-items:center;justify-content:center;height:96px;background:#eef0f3;"
        "border-radius:4px;overflow:hidden",
    ),
    (".thumb img", "max-width:100%;max-height:100%"),
    (".thumb .none", "font-size:11px;color:var(--muted)"),
    (".meta", "display:flex;flex-wrap:wrap;gap:0 6px;align-items:baseline;margin-top:4px;font-size:12px"),
    (".meta .score", "font-size:15px;font-variant-numeric:tabular-nums"),
    (".meta .rank", "color:var(--muted)"),
    (".tag", "border-radius:3px;padding:0 4px;background:#eef0f3"),
    (".tag.high", "color:var(--high)"),
    (".tag.low", "color:var(--low)"),
    (".dist path", "fill:var(--bar)"),
    (".name", "font-size:11px;color:var(--muted);overflow:hidden;text-overflow:ellipsis;white-space:nowrap"),
)


def card_css(scope: str = "") -> str:
    """The CSS of the image cards; with `scope` (a selector) every rule applies only inside it."""
    head = f"{scope}{{{_VARIABLES}}}\n" if scope else ""
    return head + "\n".join(f"{scope} {selector}".strip() + f"{{{body}}}" for selector, body in _CARD_RULES)


_JS = """
(function(){
  var list=document.getElementById('all-list'), cards=Array.prototype.slice.call(list.children);
  var label=document.getElementById('f-label'), mode=document.getElementById('f-mode'),
      text=document.getElementById('f-name'), order=document.getElementById('f-order'),
      shown=document.getElementById('f-count');
  function apply(){
    var l=label.value, m=mode.value, q=text.value.toLowerCase(), n=0;
    for(var i=0;i<cards.length;i++){
      var c=cards[i], d=c.dataset;
      var ok=(!l||d.label===l)&&(!m||d.mode===m)&&(!q||d.name.toLowerCase().indexOf(q)>=0);
      c.hidden=!ok; if(ok)n++;
    }
    shown.textContent=n;
  }
  function reorder(){
    var f=document.createDocumentFragment(), a=order.value==='asc'?cards.slice().reverse():cards;
    for(var i=0;i<a.length;i++)f.appendChild(a[i]);
    list.appendChild(f);
  }
  // The filters live in the address too (#label=high&mode=vision&name=beach&order=asc): a link keeps them.
  function remember(){
    var p=new URLSearchParams();
    if(label.value)p.set('label',label.value); if(mode.value)p.set('mode',mode.value);
    if(text.value)p.set('name',text.value); if(order.value==='asc')p.set('order','asc');
    try{history.replaceState(null,'',p.toString()?'#'+p.toString():location.pathname+location.search);}catch(e){}
  }
  var h=new URLSearchParams(location.hash.slice(1));
  label.value=h.get('label')||''; mode.value=h.get('mode')||''; text.value=h.get('name')||'';
  order.value=h.get('order')==='asc'?'asc':'desc';
  if(order.value==='asc')reorder();
  apply();
  label.onchange=mode.onchange=text.oninput=function(){apply();remember();};
  order.onchange=function(){reorder();remember();};
})();
"""


def card_html(
    row: dict, rank: int, thumb: tuple[str, int, int] | None, name: str, full: str | None = None
) -> str:
    """One rated image as a card: thumbnail (`thumbnail_data_uri`'s triple, or None), rank, score, label, mode,
    distribution and name (`full`, default `name`, in the tooltip and the `data-name` the filter reads)."""
    full = name if full is None else full
    score = row["score"]
    label, mode = row.get("label") or "", row.get("mode") or ""
    if thumb is not None:
        uri, w, h = thumb
        image = f'<img src="{uri}" width="{w}" height="{h}" loading="lazy" decoding="async" alt="">'
    else:
        image = '<span class="none">no thumbnail</span>'
    return (
        f'<li class="card" data-rank="{rank}" data-score="{score:.6g}" data-label="{html.escape(label)}" '
        f'data-mode="{html.escape(mode)}" data-name="{html.escape(full)}">'
        f'<div class="thumb">{image}</div>'
        f'<div class="meta"><span class="rank">#{rank}</span><b class="score">{score:.2f}</b>'
        f'<span class="tag {html.escape(label)}">{html.escape(label)}</span>'
        f'<span class="tag">{html.escape(mode)}</span></div>'
        f"{distribution_svg(row.get('distribution'))}"
        f'<div class="name" title="{html.escape(full)}">{html.escape(name)}</div></li>'
    )


def _options(values: Iterable[str]) -> str:
    return "".join(
        f'<option value="{html.escape(v)}">{html.escape(v)}</option>' for v in sorted(set(values)) if v
    )


def _resolver(root: str | os.PathLike | None, base: str | os.PathLike | None):
    """Where a row's image is: its path as written, else under `root`, else beside the score output."""

    def resolve(row: dict):
        path = row.get("path")
        if not path:
            return None
        candidates = []
        if root is not None and not os.path.isabs(path):
            candidates.append(os.path.join(root, path))
        candidates.append(path)
        if base is not None and not os.path.isabs(path):
            candidates.append(os.path.join(base, path))
        for candidate in candidates:
            if os.path.isfile(candidate):
                return candidate
        return None

    return resolve


def render_report(
    rows: Iterable[dict],
    *,
    title: str | None = None,
    model_name: str | None = None,
    source_name: str | None = None,
    top: int = DEFAULT_TOP,
    thumbnail_size: int = DEFAULT_THUMBNAIL_SIZE,
    thumbnails: bool = True,
    image_root: str | os.PathLike | None = None,
    base_dir: str | os.PathLike | None = None,
    workers: int | None = None,
) -> tuple[str, ReportSummary]:
    """The report page for `rows` (as `score` writes them) and a summary of what it holds.

    Args:
        rows: dicts with `path` or `image_id`/`row`, `score`, `label`, `mode`, `distribution` and `error`.
        title, model_name, source_name: shown at the top (the model and the score output the rows come from).
        top: how many images the "best" and "worst" sections show.
        thumbnail_size: the longest side of the embedded thumbnails, in pixels.
        thumbnails: False embeds none (a small page of numbers).
        image_root: a folder that relative paths are under (default: the current folder, then `base_dir`).
        base_dir: the folder of the score output, tried for relative paths last.
        workers: threads that make thumbnails (default: up to 4).
    """
    rated, errors = [], []
    for r in rows:
        (rated if r.get("error") is None and r.get("score") is not None else errors).append(r)
    rated.sort(key=lambda r: -r["score"])  # stable: equal scores keep the input order
    full_names = [row_name(r) for r in rated]
    short = _short_names(full_names)
    summary = ReportSummary(rated=len(rated), errors=len(errors))
    summary.labels = dict(Counter(r.get("label") or "" for r in rated))
    summary.modes = dict(Counter(r.get("mode") or "" for r in rated))

    thumbs: list = [None] * len(rated)
    if thumbnails and rated:
        resolve = _resolver(image_root, base_dir)
        sources = [resolve(r) for r in rated]

        def make(source):
            return None if source is None else thumbnail_data_uri(source, thumbnail_size)

        workers = workers or min(4, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            thumbs = list(pool.map(make, sources, chunksize=64))
        summary.missing_thumbnails = sum(t is None for t in thumbs)

    cards = [card_html(r, i + 1, thumbs[i], short[i], full_names[i]) for i, r in enumerate(rated)]
    scores = [r["score"] for r in rated]
    n_top = min(top, len(rated))
    title = title or "AesFormer ratings"
    facts = [f"<li>images rated <b>{len(rated)}</b></li>", f"<li>not rated <b>{len(errors)}</b></li>"]
    if scores:
        facts += [
            f"<li>mean <b>{statistics.fmean(scores):.2f}</b></li>",
            f"<li>median <b>{statistics.median(scores):.2f}</b></li>",
            f"<li>min <b>{min(scores):.2f}</b> · max <b>{max(scores):.2f}</b></li>",
        ]
    facts += [
        f"<li>{html.escape(k or '(none)')} <b>{v}</b></li>" for k, v in sorted(summary.labels.items()) if k
    ]
    facts += [
        f"<li>{html.escape(k or '(none)')} <b>{v}</b></li>" for k, v in sorted(summary.modes.items()) if k
    ]
    source_line = []
    if model_name:
        source_line.append(f'model <b id="model-name">{html.escape(display_text(str(model_name)))}</b>')
    if source_name:
        source_line.append(f'scores <b id="source-name">{html.escape(display_text(str(source_name)))}</b>')

    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        # Nothing from the network: no external script, style, font or image.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; img-src data:; '
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
        f"<title>{html.escape(title)}</title><style>{_PAGE_CSS}{card_css()}</style></head><body>",
        f"<header><h1>{html.escape(title)}</h1>",
        f'<div class="muted">{" · ".join(source_line)}</div>' if source_line else "",
        f'<ul class="facts">{"".join(facts)}</ul></header>',
        f'<section id="histogram"><h2>Scores</h2>{histogram_svg(scores)}</section>',
    ]
    if n_top:
        out.append(
            f'<section id="top"><h2>Best {n_top}</h2><ul class="grid">{"".join(cards[:n_top])}</ul></section>'
        )
        worst = cards[: -n_top - 1 : -1]  # the last n_top cards, worst first
        out.append(
            f'<section id="bottom"><h2>Worst {n_top}</h2><ul class="grid">{"".join(worst)}</ul></section>'
        )
    out += [
        f'<section id="all"><h2>All {len(rated)} images, by score</h2>',
        '<div class="controls">',
        f'<label>label <select id="f-label"><option value="">all</option>{_options(summary.labels)}</select></label>',
        f'<label>mode <select id="f-mode"><option value="">all</option>{_options(summary.modes)}</select></label>',
        '<label>name <input id="f-name" type="search" placeholder="part of a name"></label>',
        '<label>order <select id="f-order"><option value="desc">best first</option>'
        '<option value="asc">worst first</option></select></label>',
        f'<span class="muted">showing <b id="f-count">{len(rated)}</b></span></div>',
        f'<ul class="grid" id="all-list">{"".join(cards)}</ul></section>',
    ]
    if errors:
        lines = "".join(
            f"<tr><td>{html.escape(row_name(r))}</td><td>{html.escape(r.get('error') or 'no score')}</td></tr>"
            for r in errors
        )
        out.append(
            f'<section id="errors"><h2>Not rated ({len(errors)})</h2>'
            f"<table><thead><tr><th>input</th><th>reason</th></tr></thead><tbody>{lines}</tbody></table></section>"
        )
    out.append(f"<script>{_JS}</script></body></html>\n")
    return "\n".join(out), summary


def write_report(rows: Iterable[dict], output: str | os.PathLike, **options) -> ReportSummary:
    """Write the report of `rows` to `output` (a temporary file renamed into place); see `render_report`."""
    page, summary = render_report(rows, **options)
    output = Path(output)
    data = page.encode("utf-8")
    partial = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    try:
        partial.write_bytes(data)
        os.replace(partial, output)
    finally:
        if partial.exists():
            partial.unlink()
    summary.bytes = len(data)
    return summary


def write_report_from_scores(
    scores: str | os.PathLike, output: str | os.PathLike, **options
) -> ReportSummary:
    """Read a `score` output (.jsonl, .csv, .parquet) and write its report to `output` (see `render_report`)."""
    scores = Path(scores)
    options.setdefault("source_name", os.fsdecode(scores))
    options.setdefault("base_dir", scores.parent)
    return write_report(read_score_output(scores), output, **options)


__all__ = [
    "ReportSummary",
    "card_css",
    "card_html",
    "distribution_svg",
    "histogram_svg",
    "read_score_output",
    "render_report",
    "score_output_layout",
    "thumbnail_data_uri",
    "write_report",
    "write_report_from_scores",
]
