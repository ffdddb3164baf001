"""Rating many images with a saved AesFormer: the library behind `aesformer-hf score`.

* Inputs: image files and folders (walked recursively, in sorted order) — `find_images` — or the rows of a
  `datasets` dataset — `DatasetInputs`, `StreamingInputs`. Every input has a position (its place in the input
  order) and a key (`path`, `image_id` or `row`) that identifies it in the output and for resuming.
* `score_inputs` decodes and preprocesses in DataLoader workers, rates batches (images with comments through the
  multimodal path, the others through the vision path, as `pipeline("image-aesthetics")` does), and hands the rows
  of each batch to a writer (`aesformer_hf.scoring_output`) as soon as they are rated. An input that cannot be read
  or rated becomes a row with an `error`; the run goes on.
* Under `accelerate launch`, each process rates its share of the inputs (contiguous shards of the inputs still to
  rate; blocks of `batch_size` rows taken in turn for a streamed dataset) into its own part file, and the main
  process merges the parts in input order (`aesformer_hf.scoring_output.merge_outputs`).
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .models.aesformer.configuration_aesformer import MULTIMODAL_MODE, VISION_MODE
from .models.aesformer.image_utils_aesformer import ImageLoadError, load_image
from .models.aesformer.pipeline_aesformer import FAST_DECODE_FACTOR
from .models.aesformer.processing_aesformer import (
    MAX_COMMENT_WORDS,
    MAX_TEXT_TOKENS,
    RELEASED_COMMENT_STYLE,
    comment_text,
    has_comments,
)
from .onnx_backend import BackendError
from .scoring_output import FILES_LAYOUT, OutputLayout, display_text, result_row

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".jfif"}
)


# -- inputs ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FileInput:
    """One image file to rate; `error` is set when it was found unusable while listing (e.g. a symlink loop)."""

    path: str
    comments: list[str] | None = None
    error: str | None = None


def find_images(paths: Sequence[str | os.PathLike]) -> list[FileInput]:
    """Files as given; folders walked recursively (following symlinks), their image files (by suffix) in sorted
    order. A folder reached again through a symlink loop, or one that cannot be listed, becomes an input with an
    `error` so that it is reported, not silently dropped. Special files (FIFOs, devices) named like images are
    kept: reading refuses them, without blocking."""
    found: list[FileInput] = []
    for raw in paths:
        path = os.fspath(raw)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if os.path.isdir(path):
            files: list[FileInput] = []
            _walk(path, files, ancestors=())
            found.extend(sorted(files, key=lambda item: item.path))
        else:
            found.append(FileInput(path))
    return found


def _walk(folder: str, found: list[FileInput], ancestors: tuple[tuple[int, int], ...]) -> None:
    try:
        info = os.stat(folder)
    except OSError as error:
        found.append(FileInput(folder, error=f"cannot open folder: {error.strerror or error}"))
        return
    identity = (info.st_dev, info.st_ino)
    if identity in ancestors:
        found.append(
            FileInput(folder, error="symbolic link loop: this folder leads back to a folder that contains it")
        )
        return
    try:
        with os.scandir(folder) as entries:
            entries = sorted(entries, key=lambda entry: entry.name)
    except OSError as error:
        found.append(FileInput(folder, error=f"cannot list folder: {error.strerror or error}"))
        return
    for entry in entries:
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
        except OSError as error:  # e.g. a symlink pointing to itself (ELOOP)
            if Path(entry.name).suffix.lower() in IMAGE_SUFFIXES or entry.is_symlink():
                found.append(FileInput(entry.path, error=f"cannot follow: {error.strerror or error}"))
            continue
        if is_dir:
            _walk(entry.path, found, ancestors + (identity,))
        elif Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
            found.append(FileInput(entry.path))


def _decode_text_file(data: bytes, name: str) -> str:
    """UTF-8 (with or without a byte order mark) or UTF-16 with one; anything else is refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as error:
            raise ValueError(f"--comments {name}: not valid UTF-16 text ({error}).") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"--comments {name}: not UTF-8 text (byte {error.start}: {data[error.start : error.start + 1]!r}); save "
            "it as UTF-8."
        ) from None


