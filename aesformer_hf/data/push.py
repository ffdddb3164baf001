"""Uploading a built folder to a Hub dataset repo, private unless asked otherwise.

None of these datasets may be redistributed, so the default is a private repo, and an upload to a
repo that already exists *and is public* is refused unless ``private=False`` says it is wanted.
Only the card, the spec and the shards go up; the build report stays on the user's disk.
"""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import HfApi

from aesformer_hf.data.parquet import DATA_FOLDER
from aesformer_hf.data.schema import SPEC_FILENAME

HUB_FILE_PATTERNS = ("README.md", SPEC_FILENAME, f"{DATA_FOLDER}/*.parquet")


def push_dataset_folder(
    output_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = True,
    token: str | None = None,
    commit_message: str | None = None,
    api: HfApi | None = None,
) -> str:
    """Create (if needed) the dataset repo ``repo_id`` and upload the card, spec and shards.

    Shards of an earlier push that this build does not have are deleted in the same commit, so a
    re-push with fewer shards leaves no stale rows. Returns the repo URL.
    """
    folder = Path(output_dir)
    if not (folder / "README.md").is_file() or not any((folder / DATA_FOLDER).glob("*.parquet")):
        raise FileNotFoundError(
            f"{folder} is not a built dataset: expected README.md and {DATA_FOLDER}/*.parquet "
            "(run prepare-dataset first)"
        )
    api = api or HfApi(token=token)
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    if private:
        info = api.dataset_info(repo_id)
        if info.private is False:
            raise PermissionError(
                f"the Hub repo {repo_id} already exists and is public; these datasets may not be "
                "redistributed. Make it private on the Hub, choose another name, or pass --public "
                "if the data's license allows it."
            )
    api.upload_folder(
        repo_id=repo_id,
        repo_type="dataset",
        folder_path=str(folder),
        allow_patterns=list(HUB_FILE_PATTERNS),
        delete_patterns=[f"{DATA_FOLDER}/*.parquet"],
        commit_message=commit_message or "Upload dataset built with aesformer-hf prepare-dataset",
    )
    return str(url)
