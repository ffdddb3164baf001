"""Two CPU processes under `accelerate launch` (gloo): DDP keeps the weights equal and the queue is shared."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).with_name("distributed_training_script.py")
REPO_ROOT = Path(__file__).resolve().parents[2]


def _contains_rows(queue: torch.Tensor, rows: torch.Tensor) -> bool:
    distances = torch.cdist(rows.double(), queue.double())
    return bool((distances.min(dim=1).values < 1e-5).all())


@pytest.mark.timeout(300)
def test_two_processes_keep_weights_equal_and_share_the_queue(tmp_path):
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
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517",
        str(SCRIPT), str(tmp_path),
    ]  # fmt: skip
    # With no GPU, --multi_gpu starts two torch.distributed CPU processes (gloo); the script asks for use_cpu.
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]

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
