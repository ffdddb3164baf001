"""Model cards: measured figures as model-index metadata; the paper's figures only in the body, marked as such."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from huggingface_hub import ModelCard

from aesformer_hf.hub import MeasuredResults, build_model_card, write_model_card
from aesformer_hf.hub.model_card import REPORTED_BY_PAPER
from aesformer_hf.testing_utils import tiny_config

MODEL_CARDS = Path(__file__).resolve().parents[2] / "model_cards"
MEASURED = {
    "eval_accuracy": 0.7125,
    "eval_plcc": 0.6312,
    "eval_srcc": 0.6011,
    "eval_rmse": 0.52,
    "eval_loss": 0.3,
}


def _metrics_of(card: ModelCard) -> dict[tuple[str, str], float]:
    return {
        (r.task_name.split(",")[1].split()[0], r.metric_type): r.metric_value for r in card.data.eval_results
    }


def test_write_model_card_puts_the_measured_figures_in_model_index(tmp_path):
    tiny_config(num_bins=7, score_max=7.0).save_pretrained(tmp_path)
    path = write_model_card(tmp_path, MEASURED, "photonet", "b", "adaptation", dataset_id="someone/photonet")
    card = ModelCard.load(path)
    assert card.data.model_name == "AesFormer-B (Photo.net)"
    assert _metrics_of(card) == {
        ("VIAA", "accuracy"): 0.7125,  # stage "adaptation" -> VIAA; accuracy as measured, a fraction
        ("VIAA", "pearsonr"): 0.6312,
        ("VIAA", "spearmanr"): 0.6011,
        ("VIAA", "rmse"): 0.52,
    }  # eval_loss is not a card metric
    result = card.data.eval_results[0]
    assert (result.dataset_name, result.dataset_type, result.dataset_split) == (
        "Photo.net",
        "someone/photonet",
        "test",
    )
    assert card.data.datasets == ["someone/photonet"]
    # The architecture comes from the saved config.json: 7 bins on 1..7 and the tiny Swin.
    assert "7 bins (scores 1..7)" in card.text and "swin_tiny_patch4_window7_224" in card.text
    assert "| Photo.net | test | VIAA | 71.25 | 0.6312 | 0.6011 | 0.5200 |" in card.text


def test_paper_figures_are_in_the_body_marked_and_never_in_the_metadata(tmp_path):
    path = write_model_card(tmp_path, MEASURED, "AVA", "tiny", "multimodal")
    card = ModelCard.load(path)
    assert "Reported by the paper (not reproduced by this package)" in card.text
    assert "| AVA | MIAA | 90.09 | 0.905 | 0.899 |" in card.text
    assert "| AVA | VIAA | 85.10 | 0.777 | 0.768 |" in card.text
    measured = set(_metrics_of(card).values())
    reported = {v for (variant, _, _), values in REPORTED_BY_PAPER.items() for v in values.values()}
    assert not measured & (reported | {v / 100 for v in reported})
    assert {mode for mode, _ in _metrics_of(card)} == {"MIAA"}  # stage "multimodal" -> MIAA


def test_several_evaluations_and_nan_metrics():
    results = [
        MeasuredResults({"test_plcc": 0.5, "test_srcc": float("nan"), "test_emd_r1": 0.07}, "ava", "miaa"),
        MeasuredResults({"plcc": 0.4}, "JAS", "VIAA", split="validation"),
    ]
    card = build_model_card(results, variant="custom-small", stage="adaptation")
    metrics = _metrics_of(card)
    assert metrics == {("MIAA", "pearsonr"): 0.5, ("MIAA", "emd"): 0.07, ("VIAA", "pearsonr"): 0.4}
    assert card.data.model_name == "custom-small (AVA)"
    assert "reports no figures for this configuration" in card.text
    assert (
        "@inproceedings{amirshahi2015jenaesthetics" in card.text
        and "@inproceedings{murray2012ava" in card.text
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metrics": {"accuracy": 90.3}}, r"accuracy=90.3 .* fraction"),
        ({"metrics": {"eval_loss": 0.2, "epoch": 3}}, r"No known metric among \['epoch', 'eval_loss'\]"),
        ({"stage": "finetune"}, r"stage='finetune' is not an AesFormer training stage"),
        ({"mode": "text"}, r"mode='text' is not an AesFormer mode"),
        ({"dataset_name": " "}, r"dataset_name is empty"),
    ],
)
def test_write_model_card_errors_name_the_input(tmp_path, kwargs, message):
    arguments = {
        "metrics": {"plcc": 0.5},
        "dataset_name": "AVA",
        "variant": "t",
        "stage": "adaptation",
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        write_model_card(tmp_path, **arguments)
    assert not (tmp_path / "README.md").exists()


@pytest.mark.parametrize(("file_name", "variant"), [("aesformer-t.md", "tiny"), ("aesformer-b.md", "base")])
def test_hand_written_cards_are_complete_and_mark_the_paper_figures(file_name, variant):
    card = ModelCard.load(MODEL_CARDS / file_name)
    text = card.text
    for section in (
        "Intended use",
        "How to use",
        "Architecture",
        "Training recipe",
        "Datasets and licences",
        "Limitations",
        "Citation",
    ):
        assert re.search(rf"^## {section}", text, flags=re.MULTILINE), f"{file_name} lacks '## {section}'"
    assert "## Figures reported by the paper (not measured by aesformer-hf)" in text
    assert card.data.eval_results is None  # no measured figures, so no model-index
    for (key, dataset, mode), values in REPORTED_BY_PAPER.items():
        if key != variant:
            continue
        row = next((line for line in text.splitlines() if line.startswith(f"| {dataset} | {mode} ")), None)
        assert row is not None, f"{file_name} has no row for {dataset} {mode}"
        for value in values.values():
            assert any(math.isclose(float(cell), value) for cell in re.findall(r"\d+\.\d+", row)), (
                row,
                value,
            )
    for licence_word in ("AVA", "Photo.net", "JAS", "redistribut"):
        assert licence_word in text


def test_generated_card_text_loads_back_as_a_card(tmp_path):
    path = write_model_card(tmp_path, {"accuracy": 0.8}, "AVA", "base", "adaptation", license="apache-2.0")
    card = ModelCard.load(path)
    assert card.data.license == "apache-2.0"
    assert json.loads(json.dumps(card.data.to_dict()))["model-index"][0]["name"] == "AesFormer-B (AVA)"


def test_stage_names_match_the_training_package():
    from aesformer_hf.hub import model_card
    from aesformer_hf.training import stages

    assert model_card.STAGES == stages.STAGES


def test_cards_declare_no_hub_task_the_stock_pipeline_cannot_serve(tmp_path):
    """`pipeline_tag: image-classification` sent the Hub's widget to the stock pipeline, which fails on 10 bin logits
    with 2 labels. Checked here: the stock pipeline does fail on this model, and no card declares that task."""
    import torch
    from PIL import Image
    from transformers import ImageClassificationPipeline

    from aesformer_hf import AesformerForAesthetic, AesformerImageProcessor

    torch.manual_seed(0)
    model = AesformerForAesthetic(tiny_config(vision_only=True)).eval()
    stock = ImageClassificationPipeline(model=model, image_processor=AesformerImageProcessor(size=64))
    with pytest.raises(KeyError):
        stock(Image.new("RGB", (64, 64)))
    generated = ModelCard.load(write_model_card(tmp_path, {"accuracy": 0.8}, "AVA", "tiny", "adaptation"))
    for card in (generated, *(ModelCard.load(MODEL_CARDS / f) for f in ("aesformer-t.md", "aesformer-b.md"))):
        assert card.data.pipeline_tag is None


def test_cards_name_their_licence_and_pretrained_towers(tmp_path):
    from aesformer_hf import AesformerConfig

    for file_name, swin in (("aesformer-t.md", "swin_tiny"), ("aesformer-b.md", "swin_base")):
        data = ModelCard.load(MODEL_CARDS / file_name).data
        assert data.license == "unknown"  # the authors' repository states no licence
        assert any(swin in m for m in data.base_model) and "google-bert/bert-base-cased" in data.base_model
    AesformerConfig.from_variant("base").save_pretrained(tmp_path)
    card = ModelCard.load(write_model_card(tmp_path, {"eval_emd": 0.05}, "AVA", "base", "adaptation"))
    assert card.data.base_model == [  # the Swin `--config_preset base` trains from (`VARIANTS`)
        "timm/swin_base_patch4_window7_224.ms_in1k",
        "google-bert/bert-base-cased",
    ]
    # The Trainer's `eval_emd` (r=1) reaches model-index as the paper's EMD column.
    assert _metrics_of(card) == {("VIAA", "emd"): 0.05}
    resized = tmp_path / "resized"
    tiny_config().save_pretrained(resized)
    card = ModelCard.load(write_model_card(resized, {"accuracy": 0.8}, "AVA", "tiny", "adaptation"))
    assert card.data.base_model is None  # a resized Swin did not start from the released weights


@pytest.mark.parametrize("name", ["tiny", "small", "base"])
def test_cards_name_each_variant_as_the_config_registry_does(name, tmp_path):
    from aesformer_hf import AesformerConfig
    from aesformer_hf.models.aesformer.configuration_aesformer import VARIANTS

    variant = VARIANTS[name]
    AesformerConfig.from_variant(name).save_pretrained(tmp_path)
    card = ModelCard.load(
        write_model_card(tmp_path, {"accuracy": 0.8}, "AVA", variant.aliases[-1], "adaptation")
    )
    assert card.data.model_name == f"{variant.title} (AVA)"
    widths = ", ".join(map(str, variant.stage_widths))
    assert f"`{variant.swin}` (stage widths {widths}" in card.text
    proj = " (then `proj` 1024 -> 768)" if name == "base" else ""  # only B's Swin is wider than the fusion
    assert f"(stage widths {widths}{proj})," in card.text


def test_cards_describe_the_datasets_as_the_data_registry_does():
    from aesformer_hf.data.schema import DATASET_FACTS

    results = [MeasuredResults({"plcc": 0.5}, name, "VIAA") for name in ("ava", "photonet", "JenAesthetics")]
    text = build_model_card(results, variant="tiny", stage="adaptation").text
    for facts in DATASET_FACTS.values():
        assert f"- **{facts.title}**: " in text and facts.licence in text and facts.citation in text
    # The scales come from the datasets' specs.
    assert "- **AVA**: votes for ratings 1..10 (10 bins); high when the mean score > 5. Licence:" in text
    assert "- **Photo.net**: votes for ratings 1..7 (7 bins); high when the mean score > 5. Licence:" in text
    assert f"- **JAS**: {DATASET_FACTS['jas'].score_note} (0..1); high when > 0.5. Licence:" in text


def test_the_card_module_reads_the_dataset_facts_without_importing_datasets():
    import subprocess
    import sys

    code = (
        "import sys, aesformer_hf.hub.model_card\n"
        "print(sorted(m for m in ('datasets', 'pyarrow', 'pandas') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
