"""The column contract shared by every AesFormer dataset, and the facts training reads from it.

Every builder writes the same columns (absent ones are marked):

================ ============================ =================================================
column           feature                      meaning
================ ============================ =================================================
``image``        ``datasets.Image``           the photo or painting, bytes embedded in Parquet
``image_id``     ``Value("string")``          the dataset's own id (AVA/Photo.net number, JAS name)
``votes``        ``List(int32, num_bins)``    vote counts for the ratings ``score_min..score_max``
                                              (absent for JAS)
``distribution`` ``List(float32, num_bins)``  ``votes / votes.sum()``, sums to 1 (absent for JAS)
``score``        ``Value("float32")``         mean rating on the dataset's scale (AVA 1..10,
                                              Photo.net 1..7, JAS 0..1)
``label``        ``ClassLabel(low, high)``    ``high`` when ``score > label_threshold``
``comments``     ``List(string)``             user comments, possibly empty (absent for JAS)
================ ============================ =================================================

plus each dataset's own metadata columns (see the builders).

The scale facts training needs (how many bins, their range, the high/low threshold) form an
:class:`AestheticDatasetSpec`. It travels *inside the features* (as the ``id`` of the ``score``
feature), because the features are the one piece of metadata that survives every way back to a
``Dataset``: the schema metadata of each Parquet shard, the ``dataset_info`` of the card, the Hub,
streaming. :func:`get_dataset_spec` reads it back, with fallbacks.

Who made each dataset and on what terms (its citation and licence, :data:`DATASET_FACTS`) live here too, for the
dataset cards and the model cards alike. The module imports ``datasets`` only where features are built or read,
so that the model cards can read those facts without it.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aesformer_hf.models.aesformer.configuration_aesformer import bin_values as evenly_spaced_bins

if TYPE_CHECKING:
    from datasets import Features

SPEC_FILENAME = "aesthetic_spec.json"
"""Name of the JSON copy of the spec written beside the Parquet shards."""

_SPEC_ID_PREFIX = "aesformer-spec:"
LABEL_NAMES = ("low", "high")


@dataclass(frozen=True)
class AestheticDatasetSpec:
    """How one dataset's scores are scaled, which is what a model trained on it must be told.

    Args:
        name: dataset name (``"ava"``, ``"photonet"``, ``"jas"``).
        num_bins: length of the predicted rating distribution.
        score_min, score_max: the rating of the first and the last bin. Bin ``i`` stands for the
            rating ``score_min + i * (score_max - score_min) / (num_bins - 1)``, so AVA's bins
            are exactly the ratings 1, 2, ..., 10.
        label_threshold: an image is ``high`` when its mean score is strictly greater.
        score_only: ``True`` when the dataset has no vote counts, only a ``score`` (JAS): the
            model still predicts ``num_bins`` probabilities, but is trained on their mean.
    """

    name: str
    num_bins: int
    score_min: float
    score_max: float
    label_threshold: float
    score_only: bool = False

    def __post_init__(self):
        if self.num_bins < 2:
            raise ValueError(f"num_bins must be at least 2, got {self.num_bins}")
        if not self.score_min < self.score_max:
            raise ValueError(f"score_min ({self.score_min}) must be below score_max ({self.score_max})")

    def bin_values(self) -> list[float]:
        """The rating each bin stands for, ``num_bins`` values from ``score_min`` to ``score_max``."""
        return evenly_spaced_bins(self.num_bins, self.score_min, self.score_max)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AestheticDatasetSpec:
        return cls(
            name=str(data["name"]),
            num_bins=int(data["num_bins"]),
            score_min=float(data["score_min"]),
            score_max=float(data["score_max"]),
            label_threshold=float(data["label_threshold"]),
            score_only=bool(data.get("score_only", False)),
        )


AVA_SPEC = AestheticDatasetSpec("ava", num_bins=10, score_min=1.0, score_max=10.0, label_threshold=5.0)
PHOTONET_SPEC = AestheticDatasetSpec(
    "photonet", num_bins=7, score_min=1.0, score_max=7.0, label_threshold=5.0
)
# JAS has only a median Quality score (0..100, stored as Quality / 100). Ten bins over 0..1 keep the
# head's shape close to AVA's, so a model pre-trained on AVA transfers with the same head size;
# training matches the predicted mean to ``score``.
JAS_SPEC = AestheticDatasetSpec(
    "jas", num_bins=10, score_min=0.0, score_max=1.0, label_threshold=0.5, score_only=True
)
DATASET_SPECS: dict[str, AestheticDatasetSpec] = {
    spec.name: spec for spec in (AVA_SPEC, PHOTONET_SPEC, JAS_SPEC)
}


# ---------------------------------------------------------------------------------------------------
# Who made each dataset, and on what terms


@dataclass(frozen=True)
class DatasetFacts:
    """What every card that names a dataset says about it: its name, terms and citation.

    Args:
        title: how cards and messages name it (``"Photo.net"``).
        licence: its terms of use, as the dataset's own documents state them.
        citation: BibTeX of the paper that introduced it.
        aliases: other names for it that :func:`dataset_key` understands (lower case).
        score_note: for a dataset without votes (``score_only``), what its score is.
    """

    title: str
    licence: str
    citation: str
    aliases: tuple[str, ...] = ()
    score_note: str = ""


DATASET_FACTS: dict[str, DatasetFacts] = {
    "ava": DatasetFacts(
        "AVA",
        licence='The AVA README says: "Rights to all images are retained by the photographers/dpchallenge ... '
        'refrain from redistributing images or data." The comments are not public either.',
        citation="""@inproceedings{murray2012ava,
  title={AVA: A large-scale database for aesthetic visual analysis},
  author={Murray, Naila and Marchesotti, Luca and Perronnin, Florent},
  booktitle={CVPR},
  year={2012}
}""",
    ),
    "photonet": DatasetFacts(
        "Photo.net",
        licence="The photos and comments belong to their authors on photo.net; the label CSVs come from the "
        "AesFormer/AesMamba authors. Do not redistribute the images or comments.",
        citation="""@inproceedings{datta2006studying,
  title={Studying aesthetics in photographic images using a computational approach},
  author={Datta, Ritendra and Joshi, Dhiraj and Li, Jia and Wang, James Z.},
  booktitle={ECCV},
  year={2006}
}""",
        aliases=("photo.net",),
    ),
    "jas": DatasetFacts(
        "JAS",
        licence='The JAS Readme says: "Please do not re-distribute the image data."',
        citation="""@inproceedings{amirshahi2015jenaesthetics,
  title={JenAesthetics subjective dataset: analyzing paintings by subjective scores},
  author={Amirshahi, Seyed Ali and Hayn-Leichsenring, Gregor U. and Denzler, Joachim and Redies, Christoph},
  booktitle={ECCV Workshops},
  year={2015}
}""",
        aliases=("jenaesthetics",),
        score_note="JenAesthetics paintings without comments (VIAA only), median 'Aesthetic Quality' / 100",
    ),
}


def dataset_key(name: str) -> str | None:
    """``"AVA"``, ``"photo.net"``, ``"JenAesthetics"`` -> ``"ava"``, ``"photonet"``, ``"jas"``; else ``None``."""
    wanted = str(name).strip().lower()
    for key, facts in DATASET_FACTS.items():
        if wanted in (key, facts.title.lower(), *facts.aliases):
            return key
    return None


# ---------------------------------------------------------------------------------------------------
# Targets derived from votes


def targets_from_votes(votes: Sequence[int], spec: AestheticDatasetSpec) -> tuple[list[float], float, int]:
    """Turn ``num_bins`` vote counts into ``(distribution, mean score, label)``.

    ``distribution`` sums to 1; the mean is on the spec's scale; the label is 1 (``high``) when the
    mean is strictly above ``spec.label_threshold``. Raises ``ValueError`` for a wrong number of
    counts, negative counts or no votes at all (the distribution would be undefined).
    """
    if len(votes) != spec.num_bins:
        raise ValueError(f"expected {spec.num_bins} vote counts, got {len(votes)}")
    if any(count < 0 for count in votes):
        raise ValueError(f"negative vote count in {list(votes)}")
    total = sum(votes)
    if total == 0:
        raise ValueError("no votes")
    distribution = [count / total for count in votes]
    score = sum(p * value for p, value in zip(distribution, spec.bin_values()))
    return distribution, score, label_from_score(score, spec)


def label_from_score(score: float, spec: AestheticDatasetSpec) -> int:
    """1 (``high``) when ``score > spec.label_threshold``, else 0 (``low``)."""
    return int(score > spec.label_threshold)


MAX_COUNT = 2**31 - 1
"""The largest count a ``votes`` (int32) column can hold."""


def parse_count(text: str) -> int:
    """One vote count (or tag id) from a label file: ``"12"``, ``"12.0"`` and ``"1e2"`` are whole numbers.

    Raises ``ValueError`` (never ``OverflowError``) for text that is not a number, ``nan``, ``inf``,
    a fraction (``"2.7"`` is not rounded or truncated) or a count too large for an int32 column, so
    that a builder reports and skips the row. Every builder parses counts here.
    """
    stripped = str(text).strip()
    try:
        return _whole_number(int(stripped), text)
    except ValueError:
        pass
    value = float(stripped)  # ValueError for text that is not a number
    if not math.isfinite(value):
        raise ValueError(f"count {text!r} is not a finite number")
    if not value.is_integer():
        raise ValueError(f"count {text!r} is not a whole number")
    return _whole_number(int(value), text)


def _whole_number(value: int, text: str) -> int:
    if abs(value) > MAX_COUNT:
        raise ValueError(f"count {text!r} is out of range (at most {MAX_COUNT})")
    return value


# ---------------------------------------------------------------------------------------------------
# Features


def build_features(
    spec: AestheticDatasetSpec, extra: Mapping[str, Any], with_comments: bool = True
) -> Features:
    """The dataset's ``Features``: the shared columns, then ``extra`` (the dataset's metadata).

    ``votes``/``distribution`` exist only when ``spec.score_only`` is false; the spec itself is
    stored as the ``id`` of the ``score`` feature (see the module docstring).
    """
    from datasets import ClassLabel, Features, Image, List, Value

    columns: dict[str, Any] = {"image": Image(), "image_id": Value("string")}
    if not spec.score_only:
        columns["votes"] = List(Value("int32"), length=spec.num_bins)
        columns["distribution"] = List(Value("float32"), length=spec.num_bins)
    columns["score"] = Value("float32", id=_SPEC_ID_PREFIX + json.dumps(spec.to_dict(), sort_keys=True))
    columns["label"] = ClassLabel(names=list(LABEL_NAMES))
    if with_comments:
        columns["comments"] = List(Value("string"))
    for name, feature in extra.items():
        if name in columns:
            raise ValueError(f"extra column {name!r} collides with a shared column")
        columns[name] = feature
    return Features(columns)


# ---------------------------------------------------------------------------------------------------
# Reading the spec back


def get_dataset_spec(dataset: Any) -> AestheticDatasetSpec:
    """Recover the :class:`AestheticDatasetSpec` of a built dataset, however it was loaded.

    ``dataset`` may be a ``Dataset``, ``DatasetDict``, ``IterableDataset``, ``IterableDatasetDict``
    or ``Features`` (from ``load_dataset`` on a local Parquet folder or a Hub repo, streaming or
    not), a known dataset name (``"ava"``, ``"photonet"``, ``"jas"``), a local folder written by
    the builders, or a Hub dataset repo id.

    Sources, most to least reliable: the spec stored in the ``score`` feature; the
    ``aesthetic_spec.json`` (or card YAML) of a folder or Hub repo; then, when only the data is
    known, the length of ``distribution`` (10 -> AVA, 7 -> Photo.net, other ``n`` -> 1..n with the
    threshold at the middle, with a warning) or, for a score-only dataset with JAS's columns, JAS.
    """
    if isinstance(dataset, (str, os.PathLike)):
        return _spec_from_reference(dataset)
    features = _features_of(dataset)
    if features is not None:
        spec = _spec_from_features(features)
        if spec is not None:
            return spec
    return _infer_spec(dataset, features)


def _spec_from_features(features: Mapping[str, Any]) -> AestheticDatasetSpec | None:
    score = features.get("score")
    feature_id = getattr(score, "id", None)
    if isinstance(feature_id, str) and feature_id.startswith(_SPEC_ID_PREFIX):
        return AestheticDatasetSpec.from_dict(json.loads(feature_id[len(_SPEC_ID_PREFIX) :]))
    return None


def _features_of(dataset: Any) -> Features | None:
    from datasets import Features

    if isinstance(dataset, Features):
        return dataset
    features = getattr(dataset, "features", None)
    if features is not None:
        return features
    if isinstance(dataset, Mapping):  # DatasetDict / IterableDatasetDict: the first split that knows
        for split in dataset.values():
            split_features = getattr(split, "features", None)
            if split_features is not None and _spec_from_features(split_features) is not None:
                return split_features
        for split in dataset.values():
            if getattr(split, "features", None) is not None:
                return split.features
    return None


def _first_split(dataset: Any) -> Any:
    if isinstance(dataset, Mapping):
        if not dataset:
            raise ValueError("cannot infer an aesthetic spec from an empty DatasetDict")
        return next(iter(dataset.values()))
    return dataset


def _column_names(dataset: Any, features: Mapping[str, Any] | None) -> list[str]:
    if features is not None:
        return list(features)
    names = getattr(_first_split(dataset), "column_names", None)
    return list(names or [])


def _infer_spec(dataset: Any, features: Mapping[str, Any] | None) -> AestheticDatasetSpec:
    columns = _column_names(dataset, features)
    if "distribution" in columns:
        num_bins = None
        feature = features.get("distribution") if features is not None else None
        if getattr(feature, "length", -1) not in (-1, None):
            num_bins = int(feature.length)
        else:  # length unknown from the features: read the first row's
            num_bins = _first_distribution_length(dataset)
        return _spec_from_num_bins(num_bins)
    if "score" in columns and {"beauty", "quality"} <= set(columns):
        return JAS_SPEC
    raise ValueError(
        "cannot find an aesthetic spec: the dataset has no spec in its `score` feature, no "
        f"`distribution` column and not JAS's columns (columns: {columns}). Build it with "
        "aesformer_hf.data, or pass the dataset name to get_dataset_spec."
    )


def _first_distribution_length(dataset: Any) -> int:
    split = _first_split(dataset)
    only_distribution = split.select_columns(["distribution"])
    first = next(iter(only_distribution), None)
    if first is None:
        raise ValueError("cannot infer the number of bins: the dataset is empty")
    return len(first["distribution"])


def _spec_from_num_bins(num_bins: int) -> AestheticDatasetSpec:
    for spec in (AVA_SPEC, PHOTONET_SPEC):
        if spec.num_bins == num_bins:
            return spec
    warnings.warn(
        f"no stored aesthetic spec; assuming {num_bins} bins on 1..{num_bins} with the threshold "
        f"at {(1 + num_bins) / 2}",
        stacklevel=3,
    )
    return AestheticDatasetSpec(
        "unknown",
        num_bins=num_bins,
        score_min=1.0,
        score_max=float(num_bins),
        label_threshold=(1 + num_bins) / 2,
    )


def read_spec_file(path: str | os.PathLike) -> AestheticDatasetSpec:
    """Read an ``aesthetic_spec.json`` written by :func:`write_spec_file`."""
    with open(path, encoding="utf-8") as handle:
        return AestheticDatasetSpec.from_dict(json.load(handle))


def write_spec_file(spec: AestheticDatasetSpec, directory: str | os.PathLike) -> Path:
    path = Path(directory) / SPEC_FILENAME
    path.write_text(json.dumps(spec.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _spec_from_reference(reference: str | os.PathLike) -> AestheticDatasetSpec:
    text = os.fspath(reference)
    if text in DATASET_SPECS:
        return DATASET_SPECS[text]
    path = Path(text)
    if path.is_dir():
        if (path / SPEC_FILENAME).is_file():
            return read_spec_file(path / SPEC_FILENAME)
        card_spec = _spec_from_card(path / "README.md")
        if card_spec is not None:
            return card_spec
        raise FileNotFoundError(
            f"{path} holds neither {SPEC_FILENAME} nor a README.md with an `aesthetic_spec` entry; "
            "was it written by aesformer_hf.data?"
        )
    if path.exists() or text.count("/") != 1:
        raise ValueError(
            f"cannot get an aesthetic spec from {text!r}: expected one of {sorted(DATASET_SPECS)}, a folder "
            "written by aesformer_hf.data or a Hub dataset repo id ('org/name')"
        )
    from huggingface_hub import hf_hub_download

    return read_spec_file(hf_hub_download(text, SPEC_FILENAME, repo_type="dataset"))


def _spec_from_card(readme: Path) -> AestheticDatasetSpec | None:
    if not readme.is_file():
        return None
    from huggingface_hub import DatasetCard

    data = DatasetCard.load(readme).data.to_dict()
    if isinstance(data.get("aesthetic_spec"), Mapping):
        return AestheticDatasetSpec.from_dict(data["aesthetic_spec"])
    return None
