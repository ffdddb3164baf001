"""Loading a model for a command: local folders and Hub ids, never prompting, never silently partial."""

from __future__ import annotations

import contextlib
import json
import os


class CommandError(ValueError):
    """A user's mistake a command reports as one line (exit code 2), without a traceback."""


REMOTE_CODE_REFUSAL = "that code runs only with --trust-remote-code (read it first)"


def add_model_loading_options(parser, action: str = "run") -> None:
    """`--allow-partial-weights` and `--trust-remote-code`, worded the same in every command that loads a model.

    `action` completes the first help text: "rate", "export", "load", ...
    """
    parser.add_argument(
        "--allow-partial-weights",
        action="store_true",
        help=f"{action} even when the folder's weights leave parameters missing or hold unexpected ones "
        "(by default: refused, naming them)",
    )
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let a tokenizer/processor that ships its own code run it (the model always loads with this "
        "package's classes; nothing is ever asked on stdin); without it such a folder is refused",
    )


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0].strip() if text else type(error).__name__


def is_remote_code_refusal(error: BaseException) -> bool:
    """transformers' ValueError for a repository whose code would have to run (`trust_remote_code=False`)."""
    return isinstance(error, ValueError) and "trust_remote_code" in str(error) and "custom code" in str(error)


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' loading report and progress bars while loading: the command reports problems in one line itself."""
    import logging

    from transformers.utils import logging as transformers_logging

    package_logger = logging.getLogger("aesformer_hf")  # e.g. the note on loading a vision-only model
    package_level = package_logger.level
    verbosity = transformers_logging.get_verbosity()
    progress_bars = transformers_logging.is_progress_bar_enabled()
    package_logger.setLevel(logging.ERROR)
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        package_logger.setLevel(package_level)
        if progress_bars:
            transformers_logging.enable_progress_bar()


def _weight_files(name_or_path: str) -> list[str]:
    """The weight files of a local folder, or of a Hub repository already in the cache."""
    if os.path.isdir(name_or_path):
        return sorted(
            os.path.join(name_or_path, name)
            for name in os.listdir(name_or_path)
            if name.endswith((".safetensors", ".bin")) and os.path.isfile(os.path.join(name_or_path, name))
        )
    try:
        from huggingface_hub import try_to_load_from_cache

        found = [
            try_to_load_from_cache(name_or_path, name) for name in ("model.safetensors", "pytorch_model.bin")
        ]
    except Exception:  # not a valid repo id, no cache: nothing to inspect
        return []
    return [path for path in found if isinstance(path, str)]


def describe_damaged_weights(name_or_path: str) -> str | None:
    """'<file>: <what is wrong>' for the first weight file of `name_or_path` that cannot be read, else None."""
    for path in _weight_files(name_or_path):
        try:
            if path.endswith(".safetensors"):
                from safetensors import safe_open

                with safe_open(path, framework="pt") as handle:
                    handle.keys()
            else:
                import torch

                torch.load(path, map_location="meta", weights_only=True)
        except Exception as error:
            kind = "safetensors" if path.endswith(".safetensors") else "PyTorch (.bin)"
            return (
                f"{path} is not a readable {kind} file ({first_line(error)}, {os.path.getsize(path)} bytes): it "
                "is truncated or damaged, e.g. by an interrupted download or copy; save or download it again"
            )
    return None


def load_aesthetics_model(
    name_or_path: str,
    *,
    vision_only: bool = False,
    trust_remote_code: bool = False,
    allow_partial: bool = False,
):
    """`AesformerForAesthetic.from_pretrained(name_or_path)` for a command.

    Refuses (with `CommandError`, one line) a path that is neither a folder nor a readable Hub repository, a
    config whose `model_type` is not `aesformer`, weights that leave parameters missing, hold unexpected ones or
    have other shapes (unless `allow_partial`, which warns and names them), and an unreadable weight file (named,
    with what is wrong with it). Code shipped with a model never runs here: the package's own classes load it, so
    `trust_remote_code` only matters to the tokenizer/processor loader (`load_processor`). transformers' loading
    report is silenced while loading; the problems are reported here instead.
    """
    from .. import AesformerForAesthetic

    name_or_path = os.fspath(name_or_path)
    expected = "expected an AesFormer model folder or a Hub repo id (offline: one already in the Hub cache)"
    config_file = os.path.join(name_or_path, "config.json")
    if os.path.isdir(name_or_path):
        if not os.path.isfile(config_file):
            raise CommandError(
                f"--model {name_or_path}: no config.json there; expected an AesFormer model folder."
            )
        try:
            with open(config_file, encoding="utf-8") as handle:
                config_dict = json.load(handle)
        except (OSError, ValueError) as error:
            raise CommandError(f"--model {name_or_path}: config.json is not valid JSON ({error}).") from None
    elif os.path.exists(name_or_path):
        raise CommandError(f"--model {name_or_path}: this is a file; {expected}.")
    elif (
        name_or_path.startswith((".", "/", "~"))
        or name_or_path.count("/") > 1
        or os.sep != "/"
        and os.sep in name_or_path
    ):
        raise CommandError(f"--model {name_or_path}: no such folder; {expected}.")
    else:
        from transformers import PretrainedConfig

        try:
            with _quiet_transformers():
                config_dict, _ = PretrainedConfig.get_config_dict(name_or_path)
        except (OSError, ValueError) as error:
            raise CommandError(
                f"--model {name_or_path}: no such folder, and no Hub repo to read ({first_line(error)}); "
                f"{expected}."
            ) from None
    model_type = config_dict.get("model_type") if isinstance(config_dict, dict) else None
    if model_type != "aesformer":
        shipped = (
            " and ships code of its own (auto_map), which was not run" if "auto_map" in config_dict else ""
        )
        raise CommandError(
            f"--model {name_or_path}: config.json says model_type={model_type!r}{shipped}; expected 'aesformer'."
        )
    try:
        with _quiet_transformers():
            model, info = AesformerForAesthetic.from_pretrained(
                name_or_path, vision_only=vision_only, output_loading_info=True, ignore_mismatched_sizes=True
            )
    except Exception as error:  # safetensors and torch raise their own types for damaged files
        damaged = describe_damaged_weights(name_or_path)
        if damaged:
            raise CommandError(f"--model {name_or_path}: {damaged}.") from None
        if isinstance(error, OSError):
            raise CommandError(f"--model {name_or_path}: {first_line(error)}") from None
        raise CommandError(
            f"--model {name_or_path}: the weights could not be read ({type(error).__name__}: {first_line(error)})."
        ) from None
    problems = {
        kind: sorted(info.get(kind) or [], key=str)
        for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")
    }
    if any(problems.values()):
        details = "; ".join(
            f"{kind.replace('_', ' ')} ({len(keys)}): {', '.join(map(str, keys[:5]))}{' ...' if len(keys) > 5 else ''}"
            for kind, keys in problems.items()
            if keys
        )
        if not allow_partial:
            raise CommandError(
                f"--model {name_or_path}: the weights do not fit this AesFormer ({details}). They belong to another "
                "model, or the file is incomplete; --allow-partial-weights loads them anyway."
            )
        from transformers.utils import logging

        logging.get_logger(__name__).warning(
            f"--model {name_or_path}: loading partial weights (--allow-partial-weights); these parameters keep "
            f"their random initialisation or were dropped: {details}."
        )
    return model.eval()


