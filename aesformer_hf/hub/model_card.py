"""Model cards (README.md) for AesFormer checkpoints, with the figures this package measured as `model-index` metadata.

Training or evaluation calls [`write_model_card`] with the metrics it measured, e.g.

```python
write_model_card(
    "outputs/aesformer-t-ava", metrics=trainer.evaluate(test_set), dataset_name="AVA",
    variant="tiny", stage="adaptation",   # mode defaults to the stage's: multimodal -> MIAA, adaptation -> VIAA
)
```

and [`~aesformer_hf.hub.push_model_to_hub`] uploads it (`card=...` or the README.md path). `Trainer.push_to_hub`
would first overwrite README.md with the Trainer's own card (`Trainer.create_model_card`), so a Trainer that pushes
should override `create_model_card` to call [`write_model_card`]. Several evaluations (MIAA and VIAA, or several
datasets) go in as [`MeasuredResults`] through `extra_results=` or [`build_model_card`].

Only measured figures go into the metadata. The paper's figures appear in the body, in their own table headed
"reported by the paper", for comparison.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from aesformer_hf.data.schema import DATASET_FACTS, DATASET_SPECS, dataset_key
from aesformer_hf.models.aesformer.configuration_aesformer import (
    MIAA,
    MODE_DESCRIPTIONS,
    MODE_OF_PAPER_NAME,
    MODE_OF_STAGE,
    MULTIMODAL_MODE,
    MULTIMODAL_STAGE,
    PAPER_MODE_NAMES,
    PIPELINE_TASK,
    STAGES,
    VARIANTS,
    VIAA,
    VISION_MODE,
    AesformerConfig,
    variant_name,
)

# Cards name the modes as the paper does (MIAA, VIAA).
MODES = tuple(MODE_OF_PAPER_NAME)
_MODE_OF_STAGE = {stage: PAPER_MODE_NAMES[mode] for stage, mode in MODE_OF_STAGE.items()}
_MODE_DESCRIPTIONS = {PAPER_MODE_NAMES[mode]: description for mode, description in MODE_DESCRIPTIONS.items()}

# The model-index task type: the nearest Hub task (the high/low label is a classification); the task *name* says
# what is really measured.
HUB_TASK = "image-classification"
# No `pipeline_tag`: the Hub would offer the stock image-classification pipeline and widget, which cannot read this
# model (10 bin logits, 2 labels: KeyError). `pipeline("image-aesthetics")` is a custom pipeline, not a Hub task.
PIPELINE_TAG = None
TAGS = ("aesformer", PIPELINE_TASK, "image-aesthetic-assessment", "custom_code")

# The pretrained towers the released variants start from (each variant's ImageNet Swin, and BERT-base cased),
# named as `base_model` on the cards of models trained from them.
PRETRAINED_TOWERS = {variant.swin: variant.pretrained_swin for variant in VARIANTS.values()}
PRETRAINED_TEXT_TOWER = "google-bert/bert-base-cased"


@dataclass(frozen=True)
class _Metric:
    hub_type: str  # model-index `metric.type`
    title: str  # column title in the card body
    percent: bool = (
        False  # shown as a percentage in the body (stored as measured, a fraction, in the metadata)
    )


# Keys as `aesformer_hf.metrics.compute_aesthetic_metrics` returns them; accuracy is a fraction in [0, 1].
METRICS: dict[str, _Metric] = {
    "accuracy": _Metric("accuracy", "Accuracy (%)", percent=True),
    "plcc": _Metric("pearsonr", "PLCC"),
    "srcc": _Metric("spearmanr", "SRCC"),
    "krcc": _Metric("kendalltau", "KRCC"),
    "rmse": _Metric("rmse", "RMSE"),
    "mae": _Metric("mae", "MAE"),
    "emd_r1": _Metric("emd", "EMD (r=1)"),
    "emd_r2": _Metric("emd_r2", "EMD (r=2)"),
}
# The Trainer's `compute_metrics` (AestheticMetricsForTrainer) names the paper's EMD column (r=1) plain "emd".
_METRIC_ALIASES = {"emd": "emd_r1"}
# Prefixes the Trainer (`metric_key_prefix`) and evaluation scripts put before the metric names.
_METRIC_PREFIXES = ("eval_", "test_", "validation_", "val_")


def _dataset_scale(key: str) -> str:
    """What a label of dataset `key` is, from its spec: "votes for ratings 1..10 (10 bins); high when ..."."""
    spec = DATASET_SPECS[key]
    scale, threshold = f"{spec.score_min:g}..{spec.score_max:g}", f"{spec.label_threshold:g}"
    if spec.score_only:
        return f"{DATASET_FACTS[key].score_note} ({scale}); high when > {threshold}"
    return f"votes for ratings {scale} ({spec.num_bins} bins); high when the mean score > {threshold}"


# The AesFormer paper's figures, accuracy in percent, for the body's comparison table only.
REPORTED_BY_PAPER: dict[tuple[str, str, str], dict[str, float]] = {
    ("tiny", "AVA", MIAA): {"accuracy": 90.09, "plcc": 0.905, "srcc": 0.899},
    ("tiny", "AVA", VIAA): {"accuracy": 85.10, "plcc": 0.777, "srcc": 0.768},
    ("base", "AVA", MIAA): {"accuracy": 90.33, "plcc": 0.908, "srcc": 0.901, "rmse": 0.330, "emd_r1": 0.0298},
    ("base", "AVA", VIAA): {"accuracy": 86.34, "plcc": 0.797, "srcc": 0.789, "rmse": 0.476, "emd_r1": 0.0405},
    ("base", "Photo.net", MIAA): {"accuracy": 82.13, "plcc": 0.701, "srcc": 0.684},
    ("base", "Photo.net", VIAA): {"accuracy": 80.48, "plcc": 0.582, "srcc": 0.540},
    ("base", "JAS", VIAA): {"accuracy": 79.87, "plcc": 0.556, "srcc": 0.537, "rmse": 0.0932},
}

AESFORMER_CITATION = """@misc{aesformer,
  title        = {Mixture-of-Modality-Experts for Unified Image Aesthetic Assessment with Multi-Level Adaptation},
  howpublished = {\\url{https://github.com/AiArt-Gao/AesFormer}},
  note         = {AesFormer; see the authors' repository for the paper's authors and venue}
}"""


@dataclass(frozen=True)
class MeasuredResults:
    """The metrics of one evaluation that this package ran: one dataset split, one mode.

    Args:
        metrics: metric name -> value, as `compute_aesthetic_metrics` returns them (`accuracy` a fraction in [0, 1];
            `plcc`, `srcc`, `krcc`; `rmse`, `mae` in score units; `emd_r1`, `emd_r2`). Trainer prefixes (`eval_`,
            `test_`) are stripped; other keys (loss, runtime, epoch) are ignored; NaN values are left out.
        dataset_name: `"AVA"`, `"Photo.net"`, `"JAS"` (any case) or another dataset's name.
        mode: `"MIAA"` (image + comments) or `"VIAA"` (image only).
        split: the split evaluated, e.g. `"test"`.
        dataset_id: the dataset's Hub repo id, when it has one (model-index `dataset.type`).
    """

    metrics: Mapping[str, float]
    dataset_name: str
    mode: str
    split: str = "test"
    dataset_id: str | None = None
    values: dict[str, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        mode = str(self.mode).upper()
        if mode not in MODES:
            raise ValueError(f"mode={self.mode!r} is not an AesFormer mode; expected 'MIAA' or 'VIAA'.")
        object.__setattr__(self, "mode", mode)
        object.__setattr__(self, "dataset_name", canonical_dataset_name(self.dataset_name))
        object.__setattr__(self, "values", _known_metrics(self.metrics, self.dataset_name))


def canonical_dataset_name(name: str) -> str:
    """`"ava"` -> `"AVA"`, `"photonet"` -> `"Photo.net"`, `"jas"` -> `"JAS"`; other names unchanged."""
    if not str(name).strip():
        raise ValueError("dataset_name is empty; pass the evaluated dataset's name, e.g. 'AVA'.")
    key = dataset_key(name)
    return DATASET_FACTS[key].title if key else str(name).strip()


def _known_metrics(metrics: Mapping[str, float], dataset_name: str) -> dict[str, float]:
    values = {}
    for key, value in metrics.items():
        name = str(key).lower()
        for prefix in _METRIC_PREFIXES:
            name = name.removeprefix(prefix)
        name = _METRIC_ALIASES.get(name, name)
        if name not in METRICS or value is None:
            continue
        value = float(value)
        if math.isnan(value):
            continue
        values[name] = value
    if not values:
        raise ValueError(
            f"No known metric among {sorted(metrics)} for {dataset_name}; expected some of {list(METRICS)} "
            "(optionally prefixed 'eval_' or 'test_'), as compute_aesthetic_metrics returns them."
        )
    if "accuracy" in values and not 0.0 <= values["accuracy"] <= 1.0:
        raise ValueError(
            f"accuracy={values['accuracy']} for {dataset_name} is outside [0, 1]: pass it as a fraction, as "
            "compute_aesthetic_metrics returns it (the card shows it as a percentage)."
        )
    return values


def _variant_key(variant: str) -> str:
    name = str(variant).strip().lower()
    if not name:
        raise ValueError(
            "variant is empty; pass 'tiny', 'base' (or 't', 'b', 'aesformer-t', ...) or a custom name."
        )
    return variant_name(name)


def _check_stage(stage: str) -> str:
    if stage not in STAGES:
        raise ValueError(
            f"stage={stage!r} is not an AesFormer training stage; expected one of {list(STAGES)} "
            "('multimodal' = stage 1, image + comments; 'adaptation' = stage 2, image only)."
        )
    return stage


def default_base_models(config: Mapping[str, Any] | None) -> list[str] | None:
    """The Hub ids of the pretrained Swin and BERT a released-shape configuration starts from, else None.

    Only full-size towers count: a Swin built with its own `model_args` (a resized one) or a BERT of another
    shape did not start from those weights.
    """
    if not config:
        return None
    vision = config.get("vision_config") or {}
    models = []
    if vision.get("architecture") in PRETRAINED_TOWERS and not vision.get("model_args"):
        models.append(PRETRAINED_TOWERS[vision["architecture"]])
    text = config.get("text_config") or {}
    if (
        text.get("vocab_size") == 28996
        and text.get("hidden_size") == 768
        and text.get("num_hidden_layers") == 12
    ):
        models.append(PRETRAINED_TEXT_TOWER)
    return models or None


def _config_dict(config: AesformerConfig | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if config is None:
        return None
    return config.to_dict() if isinstance(config, AesformerConfig) else dict(config)


# --------------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------------
def _eval_results(results: Sequence[MeasuredResults]) -> list[EvalResult]:
    entries = []
    for result in results:
        for name, value in result.values.items():
            entries.append(
                EvalResult(
                    task_type=HUB_TASK,
                    task_name=f"Image aesthetic assessment, {result.mode} ({_MODE_DESCRIPTIONS[result.mode]})",
                    dataset_type=result.dataset_id or result.dataset_name.lower(),
                    dataset_name=result.dataset_name,
                    dataset_split=result.split,
                    metric_type=METRICS[name].hub_type,
                    metric_name=f"{result.mode} {METRICS[name].title.replace(' (%)', '')}",
                    metric_value=round(value, 6),
                )
            )
    return entries


# --------------------------------------------------------------------------------------------------
# Body
# --------------------------------------------------------------------------------------------------
def _format(name: str, value: float | None, as_reported: bool = False) -> str:
    """Measured values: accuracy as a percentage, the rest to 4 decimals; reported values: as the paper wrote them."""
    if value is None:
        return "–"
    if METRICS[name].percent:
        return f"{value if as_reported else 100.0 * value:.2f}"
    return f"{value:g}" if as_reported else f"{value:.4f}"


def _table(rows: list[tuple[list[str], Mapping[str, float]]], head: list[str], as_reported: bool) -> str:
    names = [name for name in METRICS if any(name in values for _, values in rows)]
    lines = [
        "| " + " | ".join(head + [METRICS[n].title for n in names]) + " |",
        "|" + "---|" * (len(head) + len(names)),
    ]
    for cells, values in rows:
        numbers = [_format(n, values.get(n), as_reported) for n in names]
        lines.append("| " + " | ".join(cells + numbers) + " |")
    return "\n".join(lines)


def _measured_section(results: Sequence[MeasuredResults]) -> str:
    rows = [([r.dataset_name, r.split, r.mode], r.values) for r in results]
    return (
        "## Results measured by aesformer-hf\n\n"
        "Measured on the split named, with this checkpoint, by the package's evaluation "
        "(`aesformer_hf.metrics.compute_aesthetic_metrics`). These are the figures in the card's `model-index` "
        "metadata.\n\n" + _table(rows, ["Dataset", "Split", "Mode"], as_reported=False)
    )


def _reported_section(variant_key: str) -> str:
    rows = [
        ([dataset, mode], values)
        for (key, dataset, mode), values in REPORTED_BY_PAPER.items()
        if key == variant_key
    ]
    heading = "## Reported by the paper (not reproduced by this package)\n\n"
    if not rows:
        return heading + "The AesFormer paper reports no figures for this configuration.\n"
    title = VARIANTS[variant_key].title
    return (
        heading + f"The AesFormer paper's figures for {title}, copied from its tables for comparison only. "
        "aesformer-hf has not reproduced them and they are not in this card's metadata; this checkpoint's own "
        "figures are in the table above. JAS RMSE is on its 0..1 scale.\n\n"
        + _table(rows, ["Dataset", "Mode"], as_reported=True)
    )


def _architecture_section(variant_key: str, config: dict[str, Any] | None) -> str:
    variant = VARIANTS.get(variant_key)
    swin = variant.swin if variant else "a Swin Transformer"
    swin = ((config or {}).get("vision_config") or {}).get("architecture", swin)
    config = {**AesformerConfig().to_dict(), **(config or {})}  # what `config` leaves out is the default
    fusion_layers, bins, threshold = config["fusion_layers"], config["num_bins"], config["label_threshold"]
    scale = f"{config['score_min']:g}..{config['score_max']:g}"
    vision_only = config.get("text_config", {}) is None
    widths = ""
    if variant:
        last, fusion = variant.stage_widths[-1], config["fusion_hidden_size"]
        proj = f" (then `proj` {last} -> {fusion})" if last != fusion else ""
        widths = f" (stage widths {', '.join(map(str, variant.stage_widths))}{proj})"
    text_tower = (
        "none: this checkpoint is vision-only (VIAA), without the comment tower and the vision-language experts"
        if vision_only
        else "BERT-base (cased) over the image's comments as the released code read them (`repr` of the list, "
        "cleaned, cut to 200 words; 512 tokens)"
    )
    return f"""## Architecture

- **Vision tower**: `{swin}`{widths}, ImageNet-pretrained, 224x224 input. Four levels of its features are used.
- **Comment tower**: {text_tower}.
- **Fusion**: {fusion_layers} mixture-of-modality-experts layers, initialised from BERT's last layers: one shared
  self-attention and two feed-forward experts, vision-language (MIAA: the last level's 7x7 image tokens at 224 px,
  then the comment tokens) and vision (VIAA: 4 levels x 7x7 tokens, each level through its own residual adapter).
- **Heads**: MIAA averages the image head (mean over image tokens) and the text head ([CLS]) distributions; VIAA
  has its own head. Each predicts a vote distribution over {bins} bins (scores {scale}); the mean score is its
  expectation, and the label is "high" when the mean score > {threshold:g}.
"""


def _training_section(stage: str, training_summary: Mapping[str, Any] | None) -> str:
    this_stage = (
        "stage 1 (`multimodal`)"
        if stage == MULTIMODAL_STAGE
        else "stage 2 (`adaptation`, starting from stage-1 weights)"
    )
    lines = [
        "## Training",
        "",
        f"This checkpoint comes from {this_stage}. The recipe (AesFormer paper, as implemented by aesformer-hf):",
        "",
        "| | stage 1: `multimodal` (MIAA) | stage 2: `adaptation` (VIAA) |",
        "|---|---|---|",
        "| trains | everything (towers, fusion, VL experts, MIAA heads, contrastive temperature) | neck Linears, "
        "4 adapters, V experts, VIAA LayerNorm and head |",
        "| frozen | momentum copies | vision tower, shared fusion attention, `proj` (B) |",
        "| loss | EMD(image head) + EMD(text head) + 0.5 x image-text contrastive | EMD + 10 x MSE(distribution) |",
        "| optimiser | AdamW lr 1e-5, betas (0.9, 0.99), cosine to 1e-6, 50 epochs | AdamW lr 1e-4, same schedule |",
        "| batch | 16 | 256 |",
        "",
        "Images: resized to 256x256 (bicubic), random horizontal flip, random 224 crop; evaluation resizes to "
        "224x224 without cropping.",
    ]
    if training_summary:
        lines += ["", "Settings of this run:", ""]
        lines += [f"- `{key}`: {value}" for key, value in training_summary.items()]
    return "\n".join(lines) + "\n"


def _datasets_section(results: Sequence[MeasuredResults]) -> str:
    lines = [
        "## Datasets and licences",
        "",
        "The datasets this card's figures were measured on. aesformer-hf ships dataset builders that read a local "
        "copy; it never redistributes images or comments.",
        "",
    ]
    for name in dict.fromkeys(r.dataset_name for r in results):
        key = dataset_key(name)
        if key:
            facts = DATASET_FACTS[key]
            lines.append(f"- **{facts.title}**: {_dataset_scale(key)}. Licence: {facts.licence}")
        else:
            lines.append(f"- **{name}**: see the dataset's own terms.")
    lines += [
        "",
        "The weights were trained on data whose owners restrict redistribution; check those terms, and the licence "
        "in this card's metadata, before using the model commercially.",
    ]
    return "\n".join(lines) + "\n"


def _usage_section(model_id: str) -> str:
    return f"""## How to use

With aesformer-hf installed (`import aesformer_hf` registers the classes), or without it through the model's own
code in this repository (`trust_remote_code=True`; read that code first):

```python
from transformers import pipeline

rate = pipeline("{PIPELINE_TASK}", model="{model_id}", trust_remote_code=True)
rate("photo.jpg")                                            # {VIAA}: image only
rate("photo.jpg", comments=["lovely light", "too dark"])   # {MIAA}: image + comments
# -> {{"score": ..., "distribution": [...], "label": "high" | "low", "mode": "{VISION_MODE}" | "{MULTIMODAL_MODE}"}}
```
"""


_INTENDED_USE = """## Intended use

Rating the aesthetic appeal of photographs (and, trained on JAS, paintings) the way the raters of the training
dataset did: ranking or filtering photo collections, research on image aesthetic assessment, and as a baseline for
aesthetic models. With comments (MIAA) the model reads what viewers wrote about the image; without them (VIAA) it
judges the pixels alone.

Out of scope: judging people (attractiveness, identity, worth), any decision with legal or similarly serious effects
on a person, and treating the score as an objective measure of artistic merit.
"""

_LIMITATIONS = """## Limitations and biases

- The score reproduces the preferences of the training dataset's raters (AVA: dpchallenge.com photographers;
  Photo.net: its community; JAS: a panel rating Western paintings). It does not transfer as-is to other cultures,
  image domains (screenshots, medical, generated images) or purposes.
- MIAA needs real viewer comments; comments that state a score or verdict ("great shot!") can dominate the
  prediction. Without comments use VIAA, which is less accurate (see the tables above).
- Scores concentrate around the dataset mean (AVA: about 5.4 of 10); extreme scores are predicted less well.
- Images are resized to 224x224 without cropping, so very wide or tall images are distorted and fine detail is lost.
- English comments only (the BERT tokenizer is English, cased).
"""


def build_model_card(
    results: Sequence[MeasuredResults],
    *,
    variant: str,
    stage: str,
    model_name: str | None = None,
    model_id: str | None = None,
    config: AesformerConfig | Mapping[str, Any] | None = None,
    base_model: str | list[str] | None = None,
    training_summary: Mapping[str, Any] | None = None,
    license: str | None = None,
    tags: Sequence[str] = (),
    language: str | list[str] | None = None,
    datasets: Sequence[str] = (),
    extra_sections: Sequence[str] = (),
) -> ModelCard:
    """The model card of a trained AesFormer, with `results` as its `model-index` metadata.

    Args:
        results: the evaluations this package measured (at least one).
        variant: `"tiny"`, `"small"`, `"base"` (or `"t"`, `"b"`, `"aesformer-t"`, ...); another name describes a
            custom configuration.
        stage: the training stage that produced the checkpoint, `"multimodal"` or `"adaptation"`.
        model_name: the card's title and model-index name; default `"<Variant> (<first dataset>)"`.
        model_id: the Hub repo id used in the usage snippet; default a placeholder.
        config: the checkpoint's `AesformerConfig` (or its dict) for the exact architecture numbers.
        base_model: Hub id(s) of the checkpoint(s) training started from; default the pretrained Swin and BERT
            of a released-shape `config` (see [`default_base_models`]).
        training_summary: settings of this run to list (e.g. `{"epochs": 50, "learning_rate": 1e-4}`).
        license: the weights' licence id for the metadata (e.g. `"apache-2.0"`); `None` leaves it out.
        tags: tags added to the package's own.
        language: the comments' language(s); default `"en"` for a model with a comment tower.
        datasets: Hub dataset ids added to those of `results`.
        extra_sections: Markdown sections appended to the body (e.g. the Trainer's hyperparameters).
    """
    if not results:
        raise ValueError("results is empty: pass at least one MeasuredResults for the model-index metadata.")
    stage = _check_stage(stage)
    variant_key = _variant_key(variant)
    variant_title = VARIANTS[variant_key].title if variant_key in VARIANTS else str(variant)
    model_name = model_name or f"{variant_title} ({results[0].dataset_name})"
    dataset_ids = list(dict.fromkeys([*(r.dataset_id for r in results if r.dataset_id), *datasets]))
    config = _config_dict(config)
    vision_only = config is not None and config.get("text_config", {}) is None
    if isinstance(tags, str):
        tags = [tags]
    card_data = ModelCardData(
        model_name=model_name,
        eval_results=_eval_results(results),
        library_name="transformers",
        pipeline_tag=PIPELINE_TAG,
        tags=list(dict.fromkeys([*TAGS, *tags])),
        datasets=dataset_ids or None,
        base_model=base_model or default_base_models(config),
        license=license,
        language=language or (None if vision_only else "en"),  # the comments' language
    )
    citations = [AESFORMER_CITATION] + [
        DATASET_FACTS[key].citation
        for key in dict.fromkeys(dataset_key(r.dataset_name) for r in results)
        if key
    ]
    modes = ", ".join(dict.fromkeys(f"{r.mode} ({_MODE_DESCRIPTIONS[r.mode]})" for r in results))
    summary = (
        f"{variant_title} image aesthetic assessment model: it predicts the vote distribution of an image, its "
        f"mean score and a high/low label, from the image and its viewers' comments (MIAA) or from the image alone "
        f"(VIAA). Trained with aesformer-hf, a transformers re-implementation of AesFormer (the authors' code: "
        f"https://github.com/AiArt-Gao/AesFormer), stage `{stage}`; evaluated here in {modes}."
    )
    body = "\n\n".join(
        [
            f"# {model_name}",
            summary,
            _measured_section(results),
            _reported_section(variant_key),
            _INTENDED_USE.strip(),
            _usage_section(model_id or "<user>/<this-repo>").strip(),
            _architecture_section(variant_key, config).strip(),
            _training_section(stage, training_summary).strip(),
            _datasets_section(results).strip(),
            _LIMITATIONS.strip(),
            *(section.strip() for section in extra_sections),
            "## Citation\n\n```bibtex\n" + "\n\n".join(citations) + "\n```",
        ]
    )
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n{body}\n")


def write_model_card(
    output_dir: str | os.PathLike,
    metrics: Mapping[str, float],
    dataset_name: str,
    variant: str,
    stage: str,
    *,
    mode: str | None = None,
    split: str = "test",
    dataset_id: str | None = None,
    extra_results: Sequence[MeasuredResults] = (),
    model_name: str | None = None,
    model_id: str | None = None,
    base_model: str | list[str] | None = None,
    training_summary: Mapping[str, Any] | None = None,
    license: str | None = None,
    tags: Sequence[str] = (),
    language: str | list[str] | None = None,
    datasets: Sequence[str] = (),
    extra_sections: Sequence[str] = (),
) -> Path:
    """Write `output_dir/README.md`: the model card with `metrics` (and `extra_results`) as `model-index` metadata.

    Args:
        output_dir: the checkpoint folder; its `config.json`, when present, gives the architecture numbers.
        metrics: what evaluation measured on `dataset_name`/`split`, e.g. `trainer.evaluate()`'s dict (see
            [`MeasuredResults`] for the names and units).
        dataset_name, split, dataset_id: which data `metrics` were measured on.
        variant, stage: as in [`build_model_card`].
        mode: `"MIAA"` or `"VIAA"`; default the stage's mode (`multimodal` -> MIAA, `adaptation` -> VIAA).
        extra_results: further evaluations, e.g. the other mode or another dataset.
        model_name, model_id, base_model, training_summary, license, tags, language, datasets, extra_sections: as
            in [`build_model_card`].

    Returns:
        The path of the written README.md.
    """
    folder = Path(output_dir)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else None
    results = [
        MeasuredResults(
            metrics,
            dataset_name,
            mode or _MODE_OF_STAGE[_check_stage(stage)],
            split=split,
            dataset_id=dataset_id,
        ),
        *extra_results,
    ]
    card = build_model_card(
        results,
        variant=variant,
        stage=stage,
        model_name=model_name,
        model_id=model_id,
        config=config,
        base_model=base_model,
        training_summary=training_summary,
        license=license,
        tags=tags,
        language=language,
        datasets=datasets,
        extra_sections=extra_sections,
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "README.md"
    card.save(path)
    return path


__all__ = [
    "MIAA",
    "VIAA",
    "MeasuredResults",
    "REPORTED_BY_PAPER",
    "build_model_card",
    "canonical_dataset_name",
    "default_base_models",
    "write_model_card",
]