def load_comments(path: str | os.PathLike | None) -> dict[str, list[str]]:
    """Comments per image from a JSON object `{name: [comments] | "text"}` or a CSV with `image` and `comment`
    columns (one row per comment), in UTF-8 or UTF-16 with a byte order mark. Keys are matched against the full
    path, the file name and its stem. ValueError (one line) for anything else."""
    if path is None:
        return {}
    name = display_text(os.fsdecode(path))
    try:
        info = os.stat(path)
    except OSError as error:
        raise ValueError(f"--comments {name}: {error.strerror or error}.") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"--comments {name}: not a regular file.")
    try:
        with open(path, "rb") as handle:
            text = _decode_text_file(handle.read(), name)
    except OSError as error:
        raise ValueError(f"--comments {name}: {error.strerror or error}.") from None
    if Path(os.fsdecode(path)).suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ValueError(f"--comments {name}: not valid JSON ({error}).") from None
        if not isinstance(data, dict):
            raise ValueError(
                f"--comments {name}: must be a JSON object mapping image names to a comment or a list of comments, "
                f"not a JSON {type(data).__name__}."
            )
        comments = {}
        for key, value in data.items():
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
                raise ValueError(
                    f"--comments {name}: the value for {key!r} must be a string or a list of strings, got "
                    f"{json.dumps(value)[:80]}."
                )
            comments[str(key)] = value
        return comments
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        fields = reader.fieldnames
        if fields is None or not {"image", "comment"} <= set(fields):
            raise ValueError(
                f"--comments {name}: a CSV needs the columns 'image' and 'comment' (found {fields}); or pass a .json "
                "file."
            )
        comments: dict[str, list[str]] = {}
        for row in reader:
            if row["image"] is None or row["comment"] is None:
                raise ValueError(
                    f"--comments {name}: line {reader.line_num} has fewer cells than the header."
                )
            comments.setdefault(row["image"], []).append(row["comment"])
    except csv.Error as error:
        raise ValueError(f"--comments {name}: not a readable CSV ({error}).") from None
    return comments


def comments_key(path: str, comments: dict[str, list[str]]) -> str | None:
    """The key of `comments` that names the image at `path`: its full path, the file name, or the stem."""
    if not comments:
        return None
    candidate = Path(path)
    for key in (path, display_text(path), candidate.name, candidate.stem):
        if key in comments:
            return key
    return None


class FileInputs:
    """Image files as inputs: key `path`, position = index in `items`."""

    layout = FILES_LAYOUT
    streaming = False

    def __init__(self, items: Sequence[FileInput]):
        self.items = list(items)
        self._positions: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def key(self, position: int) -> str:
        return display_text(self.items[position].path)

    def keys(self) -> Iterator[str]:
        return (display_text(item.path) for item in self.items)

    def record_keys(self, position: int) -> dict:
        return {"path": self.items[position].path}

    def record(self, position: int) -> tuple[dict, object, list[str] | None, str | None]:
        item = self.items[position]
        return {"path": item.path}, item.path, item.comments, item.error

    def position(self, row: dict) -> tuple:
        if self._positions is None:
            self._positions = {}
            for index, key in enumerate(self.keys()):
                self._positions.setdefault(key, index)
        key = str(row["path"])
        index = self._positions.get(key)
        return (index, "") if index is not None else (len(self.items), key)


