"""The example `accelerate launch` configs parse with accelerate's own loader and say what their names say.

Running them needs GPUs (and DeepSpeed for ZeRO-2); what can be checked here is that accelerate accepts
every key and that the settings are the documented ones.
"""

from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DistributedType

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "accelerate_configs"


@pytest.mark.parametrize(
    "name, distributed_type, num_processes",
    [
        ("single_gpu_bf16.yaml", DistributedType.NO, 1),
        ("multi_gpu_ddp.yaml", DistributedType.MULTI_GPU, 8),
        ("deepspeed_zero2.yaml", DistributedType.DEEPSPEED, 8),
    ],
)
def test_config_parses_and_matches_its_name(name, distributed_type, num_processes):
    config = load_config_from_file(str(CONFIGS / name))
    assert config.distributed_type == distributed_type
    assert config.mixed_precision == "bf16"
    assert config.num_processes == num_processes
    assert config.use_cpu is False
    if distributed_type == DistributedType.DEEPSPEED:
        # ZeRO-2 keeps full parameters on every process, which the momentum encoders' EMA copies need.
        assert config.deepspeed_config["zero_stage"] == 2
        assert config.deepspeed_config["zero3_init_flag"] is False
        assert config.deepspeed_config["offload_param_device"] == "none"


def test_the_loader_rejects_an_unknown_key(tmp_path):
    # What makes the test above meaningful: a misspelt key is an error, not silently ignored.
    text = (CONFIGS / "multi_gpu_ddp.yaml").read_text() + "mixed_precison: fp16\n"
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ValueError, match="mixed_precison"):
        load_config_from_file(str(tmp_path / "bad.yaml"))
