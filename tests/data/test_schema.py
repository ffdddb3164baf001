"""The spec, the derived targets and get_dataset_spec over every way a dataset comes back."""

from __future__ import annotations

import json

import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value, load_dataset

from aesformer_hf.data import schema
from aesformer_hf.data.schema import (
    AVA_SPEC,
    JAS_SPEC,
    PHOTONET_SPEC,
    AestheticDatasetSpec,
    build_features,
    get_dataset_spec,
    targets_from_votes,
    write_spec_file,
)


def test_specs_match_the_design():
    assert (AVA_SPEC.num_bins, AVA_SPEC.score_min, AVA_SPEC.score_max, AVA_SPEC.label_threshold) == (
        10,
        1,
        10,
        5,
    )
    assert (PHOTONET_SPEC.num_bins, PHOTONET_SPEC.score_min, PHOTONET_SPEC.score_max) == (7, 1, 7)
    assert PHOTONET_SPEC.label_threshold == 5.0
    assert JAS_SPEC.score_only and (JAS_SPEC.score_min, JAS_SPEC.score_max, JAS_SPEC.label_threshold) == (
        0,
        1,
        0.5,
    )
    assert AVA_SPEC.bin_values() == [float(rating) for rating in range(1, 11)]
    assert PHOTONET_SPEC.bin_values() == [float(rating) for rating in range(1, 8)]
    assert JAS_SPEC.bin_values()[0] == 0.0 and JAS_SPEC.bin_values()[-1] == pytest.approx(1.0)
    assert AestheticDatasetSpec.from_dict(json.loads(json.dumps(JAS_SPEC.to_dict()))) == JAS_SPEC


def test_spec_rejects_nonsense():
    with pytest.raises(ValueError, match="num_bins"):
        AestheticDatasetSpec("x", num_bins=1, score_min=0, score_max=1, label_threshold=0.5)
    with pytest.raises(ValueError, match="score_min"):
        AestheticDatasetSpec("x", num_bins=5, score_min=3, score_max=1, label_threshold=2)


def test_targets_from_votes_by_hand():
    # AVA.txt line 1 (image 953619): 124 votes; sum of rating * votes = 2+15+68+190+216+105+48+45+10 = 699.
    distribution, score, label = targets_from_votes([0, 1, 5, 17, 38, 36, 15, 6, 5, 1], AVA_SPEC)
    assert distribution[4] == pytest.approx(38 / 124) and sum(distribution) == pytest.approx(1.0)
    assert score == pytest.approx(699 / 124) and label == 1
    # Photo.net: 4,4,4,4,4 and 5,5,5,5,5,5 -> (20 + 30) / 11 = 4.545... -> low.
    _, score, label = targets_from_votes([0, 0, 0, 5, 6, 0, 0], PHOTONET_SPEC)
    assert score == pytest.approx(50 / 11) and label == 0


def test_label_threshold_is_strict():
    _, score, label = targets_from_votes([0, 0, 0, 0, 3, 0, 0, 0, 0, 0], AVA_SPEC)
    assert score == 5.0 and label == 0
    assert schema.label_from_score(0.5, JAS_SPEC) == 0 and schema.label_from_score(0.505, JAS_SPEC) == 1


@pytest.mark.parametrize(
    ("votes", "message"), [([0] * 10, "no votes"), ([1] * 9, "expected 10"), ([1] * 9 + [-1], "negative")]
)
def test_targets_reject_bad_votes(votes, message):
    with pytest.raises(ValueError, match=message):
        targets_from_votes(votes, AVA_SPEC)


def _tiny_dataset(features: Features, distribution_length: int | None = 10) -> Dataset:
    row = {"image_id": "1", "score": 5.5, "label": 1}
    if "distribution" in features:
        row["distribution"] = [1.0 / distribution_length] * distribution_length
    if "beauty" in features:
        row.update(beauty=50.0, quality=55.0)
    return Dataset.from_list([row], features=features)


