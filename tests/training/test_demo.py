"""`aesformer-hf demo`: the quick run works end to end; the full run learns (slow: about two minutes)."""

import time

import pytest
from transformers import pipeline

import aesformer_hf  # noqa: F401  (registers the pipeline)
from aesformer_hf.cli import main as cli_main
from aesformer_hf.training.demo import run_demo


def test_quick_demo_from_the_command_line(tmp_path, capsys):
    output = tmp_path / "demo"
    assert cli_main(["demo", "--quick", "--output", str(output), "--seed", "1"]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    for text in ("[1/5]", "[5/5]", "MIAA", "VIAA", "SRCC", "pipeline('image-aesthetics'"):
        assert text in printed, text
    # Training shows its progress bars (tqdm writes to stderr): the pre-training and both stages, 4 steps each.
    assert captured.err.count("4/4 [") >= 3, captured.err[-2000:]
    for name in (
        "config.json",
        "model.safetensors",
        "processor_config.json",
        "stage1/model.safetensors",
        "vision_pretrained/model.safetensors",
    ):
        assert (output / name).exists(), name
    assert not list(output.rglob("momentum_contrast.safetensors"))  # save_strategy="no": no checkpoints
    rater = pipeline("image-aesthetics", model=str(output))
    from PIL import Image

    image = Image.new("RGB", (80, 60), (120, 90, 60))
    assert rater(image)["mode"] == "vision"
    assert rater(image, comments=["lovely sharp detail"])["mode"] == "multimodal"


@pytest.fixture(scope="module")
def full_demo(tmp_path_factory):
    start = time.perf_counter()
    result = run_demo(str(tmp_path_factory.mktemp("demo")), seed=0)
    return result, time.perf_counter() - start


@pytest.mark.slow
def test_full_demo_multimodal_learns(full_demo):
    # Its wall time is a benchmark figure (benchmarks/RESULTS.md), not a test.
    result, _ = full_demo
    miaa, viaa = result.metrics["MIAA"], result.metrics["VIAA"]
    assert miaa["srcc"] >= 0.8 and miaa["plcc"] >= 0.8
    assert miaa["srcc"] > viaa["srcc"] and miaa["emd_r1"] < viaa["emd_r1"]


@pytest.mark.slow
def test_full_demo_vision_only_ranks_unseen_photos(full_demo):
    result, _ = full_demo
    viaa = result.metrics["VIAA"]
    assert viaa["srcc"] >= 0.8 and viaa["plcc"] >= 0.75
    assert viaa["accuracy"] >= 0.75
