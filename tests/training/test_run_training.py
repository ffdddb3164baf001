"""examples/train.py (`aesformer_hf.training.run_training`): both stages from a local Parquet folder."""

import json

import pytest
from huggingface_hub import ModelCard

from aesformer_hf import AesformerForAesthetic
from aesformer_hf.cli import main as cli_main
from aesformer_hf.training.run_training import main as train_main


@pytest.fixture(scope="module")
def parquet_folder(tmp_path_factory, aesthetics):
    folder = tmp_path_factory.mktemp("parquet")
    for split, data in aesthetics.items():
        (folder / "data").mkdir(exist_ok=True)
        data.to_parquet(str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    return folder


def _common(output_dir):
    return [
        "--output_dir", str(output_dir), "--per_device_train_batch_size", "4", "--max_steps", "2",
        "--report_to", "none", "--use_cpu", "--save_strategy", "no", "--disable_tqdm", "true",
        "--contrastive_queue_size", "8",
    ]  # fmt: skip


def test_both_stages_from_a_parquet_folder(tmp_path, parquet_folder, capsys):
    stage1 = tmp_path / "stage1"
    args = ["--stage", "multimodal", "--dataset", str(parquet_folder), "--config_preset", "test"]
    assert train_main(args + _common(stage1)) == 0
    assert "trainable of" in capsys.readouterr().out
    eval_results = json.loads((stage1 / "eval_results.json").read_text())
    assert {"eval_srcc", "eval_image_head_srcc", "eval_text_head_emd"} <= set(eval_results)
    assert (stage1 / "model.safetensors").is_file() and (stage1 / "processor_config.json").is_file()

    stage2 = tmp_path / "stage2"
    args = ["--stage", "adaptation", "--dataset", str(parquet_folder), "--model", str(stage1)]
    assert cli_main(["train", *args, *_common(stage2)]) == 0
    measured = json.loads((stage2 / "eval_results.json").read_text())
    assert "eval_srcc" in measured
    AesformerForAesthetic.from_pretrained(stage2)
    # The run writes a model card whose model-index holds the figures it measured.
    card = ModelCard.load(stage2 / "README.md")
    results = card.data.eval_results
    srcc = [r.metric_value for r in results if r.metric_type == "spearmanr"]
    assert srcc and srcc[0] == pytest.approx(measured["eval_srcc"], abs=1e-4)
    assert results[0].dataset_name == parquet_folder.name  # the dataset trained on names the results


def test_model_or_preset_is_required(tmp_path, parquet_folder, capsys):
    assert train_main(["--dataset", str(parquet_folder), *_common(tmp_path)]) == 2
    assert "exactly one of --model" in capsys.readouterr().err


def test_bins_must_match_the_dataset(tmp_path, parquet_folder, capsys):
    from aesformer_hf.testing_utils import tiny_config

    AesformerForAesthetic(tiny_config(num_bins=7, score_max=7.0)).save_pretrained(tmp_path / "seven")
    argv = ["--dataset", str(parquet_folder), "--model", str(tmp_path / "seven"), *_common(tmp_path / "o")]
    assert train_main(argv) == 2
    assert "predicts 7 bins but the dataset has 10" in capsys.readouterr().err


def test_options_take_both_spellings_and_help_shows_the_dash_one(tmp_path, parquet_folder, capsys):
    for spelling in ("--output-dir", "--output_dir"):
        argv = [
            "--dataset",
            str(parquet_folder),
            spelling,
            str(tmp_path / spelling.strip("-")),
            "--max-steps",
            "1",
        ]
        assert train_main([*argv, "--config_preset", "test", "--report-to", "none", "--use-cpu"]) == 0
        assert (tmp_path / spelling.strip("-") / "config.json").is_file()
    capsys.readouterr()
    with pytest.raises(SystemExit):
        train_main(["--help"])
    help_text = capsys.readouterr().out
    assert "--output-dir OUTPUT_DIR" in help_text and "--output_dir" not in help_text
    assert "--per-device-train-batch-size" in help_text and "--per_device_train_batch_size" not in help_text
