"""Two CPU processes under `accelerate launch` (gloo): DDP keeps the weights equal and the queue is shared."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).with_name("distributed_training_script.py")
RESUME_SCRIPT = Path(__file__).with_name("distributed_resume_script.py")
REPO_ROOT = Path(__file__).resolve().parents[2]


def _contains_rows(queue: torch.Tensor, rows: torch.Tensor) -> bool:
    distances = torch.cdist(rows.double(), queue.double())
    return bool((distances.min(dim=1).values < 1e-5).all())


def _launch_on_two_processes(script: Path, output_dir: Path, port: int) -> None:
    if shutil.which("accelerate") is None and not (Path(sys.executable).parent / "accelerate").exists():
        pytest.skip("the accelerate command is not installed")
    launcher = str(Path(sys.executable).parent / "accelerate")
    if not os.path.exists(launcher):
        launcher = shutil.which("accelerate")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    command = [
        launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
        str(script), str(output_dir),
    ]  # fmt: skip
    # With no GPU, --multi_gpu starts two torch.distributed CPU processes (gloo); the script asks for use_cpu.
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]


@pytest.mark.timeout(300)
def test_two_processes_keep_weights_equal_and_share_the_queue(tmp_path):
    _launch_on_two_processes(SCRIPT, tmp_path, port=29517)

    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    for name, weight in ranks[0]["model"].items():
        assert torch.equal(weight, ranks[1]["model"][name]), f"{name} differs between processes"
    for name, value in ranks[0]["momentum"].items():
        assert torch.equal(value, ranks[1]["momentum"][name]), (
            f"momentum state {name} differs between processes"
        )

    momentum = ranks[0]["momentum"]
    steps_times_local_batch = ranks[0]["local_image_features"].shape[0]
    assert (
        int(momentum["queue_length"]) == 2 * steps_times_local_batch
    )  # both processes' features, every step
    image_queue = momentum["image_queue"][: int(momentum["queue_length"])]
    text_queue = momentum["text_queue"][: int(momentum["queue_length"])]
    for rank in ranks:
        assert _contains_rows(image_queue, rank["local_image_features"])
        assert _contains_rows(text_queue, rank["local_text_features"])
    assert not torch.allclose(ranks[0]["local_image_features"], ranks[1]["local_image_features"])


@pytest.mark.timeout(300)
def test_two_processes_resume_mid_epoch_exactly(tmp_path):
    """Interrupted after step 2 of 3 per epoch, each process resumes with the batches (crops included), losses,
    weights and momentum state of the uninterrupted run; the two processes collate different batches."""
    _launch_on_two_processes(RESUME_SCRIPT, tmp_path, port=29518)
    ranks = [torch.load(tmp_path / f"resume_rank{r}.pt", weights_only=True) for r in (0, 1)]
    for rank in ranks:
        full, resumed = rank["full"], rank["resumed"]
        assert full["world_size"] == 2 and len(full["pixel_sums"]) == 4 and len(resumed["pixel_sums"]) == 2
        for a, b in zip(full["pixel_sums"][2:], resumed["pixel_sums"]):
            torch.testing.assert_close(b, a, rtol=0, atol=0)
        assert sorted(resumed["losses"]) == [3, 4]
        for step in (3, 4):
            assert resumed["losses"][step] == pytest.approx(full["losses"][step], rel=1e-6, abs=1e-7), step
        for part in ("model", "momentum"):
            for name, weight in full[part].items():
                torch.testing.assert_close(resumed[part][name], weight, rtol=1e-6, atol=1e-7, msg=name)
    for a, b in zip(ranks[0]["full"]["pixel_sums"], ranks[1]["full"]["pixel_sums"]):
        assert not torch.equal(a, b)
