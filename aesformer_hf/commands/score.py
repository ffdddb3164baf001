"""`aesformer-hf score`: rate image files, folders or a `datasets` dataset with a saved AesFormer.

The library is `aesformer_hf.scoring` (inputs, batching, rating) and `aesformer_hf.scoring_output` (writing,
resuming, merging); both are imported only when the command runs. Exit codes: 0 every input rated, 1 some skipped
(each reported on stderr and, with --output, as a row with an `error`), 2 a usage or model error (one line).
"""

from __future__ import annotations

import argparse
import os
import sys

from .loading import add_model_loading_options

DTYPES = ("float32", "bfloat16", "float16")
# `aesformer_hf.onnx_backend.BACKENDS` (a test keeps them equal): this parser is built for `--help` without torch.
BACKENDS = ("auto", "torch", "onnxruntime")
STDOUT_FORMATS = ("table", "json", "jsonl", "csv")
# How long the processes of `accelerate launch` wait for each other (at the start and at the end of a run, whose
# shares may take hours): far longer than torch.distributed's default of 30 minutes.
PROCESS_GROUP_TIMEOUT_HOURS = 72


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "score",
        help="Rate image files, folders or a datasets dataset with a saved AesFormer.",
        description="Rate images: files and folders (walked recursively), or the rows of a datasets dataset "
        "(--dataset). Images with comments are rated multimodally (MIAA), the others from pixels only (VIAA). "
        "With --output, rows are written as they are rated and --resume continues an interrupted run; under "
        "`accelerate launch` the processes share the inputs. Exit code 0: all rated; 1: some inputs skipped "
        "(reported on stderr and as rows with an error); 2: a usage or model error.",
    )
    parser.add_argument("paths", nargs="*", help="image files and/or folders")
    parser.add_argument("--model", required=True, help="a saved AesFormer folder or Hub id")
    parser.add_argument(
        "--comments",
        help="comments per image file: JSON {image: [comments]} or CSV with columns image,comment",
    )
    data = parser.add_argument_group("rating a datasets dataset instead of files")
    data.add_argument(
        "--dataset",
        metavar="NAME_OR_PATH",
        help="a prepare-dataset or save_to_disk folder, a .parquet/.arrow/.csv/.json(l) file, or a Hub id",
    )
    data.add_argument("--split", help="the split to rate (needed when the dataset has several)")
    data.add_argument("--image-column", default="image", help="column of the images (default: image)")
    data.add_argument(
        "--comments-column", help="column of the comments (default: none, all rated from pixels)"
    )
    data.add_argument("--streaming", action="store_true", help="stream the dataset instead of loading it")
    data.add_argument(
        "--cache-dir",
        help="cache folder (default: the Hugging Face cache): datasets' cache, and the ONNX exports of "
        "--backend onnxruntime (under aesformer-hf/onnx/)",
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--output", metavar="FILE", help="write rows here as they come: .jsonl, .csv or .parquet"
    )
    out.add_argument(
        "--resume", action="store_true", help="continue --output: skip the inputs it already holds"
    )
    out.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    out.add_argument(
        "--html",
        metavar="FILE",
        help="also write an HTML report of the ratings here when done (as `aesformer-hf report` does)",
    )
    out.add_argument(
        "--format",
        choices=STDOUT_FORMATS,
        default=None,
        help="what to print without --output (default: table)",
    )
    run = parser.add_argument_group("running")
    run.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default 16)")
    run.add_argument(
        "--num-workers", type=int, default=0, help="DataLoader processes that decode images (default 0: none)"
    )
    run.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads per process (default: the CPUs divided among this machine's processes, minus the "
        "workers)",
    )
    run.add_argument(
        "--device",
        default="auto",
        help="auto (CUDA when present, else CPU), cpu, cuda, cuda:1, ... (default auto)",
    )
    run.add_argument(
        "--dtype", choices=DTYPES, default="float32", help="autocast to this type (default float32)"
    )
    run.add_argument("--compile", action="store_true", help="torch.compile the model first")
    run.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="what runs the model: torch, or onnxruntime (CPU, float32; the model is exported to ONNX once per "
        "path and cached). auto (default): onnxruntime on the CPU in float32 without --compile when the [onnx] "
        "extra is installed (1.7x as fast, the same scores), else torch",
    )
    run.add_argument(
        "--fast-decode",
        action="store_true",
        help="decode large JPEGs at 1/2..1/8 size before the exact resize (several times faster; changes the "
        "input by a few levels, like pipeline(..., fast_decode=True))",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_model_loading_options(parser, "rate")
    parser.set_defaults(func=run_score)
    return parser


def run_score(args: argparse.Namespace) -> int:
    """0 all rated, 1 some inputs skipped, 2 a usage or model error (one line on stderr)."""
    from .loading import CommandError

    try:
        return _run(args)
    except CommandError as error:
        print(f"score: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("score: interrupted; with --output, --resume continues where it stopped.", file=sys.stderr)
        return 130


def _check_arguments(args) -> str | None:
    """The output format (None: stdout); CommandError for contradictory options."""
    from .loading import CommandError

    if bool(args.paths) == bool(args.dataset):
        raise CommandError("give image files/folders or --dataset (one of the two).")
    if args.dataset:
        if args.comments:
            raise CommandError(
                "--comments is for image files; a dataset's comments come from --comments-column."
            )
    else:
        for option in ("split", "comments_column"):
            if getattr(args, option):
                raise CommandError(f"--{option.replace('_', '-')} applies to --dataset only.")
        if args.streaming:
            raise CommandError("--streaming applies to --dataset only.")
    for option, minimum in (("batch_size", 1), ("num_workers", 0), ("threads", 1)):
        value = getattr(args, option)
        if value is not None and value < minimum:
            raise CommandError(f"--{option.replace('_', '-')} must be at least {minimum}, got {value}.")
    if args.html is not None:
        from .report import check_html_path

        check_html_path(args.html, "--html")
    if args.output is None:
        if args.resume or args.overwrite:
            raise CommandError("--resume and --overwrite need --output.")
        return None
    from ..scoring_output import output_format

    if args.format is not None:
        raise CommandError("--format is for printing; with --output the file's suffix chooses the format.")
    if args.resume and args.overwrite:
        raise CommandError("--resume continues --output, --overwrite replaces it: give one of them.")
    try:
        fmt = output_format(args.output)
    except ValueError as error:
        raise CommandError(str(error)) from None
    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):
        raise CommandError(f"--output {args.output}: the folder {folder} does not exist.")
    if os.path.isdir(args.output):
        raise CommandError(f"--output {args.output} is a folder; give a file name ending with .{fmt}.")
    return fmt


def _distributed_state(device: str):
    """accelerate's PartialState when launched with several processes (gloo on CPU), else None."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return None
    from datetime import timedelta

    import torch
    from accelerate import PartialState

    # Without a GPU, accelerate joins the processes only when told to use the CPU (else each runs alone).
    cpu = device == "cpu" or not torch.cuda.is_available()
    state = PartialState(cpu=cpu, timeout=timedelta(hours=PROCESS_GROUP_TIMEOUT_HOURS))
    if state.num_processes != int(os.environ["WORLD_SIZE"]):
        raise RuntimeError(
            f"accelerate started {os.environ['WORLD_SIZE']} processes but this one joined {state.num_processes}"
        )
    return state


def _choose_device(name: str, state) -> str:
    import torch

    from .loading import check_device

    if name == "auto":
        if state is not None:
            return str(state.device)
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = check_device(name)
    if state is not None and device == "cuda":
        return str(state.device) if state.device.type == "cuda" else device
    return device


def _choose_backend(args, device: str, is_main: bool) -> str:
    """`"torch"` or `"onnxruntime"` for `--backend`; CommandError (one line) for a contradictory choice."""
    from ..onnx_backend import onnxruntime_available, require_onnxruntime
    from ..utils.optional import MissingOptionalDependency
    from .loading import CommandError

    if args.backend == "torch":
        return "torch"
    conflicts = []
    if not device.startswith("cpu"):
        conflicts.append(f"--device {device}")
    if args.dtype != "float32":
        conflicts.append(f"--dtype {args.dtype}")
    if args.compile:
        conflicts.append("--compile")
    if args.backend == "onnxruntime":
        if conflicts:
            raise CommandError(
                f"--backend onnxruntime rates in float32 on the CPU: drop {' and '.join(conflicts)}, or use "
                "--backend torch."
            )
        try:
            require_onnxruntime()
        except MissingOptionalDependency as error:
            raise CommandError(str(error)) from None
        return "onnxruntime"
    if conflicts:
        return "torch"
    if not onnxruntime_available():
        if is_main:
            print(
                "score: rating with PyTorch; the faster CPU backend (onnxruntime, the same scores) needs "
                "pip install 'aesformer-hf[onnx]'",
                file=sys.stderr,
            )
        return "torch"
    return "onnxruntime"


def _onnxruntime_model(args, model, processor, threads: int):
    from tqdm.auto import tqdm

    from ..onnx_backend import OnnxRuntimeModel

    cache_dir = None
    if args.cache_dir is not None:
        cache_dir = os.path.join(args.cache_dir, "aesformer-hf", "onnx")

    def log(line: str) -> None:
        tqdm.write(f"score: {line}", file=sys.stderr)

    return OnnxRuntimeModel(
        model,
        processor,
        threads=threads,
        cache_dir=cache_dir,
        fallback=args.backend == "auto",
        log=log,
    )


def _load_dataset_inputs(args):
    """`DatasetInputs` or `StreamingInputs` for --dataset; CommandError (one line) for anything unusable."""
    from .loading import CommandError

    try:
        import datasets
    except ImportError as error:  # pragma: no cover - a dependency of the package
        raise CommandError(f"--dataset needs the datasets package ({error}).") from None
    from ..scoring import DatasetInputs, StreamingInputs

    name = args.dataset
    options = {"streaming": args.streaming, "cache_dir": args.cache_dir}
    if args.no_progress:  # datasets' own bars (e.g. "Generating train split") too
        datasets.disable_progress_bars()
    builder = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json", ".arrow": "arrow"}
    suffix = os.path.splitext(name)[1].lower()
    try:
        if os.path.isfile(name):
            if suffix not in builder:
                raise CommandError(f"--dataset {name}: a file must be .parquet, .arrow, .csv or .json(l).")
            loaded = datasets.load_dataset(builder[suffix], data_files=name, **options)
        elif os.path.isdir(name) and any(
            os.path.isfile(os.path.join(name, marker)) for marker in ("dataset_dict.json", "state.json")
        ):
            loaded = datasets.load_from_disk(name)
            if args.streaming:
                loaded = (
                    datasets.IterableDatasetDict({k: v.to_iterable_dataset() for k, v in loaded.items()})
                    if isinstance(loaded, datasets.DatasetDict)
                    else loaded.to_iterable_dataset()
                )
        else:
            # A Hub id is "name" or "org/name"; anything else that is not here is a path that does not exist, and
            # so is a data file's name (a Hub id ending in .parquet would be an odd repo name).
            looks_like_path = (
                name.startswith((".", "/", "~"))
                or name.count("/") > 1
                or (os.sep != "/" and os.sep in name)
                or suffix in builder
            )
            if not os.path.isdir(name) and looks_like_path:
                raise CommandError(f"--dataset {name}: no such file or folder.")
            loaded = datasets.load_dataset(name, **options)
    except CommandError:
        raise
    except Exception as error:  # noqa: BLE001 - datasets raises many types (offline, missing, malformed)
        text = str(error).strip().splitlines()
        raise CommandError(
            f"--dataset {name}: {type(error).__name__}: {text[0] if text else 'cannot load'}"
        ) from None
    if isinstance(loaded, (datasets.DatasetDict, datasets.IterableDatasetDict)):
        splits = list(loaded)
        if args.split is None:
            if len(splits) != 1:
                raise CommandError(
                    f"--dataset {name} has the splits {', '.join(splits)}: choose one with --split."
                )
            args.split = splits[0]
        if args.split not in loaded:
            raise CommandError(f"--dataset {name} has no split {args.split!r} (it has {', '.join(splits)}).")
        loaded = loaded[args.split]
    columns = loaded.column_names or list((loaded.features or {}).keys())
    for option, column in (
        ("--image-column", args.image_column),
        ("--comments-column", args.comments_column),
    ):
        if column is not None and column not in columns:
            raise CommandError(
                f"--dataset {name}: no column {column!r} for {option} (columns: {', '.join(columns)})."
            )
    from ..models.aesformer.image_utils_aesformer import images_left_encoded

    loaded = images_left_encoded(loaded)  # decoded in the DataLoader workers, by the package's loader
    kind = StreamingInputs if args.streaming else DatasetInputs
    return kind(loaded, args.image_column, args.comments_column)


def _file_inputs(args):
    from ..scoring import (
        IMAGE_SUFFIXES,
        FileInput,
        FileInputs,
        comments_key,
        find_images,
        load_comments,
    )
    from .loading import CommandError

    try:
        comments = load_comments(args.comments)
    except ValueError as error:
        raise CommandError(str(error)) from None
    for path in args.paths:
        # A missing name that is not an image file's was meant as a folder (or is a typo of one): stop before the
        # run, rather than rate nothing and report one unreadable "image". A missing image file is reported and
        # skipped like any unreadable one, so that one stale name in a long list is not fatal.
        if not os.path.lexists(path) and (
            os.path.splitext(path)[1].lower() not in IMAGE_SUFFIXES or path.endswith(("/", os.sep))
        ):
            raise CommandError(f"{path}: no such file or folder.")
    found = find_images(args.paths)
    if not found:
        raise CommandError(f"no images found under {', '.join(args.paths)}.")
    # The same file named twice is rated once, in --output and on stdout alike.
    unique: dict[str, FileInput] = {}
    for item in found:
        unique.setdefault(item.path, item)
    if len(unique) < len(found):
        repeated = len(found) - len(unique)
        print(f"score: {repeated} input(s) named more than once, rated once.", file=sys.stderr)
    keys = {path: comments_key(path, comments) for path in unique}  # None: no comments for that image
    if comments:
        # A key that names no image is most likely a typo: its comments would silently go unused.
        used = set(keys.values())
        unused = [key for key in comments if key not in used]
        if unused:
            shown = ", ".join(repr(key) for key in unused[:3]) + (", ..." if len(unused) > 3 else "")
            print(
                f"score: --comments {args.comments}: {len(unused)} of {len(comments)} key(s) name no image to rate "
                f"(matched by path, file name or stem): {shown}",
                file=sys.stderr,
            )
    return FileInputs(
        FileInput(path, None if keys[path] is None else comments[keys[path]], item.error)
        for path, item in unique.items()
    )


def _plan(args, inputs) -> dict:
    """What this run rates: `todo` (positions, map-style inputs) or `done` (keys, streamed inputs)."""
    from ..scoring_output import done_keys, find_parts, merge_outputs
    from .loading import CommandError

    plan: dict = {}
    done: set[str] = set()
    if args.output is not None:
        parts = find_parts(args.output)
        exists = os.path.exists(args.output) or bool(parts)
        if exists and not (args.resume or args.overwrite):
            raise CommandError(
                f"--output {args.output} already exists{' (with part files of an interrupted run)' if parts else ''}: "
                "pass --resume to continue it or --overwrite to replace it."
            )
        if args.overwrite:
            for path in [args.output, *parts]:
                if os.path.exists(path):
                    os.remove(path)
        elif exists:
            try:
                # An interrupted run: fold its rows into FILE first, so that every new part starts empty.
                if parts:
                    merge_outputs(args.output, inputs.layout, inputs.position)
                done = done_keys(args.output, inputs.layout)
            except (ValueError, OSError) as error:
                raise CommandError(f"--resume: {error}") from None
    if inputs.streaming:
        plan["done"] = done
    else:
        plan["todo"] = [i for i, key in enumerate(inputs.keys()) if key not in done] if done else None
    plan["already_done"] = len(done)
    return plan


def _run(args: argparse.Namespace) -> int:
    from .loading import CommandError

    _check_arguments(args)
    import torch

    state = None
    try:
        state = _distributed_state("cpu" if args.device == "cpu" else "auto")
    except Exception as error:  # noqa: BLE001
        raise CommandError(f"cannot join the other processes: {error}") from None
    rank, world_size = (state.process_index, state.num_processes) if state is not None else (0, 1)
    is_main = rank == 0
    if world_size > 1 and args.output is None:
        raise CommandError(
            "with several processes, give --output (each process writes its part, then they merge)."
        )
    from ..models.aesformer.processing_aesformer import MAX_COMMENT_WORDS, RELEASED_COMMENT_STYLE
    from ..scoring import (
        FileInputs,
        Preparer,
        Rater,
        default_threads,
        fast_decode_size,
        score_inputs,
        shard,
    )

    threads = args.threads or default_threads(args.num_workers)
    torch.set_num_threads(threads)
    device = _choose_device(args.device, state)
    backend = _choose_backend(args, device, is_main)

    from ..scoring_output import PartWriter, StdoutPrinter, display_width, merge_outputs, part_path, printable
    from .loading import load_model_and_processor

    # Inputs before the model, so that a mistyped folder or dataset is reported at once: the main process lists
    # files (the others get its list), every process opens a dataset itself.
    inputs = None
    error = None
    try:
        if args.dataset:
            inputs = _load_dataset_inputs(args)
        elif is_main:
            inputs = _file_inputs(args)
    except CommandError as failure:
        error = str(failure)
    if state is not None:
        from accelerate.utils import broadcast_object_list

        shared = [error, inputs.items if isinstance(inputs, FileInputs) and is_main else None]
        broadcast_object_list(shared, from_process=0)
        error = shared[0] or error  # the main process's error, else this one's own
        if not args.dataset and not is_main and error is None:
            inputs = FileInputs(shared[1])
    if error is not None:
        raise CommandError(error)

    model, processor = load_model_and_processor(
        args.model, trust_remote_code=args.trust_remote_code, allow_partial_weights=args.allow_partial_weights
    )
    image_processor = getattr(processor, "image_processor", processor)
    tokenizer = getattr(processor, "tokenizer", None)
    vision_only = bool(getattr(model.config, "is_vision_only", False)) or tokenizer is None
    if vision_only and (args.comments or args.comments_column):
        raise CommandError(
            f"--model {args.model} is vision-only (no comment tower or tokenizer): drop --comments/--comments-column."
        )

    # What is left to rate, once the model has loaded: --overwrite removes the old output only then.
    plan = None
    if is_main:
        try:
            plan = _plan(args, inputs)
        except CommandError as failure:
            error = str(failure)
    if state is not None:
        shared = [error, plan]
        broadcast_object_list(shared, from_process=0)
        error, plan = shared
    if error is not None:
        raise CommandError(error)

    preparer = Preparer(
        image_processor,
        None if vision_only else tokenizer,
        getattr(processor, "comment_style", RELEASED_COMMENT_STYLE),
        getattr(processor, "max_comment_words", MAX_COMMENT_WORDS),
        fast_decode_size(image_processor) if args.fast_decode else None,
    )
    dtype = getattr(torch, args.dtype)
    forward = _onnxruntime_model(args, model, processor, threads) if backend == "onnxruntime" else None
    rater = Rater(model, tokenizer, device=device, dtype=dtype, compile=args.compile, forward=forward)

    layout = inputs.layout

    def report(key: str, reason: str) -> None:
        from tqdm.auto import tqdm

        tqdm.write(f"skipped {printable(key)}: {reason}", file=sys.stderr)

    if args.output is not None:
        writer = PartWriter(part_path(args.output, rank, world_size), layout)
    else:
        width = (
            max((display_width(printable(key)) for key in inputs.keys()), default=4)
            if not inputs.streaming
            else 12
        )
        writer = StdoutPrinter(sys.stdout, args.format or "table", layout, key_width=min(width, 100))
    todo = None
    if not inputs.streaming:
        todo = plan["todo"] if plan["todo"] is not None else range(len(inputs))
        todo = shard(todo, rank, world_size)
    write = writer.write
    printed: list[dict] = []  # the rows of --html when they are only printed
    if args.html is not None and args.output is None:

        def write(rows, _print=writer.write):
            printed.extend(rows)
            _print(rows)

    from ..onnx_backend import BackendError

    try:
        summary = score_inputs(
            inputs,
            rater,
            preparer,
            write,
            todo=todo,
            done=plan.get("done"),
            batch_size=args.batch_size,
            num_workers=args.num_workers,
            rank=rank,
            world_size=world_size,
            progress=is_main and not args.no_progress,
            report=report,
        )
    except BackendError as error:  # e.g. --backend onnxruntime and the export failed
        raise CommandError(str(error)) from None
    finally:
        writer.close()
    if state is not None:
        state.wait_for_everyone()
    if args.output is None:
        print(f"Rated {summary.rated} image(s), skipped {len(summary.skipped)}.", file=sys.stderr)
        _write_html(args, printed)
        return 1 if summary.skipped else 0
    if not is_main:
        return 0
    merged = merge_outputs(args.output, layout, inputs.position)
    earlier = f" ({plan['already_done']} from earlier runs)" if plan["already_done"] else ""
    print(
        f"Wrote {merged.rows} row(s){earlier} to {args.output}: {merged.rows - merged.errors} rated, "
        f"{merged.errors} skipped.",
        file=sys.stderr,
    )
    _write_html(args, None)
    return 1 if merged.errors else 0


def _write_html(args, rows: list[dict] | None) -> None:
    """--html: the report of the finished output (`rows` when they were only printed)."""
    if args.html is None:
        return
    from ..report import write_report, write_report_from_scores
    from .loading import CommandError
    from .report import print_summary

    try:
        if rows is None:
            summary = write_report_from_scores(args.output, args.html, model_name=args.model)
        else:
            summary = write_report(rows, args.html, model_name=args.model)
    except (ValueError, OSError) as error:
        raise CommandError(f"--html {args.html}: {error}") from None
    print_summary(summary, args.html)
