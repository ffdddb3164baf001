"""`AesformerForAesthetic.from_vision_text_pretrained`: towers from local folders and from the Hub cache, offline."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import load_file
from timm.models._hub import save_for_hf
from transformers import BertConfig, BertForMaskedLM, RobertaConfig, TimmWrapperConfig, TimmWrapperModel

from aesformer_hf import AesformerForAesthetic

SWIN_ARGS = {
    "embed_dim": 4,
    "depths": [1, 1, 2, 1],
    "num_heads": [1, 1, 2, 2],
    "img_size": 64,
    "window_size": 4,
}
BERT = {
    "vocab_size": 99,
    "hidden_size": 32,
    "num_hidden_layers": 4,
    "num_attention_heads": 2,
    "intermediate_size": 40,
}
REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def towers(tmp_path_factory):
    """A tiny timm Swin saved the way timm pushes to the Hub, and a tiny BERT saved like bert-base-cased
    (a BertForMaskedLM: `bert.`-prefixed weights, a pooler and an MLM head AesFormer does not use)."""
    root = tmp_path_factory.mktemp("towers")
    torch.manual_seed(0)
    swin = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, num_classes=7, **SWIN_ARGS)
    save_for_hf(swin, root / "swin", model_args=SWIN_ARGS, safe_serialization=True)
    bert = BertForMaskedLM(BertConfig(**BERT))
    bert.save_pretrained(root / "bert")
    return root, swin.state_dict(), bert.bert.state_dict()


def _hub_cache(root: Path, towers_root: Path) -> Path:
    """Lay the two folders out as the Hub cache does: models--org--name/{snapshots/<sha>/, refs/main}."""
    cache = root / "hub"
    for folder, repo in (("swin", "tiny-swin"), ("bert", "tiny-bert")):
        sha = f"{abs(hash(repo)):040x}"[:40]
        snapshot = cache / f"models--org--{repo}" / "snapshots" / sha
        shutil.copytree(towers_root / folder, snapshot)
        (cache / f"models--org--{repo}" / "refs").mkdir(parents=True)
        (cache / f"models--org--{repo}" / "refs" / "main").write_text(sha)
    return cache


def assert_built_from(model: AesformerForAesthetic, swin_state, bert_state, fusion_from=(2, 3)):
    cfg = model.config
    assert cfg.vision_config.architecture == "swin_tiny_patch4_window7_224"
    assert {
        k: cfg.vision_config.model_args[k] for k in ("embed_dim", "depths", "num_heads", "window_size")
    } == {k: SWIN_ARGS[k] for k in ("embed_dim", "depths", "num_heads", "window_size")}
    assert "num_classes" not in cfg.vision_config.model_args
    assert {k: getattr(cfg.text_config, k) for k in BERT} == BERT

    tower = model.model.vision_model.timm_model.state_dict()
    assert set(tower) == {k for k in swin_state if not k.startswith("head.")}
    assert all(torch.equal(tower[k], swin_state[k]) for k in tower)
    text = model.model.text_model.state_dict()
    assert set(text) == {k for k in bert_state if not k.startswith("pooler.")}
    assert all(torch.equal(text[k], bert_state[k]) for k in text)

    # Fusion layer i <- BERT layer num_layers - fusion_layers + i: attention shared, FFN in both experts.
    for fusion, source in zip(model.model.fusion_layers, fusion_from, strict=True):
        bert = {
            k.removeprefix(f"encoder.layer.{source}."): v
            for k, v in bert_state.items()
            if k.startswith(f"encoder.layer.{source}.")
        }
        pairs = {
            fusion.self_attention.query: "attention.self.query",
            fusion.self_attention.key: "attention.self.key",
            fusion.self_attention.value: "attention.self.value",
            fusion.self_attention.output_dense: "attention.output.dense",
            fusion.self_attention.output_layer_norm: "attention.output.LayerNorm",
        }
        for expert in (fusion.vision_language_expert, fusion.vision_expert):
            pairs.update(
                {
                    expert.intermediate_dense: "intermediate.dense",
                    expert.output_dense: "output.dense",
                    expert.output_layer_norm: "output.LayerNorm",
                }
            )
        for module, name in pairs.items():
            assert torch.equal(module.weight, bert[f"{name}.weight"]) and torch.equal(
                module.bias, bert[f"{name}.bias"]
            ), name
    # The experts are copies, not the same tensors: stage 2 trains the vision expert alone.
    layer = model.model.fusion_layers[0]
    assert (
        layer.vision_expert.output_dense.weight.data_ptr()
        != layer.vision_language_expert.output_dense.weight.data_ptr()
    )

    # Heads and adapters keep the documented initialisation (adapter weight std: see test_adapters_start_near_identity).
    for adapter in model.model.neck.adapters:
        assert not adapter.down.bias.any() and not adapter.up.bias.any()
    assert model.contrastive_temperature.item() == pytest.approx(cfg.contrastive_temperature)
    for head in (model.viaa_head, model.miaa_image_head, model.miaa_text_head):
        assert not head.out_proj.bias.any()
        assert head.dense.weight.std().item() == pytest.approx(cfg.initializer_range, rel=0.3)


def run_both_paths(model: AesformerForAesthetic, bins: int):
    model.eval()
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    input_ids = torch.randint(5, 99, (2, 6), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        viaa = model(images)
        miaa = model(images, input_ids=input_ids, attention_mask=torch.ones_like(input_ids))
    assert viaa.distribution.shape == miaa.distribution.shape == (2, bins)
    assert torch.isfinite(viaa.score).all() and torch.isfinite(miaa.score).all()


def test_local_folders(towers):
    root, swin_state, bert_state = towers
    model = AesformerForAesthetic.from_vision_text_pretrained(
        str(root / "swin"), root / "bert", num_bins=7, score_max=7.0
    )
    assert model.config.num_bins == 7 and model.config.fusion_layers == 2
    assert_built_from(model, swin_state, bert_state)
    run_both_paths(model, bins=7)


def test_fusion_layer_count_follows_the_override(towers):
    root, swin_state, bert_state = towers
    model = AesformerForAesthetic.from_vision_text_pretrained(root / "swin", root / "bert", fusion_layers=3)
    assert_built_from(model, swin_state, bert_state, fusion_from=(1, 2, 3))
    with pytest.raises(ValueError, match="fusion_layers=5 but the BERT .* has only 4 layers"):
        AesformerForAesthetic.from_vision_text_pretrained(root / "swin", root / "bert", fusion_layers=5)


def test_hub_cache_layout_in_process(towers, tmp_path):
    root, swin_state, bert_state = towers
    cache = _hub_cache(tmp_path, root)
    model = AesformerForAesthetic.from_vision_text_pretrained(
        "org/tiny-swin", "org/tiny-bert", cache_dir=str(cache), local_files_only=True
    )
    assert_built_from(model, swin_state, bert_state)


def test_hub_cache_with_offline_environment(towers, tmp_path):
    """The user's setting: HF_HUB_CACHE and HF_HUB_OFFLINE=1 in the environment, Hub ids in the call."""
    root, swin_state, bert_state = towers
    cache = _hub_cache(tmp_path, root)
    script = (
        "import torch, sys\n"
        "from aesformer_hf import AesformerForAesthetic\n"
        "m = AesformerForAesthetic.from_vision_text_pretrained('org/tiny-swin', 'org/tiny-bert')\n"
        "torch.save({k: v for k, v in m.state_dict().items()}, sys.argv[1])\n"
    )
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    env.pop("HF_HOME", None)
    out = tmp_path / "state.pt"
    result = subprocess.run(
        [sys.executable, "-c", script, str(out)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    state = torch.load(out, weights_only=True)
    model = AesformerForAesthetic.from_vision_text_pretrained(root / "swin", root / "bert")
    model.load_state_dict(state)  # same layout
    tower = {
        k.removeprefix("model.vision_model.timm_model."): v
        for k, v in state.items()
        if k.startswith("model.vision_model.")
    }
    assert all(torch.equal(tower[k], swin_state[k]) for k in tower)
    assert torch.equal(
        state["model.fusion_layers.1.vision_expert.output_dense.weight"],
        bert_state["encoder.layer.3.output.dense.weight"],
    )


def test_transformers_format_vision_folder_and_vision_only(towers, tmp_path):
    root, swin_state, _ = towers
    wrapper = TimmWrapperModel.from_pretrained(
        root / "swin",
        config=TimmWrapperConfig(architecture="swin_tiny_patch4_window7_224", model_args=SWIN_ARGS),
    )
    wrapper.save_pretrained(tmp_path / "wrapped")  # keys saved as timm_model.*
    model = AesformerForAesthetic.from_vision_text_pretrained(tmp_path / "wrapped", None)
    assert model.config.is_vision_only and model.model.text_model is None
    tower = model.model.vision_model.timm_model.state_dict()
    assert all(torch.equal(v, swin_state[k]) for k, v in tower.items())
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert model.eval()(images).distribution.shape == (1, 10)


def test_wrong_towers_are_refused_by_name(towers, tmp_path):
    root, _, _ = towers
    resnet = tmp_path / "resnet"
    resnet.mkdir()
    (resnet / "config.json").write_text(json.dumps({"architecture": "resnet18", "num_classes": 10}))
    with pytest.raises(ValueError, match="resnet18.*must be a timm Swin"):
        AesformerForAesthetic.from_vision_text_pretrained(resnet, root / "bert")
    RobertaConfig(**BERT).save_pretrained(tmp_path / "roberta")
    with pytest.raises(ValueError, match="RobertaConfig.*is a BERT"):
        AesformerForAesthetic.from_vision_text_pretrained(root / "swin", tmp_path / "roberta")
    with pytest.raises(OSError, match="Cannot read a timm vision tower from .*nowhere"):
        AesformerForAesthetic.from_vision_text_pretrained(tmp_path / "nowhere", root / "bert")
    with pytest.raises(ValueError, match="vision_config comes from the pretrained tower"):
        AesformerForAesthetic.from_vision_text_pretrained(root / "swin", root / "bert", vision_config={})


def test_safetensors_and_pickle_tower_files_load_the_same(towers, tmp_path):
    root, swin_state, _ = towers
    bin_folder = tmp_path / "swin_bin"
    bin_folder.mkdir()
    shutil.copy(root / "swin" / "config.json", bin_folder)
    torch.save(load_file(root / "swin" / "model.safetensors"), bin_folder / "pytorch_model.bin")
    model = AesformerForAesthetic.from_vision_text_pretrained(bin_folder, root / "bert")
    tower = model.model.vision_model.timm_model.state_dict()
    assert all(torch.equal(v, swin_state[k]) for k, v in tower.items())


def test_adapters_start_near_identity(towers):
    root, _, _ = towers
    model = AesformerForAesthetic.from_vision_text_pretrained(
        root / "swin", root / "bert", adapter_init_std=0.001
    )
    for adapter in model.model.neck.adapters:
        assert adapter.down.weight.std().item() < 0.002 and adapter.up.weight.std().item() < 0.002
