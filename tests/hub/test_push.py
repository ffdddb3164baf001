"""Pushing to the Hub, checked at the huggingface_hub API boundary (no Hub is reachable in tests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from huggingface_hub import CommitInfo, HfApi, ModelCard, RepoUrl

from aesformer_hf import AesformerForAesthetic, AesformerImageProcessor, AesformerProcessor
from aesformer_hf.hub import RemoteCodeError, build_model_card, push_model_to_hub
from aesformer_hf.hub.model_card import MeasuredResults
from aesformer_hf.hub.remote_code import STALE_FILE_PATTERNS
from aesformer_hf.testing_utils import tiny_config, tiny_tokenizer

REPO_ID = "someone/aesformer-tiny"
CODE_FILES = {
    "configuration_aesformer.py",
    "modeling_aesformer.py",
    "pipeline_aesformer.py",
    "processing_aesformer.py",
    "image_processing_aesformer.py",
    "image_utils_aesformer.py",
}
CUSTOM_PIPELINES = {
    "image-aesthetics": {
        "impl": "pipeline_aesformer.ImageAestheticsPipeline",
        "pt": ["AutoModelForImageClassification"],
        "type": "multimodal",
    }
}


@pytest.fixture()
def model_and_processor():
    torch.manual_seed(0)
    model = AesformerForAesthetic(tiny_config(image_size=64)).eval()
    return model, AesformerProcessor(AesformerImageProcessor(size=64), tiny_tokenizer())


class FakeHub:
    """Stands in for the Hub behind `HfApi`: records the calls and what the uploaded files held at upload time."""

    def __init__(self):
        self.created: list[dict] = []
        self.uploads: list[dict] = []
        self.commits: list[dict] = []

    def create_repo(self, api, repo_id, **kwargs):
        self.created.append({"repo_id": repo_id, **kwargs})
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, api, **kwargs):
        folder = Path(kwargs["folder_path"])
        files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
        self.uploads.append({"kwargs": kwargs, "files": files})
        return CommitInfo(
            commit_url=f"https://huggingface.co/{kwargs['repo_id']}/commit/abc",
            commit_message=kwargs["commit_message"],
            commit_description="",
            oid="abc",
        )

    def create_commit(self, api, repo_id, operations, **kwargs):
        files = {}
        for operation in operations:
            source = operation.path_or_fileobj
            files[operation.path_in_repo] = Path(source).read_bytes() if isinstance(source, str) else source
        self.commits.append({"repo_id": repo_id, "files": files, **kwargs})
        return CommitInfo(
            commit_url=f"https://huggingface.co/{repo_id}/commit/def",
            commit_message="",
            commit_description="",
            oid="def",
        )


@pytest.fixture()
def hub(monkeypatch) -> FakeHub:
    fake = FakeHub()
    monkeypatch.setattr(HfApi, "create_repo", lambda api, repo_id, **kw: fake.create_repo(api, repo_id, **kw))
    monkeypatch.setattr(HfApi, "upload_folder", lambda api, **kw: fake.upload_folder(api, **kw))
    monkeypatch.setattr(
        HfApi,
        "create_commit",
        lambda api, repo_id, operations, **kw: fake.create_commit(api, repo_id, operations, **kw),
    )
    return fake


def _card() -> ModelCard:
    results = [MeasuredResults({"accuracy": 0.75, "plcc": 0.61, "srcc": 0.6}, "AVA", "VIAA")]
    return build_model_card(results, variant="tiny", stage="adaptation", model_id=REPO_ID)


def test_push_model_to_hub_sends_model_code_pipeline_processor_and_card_in_one_commit(
    hub, model_and_processor
):
    model, processor = model_and_processor
    commit = push_model_to_hub(model, processor, REPO_ID, card=_card())

    assert hub.created == [{"repo_id": REPO_ID, "private": True, "exist_ok": True, "repo_type": "model"}]
    assert len(hub.uploads) == 1 and commit.oid == "abc"
    upload = hub.uploads[0]
    assert upload["kwargs"]["repo_id"] == REPO_ID
    assert upload["kwargs"]["delete_patterns"] == STALE_FILE_PATTERNS
    files = upload["files"]
    assert CODE_FILES | {"config.json", "model.safetensors", "processor_config.json", "README.md"} <= set(
        files
    )
    assert any(name.startswith("tokenizer") for name in files)
    config = json.loads(files["config.json"])
    assert config["auto_map"]["AutoModelForImageClassification"] == "modeling_aesformer.AesformerForAesthetic"
    assert config["auto_map"]["AutoModel"] == "modeling_aesformer.AesformerModel"
    assert config["custom_pipelines"] == CUSTOM_PIPELINES
    readme = files["README.md"].decode()
    assert "model-index" in readme and "value: 0.61" in readme


def test_push_model_to_hub_passes_privacy_and_revision(hub, model_and_processor):
    model, processor = model_and_processor
    push_model_to_hub(model, processor, REPO_ID, private=False, revision="dev", create_pr=True)
    assert hub.created[0]["private"] is False
    kwargs = hub.uploads[0]["kwargs"]
    assert kwargs["revision"] == "dev" and kwargs["create_pr"] is True
    assert "README.md" not in hub.uploads[0]["files"]  # no card given: the repo's card is left alone


def test_push_model_to_hub_refuses_a_folder_that_would_not_load_remotely(
    hub, model_and_processor, monkeypatch
):
    model, processor = model_and_processor
    # As if aesformer_hf had not registered the model for remote code: no auto_map entry, no custom_pipelines.
    monkeypatch.setattr(AesformerForAesthetic, "_auto_class", None)
    with pytest.raises(RemoteCodeError, match="AutoModelForImageClassification"):
        push_model_to_hub(model, processor, REPO_ID)
    assert hub.uploads == []


def test_push_model_to_hub_uploads_a_card_file(hub, model_and_processor, tmp_path):
    model, processor = model_and_processor
    card_file = tmp_path / "card.md"
    card_file.write_text("---\nlibrary_name: transformers\n---\n\n# AesFormer-T\n")
    push_model_to_hub(model, processor, REPO_ID, card=card_file)
    assert hub.uploads[0]["files"]["README.md"] == card_file.read_bytes()


def test_push_model_to_hub_names_a_card_that_is_not_a_file(hub, model_and_processor):
    model, processor = model_and_processor
    with pytest.raises(FileNotFoundError, match="no-such-card.md"):
        push_model_to_hub(model, processor, REPO_ID, card="no-such-card.md")
    assert hub.uploads == []


def test_model_push_to_hub_sends_what_transformers_writes(hub, model_and_processor, monkeypatch):
    """transformers' own `model.push_to_hub` sends the model's code and `auto_map`, and no pipeline: shipping the
    pipeline is `push_model_to_hub`'s job (tested above)."""
    model, _ = model_and_processor
    # push_to_hub reads the repo's current card first; there is none on this fake Hub.
    monkeypatch.setattr(
        "transformers.utils.hub.create_and_tag_model_card",
        lambda repo_id, tags=None, token=None: ModelCard("---\nlibrary_name: transformers\n---\n"),
    )
    model.push_to_hub(REPO_ID)
    assert len(hub.commits) == 1
    files = hub.commits[0]["files"]
    assert {"configuration_aesformer.py", "modeling_aesformer.py"} <= set(files)
    assert "pipeline_aesformer.py" not in files
    assert "custom_pipelines" not in json.loads(files["config.json"])
