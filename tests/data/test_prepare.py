"""The prepare-dataset command, the dataset card and the push at the huggingface_hub boundary."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import pytest
from huggingface_hub import DatasetCard
from huggingface_hub.utils import filter_repo_objects

from aesformer_hf.commands.prepare_dataset import add_parser, main, parse_size
from aesformer_hf.data import push as push_module
from aesformer_hf.data.prepare import prepare_dataset

from .helpers import image_bytes

HUB_URL = "https://huggingface.co/datasets/my-org/ava-aesformer"


def _tiny_ava(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "AVA.txt").write_text(
        "1 953619 0 1 5 17 38 36 15 6 5 1 1 22 1396\n"
        "2 953958 10 7 15 26 26 21 10 8 1 2 1 21 1396\n"
        "3 954184 0 0 4 8 41 56 10 3 4 0 0 0 1396\n"
    )
    (root / "generic_test.jpgl").write_text("953958\n")
    (root / "images" / "953619.jpg").write_bytes(image_bytes(seed=1))
    (root / "images" / "953958.jpg").write_bytes(image_bytes(seed=2))
    return root


class FakeHfApi:
    """Stands in for huggingface_hub.HfApi: records calls, reaches no network."""

    def __init__(self, existing_private: bool = True):
        self.calls: list[tuple[str, tuple, dict]] = []
        self.existing_private = existing_private

    def create_repo(self, *args, **kwargs):
        self.calls.append(("create_repo", args, kwargs))
        return HUB_URL

    def dataset_info(self, *args, **kwargs):
        self.calls.append(("dataset_info", args, kwargs))
        return SimpleNamespace(private=self.existing_private)

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", (), kwargs))
        return SimpleNamespace(commit_url=HUB_URL + "/commit/abc")

    def named(self, name):
        return [call for call in self.calls if call[0] == name]


@pytest.fixture
def fake_api(monkeypatch):
    api = FakeHfApi()
    monkeypatch.setattr(push_module, "HfApi", lambda token=None: api)
    return api


def _uploaded_files(folder: Path, upload_kwargs: dict) -> set[str]:
    """The files upload_folder would send, by huggingface_hub's own pattern filter."""
    files = [path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()]
    return set(filter_repo_objects(files, allow_patterns=upload_kwargs["allow_patterns"]))


def test_cli_builds_pushes_privately_and_writes_the_card(tmp_path, fake_api, capsys):
    data_dir, output = _tiny_ava(tmp_path / "AVA"), tmp_path / "out"
    code = main(
        [
            "ava",
            "--data-dir",
            str(data_dir),
            "--output",
            str(output),
            "--push-to-hub",
            "my-org/ava-aesformer",
            "--no-progress",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert (
        "wrote 2 rows (train 1, test 1)" in printed and "missing_image 1" in printed and "private" in printed
    )
    (create,) = fake_api.named("create_repo")
    assert create[1] == ("my-org/ava-aesformer",)
    assert (
        create[2]["private"] is True and create[2]["repo_type"] == "dataset" and create[2]["exist_ok"] is True
    )
    (upload,) = fake_api.named("upload_folder")
    assert upload[2]["repo_id"] == "my-org/ava-aesformer" and upload[2]["repo_type"] == "dataset"
    assert Path(upload[2]["folder_path"]) == output
    assert _uploaded_files(output, upload[2]) == {
        "README.md",
        "aesthetic_spec.json",
        "data/train-00000-of-00001.parquet",
        "data/test-00000-of-00001.parquet",
    }  # the build report stays local
    card = DatasetCard.load(output / "README.md").data.to_dict()
    assert card["license"] == "other"
    assert card["configs"] == [
        {
            "config_name": "default",
            "data_files": [
                {"split": "train", "path": "data/train-*.parquet"},
                {"split": "test", "path": "data/test-*.parquet"},
            ],
        }
    ]
    assert {s["name"]: s["num_examples"] for s in card["dataset_info"]["splits"]} == {"train": 1, "test": 1}
    assert card["aesthetic_spec"]["num_bins"] == 10
    assert "refrain from redistributing" in (output / "README.md").read_text()


def test_public_flag_and_refusal_to_push_into_a_public_repo(tmp_path, monkeypatch, capsys):
    data_dir = _tiny_ava(tmp_path / "AVA")
    public_repo = FakeHfApi(existing_private=False)
    monkeypatch.setattr(push_module, "HfApi", lambda token=None: public_repo)
    args = [
        "ava",
        "--data-dir",
        str(data_dir),
        "--output",
        str(tmp_path / "a"),
        "--push-to-hub",
        "o/n",
        "--no-progress",
    ]
    assert main(args) == 1
    assert "public" in capsys.readouterr().err and not public_repo.named("upload_folder")
    assert (tmp_path / "a" / "data").is_dir()  # the local build is kept

    wanted_public = FakeHfApi(existing_private=False)
    monkeypatch.setattr(push_module, "HfApi", lambda token=None: wanted_public)
    args = [
        "ava",
        "--data-dir",
        str(data_dir),
        "--output",
        str(tmp_path / "b"),
        "--push-to-hub",
        "o/n",
        "--public",
        "--no-progress",
    ]
    assert main(args) == 0
    assert wanted_public.named("create_repo")[0][2]["private"] is False and wanted_public.named(
        "upload_folder"
    )


def test_python_api_pushes_private_by_default(tmp_path, fake_api):
    prepared = prepare_dataset(
        "ava", _tiny_ava(tmp_path / "AVA"), tmp_path / "out", push_to_hub="o/n", progress=False
    )
    assert prepared.hub_url == HUB_URL and "(private)" in prepared.summary
    assert fake_api.named("create_repo")[0][2]["private"] is True
    assert fake_api.named("upload_folder")[0][2]["delete_patterns"] == ["data/*.parquet"]  # no stale shards


def test_push_refuses_a_folder_that_is_not_built(tmp_path, fake_api):
    with pytest.raises(FileNotFoundError, match="README.md"):
        push_module.push_dataset_folder(tmp_path, "o/n")
    assert not fake_api.calls


def test_bad_inputs_exit_2_with_a_clear_message(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main(["ava", "--data-dir", str(missing), "--output", str(tmp_path / "o")]) == 2
    assert str(missing) in capsys.readouterr().err
    data_dir = _tiny_ava(tmp_path / "AVA")
    assert (
        main(["photonet", "--data-dir", str(data_dir), "--output", str(tmp_path / "o"), "--comments", "x"])
        == 2
    )
    assert "--comments applies to AVA only" in capsys.readouterr().err
    out = str(tmp_path / "o")
    assert main(["ava", "--data-dir", str(data_dir), "--output", out, "--no-progress"]) == 0
    assert main(["ava", "--data-dir", str(data_dir), "--output", out, "--no-progress"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["ava", "--data-dir", str(data_dir), "--output", out, "--overwrite", "--no-progress"]) == 0
    assert main(["ava", "--data-dir", str(data_dir), "--output", str(data_dir)]) == 2


def test_add_parser_registers_the_subcommand():
    parser = argparse.ArgumentParser(prog="aesformer-hf")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "prepare-dataset",
            "jas",
            "--data-dir",
            "d",
            "--output",
            "o",
            "--num-proc",
            "4",
            "--max-shard-size",
            "1GB",
        ]
    )
    assert args.dataset == "jas" and args.num_proc == 4 and args.max_shard_size == 2**30 and not args.public
    assert callable(args.func)
    assert parse_size("500MB") == 500 * 2**20 and parse_size("1024") == 1024
