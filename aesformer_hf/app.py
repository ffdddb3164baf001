"""A local web app to rate photos: drop them, add comments, see them ranked and where the model looks.

`build_app(model)` returns the `gradio.Blocks`; `launch_app(model, ...)` serves it (what `aesformer-hf app` runs).
Photos are rated by the package's `pipeline("image-aesthetics")` (files read by its image loader), so a photo gets
the score `aesformer-hf score` gives it; the heatmap is `aesformer_hf.visualization.render_attention`'s, as
`aesformer-hf attention` draws it. Needs the `[app]` extra (gradio, matplotlib).

Nothing leaves the machine: gradio's analytics are off (`GRADIO_ANALYTICS_ENABLED=False` and
`analytics_enabled=False`), its default theme's fonts are served by the app itself, no share link is made, and the
server listens on 127.0.0.1 unless told otherwise.

Two API endpoints (what `gradio_client` calls): `/rate` (photos, comments) -> (ranked cards as HTML, the table,
the photo chooser, a message) and `/attention` (photo name, method) -> (heatmap, text).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

# Before gradio is imported: it reads the variable once.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

TITLE = "AesFormer: rate your photos"
COMMENT_SEPARATOR = " | "
TABLE_HEADERS = ["rank", "photo", "score", "label", "mode", "distribution"]
BATCH_SIZE = 8


@dataclass
class AppModel:
    """What the app rates with: the pipeline, and the model and processor the heatmaps use (the same objects)."""

    rate: object
    model: object
    processor: object
    name: str
    vision_only: bool


def load_app_model(
    name_or_path: str,
    *,
    device: str = "cpu",
    trust_remote_code: bool = False,
    allow_partial_weights: bool = False,
) -> AppModel:
    """Load a saved AesFormer as the commands do (strict, never running shipped model code; `CommandError` in one
    line for anything unusable) and wrap it in the `image-aesthetics` pipeline."""
    from transformers import pipeline

    from .commands.loading import load_model_and_processor
    from .models.aesformer.configuration_aesformer import PIPELINE_TASK

    model, processor = load_model_and_processor(
        name_or_path, device, trust_remote_code=trust_remote_code, allow_partial_weights=allow_partial_weights
    )
    image_processor = getattr(processor, "image_processor", processor)
    tokenizer = getattr(processor, "tokenizer", None)
    model = model.eval()
    extra = {"processor": processor} if tokenizer is not None else {}  # its comment recipe
    rate = pipeline(
        PIPELINE_TASK,
        model=model,
        image_processor=image_processor,
        tokenizer=tokenizer,
        device=device,
        allow_partial_weights=allow_partial_weights,
        **extra,
    )
    vision_only = bool(getattr(model.config, "is_vision_only", False)) or tokenizer is None
    return AppModel(rate, model, processor, str(name_or_path), vision_only)


# -- what the app does, without gradio (tested directly) ------------------------------------------------------------
def parse_comments(text: str | None, names: Sequence[str]) -> list[list[str] | None]:
    """Comments for each photo from the comments box: one line per photo, in the order the photos were added, or
    `name: comments` for the photo of that file name; several comments on one line are separated by ` | `. A photo
    without a line (or with an empty one) gets None: rated from its pixels (VIAA)."""
    comments: list[list[str] | None] = [None] * len(names)
    by_name = {name: i for i, name in reversed(list(enumerate(names)))}
    position = 0
    for line in (text or "").splitlines():
        target = None
        head, colon, rest = line.partition(":")
        if colon and head.strip() in by_name:
            target, line = by_name[head.strip()], rest
        else:
            target, position = position, position + 1
        if target >= len(names):
            continue
        parts = [part.strip() for part in line.split(COMMENT_SEPARATOR.strip())]
        parts = [part for part in parts if part]
        if parts:
            comments[target] = parts
    return comments


def _file_path(item) -> str:
    """A path from what gradio hands a function for an uploaded file (a str, or an object with `.name`/`.path`)."""
    if isinstance(item, dict):
        return item.get("path") or item.get("name")
    return getattr(item, "path", None) or getattr(item, "name", None) or str(item)


def _unique(names: Sequence[str]) -> list[str]:
    """`names` with a second `a.jpg` called `a.jpg (2)`, so that each photo can be chosen by its name."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique


