import numpy as np
import pytest
import torch

from aesformer_hf.training import AesformerDataCollator, default_train_resize_size, keep_rows_with_comments
from aesformer_hf.training.collator import AUGMENTATION_SEED_KEY, RowsWithAugmentationSeeds, augmentation_seed

from .conftest import TRAIN_IMAGE_SIZE


def rows_of(split, count=4):
    return [split[i] for i in range(count)]


def test_default_resize_is_the_papers_256_for_224():
    assert default_train_resize_size(224) == 256
    assert default_train_resize_size(TRAIN_IMAGE_SIZE) == 73


def test_multimodal_batch_has_images_labels_and_comment_tokens(aesthetics, training_processor):
    collator = AesformerDataCollator(training_processor, num_bins=10)
    batch = collator(rows_of(aesthetics["train"]))
    assert batch["pixel_values"].shape == (4, 3, TRAIN_IMAGE_SIZE, TRAIN_IMAGE_SIZE)
    assert batch["pixel_values"].dtype == torch.float32
    assert batch["labels"].shape == (4, 10)
    torch.testing.assert_close(batch["labels"].sum(dim=1), torch.ones(4))
    assert batch["input_ids"].shape[0] == 4 and batch["attention_mask"].shape == batch["input_ids"].shape
    assert "token_type_ids" in batch


def test_vision_batch_has_no_text(aesthetics, training_processor):
    batch = AesformerDataCollator(training_processor, multimodal=False)(rows_of(aesthetics["train"]))
    assert set(batch) == {"pixel_values", "labels"}


def test_training_transform_is_random_and_seeded(aesthetics, training_processor):
    collator = AesformerDataCollator(training_processor)
    rows = rows_of(aesthetics["train"])
    torch.manual_seed(0)
    first = collator(rows)["pixel_values"]
    torch.manual_seed(0)
    again = collator(rows)["pixel_values"]
    torch.manual_seed(1)
    other = collator(rows)["pixel_values"]
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert not torch.equal(first, other)


def test_training_transform_flips_and_crops(aesthetics, training_processor):
    image = aesthetics["train"][0]["image"].convert("RGB")
    collator = AesformerDataCollator(training_processor, resize_size=TRAIN_IMAGE_SIZE)  # no room to crop
    resized = image.resize((TRAIN_IMAGE_SIZE, TRAIN_IMAGE_SIZE), resample=collator.image_processor.resample)
    plain = collator.normalize([resized])[0]
    outcomes = set()
    for seed in range(12):
        torch.manual_seed(seed)
        out = collator.train_transform(image)
        if torch.equal(out, plain):
            outcomes.add("kept")
        elif torch.equal(out, plain.flip(-1)):
            outcomes.add("flipped")
    assert outcomes == {"kept", "flipped"}
    cropping = AesformerDataCollator(training_processor)
    offsets = set()
    for seed in range(6):
        generator = torch.Generator().manual_seed(seed)
        offsets.add(
            tuple(
                torch.randint(0, cropping.resize_size - cropping.size + 1, (2,), generator=generator).tolist()
            )
        )
    assert len(offsets) > 1


def test_explicit_generator_makes_the_transform_reproducible(aesthetics, training_processor):
    rows = rows_of(aesthetics["train"])
    first = AesformerDataCollator(training_processor, generator=torch.Generator().manual_seed(3))(rows)
    second = AesformerDataCollator(training_processor, generator=torch.Generator().manual_seed(3))(rows)
    torch.testing.assert_close(first["pixel_values"], second["pixel_values"], rtol=0, atol=0)


def test_a_rows_augmentation_seed_decides_its_crop_whatever_the_global_rng(aesthetics, training_processor):
    collator = AesformerDataCollator(training_processor, generator=torch.Generator().manual_seed(3))
    rows = [{**row, AUGMENTATION_SEED_KEY: 100 + i} for i, row in enumerate(rows_of(aesthetics["train"]))]
    torch.manual_seed(0)
    first = collator(rows)
    torch.manual_seed(1)
    again = collator(rows[::-1])  # another order, another global and collator RNG state
    assert AUGMENTATION_SEED_KEY not in first
    torch.testing.assert_close(first["pixel_values"], again["pixel_values"].flip(0), rtol=0, atol=0)
    reseeded = collator([{**row, AUGMENTATION_SEED_KEY: 200 + i} for i, row in enumerate(rows)])
    assert not torch.equal(first["pixel_values"], reseeded["pixel_values"])
    evaluation = collator.for_evaluation()
    plain = evaluation([{k: v for k, v in row.items() if k != AUGMENTATION_SEED_KEY} for row in rows])
    torch.testing.assert_close(evaluation(rows)["pixel_values"], plain["pixel_values"], rtol=0, atol=0)