def load_processor(name_or_path: str, trust_remote_code: bool = False):
    """The saved `AesformerProcessor`, else its image processor alone, else None.

    A tokenizer or processor that ships code of its own (an `auto_map` transformers has no class for) is refused
    with `CommandError` unless `trust_remote_code`; transformers is never left to prompt for it.
    """
    from ..models.aesformer.image_processing_aesformer import AesformerImageProcessor
    from ..models.aesformer.processing_aesformer import AesformerProcessor

    for loader, options in (
        (AesformerProcessor, {"trust_remote_code": bool(trust_remote_code)}),
        (AesformerImageProcessor, {}),
    ):
        try:
            with _quiet_transformers():
                return loader.from_pretrained(name_or_path, **options)
        except ValueError as error:
            if is_remote_code_refusal(error):
                raise CommandError(
                    f"--model {name_or_path}: its tokenizer or processor ships code of its own; {REMOTE_CODE_REFUSAL}."
                ) from None
            continue
        except (OSError, TypeError, KeyError):
            continue
    return None


def load_model_and_processor(
    name_or_path: str,
    device: str | None = None,
    *,
    trust_remote_code: bool = False,
    allow_partial_weights: bool = False,
):
    """`(model, processor)` for a command that rates: the model as `load_aesthetics_model` loads it (strict, never
    running shipped code), on `device` when given (checked first), and the processor saved with it.

    Raises `CommandError` (one line) for a bad `device`, a folder or repo that is not a loadable AesFormer, weights
    that do not fit (unless `allow_partial_weights`), a tokenizer shipped as code (unless `trust_remote_code`) and
    a folder without a saved processor.
    """
    if device is not None:
        device = check_device(device)
    # The model first: it refuses a folder that is not an AesFormer before anything else of it is read.
    model = load_aesthetics_model(
        name_or_path, trust_remote_code=trust_remote_code, allow_partial=allow_partial_weights
    )
    processor = load_processor(name_or_path, trust_remote_code=trust_remote_code)
    if processor is None:
        raise CommandError(
            f"--model {name_or_path}: no processor saved there (processor_config.json or preprocessor_config.json); "
            "expected a folder written by AesformerProcessor.save_pretrained."
        )
    return (model if device is None else model.to(device)), processor


def check_device(name: str, option: str = "--device") -> str:
    """`name` as a torch device string, or `CommandError` (one line) when it is not one or not present here."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError) as error:
        raise CommandError(
            f"{option} {name}: not a torch device ({first_line(error)}); expected e.g. cpu, cuda, cuda:1 or mps."
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = "" if torch.version.cuda else " (this PyTorch is built without CUDA)"
            raise CommandError(f"{option} {name}: no CUDA GPU is available here{build}; use --device cpu.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise CommandError(
                f"{option} {name}: there is no such GPU here ({torch.cuda.device_count()} CUDA device(s): "
                f"cuda:0..cuda:{torch.cuda.device_count() - 1})."
            )
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise CommandError(f"{option} {name}: Apple MPS is not available here; use --device cpu.")
    elif device.type != "cpu":
        try:
            torch.empty(0, device=device)
        except Exception as error:  # backends raise RuntimeError, AssertionError, ...
            raise CommandError(
                f"{option} {name}: this device cannot be used here ({first_line(error)}); use --device cpu."
            ) from None
    return str(device)