class DatasetInputs:
    """The rows of a (map-style) `datasets.Dataset`: key `image_id` when the column exists and its values are
    unique, else `row` (the row index); position = row index."""

    streaming = False

    def __init__(self, dataset, image_column: str, comments_column: str | None = None):
        self.dataset = dataset
        self.image_column, self.comments_column = image_column, comments_column
        self.ids = None  # the keys (strings), when the ids are unique
        self.id_values = None  # the same ids as the dataset holds them (their output column's type)
        id_type = "string"
        if "image_id" in dataset.column_names:
            values = list(dataset["image_id"])
            ids = [str(value) for value in values]
            if len(set(ids)) == len(ids):
                self.ids, self.id_values = ids, values
                id_type = _id_type(dataset.features.get("image_id"))
        keys = ("image_id", "row") if self.ids is not None else ("row",)
        self.layout = OutputLayout(keys, keys[0], id_type)
        columns = [image_column] + ([comments_column] if comments_column else [])
        if "image_id" in dataset.column_names:
            columns.append("image_id")
        self.rows = dataset.select_columns(columns)

    def __len__(self) -> int:
        return len(self.dataset)

    def key(self, position: int) -> str:
        return self.ids[position] if self.ids is not None else str(position)

    def keys(self) -> Iterator[str]:
        return iter(self.ids) if self.ids is not None else (str(i) for i in range(len(self)))

    def record_keys(self, position: int) -> dict:
        # The id as the dataset holds it: an int64 id column stays int64 in a row that failed to read, too.
        return (
            {"image_id": self.id_values[position], "row": position}
            if self.ids is not None
            else {"row": position}
        )

    def record(self, position: int):
        row = self.rows[position]
        return (
            self.record_keys(position),
            row[self.image_column],
            _comment_cell(row, self.comments_column),
            None,
        )

    def position(self, row: dict) -> tuple:
        return (int(row["row"]), "")


class StreamingInputs:
    """The rows of a streamed `datasets.IterableDataset` (length unknown): key `image_id` when the column exists,
    else `row`; position = row index."""

    streaming = True

    def __init__(self, dataset, image_column: str, comments_column: str | None = None):
        self.dataset = dataset
        self.image_column, self.comments_column = image_column, comments_column
        features = dataset.features or {}
        self.has_ids = "image_id" in (dataset.column_names or features)
        keys = ("image_id", "row") if self.has_ids else ("row",)
        self.layout = OutputLayout(keys, keys[0], _id_type(features.get("image_id")))

    def blocks(self, block_size: int) -> Iterator[list[tuple]]:
        """Lists of `(position, keys, image, comments, error)`, `block_size` rows each (the last may be shorter)."""
        position = 0
        for batch in self.dataset.iter(batch_size=block_size):
            count = len(batch[self.image_column])
            block = []
            for i in range(count):
                keys = (
                    {"image_id": batch["image_id"][i], "row": position} if self.has_ids else {"row": position}
                )
                comments = batch[self.comments_column][i] if self.comments_column else None
                block.append((position, keys, batch[self.image_column][i], comments, None))
                position += 1
            yield block

    def position(self, row: dict) -> tuple:
        return (int(row["row"]), "")


def _id_type(feature) -> str:
    dtype = getattr(feature, "dtype", None)
    return "int64" if dtype in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32") else "string"


def _comment_cell(row: dict, column: str | None):
    return row[column] if column else None


# -- preparing one input (in DataLoader workers) ---------------------------------------------------------------
@dataclass
class Preparer:
    """Decode and preprocess one input as the `image-aesthetics` pipeline does: the image processor's pixels and,
    for an image with comments, the tokenised comment text of the processor's recipe."""

    image_processor: object
    tokenizer: object | None = None
    comment_style: str = RELEASED_COMMENT_STYLE
    max_comment_words: int = MAX_COMMENT_WORDS
    # `fast_decode_size(image_processor)` decodes as `pipeline(..., fast_decode=True)` does; None: exactly.
    draft_size: tuple[int, int] | None = None

    def __call__(self, keys: dict, image, comments, error: str | None) -> dict:
        record = {"keys": keys}
        if error is not None:
            record["error"] = error
            return record
        try:
            if comments is not None and not isinstance(comments, (str, list, tuple)):
                raise ValueError(
                    f"comments must be a string or a list of strings, not {type(comments).__name__}"
                )
            pil = load_image(image, draft_size=self.draft_size)
            record["pixel_values"] = self.image_processor(pil, return_tensors="pt")["pixel_values"][0]
            if has_comments(comments, self.comment_style):
                if self.tokenizer is None:
                    raise ValueError(
                        "has comments, but this model is vision-only (no comment tower or tokenizer)"
                    )
                text = comment_text(comments, self.comment_style, self.max_comment_words)
                record["text"] = dict(self.tokenizer(text, truncation=True, max_length=MAX_TEXT_TOKENS))
        except ImageLoadError as failure:
            record["error"] = f"unreadable image: {failure.reason}"
        except Exception as failure:  # noqa: BLE001 - one bad input must not stop a run of millions
            record["error"] = f"could not be prepared: {type(failure).__name__}: {failure}"
        return record