def rate_photos(app_model: AppModel, paths: Sequence[str], comments_text: str | None = None) -> list[dict]:
    """Rate `paths` with their comments from `comments_text` (see `parse_comments`).

    Returns one dict per photo, ranked by score (best first, unreadable photos last): `name`, `path`, `comments`,
    `score`, `label`, `mode`, `distribution`, `error`, `rank` (None for unreadable photos).
    """
    names = _unique([os.path.basename(path) for path in paths])
    comments = parse_comments(comments_text, names)
    if app_model.vision_only and any(comments):
        raise ValueError(f"{app_model.name} is vision-only (no comment tower): leave the comments empty.")
    results = (
        app_model.rate(list(paths), comments=comments, batch_size=BATCH_SIZE, on_error="skip")
        if paths
        else []
    )
    rows = []
    for path, name, photo_comments, result in zip(paths, names, comments, results):
        error = result.get("error")
        if error is not None and error.startswith(f"{path}: "):  # the reason; the name is shown beside it
            error = error[len(path) + 2 :]
        rows.append(
            {
                "name": name,
                "path": path,
                "comments": photo_comments,
                "score": result.get("score"),
                "label": result.get("label"),
                "mode": result.get("mode"),
                "distribution": result.get("distribution"),
                "error": error,
            }
        )
    rated = sorted((r for r in rows if r["error"] is None), key=lambda r: -r["score"])
    for rank, row in enumerate(rated, start=1):
        row["rank"] = rank
    failed = [dict(r, rank=None) for r in rows if r["error"] is not None]
    return rated + failed


def ranked_html(rows: Sequence[dict], thumbnail_size: int = 160) -> str:
    """The rated photos as the report's cards (thumbnail, rank, score, label, mode, distribution), then errors."""
    import html

    from .report import card_html, thumbnail_data_uri

    cards = [
        card_html(row, row["rank"], thumbnail_data_uri(row["path"], thumbnail_size), row["name"])
        for row in rows
        if row["error"] is None
    ]
    errors = "".join(
        f"<li>{html.escape(row['name'])}: {html.escape(row['error'])}</li>" for row in rows if row["error"]
    )
    parts = [f'<div id="ranked-photos"><ul class="grid">{"".join(cards)}</ul>']
    if errors:
        parts.append(f'<p>Not rated:</p><ul class="errors">{errors}</ul>')
    parts.append("</div>")
    return "".join(parts)


def table_rows(rows: Sequence[dict]) -> list[list]:
    """The table of the ranked photos: rank, photo, score, label, mode, distribution (as text)."""
    return [
        [
            row["rank"] if row["rank"] is not None else "",
            row["name"],
            round(row["score"], 6) if row["score"] is not None else None,
            row["label"] or "",
            row["mode"] or row["error"] or "",
            " ".join(f"{p:.2f}" for p in row["distribution"]) if row["distribution"] else "",
        ]
        for row in rows
    ]


def attention_for(app_model: AppModel, row: dict, method: str = "rollout"):
    """`(heatmap overlay, Markdown text)` for one rated photo, as `aesformer-hf attention` draws it."""
    from .models.aesformer.image_utils_aesformer import load_image
    from .visualization.attention_maps import render_attention

    overlay, attention = render_attention(
        load_image(row["path"]), app_model.model, app_model.processor, row["comments"], method=method
    )
    text = f"**{row['name']}**: {attention.mode}, score {attention.score:.2f} ({attention.label})"
    if attention.top_words:
        words = ", ".join(f"{word} ({share:.2f})" for word, share in attention.top_words)
        text += f"\n\nMost attended comment words: {words}"
    return overlay, text


# -- the gradio app -------------------------------------------------------------------------------------------------
def _theme():
    from .utils.optional import require

    require("gradio", purpose="aesformer-hf app")
    import gradio as gr

    # The default theme's fonts are served by the app itself (LocalFont); system fonts as the fallbacks.
    return gr.themes.Default()


def app_css() -> str:
    from .report import card_css

    return (
        card_css("#ranked-photos")
        + "\n#ranked-photos .grid{grid-template-columns:repeat(auto-fill,minmax(176px,1fr))}"
    )


