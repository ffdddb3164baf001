"""`attention`, `export` and `train` with folders they must not trust: no prompt, no shipped code run, one line.

* A folder whose config.json names an unknown `model_type` with an `auto_map` to code that would write a marker
  file, and an AesFormer folder whose tokenizer ships such code: each command, run with "y" waiting on stdin (what
  transformers' prompt would read), writes no marker, exits 2 and prints one line. `--trust-remote-code` lets the
  tokenizer's code run.
* Weights of another model (a BERT's `model.safetensors` under an AesFormer config) and a truncated
  `model.safetensors`: one line naming the keys, or the file and what is wrong with it; exit 2.
  `--allow-partial-weights` loads another model's weights anyway.
* `attention` names a bad `--device`, `--model` or IMAGE in one line, exit 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import BertConfig, BertModel

from aesformer_hf import AesformerForAesthetic, AesformerImageProcessor, AesformerProcessor
from aesformer_hf.cli import main as cli_main
from aesformer_hf.testing_utils import tiny_config, tiny_tokenizer

SIZE = 64
MARKER_CODE = "from pathlib import Path\nPath({marker!r}).write_text('shipped code ran')\n"


def evil_config_folder(folder: Path, marker: Path) -> Path:
    """config.json of an unknown model type whose `auto_map` points at code that writes `marker`."""
    folder.mkdir(parents=True)
    auto_map = {
        "AutoConfig": "configuration_evil.EvilConfig",
        "AutoModel": "configuration_evil.EvilModel",
        "AutoModelForImageClassification": "configuration_evil.EvilModel",
        "AutoTokenizer": ["configuration_evil.EvilTokenizer", None],
    }
    (folder / "config.json").write_text(json.dumps({"model_type": "evil_aesthetics", "auto_map": auto_map}))
    (folder / "configuration_evil.py").write_text(
        MARKER_CODE.format(marker=str(marker))
        + "from transformers import BertTokenizer as EvilTokenizer, PretrainedConfig, PreTrainedModel\n"
        "class EvilConfig(PretrainedConfig):\n    model_type = 'evil_aesthetics'\n"
        "class EvilModel(PreTrainedModel):\n    config_class = EvilConfig\n"
    )
    return folder


def save_tiny_aesformer(folder: Path) -> Path:
    torch.manual_seed(0)
    AesformerForAesthetic(tiny_config(image_size=SIZE)).save_pretrained(folder)
    tokenizer = tiny_tokenizer(["lovely sharp colours", "the horizon is tilted"])
    AesformerProcessor(AesformerImageProcessor(size=SIZE), tokenizer).save_pretrained(folder)
    return folder


def evil_tokenizer_folder(folder: Path, marker: Path) -> Path:
    """A working tiny AesFormer whose tokenizer_config.json asks for a tokenizer class shipped as code."""
    save_tiny_aesformer(folder)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = "EvilTokenizer"
    config["auto_map"] = {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    (folder / "tokenization_evil.py").write_text(
        MARKER_CODE.format(marker=str(marker))
        + "from transformers import BertTokenizer\nclass EvilTokenizer(BertTokenizer):\n    pass\n"
    )
    return folder


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A photo, a small Parquet dataset, and the saved tiny AesFormer the folders below start from."""
    from aesformer_hf.data.synthetic import build_synthetic_aesthetics

    root = tmp_path_factory.mktemp("untrusted")
    Image.new("RGB", (80, 60), (120, 40, 200)).save(root / "photo.png")
    data = build_synthetic_aesthetics(num_photos=2, strengths=(0, 4), degradations=("blur",), image_size=48)
    (root / "parquet" / "data").mkdir(parents=True)
    for split, rows in data.items():
        rows.to_parquet(str(root / "parquet" / "data" / f"{split}-00000-of-00001.parquet"))
    save_tiny_aesformer(root / "aesformer")
    return root


def command(name: str, model: Path, workspace: Path, output: Path) -> list[str]:
    if name == "attention":
        return [
            "attention",
            str(workspace / "photo.png"),
            "--model",
            str(model),
            "--output",
            str(output / "a.png"),
        ]
    if name == "export":
        return ["export", "--model", str(model), "--output", str(output), "--format", "pt2"]
    return [
        "train", "--stage", "adaptation", "--dataset", str(workspace / "parquet"), "--model", str(model),
        "--output_dir", str(output), "--use_cpu", "--max_steps", "1", "--per_device_train_batch_size", "2",
        "--report_to", "none", "--save_strategy", "no",
    ]  # fmt: skip