def fast_decode_size(image_processor) -> tuple[int, int]:
    """The `draft_size` of `pipeline(..., fast_decode=True)`: JPEGs are DCT-scaled to no less than twice the model
    input's side, then resized exactly."""
    size = image_processor.size
    if isinstance(size, int):
        width = height = size
    else:  # a dict or transformers' SizeDict
        width, height = size["width"], size["height"]
    return FAST_DECODE_FACTOR * int(width), FAST_DECODE_FACTOR * int(height)


class _Blocks(torch.utils.data.Dataset):
    """Block `i` = the prepared records of the positions `blocks[i]` (a map-style source)."""

    def __init__(self, inputs, blocks: list[list[int]], preparer: Preparer):
        self.inputs, self.blocks, self.preparer = inputs, blocks, preparer

    def __len__(self) -> int:
        return len(self.blocks)

    def __getitem__(self, index: int) -> list[dict]:
        out = []
        for position in self.blocks[index]:
            try:
                keys, image, comments, error = self.inputs.record(position)
            except Exception as failure:  # noqa: BLE001 - an unreadable dataset row
                keys, image, comments = self.inputs.record_keys(position), None, None
                error = f"could not be read: {type(failure).__name__}: {failure}"
            record = self.preparer(keys, image, comments, error)
            record["position"] = position
            out.append(record)
        return out


class _StreamBlocks(torch.utils.data.IterableDataset):
    """The blocks of a streamed dataset owned by this process (`block % world_size == rank`), split among the
    DataLoader workers in turn, so that the DataLoader (which takes one block from each worker in turn) returns
    them in order. Each worker reads the whole stream and prepares only its own blocks; rows already rated
    (`done`) are left out of their block."""

    def __init__(self, inputs: StreamingInputs, block_size: int, rank: int, world_size: int, done, preparer):
        self.inputs, self.block_size = inputs, block_size
        self.rank, self.world_size, self.done, self.preparer = rank, world_size, done, preparer

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        layout = self.inputs.layout
        for number, block in enumerate(self.inputs.blocks(self.block_size)):
            if number % self.world_size != self.rank or (number // self.world_size) % workers != worker:
                continue
            out = []
            for position, keys, image, comments, error in block:
                if self.done and str(keys[layout.resume_key]) in self.done:
                    continue
                record = self.preparer(keys, image, comments, error)
                record["position"] = position
                out.append(record)
            yield out


def _identity(item):
    return item


def _worker_init(_):
    torch.set_num_threads(1)


# -- rating ----------------------------------------------------------------------------------------------------
class Rater:
    """Runs the model on prepared records: one forward pass per mode present in a block.

    `forward`: what rates a batch instead of the model itself, called as the model is (e.g. an
    `aesformer_hf.onnx_backend.OnnxRuntimeModel`); a `BackendError` it raises stops the run.
    """

    def __init__(
        self,
        model,
        tokenizer=None,
        device="cpu",
        dtype: torch.dtype | None = None,
        compile: bool = False,
        forward: Callable | None = None,
    ):
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.tokenizer = tokenizer
        self.dtype = dtype if dtype not in (None, torch.float32) else None
        self.id2label = model.config.id2label
        if forward is not None:
            self.forward = forward
        else:
            self.forward = torch.compile(self.model, dynamic=True) if compile else self.model

    def _run(self, records: list[dict], mode: str) -> list[dict]:
        batch = {"pixel_values": torch.stack([r["pixel_values"] for r in records])}
        if mode == MULTIMODAL_MODE:
            batch.update(self.tokenizer.pad([r["text"] for r in records], padding=True, return_tensors="pt"))
        batch = {name: value.to(self.device) for name, value in batch.items()}
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None),
        ):
            outputs = self.forward(**batch)
        scores = outputs.score.float().cpu().tolist()
        distributions = outputs.distribution.float().cpu().tolist()
        labels = outputs.label.cpu().tolist()
        return [
            {"score": s, "distribution": d, "label": self.id2label[int(label)], "mode": mode}
            for s, d, label in zip(scores, distributions, labels)
        ]

    def rate(self, records: list[dict]) -> list[dict]:
        """Output rows for `records`, in their order."""
        results: dict[int, dict] = {}
        errors: dict[int, str] = {i: r["error"] for i, r in enumerate(records) if "error" in r}
        for mode in (MULTIMODAL_MODE, VISION_MODE):
            chosen = [
                i
                for i, r in enumerate(records)
                if i not in errors and ("text" in r) == (mode == MULTIMODAL_MODE)
            ]
            if not chosen:
                continue
            try:
                results.update(zip(chosen, self._run([records[i] for i in chosen], mode)))
            except BackendError:
                raise  # not an input's fault: the backend cannot rate at all
            except Exception:  # noqa: BLE001 - rate one by one to isolate the input that fails
                for i in chosen:
                    try:
                        results[i] = self._run([records[i]], mode)[0]
                    except Exception as failure:  # noqa: BLE001
                        errors[i] = f"could not be rated: {type(failure).__name__}: {failure}"
        return [result_row(r["keys"], results.get(i), errors.get(i)) for i, r in enumerate(records)]


