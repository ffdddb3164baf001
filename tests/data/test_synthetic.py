import numpy as np
import pytest
from datasets import ClassLabel, DatasetDict, Image, Value
from PIL import Image as PILImage
from scipy import stats

from aesformer_hf.data.schema import get_dataset_spec
from aesformer_hf.data.synthetic import (
    DEGRADATIONS,
    SOURCE_PHOTOS,
    SYNTHETIC_SPEC,
    add_flaw_labels,
    build_synthetic_aesthetics,
    flaw_class_names,
)

SMALL = {
    "num_photos": 3,
    "strengths": (0, 2, 4),
    "degradations": ("blur", "noise", "underexposure", "tilt"),
    "image_size": 48,
    "held_out_photos": ("coffee",),
    "seed": 0,
}
RATINGS = np.arange(1, 11)


@pytest.fixture(scope="module")
def small():
    return build_synthetic_aesthetics(**SMALL)


def photo_of(image_id: str) -> str:
    return image_id.split("-")[0]


def test_splits_columns_and_dtypes(small):
    assert isinstance(small, DatasetDict) and set(small) == {"train", "test"}
    for split in small.values():
        features = split.features
        assert list(features) == [
            "image",
            "image_id",
            "votes",
            "distribution",
            "score",
            "label",
            "comments",
            "degradation",
            "strength",
        ]
        assert isinstance(features["image"], Image)
        assert features["image_id"] == Value("string")
        assert features["votes"].feature == Value("int32") and features["votes"].length == 10
        assert features["distribution"].feature == Value("float32") and features["distribution"].length == 10
        assert features["score"].dtype == "float32"
        assert isinstance(features["label"], ClassLabel) and features["label"].names == ["low", "high"]
        assert features["comments"].feature == Value("string")
        assert features["degradation"] == Value("string") and features["strength"] == Value("int32")
    assert get_dataset_spec(small) == SYNTHETIC_SPEC

    row = small["train"][0]
    assert isinstance(row["image"], PILImage.Image)
    assert row["image"].mode == "RGB" and row["image"].size == (48, 48)


def test_row_counts(small):
    # 3 photos x (4 clean + 4 degradations x 2 strengths) = 36; the held-out photo gives 12.
    assert len(small["train"]) == 24 and len(small["test"]) == 12
    default_count = len(SOURCE_PHOTOS) * len(DEGRADATIONS) * 5
    assert 150 <= default_count <= 400


def test_targets_are_consistent(small):
    for split in small.values():
        votes = np.array(split["votes"])
        distribution = np.array(split["distribution"], dtype=np.float64)
        scores = np.array(split["score"], dtype=np.float64)
        assert (votes >= 0).all() and (votes.sum(axis=1) == 100).all()
        np.testing.assert_allclose(distribution.sum(axis=1), 1.0, atol=1e-6)
        np.testing.assert_allclose(distribution, votes / votes.sum(axis=1, keepdims=True), atol=1e-6)
        np.testing.assert_allclose(scores, distribution @ RATINGS, atol=1e-5)
        assert ((scores >= 1) & (scores <= 10)).all()
        assert list(split["label"]) == [int(score > 5.0) for score in scores]
        for comments in split["comments"]:
            assert 1 <= len(comments) <= 3 and all(isinstance(text, str) and text for text in comments)
        clean = np.array(split["strength"]) == 0
        assert all(name == "none" for name in np.array(split["degradation"])[clean])


def test_scores_fall_with_strength(small):
    for split in small.values():
        strengths = np.array(split["strength"])
        scores = np.array(split["score"])
        rho = stats.spearmanr(strengths, scores).statistic
        assert rho < -0.9, rho
        means = [scores[strengths == level].mean() for level in (0, 2, 4)]
        assert means[0] > means[1] > means[2]
        assert means[0] > 6.5 and means[2] < 4.0  # both labels occur
    assert set(small["train"]["label"]) == {0, 1}


def test_votes_are_roughly_unimodal(small):
    for votes in small["train"]["votes"]:
        peak = int(np.argmax(votes))
        # Away from the peak, counts should not climb back by more than sampling noise.
        left, right = np.array(votes[: peak + 1]), np.array(votes[peak:])
        assert (np.diff(left) >= -6).all() and (np.diff(right) <= 6).all()