def test_spec_survives_parquet_local_and_streaming(tmp_path):
    features = build_features(AVA_SPEC, extra={})
    del features["image"]  # the spec lives in `score`; no image needed to check it travels
    dataset = Dataset.from_list(
        [
            {
                "image_id": "1",
                "votes": [1] * 10,
                "distribution": [0.1] * 10,
                "score": 5.5,
                "label": 1,
                "comments": [],
            }
        ],
        features=features,
    )
    (tmp_path / "data").mkdir()
    dataset.to_parquet(str(tmp_path / "data" / "train-00000-of-00001.parquet"))
    loaded = load_dataset(str(tmp_path), cache_dir=str(tmp_path / "cache"))
    assert get_dataset_spec(loaded) == AVA_SPEC
    assert get_dataset_spec(loaded["train"]) == AVA_SPEC
    streamed = load_dataset(str(tmp_path), streaming=True)
    assert get_dataset_spec(streamed["train"]) == AVA_SPEC


def test_fallback_from_distribution_length_and_columns():
    plain = Features(
        {"image_id": Value("string"), "score": Value("float32"), "label": ClassLabel(names=["low", "high"])}
    )
    for length, expected in ((10, AVA_SPEC), (7, PHOTONET_SPEC)):
        features = Features({**plain, "distribution": List(Value("float32"), length=length)})
        assert get_dataset_spec(features) == expected
    # Length unknown from the features: read from the first row.
    loose = _tiny_dataset(Features({**plain, "distribution": List(Value("float32"))}), distribution_length=7)
    assert get_dataset_spec(DatasetDict({"test": loose})) == PHOTONET_SPEC
    jas_like = _tiny_dataset(Features({**plain, "beauty": Value("float32"), "quality": Value("float32")}))
    assert get_dataset_spec(jas_like) == JAS_SPEC


def test_unknown_bins_warn_and_missing_everything_fails():
    features = Features({"score": Value("float32"), "distribution": List(Value("float32"), length=5)})
    with pytest.warns(UserWarning, match="5 bins"):
        spec = get_dataset_spec(features)
    assert (spec.num_bins, spec.score_min, spec.score_max, spec.label_threshold) == (5, 1, 5, 3)
    with pytest.raises(ValueError, match="cannot find an aesthetic spec"):
        get_dataset_spec(Features({"image_id": Value("string")}))


def test_spec_from_names_folders_and_hub(tmp_path, monkeypatch):
    assert get_dataset_spec("photonet") == PHOTONET_SPEC
    write_spec_file(JAS_SPEC, tmp_path)
    assert get_dataset_spec(tmp_path) == JAS_SPEC
    # A folder with only the card (the JSON deleted) still answers.
    (tmp_path / schema.SPEC_FILENAME).unlink()
    (tmp_path / "README.md").write_text(
        "---\naesthetic_spec:\n  name: photonet\n  num_bins: 7\n  score_min: 1.0\n  score_max: 7.0\n"
        "  label_threshold: 5.0\n---\n# card\n"
    )
    assert get_dataset_spec(str(tmp_path)) == PHOTONET_SPEC
    (tmp_path / "README.md").unlink()
    with pytest.raises(FileNotFoundError, match="aesthetic_spec"):
        get_dataset_spec(tmp_path)

    hub_copy = tmp_path / "hub"
    hub_copy.mkdir()
    spec_path = write_spec_file(AVA_SPEC, hub_copy)
    calls = []

    def fake_download(repo_id, filename, repo_type):
        calls.append((repo_id, filename, repo_type))
        return str(spec_path)

    monkeypatch.setattr("huggingface_hub.hf_hub_download", fake_download)
    assert get_dataset_spec("my-org/ava-private") == AVA_SPEC
    assert calls == [("my-org/ava-private", schema.SPEC_FILENAME, "dataset")]
    with pytest.raises(ValueError, match="expected one of"):
        get_dataset_spec("not-a-dataset")


def test_every_dataset_has_its_facts_once():
    from aesformer_hf.data.schema import DATASET_FACTS, DATASET_SPECS, dataset_key

    assert set(DATASET_FACTS) == set(DATASET_SPECS)
    assert [facts.citation.split(",")[0] for facts in DATASET_FACTS.values()] == [
        "@inproceedings{murray2012ava",
        "@inproceedings{datta2006studying",
        "@inproceedings{amirshahi2015jenaesthetics",  # a workshop paper (it was also an @article)
    ]
    for key, facts in DATASET_FACTS.items():
        for name in (key, facts.title, facts.title.upper(), *facts.aliases):
            assert dataset_key(name) == key
        assert bool(facts.score_note) == DATASET_SPECS[key].score_only  # what a score-only dataset's score is
    assert dataset_key("KonIQ") is None
