"""`aesformer-hf score --backend`: onnxruntime rates as PyTorch does, is chosen by default on the CPU in float32,
exports each path once into a cache shared safely by processes, and falls back (or stops in one line) without the
`[onnx]` extra."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

import aesformer_hf.exporting
from aesformer_hf import onnx_backend
from aesformer_hf.cli import main as cli_main
from aesformer_hf.commands import score as score_command
from aesformer_hf.onnx_backend import OnnxRuntimeModel, cache_key, cached_export, default_cache_dir

from .conftest import random_image

needs_onnx = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("onnx", "onnxscript", "onnxruntime")),
    reason="the [onnx] extra is not installed",
)
COMMENTS = {"img1.png": ["too blurry", "the horizon is tilted"], "img4.png": "lovely sharp colours"}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Six photos; two have comments (MIAA), the others not (VIAA): every batch of three mixes both."""
    folder = tmp_path_factory.mktemp("photos")
    for seed in range(6):
        random_image(seed).save(folder / f"img{seed}.png")
    (folder / "comments.json").write_text(json.dumps(COMMENTS))
    return folder


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


def _score(capsys, *argv) -> tuple[int, list[dict], str]:
    capsys.readouterr()
    code = cli_main(["score", *map(str, argv), "--format", "jsonl", "--no-progress"])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def _images(photos: Path) -> list[Path]:
    return sorted(photos.glob("*.png"))


def _same_scores(got: list[dict], expected: list[dict], tolerance: float = 1e-4) -> None:
    assert [(r["path"], r["mode"], r["label"]) for r in got] == [
        (r["path"], r["mode"], r["label"]) for r in expected
    ]
    for a, b in zip(got, expected):
        assert a["score"] == pytest.approx(b["score"], abs=tolerance)
        assert a["distribution"] == pytest.approx(b["distribution"], abs=tolerance)


class _Calls:
    """Counts calls of a function and passes them on."""

    def __init__(self, function):
        self.function, self.calls = function, []

    def __call__(self, *args, **kwargs):
        self.calls.append((args, kwargs))
        return self.function(*args, **kwargs)


def _block(monkeypatch, *modules: str) -> None:
    """Make `modules` unimportable, as where they are not installed."""
    for module in modules:
        for loaded in [name for name in sys.modules if name == module or name.startswith(module + ".")]:
            monkeypatch.delitem(sys.modules, loaded)
        monkeypatch.setitem(sys.modules, module, None)


def test_the_light_parser_offers_the_backends_of_the_library():
    assert score_command.BACKENDS == onnx_backend.BACKENDS


@needs_onnx
def test_onnxruntime_rates_mixed_batches_as_torch_does(photos, saved_model_dir, shared_cache, capsys):
    common = [*_images(photos), "--model", saved_model_dir, "--comments", photos / "comments.json"]
    common += ["--batch-size", 3]
    code, torch_rows, _ = _score(capsys, *common, "--backend", "torch")
    assert code == 0
    code, ort_rows, err = _score(capsys, *common, "--backend", "onnxruntime", "--cache-dir", shared_cache)
    assert code == 0, err
    assert [row["mode"] for row in ort_rows] == [
        "vision",
        "multimodal",
        "vision",
        "vision",
        "multimodal",
        "vision",
    ]
    _same_scores(ort_rows, torch_rows)
    # Both paths were exported, each once, into --cache-dir; nothing half-written is left.
    exports = shared_cache / "aesformer-hf" / "onnx"
    folders = sorted(path for path in exports.iterdir() if path.is_dir())
    assert len(folders) == 2 and err.count("exporting the") == 2
    assert sorted(json.loads((f / "export_config.json").read_text())["mode"] for f in folders) == [
        "multimodal",
        "vision",
    ]
    assert not list(exports.glob(".*tmp*"))


@needs_onnx
def test_auto_picks_onnxruntime_on_cpu_float32_and_reuses_its_export(
    photos, saved_model_dir, tmp_path, monkeypatch, capsys
):
    rated = _Calls(OnnxRuntimeModel.__call__)
    monkeypatch.setattr(OnnxRuntimeModel, "__call__", lambda self, **kw: rated(self, **kw))
    exports = _Calls(aesformer_hf.exporting.export_model)
    monkeypatch.setattr(aesformer_hf.exporting, "export_model", exports)
    cache = tmp_path / "cache"
    argv = [*_images(photos), "--model", saved_model_dir, "--batch-size", 4, "--cache-dir", cache]
    argv += ["--device", "cpu", "--threads", 1]
    code, auto_rows, err = _score(capsys, *argv)
    assert code == 0 and len(rated.calls) == 2, err  # 6 images, batches of 4
    # Only the path this run needs (no comments: VIAA) was exported.
    assert [kwargs["mode"] for _, kwargs in exports.calls] == ["vision"]
    folder = next(path for path in (cache / "aesformer-hf" / "onnx").iterdir() if path.is_dir())
    written = (folder / "model.onnx").stat().st_mtime_ns

    code, again, err = _score(capsys, *argv)
    assert code == 0 and len(rated.calls) == 4 and "exporting" not in err
    assert len(exports.calls) == 1 and (folder / "model.onnx").stat().st_mtime_ns == written
    assert again == auto_rows

    code, torch_rows, _ = _score(capsys, *argv, "--backend", "torch")
    _same_scores(auto_rows, torch_rows)
    for extra in (["--dtype", "bfloat16"], ["--dtype", "float16"]):
        code, _, _ = _score(capsys, *argv, *extra)
        assert code == 0 and len(rated.calls) == 4, extra  # autocast: torch
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: model)
    code, _, _ = _score(capsys, *argv, "--compile")
    assert code == 0 and len(rated.calls) == 4


