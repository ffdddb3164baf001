"""Loading a model for a command: local folders and Hub ids, never prompting, never silently partial."""

from __future__ import annotations

import json
import os


class CommandError(Exception):
    """A user's mistake a command reports as one line (exit code 2), without a traceback."""


def load_aesthetics_model(
    name_or_path: str,
    *,
    vision_only: bool = False,
    trust_remote_code: bool = False,
    allow_partial: bool = False,
):
    """`AesformerForAesthetic.from_pretrained(name_or_path)` for a command.

    Refuses (with `CommandError`) a folder or Hub repository that is not an AesFormer, one whose weights leave
    parameters missing or hold unexpected ones (unless `allow_partial`), and unreadable weights. Code shipped
    with a model never runs here: the package's own classes load it, so `trust_remote_code` is only passed on to
    the tokenizer/processor loader.
    """
    from .. import AesformerForAesthetic

    config_file = os.path.join(name_or_path, "config.json")
    if os.path.isdir(name_or_path):
        if not os.path.isfile(config_file):
            raise CommandError(
                f"--model {name_or_path}: no config.json there; expected an AesFormer model folder."
            )
        try:
            model_type = json.loads(open(config_file, encoding="utf-8").read()).get("model_type")
        except (OSError, ValueError) as error:
            raise CommandError(f"--model {name_or_path}: config.json is not valid JSON ({error}).") from None
        if model_type != "aesformer":
            raise CommandError(
                f"--model {name_or_path}: config.json says model_type={model_type!r}; expected 'aesformer'."
            )
    try:
        model, info = AesformerForAesthetic.from_pretrained(
            name_or_path, vision_only=vision_only, output_loading_info=True
        )
    except OSError as error:
        raise CommandError(f"--model {name_or_path}: {str(error).splitlines()[0]}") from None
    except Exception as error:  # safetensors and torch raise their own types for damaged files
        raise CommandError(
            f"--model {name_or_path}: the weights could not be read ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no detail'})."
        ) from None
    problems = {
        kind: sorted(info.get(kind) or []) for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")
    }
    if any(problems.values()) and not allow_partial:
        details = "; ".join(
            f"{kind.replace('_', ' ')} ({len(keys)}): {', '.join(map(str, keys[:5]))}{' ...' if len(keys) > 5 else ''}"
            for kind, keys in problems.items()
            if keys
        )
        raise CommandError(
            f"--model {name_or_path}: the weights do not fit this AesFormer ({details}). They belong to another "
            "model, or the file is incomplete; --allow-partial-weights loads them anyway."
        )
    return model.eval()


def load_processor(name_or_path: str, trust_remote_code: bool = False):
    """The saved `AesformerProcessor`, else its image processor alone, else None."""
    from ..models.aesformer.image_processing_aesformer import AesformerImageProcessor
    from ..models.aesformer.processing_aesformer import AesformerProcessor

    for loader in (AesformerProcessor, AesformerImageProcessor):
        try:
            return loader.from_pretrained(name_or_path)
        except (OSError, ValueError, TypeError, KeyError):
            continue
    return None
