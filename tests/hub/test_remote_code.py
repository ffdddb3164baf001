"""Hub remote code: a saved AesFormer loads where aesformer_hf cannot be imported, and gives the same outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import pipeline

from aesformer_hf import AesformerForAesthetic, AesformerImageProcessor, AesformerProcessor
from aesformer_hf.hub import check_remote_code_folder, remote_code_problems, save_for_hub
from aesformer_hf.testing_utils import tiny_config, tiny_tokenizer

IMAGE_SIZE = 64
COMMENT = "lovely sharp colours but the horizon is tilted"
LOADER = Path(__file__).with_name("remote_loader.py")
CODE_FILES = {
    "configuration_aesformer.py",
    "modeling_aesformer.py",
    "pipeline_aesformer.py",
    "processing_aesformer.py",
    "image_processing_aesformer.py",
    "image_utils_aesformer.py",
}
# What transformers' `Pipeline.save_pretrained` writes for the registered task, spelled out independently.
CUSTOM_PIPELINES = {
    "image-aesthetics": {
        "impl": "pipeline_aesformer.ImageAestheticsPipeline",
        "pt": ["AutoModelForImageClassification"],
        "type": "multimodal",
    }
}


@pytest.fixture(scope="module")
def model_and_processor():
    torch.manual_seed(0)
    model = AesformerForAesthetic(tiny_config(image_size=IMAGE_SIZE)).eval()
    processor = AesformerProcessor(AesformerImageProcessor(size=IMAGE_SIZE), tiny_tokenizer([COMMENT]))
    return model, processor


@pytest.fixture(scope="module")
def saved_folders(tmp_path_factory, model_and_processor):
    """The two ways a user saves for the Hub: the package's `save_for_hub`, and the pipeline's own `save_pretrained`."""
    model, processor = model_and_processor
    root = tmp_path_factory.mktemp("remote-code")
    by_model = save_for_hub(model, processor, root / "saved-for-hub")
    by_pipeline = root / "saved-by-pipeline"
    pipeline("image-aesthetics", model=str(by_model)).save_pretrained(by_pipeline)
    return {"model": by_model, "pipeline": by_pipeline}


@pytest.fixture(scope="module")
def image_path(tmp_path_factory) -> Path:
    array = np.random.default_rng(7).integers(0, 256, size=(80, 96, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("image") / "photo.png"
    Image.fromarray(array).save(path)
    return path


@pytest.fixture(scope="module")
def remote_results(tmp_path_factory, saved_folders, image_path) -> dict:
    """Run remote_loader.py in a fresh interpreter: cwd outside the repo, no PYTHONPATH, aesformer_hf blocked."""
    work = tmp_path_factory.mktemp("remote-run")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(work / "modules"), TOKENIZERS_PARALLELISM="false")
    result_path = work / "result.json"
    folders = [str(saved_folders["model"]), str(saved_folders["pipeline"])]
    completed = subprocess.run(
        [sys.executable, str(LOADER), str(result_path), str(image_path), COMMENT, *folders],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,  # transformers would otherwise prompt for trust_remote_code
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(result_path.read_text())


def test_save_for_hub_writes_code_auto_map_and_custom_pipelines(saved_folders):
    folder = saved_folders["model"]
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_aesformer.AesformerConfig",
        "AutoModel": "modeling_aesformer.AesformerModel",
        "AutoModelForImageClassification": "modeling_aesformer.AesformerForAesthetic",
    }
    assert config["custom_pipelines"] == CUSTOM_PIPELINES
    assert CODE_FILES <= {p.name for p in folder.iterdir()}
    processor_config = json.loads((folder / "processor_config.json").read_text())
    assert processor_config["auto_map"]["AutoProcessor"] == "processing_aesformer.AesformerProcessor"
    assert remote_code_problems(folder) == []


def test_plain_save_pretrained_writes_what_transformers_writes(tmp_path, model_and_processor):
    """The model's code and its own Auto class (registered by `import aesformer_hf`), no pipeline: that is
    `save_for_hub`'s to add."""
    model, _ = model_and_processor
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"] == {
        "AutoConfig": "configuration_aesformer.AesformerConfig",
        "AutoModelForImageClassification": "modeling_aesformer.AesformerForAesthetic",
    }
    assert "custom_pipelines" not in config
    assert not (tmp_path / "pipeline_aesformer.py").exists()
    # Saving for the Hub (the module's other folders) left the model's config as it was.
    assert model.config.to_dict().get("custom_pipelines") is None


def test_save_for_hub_writes_the_same_custom_pipelines_as_transformers_pipeline_save(saved_folders):
    by_model = json.loads((saved_folders["model"] / "config.json").read_text())["custom_pipelines"]
    by_pipeline = json.loads((saved_folders["pipeline"] / "config.json").read_text())["custom_pipelines"]
    assert by_model == by_pipeline


def test_aesformer_hf_is_not_importable_in_the_remote_process(remote_results):
    assert remote_results["import_aesformer_hf"].startswith("ModuleNotFoundError")
    assert remote_results["aesformer_hf_modules_loaded"] == []


