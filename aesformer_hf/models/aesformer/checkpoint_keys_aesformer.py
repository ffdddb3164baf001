"""Do a loaded model's weights come from a checkpoint made for it? Compares the checkpoint's tensor names with the
model's, reading only the safetensors headers.

`from_pretrained` keeps transformers' behaviour (missing or unexpected weights are a warning, the rest is left
randomly initialised). The rating pipeline and the commands refuse such a model instead: a folder holding another
model's weights would otherwise rate every image with random heads.
"""

from __future__ import annotations

import json
import os
import re

from torch import nn

SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"


def _checkpoint_files(source: str) -> list[str] | None:
    """The safetensors files `source` (a folder or a Hub id already in the cache) holds, or None if it holds none."""
    from transformers.utils import cached_file

    options = {
        "_raise_exceptions_for_missing_entries": False,
        "_raise_exceptions_for_connection_errors": False,
        "local_files_only": not os.path.isdir(source) and os.environ.get("HF_HUB_OFFLINE", "0") != "0",
    }
    index = cached_file(source, SAFETENSORS_INDEX_FILE, **options)
    if index:
        with open(index, encoding="utf-8") as handle:
            shards = sorted(set(json.load(handle)["weight_map"].values()))
        files = [cached_file(source, shard, **options) for shard in shards]
        return files if all(files) else None
    single = cached_file(source, SAFETENSORS_FILE, **options)
    return [single] if single else None


def checkpoint_key_mismatch(model: nn.Module) -> tuple[str, list[str], list[str]] | None:
    """`(source, missing, unexpected)` tensor names between `model` and the checkpoint it was loaded from.

    None when the model names no source (built in memory) or the source has no safetensors files to compare with.
    Names the model deliberately leaves out or ignores (`_keys_to_ignore_on_load_*`, e.g. the comment tower of a
    vision-only model loaded from a full checkpoint) do not count.
    """
    source = str(getattr(model.config, "_name_or_path", "") or "")
    if not source:
        return None
    try:
        files = _checkpoint_files(source)
    except (OSError, ValueError):
        return None
    if not files:
        return None
    from safetensors import safe_open

    stored: set[str] = set()
    for file in files:
        try:
            with safe_open(file, framework="pt") as handle:
                stored.update(handle.keys())
        except Exception as error:  # safetensors raises its own error type for damaged files
            raise ValueError(f"{file}: the weights file cannot be read ({error}).") from None
    expected = set(model.state_dict())
    ignored_missing = [re.compile(p) for p in getattr(model, "_keys_to_ignore_on_load_missing", None) or ()]
    ignored_unexpected = [
        re.compile(p) for p in getattr(model, "_keys_to_ignore_on_load_unexpected", None) or ()
    ]
    missing = sorted(k for k in expected - stored if not any(p.search(k) for p in ignored_missing))
    unexpected = sorted(k for k in stored - expected if not any(p.search(k) for p in ignored_unexpected))
    return source, missing, unexpected


def require_matching_checkpoint(model: nn.Module, what: str = "this AesFormer") -> None:
    """Raise ValueError naming the keys when `model`'s checkpoint leaves weights missing or holds unexpected ones."""
    mismatch = checkpoint_key_mismatch(model)
    if mismatch is None:
        return
    source, missing, unexpected = mismatch
    if not missing and not unexpected:
        return
    parts = [
        f"{label} ({len(keys)}): {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
        for label, keys in (("missing", missing), ("unexpected", unexpected))
        if keys
    ]
    raise ValueError(
        f"{source}: the weights do not fit {what} ({'; '.join(parts)}). They belong to another model or the file "
        "is incomplete, so the missing parts would rate with random weights; pass allow_partial_weights=True to "
        "rate anyway."
    )


__all__ = ["checkpoint_key_mismatch", "require_matching_checkpoint"]
