"""Run by `test_distributed.py` under `accelerate launch --num_processes 2`: a few stage-1 steps on the CPU.

Each process saves what the test compares: its model weights, its momentum state, and the momentum features
it computed itself (before they were gathered and enqueued).
"""

import os
import sys

import torch

from aesformer_hf import AesformerForAesthetic, AesformerImageProcessor, AesformerProcessor
from aesformer_hf.data.synthetic import build_synthetic_aesthetics
from aesformer_hf.testing_utils import tiny_config, tiny_tokenizer
from aesformer_hf.training import AesformerTrainer, AesformerTrainingArguments, MomentumContrast


def main(output_dir: str) -> None:
    data = build_synthetic_aesthetics(
        num_photos=3, strengths=(0, 4), degradations=("blur", "noise", "underexposure"), image_size=48
    )
    corpus = [comment for comments in data["train"]["comments"] for comment in comments]
    processor = AesformerProcessor(AesformerImageProcessor(size=64), tiny_tokenizer(corpus))
    torch.manual_seed(0)
    model = AesformerForAesthetic(tiny_config(image_size=64))

    local_features = []
    encode = MomentumContrast.encode

    def recording_encode(self, *args, **kwargs):
        features = encode(self, *args, **kwargs)
        local_features.append([f.detach().clone() for f in features])
        return features

    MomentumContrast.encode = recording_encode
    args = AesformerTrainingArguments(
        output_dir=os.path.join(output_dir, "run"),
        stage="multimodal",
        per_device_train_batch_size=3,
        max_steps=3,
        learning_rate=1e-3,
        contrastive_queue_size=32,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    trainer = AesformerTrainer(
        model=model, args=args, train_dataset=data["train"], processing_class=processor
    )
    trainer.train()
    rank = trainer.args.process_index
    torch.save(
        {
            "world_size": trainer.args.world_size,
            "model": {k: v.detach().clone() for k, v in trainer.model.state_dict().items()},
            "momentum": {k: v.detach().clone() for k, v in trainer.momentum_contrast.state_dict().items()},
            "local_image_features": torch.cat([image for image, _ in local_features]),
            "local_text_features": torch.cat([text for _, text in local_features]),
        },
        os.path.join(output_dir, f"rank{rank}.pt"),
    )


if __name__ == "__main__":
    main(sys.argv[1])