@pytest.mark.parametrize("saved_by", ["model", "pipeline"])
def test_remote_code_loads_every_auto_class_and_the_pipeline(remote_results, saved_folders, saved_by):
    seen = remote_results["folders"][str(saved_folders[saved_by])]
    expected = {
        "config": "AesformerConfig",
        "model": "AesformerForAesthetic",
        "processor": "AesformerProcessor",
        "image_processor": "AesformerImageProcessor",
        "pipeline": "ImageAestheticsPipeline",
    }
    for role, class_name in expected.items():
        assert seen["classes"][role].startswith("transformers_modules."), seen["classes"][role]
        assert seen["classes"][role].endswith("." + class_name)


def test_remote_code_loads_the_base_model_with_automodel(remote_results, saved_folders):
    """`save_for_hub` writes the base model's `AutoModel` entry (transformers writes only the saved class's)."""
    seen = remote_results["folders"][str(saved_folders["model"])]
    assert seen["classes"]["base_model"].startswith("transformers_modules."), seen["classes"]["base_model"]
    assert seen["classes"]["base_model"].endswith(".AesformerModel")


@pytest.mark.parametrize("saved_by", ["model", "pipeline"])
def test_remote_code_outputs_match_the_package(remote_results, saved_folders, saved_by, image_path):
    folder = saved_folders[saved_by]
    seen = remote_results["folders"][str(folder)]
    image = Image.open(image_path).convert("RGB")
    model = AesformerForAesthetic.from_pretrained(folder).eval()
    processor = AesformerProcessor.from_pretrained(folder)
    with torch.no_grad():
        viaa = model(**processor(images=image))
        miaa = model(**processor(images=image, text=[COMMENT]))
    np.testing.assert_allclose(seen["model_viaa"]["distribution"], viaa.distribution.numpy(), atol=1e-6)
    np.testing.assert_allclose(seen["model_viaa"]["score"], viaa.score.numpy(), atol=1e-5)
    np.testing.assert_allclose(seen["model_miaa"]["distribution"], miaa.distribution.numpy(), atol=1e-6)
    np.testing.assert_allclose(seen["model_miaa"]["score"], miaa.score.numpy(), atol=1e-5)

    rate = pipeline("image-aesthetics", model=str(folder))
    for key, local in (("pipeline_viaa", rate(image)), ("pipeline_miaa", rate(image, comments=[COMMENT]))):
        remote = seen[key]
        assert remote["mode"] == local["mode"] and remote["label"] == local["label"]
        np.testing.assert_allclose(remote["score"], local["score"], atol=1e-5)
        np.testing.assert_allclose(remote["distribution"], local["distribution"], atol=1e-6)
    # The two modes differ, so the comparison above really covers both paths.
    assert seen["pipeline_viaa"]["mode"] != seen["pipeline_miaa"]["mode"]


def test_remote_code_pipeline_streams_and_skips(remote_results, saved_folders, image_path):
    local = pipeline("image-aesthetics", model=str(saved_folders["model"]))
    expected_miaa, expected_viaa = local(str(image_path), comments=[COMMENT]), local(str(image_path))
    for folder in saved_folders.values():
        miaa, skipped, viaa = remote_results["folders"][str(folder)]["pipeline_stream"]
        assert skipped == {"error": f"{image_path}.missing: no such file"}
        for remote, expected in ((miaa, expected_miaa), (viaa, expected_viaa)):
            assert remote["mode"] == expected["mode"]
            np.testing.assert_allclose(remote["score"], expected["score"], atol=1e-5)


def test_without_trust_remote_code_the_error_says_what_to_do(remote_results, saved_folders):
    for folder in saved_folders.values():
        seen = remote_results["folders"][str(folder)]
        for key in ("error_without_trust_config", "error_without_trust_pipeline"):
            assert seen[key] is not None, f"{key}: loading without trust_remote_code did not fail"
            assert "trust_remote_code=True" in seen[key], seen[key]


def test_save_for_hub_writes_one_checked_folder_with_the_card(tmp_path, model_and_processor):
    model, processor = model_and_processor
    card = "---\nlibrary_name: transformers\n---\n\n# A card\n"
    folder = save_for_hub(model, processor, tmp_path / "out", card=card)
    assert (folder / "README.md").read_text() == card
    check_remote_code_folder(folder)  # raises if anything is missing


def test_remote_code_problems_names_what_is_missing(tmp_path, saved_folders):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(saved_folders["model"], broken)
    (broken / "image_utils_aesformer.py").unlink()  # imported by image_processing_aesformer.py
    config = json.loads((broken / "config.json").read_text())
    del config["custom_pipelines"]
    (broken / "config.json").write_text(json.dumps(config))
    problems = remote_code_problems(broken)
    assert any("image_utils_aesformer.py" in p for p in problems)
    assert any("custom_pipelines" in p and "image-aesthetics" in p for p in problems)
    assert len(problems) == 2


def test_hub_shipped_files_point_at_nothing_outside_the_repository():
    """The model folder's files travel alone to the Hub: their docstrings must not cite the project's design notes."""
    from pathlib import Path

    import aesformer_hf.models.aesformer as shipped

    for path in Path(shipped.__file__).parent.glob("*.py"):
        assert "DESIGN" not in path.read_text(encoding="utf-8"), path.name