def test_augmentation_seeds_differ_by_epoch_process_and_row():
    keys = [(0, epoch, process, row) for epoch in range(3) for process in range(2) for row in range(50)]
    seeds = [augmentation_seed(*key) for key in keys]
    assert len(set(seeds)) == len(keys)
    assert all(0 <= seed < 2**63 for seed in seeds)
    assert augmentation_seed(0, 1, 0, 7) == augmentation_seed(0, 1, 0, 7) != augmentation_seed(1, 1, 0, 7)


class _Rows(torch.utils.data.Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, index):
        return {"index": index}


def _seeds_seen(batch):
    return [(row["index"], row[AUGMENTATION_SEED_KEY]) for row in batch]


@pytest.mark.parametrize("persistent_workers", [False, True])
def test_rows_with_augmentation_seeds_reach_dataloader_workers_each_epoch(persistent_workers):
    rows = RowsWithAugmentationSeeds(_Rows(), seed=5, process_index=1)
    loader = torch.utils.data.DataLoader(
        rows, batch_size=2, num_workers=2, persistent_workers=persistent_workers, collate_fn=_seeds_seen
    )
    for epoch in (0, 1, 2):
        rows.set_epoch(epoch)
        seen = [pair for batch in loader for pair in batch]
        assert seen == [(i, augmentation_seed(5, epoch, 1, i)) for i in range(6)], epoch
    assert rows.__getitems__([4, 0]) == [rows[4], rows[0]]
    assert rows[0] == {"index": 0, AUGMENTATION_SEED_KEY: augmentation_seed(5, 2, 1, 0)}


def test_evaluation_transform_equals_the_processor(aesthetics, training_processor):
    rows = rows_of(aesthetics["test"])
    collator = AesformerDataCollator(training_processor).for_evaluation()
    assert not collator.training
    batch = collator(rows)
    expected = training_processor(
        images=[row["image"] for row in rows], text=[row["comments"] for row in rows], return_tensors="pt"
    )
    torch.testing.assert_close(batch["pixel_values"], expected["pixel_values"], rtol=0, atol=0)
    torch.testing.assert_close(batch["input_ids"], expected["input_ids"], rtol=0, atol=0)


def test_score_only_rows_give_scalar_labels(aesthetics, training_processor):
    rows = [{"image": row["image"], "score": row["score"] / 10} for row in rows_of(aesthetics["train"])]
    batch = AesformerDataCollator(training_processor, multimodal=False)(rows)
    assert batch["labels"].shape == (4,)


def _bad_rows(aesthetics, change):
    rows = [dict(row) for row in rows_of(aesthetics["train"])]
    change(rows[2])
    return rows


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda row: row.update(distribution=None), "has no 'distribution'"),
        (lambda row: row.update(distribution=row["distribution"][:7]), "expected 10 bins"),
        (lambda row: row.update(distribution=[float("nan")] + row["distribution"][1:]), "NaN"),
        (lambda row: row.update(distribution=[v * 3 for v in row["distribution"]]), "sums to 3"),
        (lambda row: row.update(comments=[]), "has no comments"),
        (lambda row: row.update(image=None), "has no image"),
    ],
)
def test_bad_rows_are_named(aesthetics, training_processor, change, message):
    rows = _bad_rows(aesthetics, change)
    collator = AesformerDataCollator(training_processor, num_bins=10)
    with pytest.raises(ValueError, match=message) as error:
        collator(rows)
    assert "row 2 of the batch" in str(error.value)
    assert repr(rows[2]["image_id"]) in str(error.value)


def test_bad_score_is_named(aesthetics, training_processor):
    rows = [{"image": row["image"], "score": row["score"]} for row in rows_of(aesthetics["train"])]
    rows[1]["score"] = float("nan")
    with pytest.raises(ValueError, match="row 1 of the batch has score nan"):
        AesformerDataCollator(training_processor, multimodal=False)(rows)