def run_command(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`aesformer-hf ARGV` in a fresh process with "y" lines on stdin, offline."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.run(
        [sys.executable, "-m", "aesformer_hf.cli", *argv],
        input="y\ny\ny\n",
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def error_lines(stderr: str) -> list[str]:
    """stderr without transformers' warnings and progress bars, which are not the command's message."""
    return [
        line
        for line in stderr.splitlines()
        if line.strip() and not line.startswith("[transformers]") and "/s]" not in line
    ]


COMMANDS = ("attention", "export", "train")


@pytest.mark.parametrize("name", COMMANDS)
def test_shipped_code_never_runs_without_the_flag(workspace, tmp_path, name):
    for kind, build in (("config", evil_config_folder), ("tokenizer", evil_tokenizer_folder)):
        marker = tmp_path / f"{kind}-marker.txt"
        model = build(tmp_path / f"evil-{kind}", marker)
        result = run_command(command(name, model, workspace, tmp_path / f"out-{kind}"), cwd=tmp_path)
        assert not marker.exists(), result.stderr
        assert result.returncode == 2, result.stderr
        lines = error_lines(result.stderr)
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert str(model) in lines[0]
        if kind == "tokenizer":
            assert "--trust-remote-code" in lines[0]
        else:
            assert "'evil_aesthetics'" in lines[0] and "expected 'aesformer'" in lines[0]


def test_trust_remote_code_lets_the_tokenizer_code_run(workspace, tmp_path):
    marker = tmp_path / "marker.txt"
    model = evil_tokenizer_folder(tmp_path / "evil", marker)
    argv = [*command("export", model, workspace, tmp_path / "out"), "--trust-remote-code"]
    result = run_command(argv, cwd=tmp_path)  # a process of its own: remote code registers classes globally
    assert result.returncode == 0, result.stderr
    assert marker.read_text() == "shipped code ran"


@pytest.fixture(scope="module")
def bert_weights_folder(workspace):
    """An AesFormer config and processor with a tiny BERT's model.safetensors."""
    folder = workspace / "bert-weights"
    save_tiny_aesformer(folder)
    bert = BertModel(
        BertConfig(
            vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37
        )
    )
    bert.save_pretrained(workspace / "bert")
    (folder / "model.safetensors").write_bytes((workspace / "bert" / "model.safetensors").read_bytes())
    return folder


@pytest.fixture(scope="module")
def truncated_folder(workspace):
    folder = workspace / "truncated"
    save_tiny_aesformer(folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return folder


@pytest.mark.parametrize("name", COMMANDS)
def test_weights_that_cannot_be_used_are_named(
    workspace, bert_weights_folder, truncated_folder, tmp_path, capsys, name
):
    # Another model's weights: the keys that are missing and unexpected, and the flag that allows them.
    capsys.readouterr()
    assert cli_main(command(name, bert_weights_folder, workspace, tmp_path / "bert")) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    assert str(bert_weights_folder) in lines[0]
    assert "missing keys" in lines[0] and "unexpected keys" in lines[0]
    assert "embeddings.word_embeddings.weight" in lines[0] and "--allow-partial-weights" in lines[0]
    # A truncated file: its path and what is wrong with it.
    assert cli_main(command(name, truncated_folder, workspace, tmp_path / "truncated")) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    assert str(truncated_folder / "model.safetensors") in lines[0]
    assert "incomplete metadata" in lines[0] and "truncated or damaged" in lines[0]


def test_partial_weights_load_with_the_flag(workspace, bert_weights_folder, tmp_path, capsys):
    argv = [*command("attention", bert_weights_folder, workspace, tmp_path), "--allow-partial-weights"]
    assert cli_main(argv) == 0
    assert (tmp_path / "a.png").is_file()


def test_attention_refuses_a_users_mistakes_in_one_line(workspace, tmp_path, capsys, monkeypatch):
    photo, model = workspace / "photo.png", workspace / "aesformer"
    base = ["attention", str(photo), "--output", str(tmp_path / "a.png")]
    device = "cuda:99" if torch.cuda.is_available() else "cuda"
    truncated = tmp_path / "truncated.jpg"
    Image.new("RGB", (200, 150), (30, 60, 90)).save(tmp_path / "whole.jpg", quality=95)
    truncated.write_bytes((tmp_path / "whole.jpg").read_bytes()[:400])
    cases = [
        ([*base, "--model", str(model), "--device", device], f"--device {device}"),
        ([*base, "--model", str(tmp_path / "no-such-folder")], "no-such-folder"),
        ([*base, "--model", "someone/not-in-the-cache"], "someone/not-in-the-cache"),
        ([*base, "--model", str(workspace / "parquet")], "no config.json"),
        (
            ["attention", str(truncated), "--model", str(model), "--output", str(tmp_path / "a.png")],
            "truncated.jpg",
        ),
    ]
    for argv, named in cases:
        capsys.readouterr()
        assert cli_main(argv) == 2, argv
        lines = error_lines(capsys.readouterr().err)
        assert len(lines) == 1 and named in lines[0], (argv, lines)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # the 80x60 photo now has too many pixels
    capsys.readouterr()
    assert cli_main([*base, "--model", str(model)]) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "photo.png" in lines[0], lines


def test_the_demo_rates_its_folder_without_running_code_saved_in_it(workspace, tmp_path):
    marker = tmp_path / "marker.txt"
    folder = evil_tokenizer_folder(tmp_path / "evil", marker)
    script = (
        "import sys, aesformer_hf\n"
        "from datasets import load_dataset\n"
        "from aesformer_hf.training.demo import rate_held_out_photos\n"
        f"test = load_dataset({str(workspace / 'parquet')!r})['test']\n"
        "try:\n"
        f"    rate_held_out_photos({str(folder)!r}, test)\n"
        "except ValueError as error:\n"
        "    sys.exit('refused: ' + str(error).splitlines()[0])\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        input="y\ny\ny\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert not marker.exists(), result.stderr
    assert "refused: " in result.stderr and "Traceback" not in result.stderr, result.stderr
