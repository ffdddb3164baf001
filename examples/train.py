#!/usr/bin/env python
"""Fine-tune AesFormer with the Trainer, one stage at a time (the paper's recipe, DESIGN §3).

Stage 1 (multimodal: images + comments, EMD of both heads + 0.5 x contrastive alignment):

    accelerate launch --config_file examples/accelerate_configs/single_gpu_bf16.yaml examples/train.py \\
        --stage multimodal --dataset ./ava-parquet --config_preset tiny \\
        --output_dir runs/aesformer-t-stage1 --per_device_train_batch_size 16 --num_train_epochs 50 \\
        --learning_rate 1e-5 --adam_beta2 0.99 --lr_scheduler_type cosine_with_min_lr \\
        --lr_scheduler_kwargs '{"min_lr": 1e-6}' --eval_strategy epoch --save_strategy epoch \\
        --metric_for_best_model srcc --load_best_model_at_end --bf16

Stage 2 (vision-only multi-level adaptation, from the stage-1 folder):

    accelerate launch --config_file examples/accelerate_configs/single_gpu_bf16.yaml examples/train.py \\
        --stage adaptation --dataset ./ava-parquet --model runs/aesformer-t-stage1 \\
        --output_dir runs/aesformer-t --per_device_train_batch_size 256 --num_train_epochs 50 \\
        --learning_rate 1e-4 --adam_beta2 0.99 --lr_scheduler_type cosine_with_min_lr \\
        --lr_scheduler_kwargs '{"min_lr": 1e-6}' --eval_strategy epoch --save_strategy epoch \\
        --metric_for_best_model srcc --load_best_model_at_end --bf16

`--dataset` is a local Parquet folder (`aesformer-hf prepare-dataset ...`) or a Hub dataset id. Use
`multi_gpu_ddp.yaml` or `deepspeed_zero2.yaml` for several GPUs, or plain `python examples/train.py ...` on
one device. The program itself lives in `aesformer_hf.training.run_training` (also `aesformer-hf train`).
"""

import sys

from aesformer_hf.training.run_training import main

if __name__ == "__main__":
    sys.exit(main())