def test_bins_are_checked_against_the_first_row_when_unknown(aesthetics, training_processor):
    rows = [dict(row) for row in rows_of(aesthetics["train"])]
    rows[3]["distribution"] = list(np.full(7, 1 / 7))
    with pytest.raises(ValueError, match="expected 10 bins"):
        AesformerDataCollator(training_processor)(rows)


def test_multimodal_collator_needs_a_tokenizer(training_processor):
    with pytest.raises(ValueError, match="no tokenizer"):
        AesformerDataCollator(training_processor.image_processor)
    AesformerDataCollator(training_processor.image_processor, multimodal=False)


def test_keep_rows_with_comments(aesthetics):
    split = aesthetics["train"].select(range(4))
    emptied = split.map(lambda row, i: {"comments": [] if i == 1 else row["comments"]}, with_indices=True)
    kept = keep_rows_with_comments(emptied)
    assert kept.num_rows == 3
    assert split[1]["image_id"] not in kept["image_id"]


def test_comment_tokens_are_the_processors_released_text(aesthetics, training_processor):
    # Photo.net-style comments (CRLF endings, an apostrophe, brackets): training must see the text that the
    # processor (and so the pipeline) gives at rating time, i.e. the released text.
    comments = [["Don't\r\n", "(tilted) horizon\r\n"], ["blurry"], ["sharp", "  "], ["nice: colours\r\n"]]
    rows = [dict(row, comments=c) for row, c in zip(rows_of(aesthetics["train"]), comments)]
    batch = AesformerDataCollator(training_processor, num_bins=10)(rows)
    expected = training_processor.tokenizer(
        ["Don t\\r , tilted horizon\\r", "blurry", "sharp ,", "nice colours\\r"],
        padding=True,
        return_tensors="pt",
    )
    assert batch["input_ids"].tolist() == expected["input_ids"].tolist()
    from_processor = training_processor(text=comments)
    assert batch["input_ids"].tolist() == from_processor["input_ids"].tolist()


def test_blank_comments_are_no_comments(aesthetics, training_processor):
    split = aesthetics["train"].select(range(3))
    blank = split.map(
        lambda row, i: {"comments": [["  ", "\r\n"], ["()"], ["{}"]][i]}, with_indices=True
    )  # the released cleaning keeps braces: "{}" is a comment
    assert keep_rows_with_comments(blank)["image_id"] == [split[2]["image_id"]]
    with pytest.raises(ValueError, match="row 0 of the batch.*has no comments"):
        AesformerDataCollator(training_processor, num_bins=10)(list(blank))


def test_training_crops_are_uniform_random_windows_of_the_resized_image(training_processor):
    """Each training output is located in the resized image by brute force (every offset, flipped or not), so a
    centre crop or a crop of another size fails here. Reference pixels are normalised in numpy, independently."""
    from PIL import Image

    collator = AesformerDataCollator(training_processor)
    size, resize = collator.size, collator.resize_size
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (90, 70, 3), dtype=np.uint8), "RGB")
    resized = np.asarray(image.resize((resize, resize), resample=Image.BICUBIC), dtype=np.float64) / 255.0
    mean, std = np.array(collator.image_processor.image_mean), np.array(collator.image_processor.image_std)
    normalised = ((resized - mean) / std).transpose(2, 0, 1)
    margin = resize - size
    found = []
    for seed in range(24):
        out = collator.train_transform(image, torch.Generator().manual_seed(seed)).double().numpy()
        matches = [
            (top, left, flipped)
            for top in range(margin + 1)
            for left in range(margin + 1)
            for flipped in (False, True)
            if np.allclose(
                out,
                (lambda crop: crop[:, :, ::-1] if flipped else crop)(
                    normalised[:, top : top + size, left : left + size]
                ),
                atol=1e-5,
            )
        ]
        assert len(matches) == 1, (seed, matches)
        found.append(matches[0])
    offsets = {(top, left) for top, left, _ in found}
    assert len(offsets) >= 12  # 24 draws over 10 x 10 offsets
    assert {flipped for *_, flipped in found} == {False, True}
    tops = [top for top, _, _ in found]
    assert min(tops) <= 2 and max(tops) >= margin - 2  # windows reach both edges, not only the centre
