"""Assigning rows to the ``train`` / ``validation`` / ``test`` splits.

Three ways, used by the builders: a list of test ids (AVA's ``generic_test.jpgl``), one label file
per split named after it (``train.csv``, ``val.csv``, ``test.csv``), or a seeded random split
when a dataset ships none (reproducible: same ids and seed, same split on every machine).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Mapping
from pathlib import Path

from aesformer_hf.data.text import read_text

TRAIN, VALIDATION, TEST = "train", "validation", "test"
SPLIT_ORDER = (TRAIN, VALIDATION, TEST)
_SPLIT_ALIASES = {
    "train": TRAIN,
    "training": TRAIN,
    "val": VALIDATION,
    "valid": VALIDATION,
    "validation": VALIDATION,
    "dev": VALIDATION,
    "test": TEST,
    "testing": TEST,
}


def split_name_from_file(path: str | os.PathLike) -> str | None:
    """``train.csv`` -> ``"train"``, ``val.csv`` -> ``"validation"``; ``None`` for other names."""
    return _SPLIT_ALIASES.get(Path(path).stem.strip().lower())


def read_id_list(path: str | os.PathLike) -> list[str]:
    """Read a ``.jpgl`` list (one image id per line, LF or CRLF); blank lines are ignored.

    A line may also be a file name (``953619.jpg``): the extension is dropped.
    """
    text, _ = read_text(path)
    ids = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            ids.append(
                os.path.splitext(line)[0] if line.lower().endswith((".jpg", ".jpeg", ".png")) else line
            )
    return ids


def seeded_split(ids: Iterable[str], fractions: Mapping[str, float], seed: int) -> dict[str, str]:
    """Assign each id to a split at random, reproducibly.

    ``fractions`` gives the share of the ``validation`` and/or ``test`` splits (each in [0, 1),
    together below 1); the rest is ``train``. The ids are sorted before shuffling, so the result
    depends only on the set of ids and the seed, not on file order. Returns ``{id: split}``.
    """
    for split, fraction in fractions.items():
        if split not in (VALIDATION, TEST):
            raise ValueError(f"seeded_split takes fractions for 'validation' and 'test', got {split!r}")
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"the {split} fraction must be in [0, 1), got {fraction}")
    if sum(fractions.values()) >= 1.0:
        raise ValueError(f"the split fractions {dict(fractions)} leave nothing for training")
    shuffled = sorted(set(ids))
    random.Random(seed).shuffle(shuffled)
    assignment: dict[str, str] = {}
    start = 0
    for split in (TEST, VALIDATION):
        count = round(len(shuffled) * fractions.get(split, 0.0))
        for image_id in shuffled[start : start + count]:
            assignment[image_id] = split
        start += count
    for image_id in shuffled[start:]:
        assignment[image_id] = TRAIN
    return assignment


def carve_validation(
    assignment: dict[str, str], fraction: float, seed: int, notes: list[str], defined_by: str
) -> None:
    """Move a seeded `fraction` of the train ids of `assignment` (`{id: split}`, changed in place) to validation.

    Refuses when `defined_by` (e.g. "the CSVs") already defined a validation split; a note records the carve.
    """
    if not fraction:
        return
    if VALIDATION in assignment.values():
        raise ValueError(f"{defined_by} already define a validation split; drop validation_fraction")
    train_ids = [image_id for image_id, split in assignment.items() if split == TRAIN]
    assignment.update(seeded_split(train_ids, {VALIDATION: fraction}, seed))
    notes.append(f"validation: seeded {fraction:.0%} of train (seed {seed})")


def split_file_order(path: str | os.PathLike) -> tuple[int, str]:
    """Sort key putting train, then validation, then test files first, then the others by name.

    Label files are read in this order, so when an id is in two files the train row is the one kept.
    """
    split = split_name_from_file(path)
    return (SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER), str(path))


def order_splits(names: Iterable[str]) -> list[str]:
    """Split names in the conventional order: train, validation, test, then any others."""
    names = list(dict.fromkeys(names))
    known = [name for name in SPLIT_ORDER if name in names]
    return known + sorted(name for name in names if name not in SPLIT_ORDER)
