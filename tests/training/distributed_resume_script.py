"""Run by `test_distributed.py` under `accelerate launch --num_processes 2`: a mid-epoch resumption on the CPU.

A run of 4 steps (3 per epoch: 12 rows, 2 per process and step) saves a checkpoint after step 2; a second run
resumes from it. Each process saves, for both runs, the losses of each step, the pixels of its own batches (sum
per image: what its crops and flips made) and the final weights and momentum state.
"""

import os
import sys

import torch
from transformers import TrainerCallback

from aesformer_hf import AesformerForAesthetic, AesformerImageProcessor, AesformerProcessor
from aesformer_hf.data.synthetic import build_synthetic_aesthetics
from aesformer_hf.testing_utils import tiny_config, tiny_tokenizer
from aesformer_hf.training import AesformerTrainer, AesformerTrainingArguments


class RecordingTrainer(AesformerTrainer):
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training:
            self.pixel_sums.append(inputs["pixel_values"].detach().sum(dim=(1, 2, 3)).clone())
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


class LossRecorder(TrainerCallback):
    def __init__(self):
        self.losses = {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses[state.global_step] = logs["loss"]


def train(data, processor, output_dir, resume=None):
    torch.manual_seed(0)
    model = AesformerForAesthetic(tiny_config(image_size=64))
    args = AesformerTrainingArguments(
        output_dir=output_dir,
        stage="multimodal",
        per_device_train_batch_size=2,
        max_steps=4,
        learning_rate=1e-3,
        contrastive_queue_size=16,
        use_cpu=True,
        report_to=[],
        logging_steps=1,
        save_strategy="steps",
        save_steps=2,
        disable_tqdm=True,
        seed=0,
    )
    recorder = LossRecorder()
    trainer = RecordingTrainer(
        model=model, args=args, train_dataset=data["train"], processing_class=processor, callbacks=[recorder]
    )
    trainer.pixel_sums = []
    trainer.train(resume_from_checkpoint=resume)
    return {
        "world_size": trainer.args.world_size,
        "losses": recorder.losses,
        "pixel_sums": trainer.pixel_sums,
        "model": {k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
        "momentum": {k: v.detach().clone() for k, v in trainer.momentum_contrast.state_dict().items()},
    }, trainer.args.process_index


def main(output_dir: str) -> None:
    data = build_synthetic_aesthetics(
        num_photos=3, strengths=(0, 4), degradations=("blur", "noise", "underexposure"), image_size=48
    )
    corpus = [comment for comments in data["train"]["comments"] for comment in comments]
    processor = AesformerProcessor(AesformerImageProcessor(size=64), tiny_tokenizer(corpus))
    full, rank = train(data, processor, os.path.join(output_dir, "full"))
    checkpoint = os.path.join(output_dir, "full", "checkpoint-2")
    resumed, _ = train(data, processor, os.path.join(output_dir, "resumed"), resume=checkpoint)
    torch.save({"full": full, "resumed": resumed}, os.path.join(output_dir, f"resume_rank{rank}.pt"))


if __name__ == "__main__":
    main(sys.argv[1])
