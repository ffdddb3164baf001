"""One graph: torch.export, torch.compile(fullgraph=True), ONNX with onnxruntime, and `aesformer-hf export`."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aesformer_hf import AesformerForAesthetic, AesformerImageProcessor, AesformerProcessor
from aesformer_hf.cli import main as cli_main
from aesformer_hf.exporting import AestheticsExportModule, export_program, run_exported
from aesformer_hf.testing_utils import tiny_config, tiny_tokenizer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
needs_onnx = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnxscript") is None,
    reason="the [onnx] extra is not installed",
)


def shifted_window_config(**overrides):
    """Two blocks in the first stages, so that shifted windows (and their attention masks) are traced too."""
    config = tiny_config(**overrides)
    config.vision_config.model_args = {**config.vision_config.model_args, "depths": [2, 2, 1, 1]}
    return config


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return AesformerForAesthetic(shifted_window_config()).eval()


@pytest.fixture(scope="module")
def saved(tmp_path_factory, model):
    folder = tmp_path_factory.mktemp("model")
    model.save_pretrained(folder)
    AesformerProcessor(AesformerImageProcessor(size=64), tiny_tokenizer()).save_pretrained(folder)
    return folder


def pixels(batch: int) -> torch.Tensor:
    return torch.randn(batch, 3, 64, 64, generator=torch.Generator().manual_seed(batch))


def comments(batch: int, tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(100 + tokens)
    input_ids = torch.randint(5, 128, (batch, tokens), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, max(4, tokens - 3) :] = 0  # padding, leaving comment tokens between [CLS] and [SEP]
    return input_ids, attention_mask


def test_export_vision_has_a_dynamic_batch_and_eager_outputs(model):
    module = AestheticsExportModule(model, "vision")
    program = export_program(module, (pixels(2),))
    for batch in (1, 5):
        x = pixels(batch)
        with torch.no_grad():
            exported, eager = program.module()(x), module(x)
        for a, b in zip(exported, eager):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_export_multimodal_has_dynamic_batch_and_text_length(model):
    module = AestheticsExportModule(model, "multimodal")
    program = export_program(module, (pixels(2), *comments(2, 9)))
    for batch, tokens in ((1, 4), (3, 17)):
        inputs = (pixels(batch), *comments(batch, tokens))
        with torch.no_grad():
            exported, eager = program.module()(*inputs), module(*inputs)
        for a, b in zip(exported, eager):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_compiles_as_one_graph_on_both_paths(model):
    # fullgraph=True turns any graph break (a host read such as `.item()`, `.tolist()`, `bool(tensor)`) into an
    # error. The "eager" backend traces with dynamo without generating code, so this stays fast.
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    x = pixels(3)
    input_ids, attention_mask = comments(3, 8)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x).distribution, model(x).distribution)
        torch.testing.assert_close(
            compiled(x, input_ids=input_ids, attention_mask=attention_mask).distribution,
            model(x, input_ids=input_ids, attention_mask=attention_mask).distribution,
        )
        labels = torch.softmax(torch.randn(3, 10), -1)
        torch.testing.assert_close(compiled(x, labels=labels).loss, model(x, labels=labels).loss)
    torch._dynamo.reset()


def test_eager_mode_keeps_its_value_checks(model):
    x = pixels(2)
    x[1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"images \[1\] contain NaN"):
        model(x)
    input_ids, attention_mask = comments(2, 6)
    attention_mask[1, 2:] = 0  # [CLS] and [SEP] only: no comment
    with pytest.raises(ValueError, match=r"Images \[1\] of the multimodal batch have no comment tokens"):
        model(pixels(2), input_ids=input_ids, attention_mask=attention_mask)
    with pytest.raises(ValueError, match="batch of 0"):
        model(pixels(1)[:0])


def test_export_command_writes_a_pt2_program(saved, model, tmp_path, capsys):
    out = tmp_path / "pt2"
    assert cli_main(["export", "--model", str(saved), "--output", str(out), "--format", "pt2"]) == 0
    assert "max |difference|" in capsys.readouterr().out
    spec = json.loads((out / "export_config.json").read_text())
    assert spec["inputs"] == ["pixel_values"] and spec["outputs"][:3] == ["logits", "distribution", "score"]
    outputs = run_exported(out / "model.pt2", (pixels(4),))
    with torch.no_grad():
        torch.testing.assert_close(outputs[2], model(pixels(4)).score, atol=1e-5, rtol=0)


@needs_onnx
@pytest.mark.parametrize("mode", ["vision", "multimodal"])
def test_export_command_onnx_matches_pytorch_in_onnxruntime(saved, model, tmp_path, mode):
    import onnxruntime

    out = tmp_path / mode
    assert cli_main(["export", "--model", str(saved), "--output", str(out), "--mode", mode]) == 0
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    x = pixels(5)
    feed = {"pixel_values": x.numpy()}
    kwargs = {}
    if mode == "multimodal":
        input_ids, attention_mask = comments(5, 13)
        feed.update(input_ids=input_ids.numpy(), attention_mask=attention_mask.numpy())
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        assert (out / "tokenizer_config.json").is_file()
    logits, distribution, score, label = session.run(None, feed)
    with torch.no_grad():
        eager = model(x, **kwargs)
    np.testing.assert_allclose(distribution, eager.distribution.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(score, eager.score.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_array_equal(label, eager.label.numpy())


@needs_onnx
def test_onnx_example_rates_a_photo_like_the_package(saved, model, tmp_path, monkeypatch):
    """examples/rate_with_onnx.py (numpy, PIL and onnxruntime only) prepares the pixels the processor prepares
    (alpha composited on white, bicubic, ImageNet statistics) and gives the model's score."""
    out = tmp_path / "onnx"
    assert cli_main(["export", "--model", str(saved), "--output", str(out)]) == 0
    rng = np.random.default_rng(0)
    photo = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 255, (90, 120, 4), dtype=np.uint8), "RGBA").save(photo)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    sys.modules.pop("rate_with_onnx", None)
    from rate_with_onnx import prepare, rate

    spec = json.loads((out / "export_config.json").read_text())["image"]
    expected_pixels = AesformerImageProcessor.from_pretrained(out)(Image.open(photo))["pixel_values"]
    np.testing.assert_allclose(prepare(str(photo), spec), expected_pixels[0].numpy(), atol=1e-5, rtol=0)
    (result,) = rate(str(out), [str(photo)])
    with torch.no_grad():
        assert result["score"] == pytest.approx(model(expected_pixels).score.item(), abs=1e-4)


def test_export_refuses_a_folder_that_is_not_an_aesformer(tmp_path, capsys):
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    code = cli_main(
        ["export", "--model", str(tmp_path / "bert"), "--output", str(tmp_path / "out"), "--format", "pt2"]
    )
    assert code == 2
    assert "model_type='bert'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