def test_default_cache_is_in_the_hugging_face_home():
    from huggingface_hub import constants

    assert default_cache_dir() == Path(constants.HF_HOME) / "aesformer-hf" / "onnx"


def test_onnxruntime_backend_refuses_options_it_cannot_honour(photos, saved_model_dir, capsys):
    for extra, named in ((["--dtype", "bfloat16"], "--dtype bfloat16"), (["--compile"], "--compile")):
        code, _, err = _score(
            capsys, photos / "img0.png", "--model", saved_model_dir, "--backend", "onnxruntime", *extra
        )
        assert code == 2 and err.count("\n") == 1 and named in err and "--backend torch" in err, err


def test_without_onnxruntime_auto_falls_back_and_onnxruntime_is_one_line(
    photos, saved_model_dir, monkeypatch, capsys
):
    argv = [photos / "img0.png", photos / "img1.png", "--model", saved_model_dir, "--threads", 1]
    code, torch_rows, _ = _score(capsys, *argv, "--backend", "torch")
    rated = _Calls(OnnxRuntimeModel.__call__)
    monkeypatch.setattr(OnnxRuntimeModel, "__call__", lambda self, **kw: rated(self, **kw))
    _block(monkeypatch, "onnxruntime")
    code, rows, err = _score(capsys, *argv)
    assert code == 0 and not rated.calls and rows == torch_rows
    notes = [line for line in err.splitlines() if not line.startswith("Rated ")]
    assert len(notes) == 1 and "pip install 'aesformer-hf[onnx]'" in notes[0]
    code, rows, err = _score(capsys, *argv, "--backend", "onnxruntime")
    assert code == 2 and rows == [] and err.count("\n") == 1
    assert err.startswith("score: ") and err.rstrip().endswith("pip install 'aesformer-hf[onnx]'"), err


@needs_onnx
def test_a_failed_export_falls_back_under_auto_and_stops_under_onnxruntime(
    photos, saved_model_dir, tmp_path, monkeypatch, capsys
):
    def broken_export(model, folder, **kwargs):
        (Path(folder) / "model.onnx").write_bytes(b"half a file")
        raise RuntimeError("The exported file differs from the eager model by 3.2e-03 (> 0.0001).")

    monkeypatch.setattr(aesformer_hf.exporting, "export_model", broken_export)
    argv = [*_images(photos)[:3], "--model", saved_model_dir, "--cache-dir", tmp_path / "cache"]
    argv += ["--device", "cpu", "--threads", 1]
    code, torch_rows, _ = _score(capsys, *argv, "--backend", "torch")
    code, rows, err = _score(capsys, *argv)
    assert code == 0 and rows == torch_rows
    assert "VIAA path could not be prepared for onnxruntime (RuntimeError: The exported file differs" in err
    assert "rating it with PyTorch" in err
    code, rows, err = _score(capsys, *argv, "--backend", "onnxruntime")
    last = err.strip().splitlines()[-1]
    assert code == 2 and rows == [] and "Traceback" not in err
    assert last.startswith("score: the VIAA path could not be prepared") and last.endswith(
        "rates without it."
    )
    exports = tmp_path / "cache" / "aesformer-hf" / "onnx"
    assert not [path for path in exports.iterdir() if path.is_dir()]  # no half file kept, no temporary folder


def test_cache_key_follows_weights_config_and_mode(model):
    key = cache_key(model, "vision")
    assert key == cache_key(model, "vision") and key != cache_key(model, "multimodal")
    with torch.no_grad():
        next(model.viaa_head.parameters()).view(-1)[0] += 1e-3
    changed = cache_key(model, "vision")
    assert changed != key
    model.config.label_threshold = 6.0
    assert cache_key(model, "vision") != changed


def _fake_export(calls: list, delay: float = 0.0):
    def export(model, folder, format, mode, processor=None):
        calls.append(mode)
        time.sleep(delay)
        (Path(folder) / "model.onnx").write_bytes(b"onnx")
        (Path(folder) / "export_config.json").write_text(json.dumps({"mode": mode}))

    return export


@needs_onnx
def test_concurrent_exports_write_the_file_once(model, tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(aesformer_hf.exporting, "export_model", _fake_export(calls, delay=0.5))
    found, errors = [], []

    def worker():
        try:
            found.append(cached_export(model, "vision", cache_dir=tmp_path))
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and calls == ["vision"] and len(set(found)) == 1
    assert (found[0] / "model.onnx").read_bytes() == b"onnx"


@needs_onnx
def test_an_interrupted_export_leaves_no_half_file(model, tmp_path, monkeypatch):
    key = cache_key(model, "vision")
    stale = tmp_path / f".{key}.tmp-killed"  # what `kill -9` during an export leaves
    stale.mkdir()
    (stale / "model.onnx").write_bytes(b"half")

    def interrupted(model, folder, **kwargs):
        (Path(folder) / "model.onnx").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(aesformer_hf.exporting, "export_model", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cached_export(model, "vision", cache_dir=tmp_path)
    assert sorted(path.name for path in tmp_path.iterdir() if path.is_dir()) == []
    calls: list = []
    monkeypatch.setattr(aesformer_hf.exporting, "export_model", _fake_export(calls))
    folder = cached_export(model, "vision", cache_dir=tmp_path)
    assert folder == tmp_path / key and calls == ["vision"]
    assert cached_export(model, "vision", cache_dir=tmp_path) == folder and calls == ["vision"]