def build_app(app_model: AppModel, photos: Sequence[str] = ()):
    """The `gradio.Blocks` of the app for `app_model` (see the module docstring); `photos` are rated on load."""
    from .utils.optional import require

    require("gradio", "matplotlib", purpose="aesformer-hf app")
    import gradio as gr

    from .visualization.attention_maps import METHODS

    comments_help = (
        "Optional: comments make a photo's rating multimodal (MIAA). One line per photo in the order they were "
        f"added, or `photo.jpg: comment`; several comments on a line separated by `{COMMENT_SEPARATOR.strip()}`."
    )
    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown(f"# {TITLE}\nModel: `{app_model.name}`", elem_id="app-title")
        ranked_state = gr.State([])
        with gr.Row():
            with gr.Column(scale=1):
                files = gr.File(
                    label="Photos",
                    file_count="multiple",
                    file_types=["image"],
                    value=list(photos) or None,
                    elem_id="photos",
                )
                comments = gr.Textbox(
                    label="Comments",
                    lines=4,
                    placeholder="photo1.jpg: lovely light | the horizon is tilted",
                    info=comments_help,
                    interactive=not app_model.vision_only,
                    elem_id="comments",
                )
                rate_button = gr.Button("Rate", variant="primary", elem_id="rate")
                message = gr.Markdown(elem_id="message")
            with gr.Column(scale=2):
                ranked = gr.HTML(label="Ranked photos", elem_id="ranked")
                table = gr.Dataframe(
                    headers=TABLE_HEADERS,
                    label="Scores",
                    interactive=False,
                    datatype=["number", "str", "number", "str", "str", "str"],
                    elem_id="scores",
                )
        gr.Markdown("## Where the model looks")
        with gr.Row():
            choice = gr.Dropdown(label="Photo", choices=[], elem_id="choice")
            method = gr.Radio(list(METHODS), value=METHODS[0], label="Layers", elem_id="method")
        with gr.Row():
            heatmap = gr.Image(
                label="Attention", type="pil", interactive=False, height=360, elem_id="heatmap"
            )
            details = gr.Markdown(elem_id="details")

        def rate(uploaded, text):
            paths = [_file_path(item) for item in (uploaded or [])]
            if not paths:
                return "", [], gr.update(choices=[], value=None), "Add photos first.", []
            try:
                rows = rate_photos(app_model, paths, text)
            except ValueError as error:
                raise gr.Error(str(error)) from None
            names = [row["name"] for row in rows if row["error"] is None]
            failed = len(rows) - len(names)
            note = f"Rated {len(names)} photo(s)" + (f", {failed} could not be read." if failed else ".")
            chooser = gr.update(choices=names, value=names[0] if names else None)
            return ranked_html(rows), table_rows(rows), chooser, note, rows

        def attention(name, layers, rows):
            row = next((r for r in rows or [] if r["name"] == name and r["error"] is None), None)
            if row is None:
                return None, ""
            return attention_for(app_model, row, layers or METHODS[0])

        outputs = [ranked, table, choice, message, ranked_state]
        rate_button.click(rate, [files, comments], outputs, api_name="rate")
        if photos:
            demo.load(rate, [files, comments], outputs, api_name=False)
        gr.on(
            [choice.change, method.change],
            attention,
            [choice, method, ranked_state],
            [heatmap, details],
            api_name="attention",
        )
    return demo


def launch_app(
    name_or_path: str,
    *,
    photos: Sequence[str] = (),
    host: str = "127.0.0.1",
    port: int = 7860,
    device: str = "cpu",
    trust_remote_code: bool = False,
    allow_partial_weights: bool = False,
    block: bool = True,
):
    """Load the model, build the app and serve it at http://host:port/ (until Ctrl-C when `block`)."""
    from .commands.loading import CommandError
    from .scoring import find_images

    for photo in photos:
        if not os.path.exists(photo):
            raise CommandError(f"PHOTO {photo}: no such file or folder.")
    paths = [item.path for item in find_images(list(photos))] if photos else []
    if photos and not paths:
        raise CommandError(f"PHOTO: no images found under {', '.join(photos)}.")
    app_model = load_app_model(
        name_or_path,
        device=device,
        trust_remote_code=trust_remote_code,
        allow_partial_weights=allow_partial_weights,
    )
    demo = build_app(app_model, paths)
    # Served to the page: these files only (not their folders).
    allowed = sorted({os.path.abspath(path) for path in paths})
    print(
        f"aesformer-hf app: serving {app_model.name} at http://{host}:{port}/ (Ctrl-C stops it)", flush=True
    )
    demo.queue(default_concurrency_limit=1).launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        ssr_mode=False,
        mcp_server=False,
        pwa=False,
        quiet=True,
        prevent_thread_lock=not block,
        allowed_paths=allowed or None,
        theme=_theme(),
        css=app_css(),
        footer_links=[],
    )
    return demo


__all__ = [
    "AppModel",
    "attention_for",
    "build_app",
    "launch_app",
    "load_app_model",
    "parse_comments",
    "ranked_html",
    "rate_photos",
    "table_rows",
]
