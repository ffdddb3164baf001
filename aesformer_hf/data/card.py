"""The dataset card (``README.md``) written beside the Parquet shards.

Its YAML header is what makes the folder (and the Hub repo) load with no script:
``configs`` maps each split to its shards, ``dataset_info`` holds the features (with the spec
inside them) and the row counts that ``load_dataset`` checks. The body tells a reader where the
data comes from, what they may do with it, what each column means and what the build dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from datasets import DatasetInfo
from datasets.info import DatasetInfosDict
from datasets.splits import SplitDict, SplitInfo
from huggingface_hub import DatasetCard, DatasetCardData

from aesformer_hf.data.parquet import WrittenSplit, split_pattern
from aesformer_hf.data.report import BuildReport
from aesformer_hf.data.schema import AestheticDatasetSpec
from aesformer_hf.data.source import DatasetDescription

_SHARED_COLUMN_NOTES = {
    "image": "the image; original file bytes when it is an RGB JPEG/PNG, else converted to RGB "
    "(PNG for lossless sources, JPEG q95 4:4:4 for JPEG sources)",
    "image_id": "the dataset's own image id (also the original file name without extension)",
    "votes": "number of votes for each rating, lowest rating first",
    "distribution": "votes / sum(votes), float32, sums to 1",
    "score": "mean rating on the dataset's scale (see `aesthetic_spec`)",
    "label": "0 = low, 1 = high: high when score > label_threshold",
    "comments": "user comments, one string per comment (empty list when there are none)",
}


def _size_category(num_rows: int) -> str:
    for limit, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if num_rows < limit:
            return name
    return "1M<n<10M"


def _feature_type(feature) -> str:
    text = repr(feature)
    return text if len(text) <= 60 else text[:57] + "..."


def render_dataset_card(
    description: DatasetDescription,
    spec: AestheticDatasetSpec,
    features,
    splits: Mapping[str, WrittenSplit],
    report: BuildReport,
    notes: list[str] | tuple[str, ...] = (),
) -> str:
    """The full ``README.md`` text: YAML header, then the card body in Markdown.

    A split with no rows is listed in the body but left out of ``configs`` and ``dataset_info``:
    ``datasets`` cannot load a split of 0 rows, and one such split would make every split unloadable.
    """
    loadable = {name: split for name, split in splits.items() if split.num_rows}
    card_data = DatasetCardData(
        pretty_name=description.pretty_name,
        license="other",
        license_name=description.license_name,
        license_link=description.license_link,
        task_categories=["image-classification"],
        size_categories=[_size_category(sum(split.num_rows for split in splits.values()))],
        tags=list(description.tags),
    )
    card_data["configs"] = [
        {
            "config_name": "default",
            "data_files": [{"split": name, "path": split_pattern(name)} for name in loadable],
        }
    ]
    split_dict = SplitDict()
    for name, split in loadable.items():
        split_dict.add(SplitInfo(name=name, num_bytes=split.num_bytes, num_examples=split.num_rows))
    DatasetInfosDict({"default": DatasetInfo(features=features, splits=split_dict)}).to_dataset_card_data(
        card_data
    )
    card_data["aesthetic_spec"] = spec.to_dict()
    return str(
        DatasetCard(
            f"---\n{card_data.to_yaml()}\n---\n\n{_body(description, spec, features, splits, report, notes)}"
        )
    )


def _body(description, spec, features, splits, report, notes) -> str:
    lines = [f"# {description.pretty_name}", "", description.summary, ""]
    lines += [
        "## Source and license",
        "",
        f"Homepage: {description.homepage}",
        "",
        description.license_notice,
        "",
        "This repository holds a copy built from a local download with `aesformer-hf prepare-dataset`. "
        "**Keep it private** unless the license allows otherwise; share access only with people "
        "entitled to the original data.",
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        "from aesformer_hf.data import get_dataset_spec",
        "",
        'dataset = load_dataset("<this repo or folder>")            # or streaming=True',
        "spec = get_dataset_spec(dataset)  # num_bins, score_min, score_max, label_threshold",
        "```",
        "",
        "## Splits",
        "",
        "| split | rows | shards |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {name} | {split.num_rows:,} | {len(split.files)} |"
        if split.num_rows
        else f"| {name} | 0 (every row was skipped: not in the dataset) | 0 |"
        for name, split in splits.items()
    ]
    lines += [
        "",
        "## Scale (`aesthetic_spec`)",
        "",
        "```json",
        json.dumps(spec.to_dict(), indent=2),
        "```",
        "",
    ]
    lines += [
        f"{spec.num_bins} bins standing for the ratings "
        f"{', '.join(f'{value:g}' for value in spec.bin_values())}; "
        f"an image is `high` when its score is above {spec.label_threshold:g}.",
        "",
        "## Columns",
        "",
        "| column | type | meaning |",
        "|---|---|---|",
    ]
    column_notes = {**_SHARED_COLUMN_NOTES, **description.column_notes}
    for name, feature in features.items():
        lines.append(f"| `{name}` | `{_feature_type(feature)}` | {column_notes.get(name, '')} |")
    lines += ["", "## Build report", ""]
    counts = report.counts()
    if not counts:
        lines.append("Every row of the source was written unchanged.")
    for action, codes in counts.items():
        lines.append(
            f"- {action}: " + ", ".join(f"{code} {number:,}" for code, number in codes.most_common())
        )
    lines += [f"- {note}" for note in notes]
    lines += [
        "",
        "The per-row list (id, action, reason, source line) is `build_report.csv` in the build folder.",
        "",
        "## Citation",
        "",
        "```bibtex",
        description.citation.strip(),
        "```",
        "",
    ]
    return "\n".join(lines)
