"""Hub remote code: save or push an AesFormer so that `trust_remote_code=True` loads it without aesformer_hf.

A folder (or Hub repo) loads where this package is not installed when it holds:

* `config.json` with `auto_map` (`AutoConfig`, `AutoModel`, `AutoModelForImageClassification` -> the copied
  configuration and modeling files) and `custom_pipelines` (the `image-aesthetics` task ->
  `pipeline_aesformer.ImageAestheticsPipeline`);
* a processor config (`processor_config.json` or `preprocessor_config.json`) whose `auto_map` names
  `AutoProcessor` and/or `AutoImageProcessor`;
* every Python file those maps name, and every sibling file those import (`from .sibling import X`).

`import aesformer_hf` registers the classes for remote code, so `model.save_pretrained` and
`processor.save_pretrained` write their code and `auto_map` entries: what transformers writes, no more (the model's
own Auto class only, no pipeline). [`complete_for_hub`] adds the rest explicitly: the base model's `AutoModel`
entry, the pipeline file and `custom_pipelines` (as transformers' `Pipeline.save_pretrained` writes them).
[`save_for_hub`] / [`push_model_to_hub`] save model and processor, complete the folder, add the model card and
check the result, before anything is uploaded.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from huggingface_hub import CommitInfo, HfApi, ModelCard
from transformers.dynamic_module_utils import custom_object_save, get_relative_imports

from aesformer_hf.models.aesformer.configuration_aesformer import PIPELINE_TASK

MODEL_AUTO_CLASSES = ("AutoConfig", "AutoModel", "AutoModelForImageClassification")
PROCESSOR_AUTO_CLASSES = ("AutoProcessor", "AutoImageProcessor")
PROCESSOR_CONFIG_FILES = ("processor_config.json", "preprocessor_config.json")
# On a re-push, remote files of these kinds that the new upload lacks are deleted: stale shards or a stale shard
# index would be loaded instead of the new weights, and stale code would confuse a reader of the repo.
STALE_FILE_PATTERNS = ["*.py", "*.safetensors", "*.safetensors.index.json"]

CardLike = ModelCard | str | os.PathLike | None


class RemoteCodeError(ValueError):
    """A saved folder would not load with `trust_remote_code=True` where aesformer_hf is not installed."""


# --------------------------------------------------------------------------------------------------
# Checking a saved folder
# --------------------------------------------------------------------------------------------------
def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise RemoteCodeError(f"{path} is not valid JSON: {error}") from error


def _auto_maps(data: Any) -> Iterator[dict[str, Any]]:
    """Every `auto_map` in a config, nested ones included (a processor config nests its image processor's)."""
    if isinstance(data, dict):
        if isinstance(data.get("auto_map"), dict):
            yield data["auto_map"]
        for value in data.values():
            yield from _auto_maps(value)


def _module_files(class_references: list[str]) -> set[str]:
    """`["modeling_aesformer.AesformerForAesthetic", ...]` -> `{"modeling_aesformer.py", ...}`.

    A tokenizer's entry is a `[slow, fast]` pair, either of which may be None.
    """
    files = set()
    for reference in class_references:
        for name in reference if isinstance(reference, list) else [reference]:
            if name:
                # A reference may name another repo ("org/repo--module.Class"); only the module part is a file here.
                files.add(name.split("--")[-1].rsplit(".", 1)[0] + ".py")
    return files


def remote_code_problems(folder: str | os.PathLike) -> list[str]:
    """What keeps `folder` from loading with `trust_remote_code=True` without aesformer_hf; `[]` when nothing does.

    Checks the `auto_map` entries and `custom_pipelines` of `config.json`, the processor config's `auto_map`, and
    that every Python file they name, and every sibling file those import, is in the folder.
    """
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        return [f"{config_path} is missing: save the model into the folder (model.save_pretrained)."]
    config = _read_json(config_path)
    problems = []
    auto_map = config.get("auto_map") or {}
    for auto_class in MODEL_AUTO_CLASSES:
        if auto_class not in auto_map:
            problems.append(
                f"config.json auto_map has no {auto_class} entry: `import aesformer_hf` before saving, so that the "
                "classes are registered for remote code (register_for_auto_class)."
            )
    pipelines = config.get("custom_pipelines") or {}
    if PIPELINE_TASK not in pipelines:
        problems.append(
            f"config.json has no custom_pipelines entry for {PIPELINE_TASK!r}: save the folder with "
            "aesformer_hf.hub.save_for_hub (or the pipeline with pipe.save_pretrained)."
        )
    references = list(auto_map.values()) + [info.get("impl", "") for info in pipelines.values()]

    processor_configs = [folder / name for name in PROCESSOR_CONFIG_FILES if (folder / name).is_file()]
    processor_auto_classes = set()
    for path in processor_configs:
        for processor_map in _auto_maps(_read_json(path)):
            processor_auto_classes.update(processor_map)
            references.extend(processor_map.values())
    if not any(auto_class in processor_auto_classes for auto_class in PROCESSOR_AUTO_CLASSES):
        problems.append(
            f"No processor config ({' or '.join(PROCESSOR_CONFIG_FILES)}) with an auto_map for AutoProcessor or "
            "AutoImageProcessor: save the processor into the folder (processor.save_pretrained)."
        )

    pending = sorted(_module_files(references))
    seen = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        path = folder / name
        if not path.is_file():
            problems.append(
                f"{name} is named by the folder's configs or imported by its code, but is missing."
            )
            continue
        pending.extend(f"{module}.py" for module in get_relative_imports(path))
    return problems


def check_remote_code_folder(folder: str | os.PathLike) -> None:
    """Raise [`RemoteCodeError`] listing every problem [`remote_code_problems`] finds in `folder`."""
    problems = remote_code_problems(folder)
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise RemoteCodeError(
            f"{folder} would not load with trust_remote_code=True without aesformer_hf:\n{listing}"
        )


# --------------------------------------------------------------------------------------------------
# Saving and pushing
# --------------------------------------------------------------------------------------------------
def _write_card(card: CardLike, folder: Path) -> None:
    if card is None:
        return
    if isinstance(card, ModelCard):
        text = str(card)
    elif isinstance(card, str) and ("\n" in card or card.lstrip().startswith("---")):
        text = card
    elif isinstance(card, (str, os.PathLike)):
        path = Path(card)
        if not path.is_file():
            raise FileNotFoundError(
                f"card={str(card)!r} is neither a model card's text (several lines, or '---' YAML metadata first) "
                "nor an existing file. Pass a huggingface_hub.ModelCard, the card's Markdown text or a .md file's path."
            )
        text = path.read_text(encoding="utf-8")
    else:
        raise TypeError(
            f"card is a {type(card).__name__}; expected a huggingface_hub.ModelCard, a str or a path."
        )
    (folder / "README.md").write_text(text, encoding="utf-8")


def pipeline_entry() -> tuple[type, dict[str, Any]]:
    """The `image-aesthetics` pipeline class and its `custom_pipelines` entry in a saved `config.json`.

    Both come from the task `import aesformer_hf` registers with transformers, written as transformers'
    `Pipeline.save_pretrained` writes them: `impl` as `"<module file>.<class>"`, `pt` as Auto class names.
    """
    from transformers.pipelines import PIPELINE_REGISTRY

    import aesformer_hf

    aesformer_hf._register()
    _, registered, _ = PIPELINE_REGISTRY.check_task(PIPELINE_TASK)
    pipeline_class = registered["impl"]
    entry = dict(registered)
    entry["impl"] = f"{pipeline_class.__module__.rsplit('.', 1)[-1]}.{pipeline_class.__name__}"
    entry["pt"] = [auto_class.__name__ for auto_class in registered["pt"]]
    return pipeline_class, entry


def complete_for_hub(folder: str | os.PathLike) -> None:
    """Add to a folder that `AesformerForAesthetic.save_pretrained` wrote what transformers does not write there:
    the pipeline file (and the sibling files it imports) with its `custom_pipelines` entry, as
    `Pipeline.save_pretrained` writes them, and the base model's `AutoModel` entry (`save_pretrained` writes only
    the saved class's).

    Used by [`save_for_hub`], by `AesformerTrainer` (its saves, and so `push_to_hub`) and by `aesformer-hf
    convert-original --push-to-hub`. A folder without the model's code (no `auto_map`) is left as it is: it would
    not load as remote code anyway ([`check_remote_code_folder`] says why).
    """
    import aesformer_hf

    config_path = Path(folder) / "config.json"
    config = _read_json(config_path) if config_path.is_file() else {}
    auto_map = config.get("auto_map")
    if not auto_map:
        return
    pipeline_class, entry = pipeline_entry()
    custom_object_save(pipeline_class, folder)
    config["custom_pipelines"] = {PIPELINE_TASK: entry}
    base_class = aesformer_hf.AesformerModel
    if base_class._auto_class:
        auto_map[base_class._auto_class] = f"{base_class.__module__.rsplit('.', 1)[-1]}.{base_class.__name__}"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def save_for_hub(model, processor, save_directory: str | os.PathLike, card: CardLike = None) -> Path:
    """Save `model` and `processor` (and `card` as README.md) into one folder that loads with remote code.

    `model.save_pretrained` and `processor.save_pretrained` write the weights, the code and their `auto_map`
    entries; this adds the base model's `AutoModel` entry, the `image-aesthetics` pipeline file and its
    `custom_pipelines` entry, so that `pipeline("image-aesthetics", model=folder, trust_remote_code=True)` works
    where aesformer_hf is not installed.

    Args:
        model: an `AesformerForAesthetic`.
        processor: an `AesformerProcessor`, or an `AesformerImageProcessor` for a vision-only model.
        save_directory: the folder; created if needed.
        card: a `huggingface_hub.ModelCard`, the card's Markdown text (starting with `---` metadata), or the path
            of a Markdown file such as `model_cards/aesformer-t.md`; `None` writes no README.md.

    Returns:
        The folder, checked with [`check_remote_code_folder`].
    """
    folder = Path(save_directory)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    complete_for_hub(folder)
    _write_card(card, folder)
    check_remote_code_folder(folder)
    return folder


def push_model_to_hub(
    model,
    processor,
    repo_id: str,
    *,
    private: bool = True,
    card: CardLike = None,
    commit_message: str = "Upload AesFormer: model, processor, remote code and pipeline",
    token: str | bool | None = None,
    revision: str | None = None,
    create_pr: bool = False,
) -> CommitInfo:
    """Push `model`, `processor`, their remote code, the `image-aesthetics` pipeline and `card` in one commit.

    The repo is created if needed (`private=True` by default; the Hub ignores `private` for an existing repo). The
    folder is checked with [`check_remote_code_folder`] before anything is uploaded, and remote weights or code
    files the new upload lacks are deleted so that no stale shard or module stays behind.

    Returns:
        The `huggingface_hub.CommitInfo` of the commit.
    """
    api = HfApi(token=token, library_name="aesformer-hf")
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model").repo_id
    with tempfile.TemporaryDirectory() as folder:
        save_for_hub(model, processor, folder, card=card)
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=folder,
            repo_type="model",
            commit_message=commit_message,
            revision=revision,
            create_pr=create_pr,
            delete_patterns=STALE_FILE_PATTERNS,
        )


__all__ = [
    "PIPELINE_TASK",
    "RemoteCodeError",
    "check_remote_code_folder",
    "complete_for_hub",
    "pipeline_entry",
    "push_model_to_hub",
    "remote_code_problems",
    "save_for_hub",
]