def test_flaws_are_visible(small):
    def pixels(image_id):
        row = next(row for row in small["train"] if row["image_id"] == image_id)
        return np.asarray(row["image"], dtype=np.float64) / 255.0

    clean = pixels("astronaut-clean-00")
    dark = pixels("astronaut-underexposure-s4-v0")
    assert dark.mean() < 0.5 * clean.mean()
    sharp_detail = np.abs(np.diff(clean, axis=1)).mean()
    assert np.abs(np.diff(pixels("astronaut-blur-s4-v0"), axis=1)).mean() < 0.6 * sharp_detail
    assert np.abs(np.diff(pixels("astronaut-noise-s4-v0"), axis=1)).mean() > 1.5 * sharp_detail
    # Tilt leaves black corners.
    assert pixels("astronaut-tilt-s4-v0")[:3, :3].max() < 0.05


def test_test_photos_are_not_seen_in_training(small):
    train_photos = {photo_of(image_id) for image_id in small["train"]["image_id"]}
    test_photos = {photo_of(image_id) for image_id in small["test"]["image_id"]}
    assert test_photos == {"coffee"}
    assert train_photos == {"astronaut", "chelsea"}
    all_ids = list(small["train"]["image_id"]) + list(small["test"]["image_id"])
    assert len(set(all_ids)) == len(all_ids)


def test_deterministic_for_a_seed(small):
    again = build_synthetic_aesthetics(**SMALL)
    other_seed = build_synthetic_aesthetics(**{**SMALL, "seed": 1})
    for split in ("train", "test"):
        assert list(again[split]["image_id"]) == list(small[split]["image_id"])
        assert list(again[split]["votes"]) == list(small[split]["votes"])
        assert list(again[split]["comments"]) == list(small[split]["comments"])
        first = [np.asarray(image) for image in small[split]["image"]]
        second = [np.asarray(image) for image in again[split]["image"]]
        assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert list(other_seed["train"]["votes"]) != list(small["train"]["votes"])


def test_an_image_does_not_depend_on_what_else_is_built(small):
    only_blur = build_synthetic_aesthetics(**{**SMALL, "degradations": ("blur",), "strengths": (4,)})
    row = next(row for row in only_blur["train"] if row["image_id"] == "astronaut-blur-s4-v0")
    same = next(row_ for row_ in small["train"] if row_["image_id"] == "astronaut-blur-s4-v0")
    assert np.array_equal(np.asarray(row["image"]), np.asarray(same["image"]))
    assert row["votes"] == same["votes"]


def test_invalid_arguments_are_explained():
    with pytest.raises(ValueError, match="unknown held_out_photos.*available photos"):
        build_synthetic_aesthetics(held_out_photos=("mona_lisa",))
    with pytest.raises(ValueError, match="degradations must be a non-empty subset"):
        build_synthetic_aesthetics(degradations=("vignette",))
    with pytest.raises(ValueError, match="strengths must be a non-empty subset of 0..4"):
        build_synthetic_aesthetics(strengths=(5,))
    with pytest.raises(ValueError, match="num_photos must be between 2 and"):
        build_synthetic_aesthetics(num_photos=1)


def test_flaw_labels_name_how_each_image_was_made(small):
    names = flaw_class_names()
    assert len(names) == 1 + len(DEGRADATIONS) * 4 and names[0] == "clean" and names[1] == "blur-s1"
    labelled = add_flaw_labels(small)
    for split in ("train", "test"):
        feature = labelled[split].features["flaw"]
        assert isinstance(feature, ClassLabel) and feature.names == names
        for row in labelled[split]:
            # The id is read back from the image_id, which spells the degradation and strength another way.
            photo, kind, *rest = row["image_id"].split("-")
            expected = "clean" if kind == "clean" else f"{kind}-{rest[0]}"
            assert feature.int2str(row["flaw"]) == expected, row["image_id"]
    # The columns and the dataset spec carried in the features survive.
    assert get_dataset_spec(labelled["train"]) == SYNTHETIC_SPEC
    assert set(small["train"].column_names) | {"flaw"} == set(labelled["train"].column_names)
    single = add_flaw_labels(small["test"], column="kind")
    assert single["kind"] == labelled["test"]["flaw"]