# -- the run ---------------------------------------------------------------------------------------------------
@dataclass
class ScoringSummary:
    rated: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


def shard(items: Sequence[int], rank: int, world_size: int) -> list[int]:
    """Contiguous share `rank` of `items` (the first shares one longer when they do not divide evenly)."""
    size, extra = divmod(len(items), world_size)
    start = rank * size + min(rank, extra)
    return list(items[start : start + size + (1 if rank < extra else 0)])


def score_inputs(
    inputs,
    rater: Rater,
    preparer: Preparer,
    write: Callable[[list[dict]], None],
    *,
    todo: Sequence[int] | None = None,
    done: set[str] | None = None,
    batch_size: int = 16,
    num_workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
    progress: bool = True,
    report: Callable[[str, str], None] | None = None,
) -> ScoringSummary:
    """Rate `inputs` (`FileInputs`, `DatasetInputs` or `StreamingInputs`) and hand the rows of every batch to
    `write` as soon as they are rated. `todo`: positions still to rate, this process's share (map-style inputs;
    default all); `done`: keys to leave out (streamed inputs; this process takes its blocks itself). `report(key,
    reason)` is called for every input that could not be rated."""
    from tqdm.auto import tqdm

    if inputs.streaming:
        dataset = _StreamBlocks(inputs, batch_size, rank, world_size, done or set(), preparer)
        total = None
    else:
        todo = list(range(len(inputs))) if todo is None else list(todo)
        blocks = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]
        dataset = _Blocks(inputs, blocks, preparer)
        total = len(todo)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_identity,
        worker_init_fn=_worker_init if num_workers else None,
    )
    summary = ScoringSummary()
    with tqdm(total=total, desc="Rating", unit="img", disable=not progress, dynamic_ncols=True) as bar:
        for records in loader:
            if not records:
                continue
            rows = rater.rate(records)
            for row in rows:
                if row["error"] is None:
                    summary.rated += 1
                else:
                    key = str(row[inputs.layout.key_columns[0]])
                    summary.skipped.append((key, row["error"]))
                    if report is not None:
                        report(key, row["error"])
            write(rows)
            bar.update(len(rows))
    return summary


def default_threads(num_workers: int) -> int:
    """Torch threads per process that do not oversubscribe the CPUs: the CPUs this process may use that are idle
    (the 1-minute load average counts the busy ones), divided among this machine's processes (`LOCAL_WORLD_SIZE`,
    set by `accelerate launch`), minus the DataLoader workers; at least 1.

    On a busy machine every extra thread costs: torch's threads wait for each other at every operation, so one
    that is descheduled stalls the rest (2 threads on 2 busy cores rated 2.4x slower than 1 thread).
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        idle = cores - int(round(os.getloadavg()[0]))
    except (AttributeError, OSError):
        idle = cores
    local_processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))
    return max(1, min(cores, max(idle, 0)) // local_processes - num_workers)
