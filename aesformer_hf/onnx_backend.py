"""Rating on the CPU with onnxruntime: the backend `aesformer-hf score` uses by default there.

On the CPU, onnxruntime runs the exported graph 1.7x as fast as eager float32 PyTorch with the same scores (to
~1e-6; `benchmarks/RESULTS.md`, "CPU execution modes"). [`OnnxRuntimeModel`] is called like
`AesformerForAesthetic` (`pixel_values`, plus `input_ids`/`attention_mask` for images with comments) and returns an
`AesformerAestheticOutput` with `logits`, `distribution`, `score` and `label`, so the code that rates batches stays
the same whichever backend runs them.

* Each path is exported on first need only (VIAA for images without comments, MIAA for images with comments) with
  `aesformer_hf.exporting.export_model`, which checks the file against eager PyTorch to 1e-4 and refuses it
  otherwise.
* Exports are cached under `<cache>/aesformer-hf/onnx/<key>/` (`<cache>`: `HF_HOME`, or a folder given), where the
  key hashes the model's weights and config, the path (mode), and the versions of this package, torch, onnx and
  onnxscript: other weights, another config or another exporter give another file. A file is written into a
  temporary folder that is renamed into place once verified, under a lock file, so an interrupted export leaves
  no half file and processes that share the cache (`accelerate launch`) export it once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from .exporting import EXPORT_CONFIG_NAME, OUTPUT_NAMES
from .models.aesformer.configuration_aesformer import MULTIMODAL_MODE, PAPER_MODE_NAMES, VISION_MODE
from .utils.optional import is_available, require

BACKENDS = ("auto", "torch", "onnxruntime")
# Bump when what a cache folder holds, or how it is keyed, changes.
CACHE_FORMAT = 1
ONNX_FILE = "model.onnx"
# The packages of the `[onnx]` extra: the exporter needs onnx and onnxscript, rating onnxruntime.
ONNX_MODULES = ("onnx", "onnxscript", "onnxruntime")


class BackendError(RuntimeError):
    """The chosen backend cannot rate (its export failed or its file cannot be loaded). One line."""


def onnxruntime_available() -> bool:
    """True when the `[onnx]` extra (onnx, onnxscript, onnxruntime) is installed; checked without importing."""
    return all(is_available(module) for module in ONNX_MODULES)


def require_onnxruntime(purpose: str = "--backend onnxruntime") -> None:
    """`MissingOptionalDependency` (one line naming `pip install 'aesformer-hf[onnx]'`) without the extra."""
    require(*ONNX_MODULES, purpose=purpose)


def default_cache_dir() -> Path:
    """`<HF_HOME>/aesformer-hf/onnx`: where exports are cached unless a folder is given."""
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "aesformer-hf" / "onnx"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    found = {"aesformer-hf": __version__, "torch": torch.__version__}
    for name in ("onnx", "onnxscript"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "missing"
    return found


def cache_key(model: torch.nn.Module, mode: str) -> str:
    """Hex digest naming the export of `model`'s `mode` path: its weights (names, dtypes, shapes, bytes) and config,
    the mode, and the versions of this package, torch, onnx and onnxscript."""
    digest = hashlib.sha256()
    config = model.config.to_dict()
    config.pop("_name_or_path", None)  # where it was loaded from does not change the file
    header = {"format": CACHE_FORMAT, "mode": mode, "versions": _versions(), "config": config}
    digest.update(json.dumps(header, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"\n{name} {tensor.dtype} {tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()[:40]


def _is_complete(folder: Path) -> bool:
    return (folder / ONNX_FILE).is_file() and (folder / EXPORT_CONFIG_NAME).is_file()


def vision_only_copy(model: torch.nn.Module) -> torch.nn.Module:
    """`model` without its comment tower (VIAA is exported from it, as `aesformer-hf export` does), same weights."""
    if model.config.is_vision_only:
        return model
    twin = type(model)(model.config.to_vision_only()).eval()
    wanted = twin.state_dict()
    twin.load_state_dict({name: value for name, value in model.state_dict().items() if name in wanted})
    return twin


def cached_export(
    model: torch.nn.Module,
    mode: str,
    processor=None,
    cache_dir: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """The folder holding `model`'s verified ONNX export of `mode` (`model.onnx`, `export_config.json`, the
    processor), exported now unless the cache holds it.

    Args:
        model: an `AesformerForAesthetic` in float32.
        mode: `"vision"` or `"multimodal"`.
        processor: the model's processor (saved beside the file; needed with its tokenizer for MIAA).
        cache_dir: the cache folder (default `default_cache_dir()`).
        log: called with one line when an export starts.

    Raises:
        MissingOptionalDependency: without the `[onnx]` extra.
        RuntimeError: the export failed or does not reproduce the eager model (from `export_model`).
    """
    from filelock import FileLock

    require_onnxruntime(purpose="Rating with onnxruntime")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = cache_key(model, mode)
    folder = root / key
    if _is_complete(folder):
        return folder
    root.mkdir(parents=True, exist_ok=True)
    # One process exports, the others wait and find it (the lock is released if its holder dies).
    with FileLock(str(root / f"{key}.lock")):
        if _is_complete(folder):
            return folder
        # Anything left of this key now is from an interrupted export: nobody else may write it while we hold the lock.
        for stale in [*root.glob(f".{key}.tmp-*"), *([folder] if folder.exists() else [])]:
            shutil.rmtree(stale, ignore_errors=True)
        if log is not None:
            log(
                f"exporting the {PAPER_MODE_NAMES[mode]} path to ONNX for onnxruntime (once for this model; cached "
                f"in {folder})"
            )
        temporary = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=root))
        try:
            from .exporting import export_model

            source = vision_only_copy(model) if mode == VISION_MODE else model
            # The exporter's notes and warnings must not mix with results printed on stdout.
            with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
                warnings.simplefilter("ignore")
                export_model(source, temporary, format="onnx", mode=mode, processor=processor)
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(temporary, 0o777 & ~mask)  # mkdtemp's folder is private; the cache may be shared
            try:
                os.rename(temporary, folder)
            except OSError:
                if not _is_complete(folder):  # not another writer's finished copy (one without the lock)
                    raise
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
    return folder


class OnnxRuntimeModel:
    """Rates like `AesformerForAesthetic.__call__`, with onnxruntime on the CPU: one session per path, exported and
    opened on first use.

    Args:
        model: the float32 `AesformerForAesthetic` (exported from; rates a path itself if `fallback` and that
            path's export fails).
        processor: its processor (saved beside the export; MIAA needs the tokenizer).
        threads: onnxruntime's intra-op threads (the command's `--threads`).
        cache_dir: the export cache (default `<HF_HOME>/aesformer-hf/onnx`).
        fallback: when a path cannot be exported or opened, rate it with `model` (after one `log` line) instead of
            raising [`BackendError`].
        log: called with one line per export started or fallback taken.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        processor=None,
        *,
        threads: int | None = None,
        cache_dir: str | os.PathLike | None = None,
        fallback: bool = False,
        log: Callable[[str], None] | None = None,
    ):
        self.model = model
        self.config = model.config
        self.processor = processor
        self.threads = threads or torch.get_num_threads()
        self.cache_dir = cache_dir
        self.fallback = fallback
        self.log = log
        self.sessions: dict[str, object] = {}  # mode -> onnxruntime.InferenceSession, or None: use `model`

    def _open(self, mode: str):
        require(*ONNX_MODULES, purpose="Rating with onnxruntime")
        import onnxruntime

        folder = cached_export(self.model, mode, self.processor, self.cache_dir, self.log)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only
        # Idle threads sleep instead of spinning: they share the cores with the decoding workers (and, on a busy
        # machine, with other work). VIAA-T, batch 8, 2 threads on 2 busy cores: 8.2-8.6 img/s, 6.7-6.9 spinning.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return onnxruntime.InferenceSession(
            os.fspath(folder / ONNX_FILE), options, providers=["CPUExecutionProvider"]
        )

    def session(self, mode: str):
        """The session of `mode` (exported and opened now if needed); None when it falls back to PyTorch."""
        if mode not in self.sessions:
            try:
                self.sessions[mode] = self._open(mode)
            except Exception as error:  # noqa: BLE001 - exporters and onnxruntime raise many types
                text = str(error).strip().splitlines()
                reason = f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")
                message = (
                    f"the {PAPER_MODE_NAMES[mode]} path could not be prepared for onnxruntime ({reason})"
                )
                if not self.fallback:
                    raise BackendError(f"{message}; --backend torch rates without it.") from error
                if self.log is not None:
                    self.log(f"{message}; rating it with PyTorch.")
                self.sessions[mode] = None
        return self.sessions[mode]

    def __call__(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ):
        from .models.aesformer.modeling_aesformer import AesformerAestheticOutput

        mode = VISION_MODE if input_ids is None else MULTIMODAL_MODE
        session = self.session(mode)
        if session is None:
            with torch.inference_mode():
                return self.model(
                    pixel_values=pixel_values,
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    token_type_ids=token_type_ids,
                )
        # The export feeds one comment segment (token_type_ids zeros), as the processor makes them.
        feed = {"pixel_values": pixel_values.detach().cpu().float().contiguous().numpy()}
        if mode == MULTIMODAL_MODE:
            if attention_mask is None:
                attention_mask = torch.ones_like(input_ids)
            feed["input_ids"] = input_ids.detach().cpu().long().contiguous().numpy()
            feed["attention_mask"] = attention_mask.detach().cpu().long().contiguous().numpy()
        outputs = dict(zip(OUTPUT_NAMES, session.run(list(OUTPUT_NAMES), feed)))
        return AesformerAestheticOutput(**{name: torch.from_numpy(value) for name, value in outputs.items()})


__all__ = [
    "BACKENDS",
    "BackendError",
    "OnnxRuntimeModel",
    "cache_key",
    "cached_export",
    "default_cache_dir",
    "onnxruntime_available",
    "require_onnxruntime",
    "vision_only_copy",
]
