"""`aesformer-hf score` under `accelerate launch` with two CPU processes (gloo): the same rows as one process,
nothing missing or twice, and `--resume` after one process was killed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aesformer_hf.cli import main as cli_main
from aesformer_hf.scoring_output import FILES_LAYOUT, OutputLayout, read_rows

from .conftest import random_image
from .test_score_command import KILL_SCRIPT, _dataset_parquet, _env

DATASET_LAYOUT = OutputLayout(("image_id", "row"), "image_id")


def _launch(tmp_path: Path, port: int, argv: list[str], kill: tuple[int, int] | None = None):
    launcher = Path(sys.executable).with_name("accelerate")
    if not launcher.exists():
        if shutil.which("accelerate") is None:
            pytest.skip("the accelerate command is not installed")
        launcher = Path(shutil.which("accelerate"))
    command = [
        str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
    ]  # fmt: skip
    if kill is None:
        command += ["-m", "aesformer_hf.cli", *argv]
    else:
        command += [str(KILL_SCRIPT), str(kill[0]), str(kill[1]), *argv]
    # With no GPU, --multi_gpu starts two torch.distributed CPU processes; `score` joins them with gloo.
    return subprocess.run(command, env=_env(tmp_path), capture_output=True, text=True, timeout=400)


def _same_rows(got: list[dict], expected: list[dict]) -> None:
    key = FILES_LAYOUT.key_columns[0] if "path" in expected[0] else "image_id"
    assert [row[key] for row in got] == [
        row[key] for row in expected
    ]  # nothing missing, nothing twice, in order
    for a, b in zip(got, expected):
        assert a["error"] == b["error"] and a["mode"] == b["mode"] and a["label"] == b["label"], a
        if b["score"] is not None:  # other batch boundaries: equal to float error
            assert a["score"] == pytest.approx(b["score"], abs=1e-5)
            assert a["distribution"] == pytest.approx(b["distribution"], abs=1e-5)


@pytest.fixture()
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for seed in range(21):
        random_image(seed).save(folder / f"img{seed:02d}.png")
    (folder / "img05.png").write_bytes(b"broken")
    return folder


@pytest.mark.timeout(900)
def test_two_processes_write_what_one_process_writes_and_resume_after_a_kill(
    photos, saved_model_dir, tmp_path
):
    reference = tmp_path / "reference.csv"
    common = ["--model", str(saved_model_dir), "--batch-size", "2", "--no-progress"]
    assert cli_main(["score", str(photos), *common, "--output", str(reference)]) == 1
    expected = list(read_rows(reference, FILES_LAYOUT))

    output = tmp_path / "two.csv"
    result = _launch(tmp_path, 29541, ["score", str(photos), *common, "--output", str(output)])
    assert (
        result.returncode != 0
    )  # 1: one input was skipped (accelerate reports any non-zero exit as a failure)
    assert "/aesformer_hf/" not in result.stderr, result.stderr[-3000:]  # no traceback of ours
    assert "exitcode  : 1" in result.stderr and "skipped" in result.stderr, result.stderr[-3000:]
    _same_rows(list(read_rows(output, FILES_LAYOUT)), expected)
    assert not list(tmp_path.glob("two.csv.part-*"))

    # Process 1 is killed after two batches (accelerate then stops process 0 too); --resume finishes the job.
    resumed = tmp_path / "resumed.parquet"
    killed = _launch(tmp_path, 29542, ["score", str(photos), *common, "--output", str(resumed)], kill=(1, 2))
    assert killed.returncode != 0
    # The killed process's part holds its two finished batches; the other's what it finished before it was stopped.
    assert len(list(read_rows(Path(f"{resumed}.part-1-of-2"), FILES_LAYOUT))) == 2 * 2
    assert not resumed.exists()
    result = _launch(tmp_path, 29543, ["score", str(photos), *common, "--output", str(resumed), "--resume"])
    assert "exitcode  : 1" in result.stderr, result.stderr[-3000:]
    _same_rows(list(read_rows(resumed, FILES_LAYOUT)), expected)
    assert not list(tmp_path.glob("resumed.parquet.part-*"))


@pytest.mark.timeout(600)
def test_two_processes_share_a_streamed_dataset(saved_model_dir, tmp_path):
    data = _dataset_parquet(tmp_path)
    common = ["--dataset", str(data), "--model", str(saved_model_dir), "--comments-column", "comments"]
    common += ["--batch-size", "2", "--no-progress", "--cache-dir", str(tmp_path / "cache")]
    reference = tmp_path / "reference.jsonl"
    assert cli_main(["score", *common, "--output", str(reference)]) == 1
    output = tmp_path / "two.jsonl"
    result = _launch(tmp_path, 29544, ["score", *common, "--streaming", "--output", str(output)])
    assert "exitcode  : 1" in result.stderr, result.stderr[-3000:]
    assert output.read_text() == reference.read_text()  # the same blocks of two rows: the same numbers
    got = list(read_rows(output, DATASET_LAYOUT))
    assert [row["row"] for row in got] == list(range(9))
