"""What a stage loss is to [`AesformerTrainer`]: the base class of the per-stage losses and what they return.

As `SentenceTransformerTrainer(loss=...)` takes a loss module that runs the model on a batch, `AesformerTrainer`
takes a stage loss: `loss(model, inputs)` runs the model (as the Trainer gives it: wrapped by DDP or DeepSpeed
when training on several processes) on the collated batch and returns a [`StageLossOutput`]: the scalar loss to
back-propagate, the predicted distributions that evaluation reads (`PREDICTION_KEYS`) and the loss parts that
the Trainer logs. Any training state the loss holds (buffers, frozen copies) is saved into every Trainer
checkpoint and restored on resumption through [`StageLoss.save_checkpoint`] / [`StageLoss.load_checkpoint`],
which default to the module's `state_dict`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from safetensors.torch import load_file, save_file
from torch import nn

LOSS_STATE_FILENAME = "loss_state.safetensors"


@dataclass
class StageLossOutput:
    r"""
    What a stage loss returns for one batch.

    Args:
        loss (`torch.Tensor`, `()`): the loss to back-propagate.
        predictions (`dict[str, torch.Tensor]`): predicted distributions `(batch, bins)` under the names of
            `aesformer_hf.training.evaluation.PREDICTION_KEYS` (`distribution` and, in stage 1,
            `image_distribution` and `text_distribution`), in that order; evaluation computes its metrics on them.
        parts (`dict[str, torch.Tensor]`): scalar terms that the Trainer logs, averaged since the last log, next to
            `loss` during training (stage 1: `image_head_loss`, `text_head_loss`, `contrastive_loss`,
            `temperature`).
    """

    loss: torch.Tensor
    predictions: dict[str, torch.Tensor] = field(default_factory=dict)
    parts: dict[str, torch.Tensor] = field(default_factory=dict)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside DDP, DeepSpeed or `torch.compile` wrappers: its attributes and parameter names."""
    from accelerate.utils import extract_model_from_parallel

    return extract_model_from_parallel(model, keep_torch_compile=False)


class StageLoss(nn.Module):
    r"""
    Base class of AesFormer's stage losses (and of custom ones, which may also be any `nn.Module` or callable with
    the same `forward`).

    Subclasses implement `forward(model, inputs) -> StageLossOutput`, where `model` is the model as the Trainer
    runs it (possibly wrapped: use [`unwrap_model`] to reach its attributes) and `inputs` the collated batch
    (`pixel_values`, `labels` and, in stage 1, `input_ids`, `attention_mask`, `token_type_ids`).

    Attributes:
        stage (`str` or `None`): the training stage the loss is made for; [`AesformerTrainer`] refuses a loss
            whose `stage` is not `args.stage`. `None` (the default) fits any stage.
    """

    stage: str | None = None

    def forward(self, model: nn.Module, inputs: dict[str, torch.Tensor]) -> StageLossOutput:
        raise NotImplementedError

    # -- checkpoints -------------------------------------------------------------------------------
    def save_checkpoint(self, folder: str | os.PathLike) -> str | None:
        """Write the loss's training state (its `state_dict`) to `folder/loss_state.safetensors`.

        Returns the file's path, or `None` when the loss holds no state (nothing is written then).
        """
        state = self.state_dict()
        if not state:
            return None
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, LOSS_STATE_FILENAME)
        # Cloned so that tensors sharing storage (tied weights) can be written by safetensors.
        save_file({name: tensor.detach().cpu().contiguous().clone() for name, tensor in state.items()}, path)
        return path

    def load_checkpoint(self, folder: str | os.PathLike) -> None:
        """Restore the state written by [`save_checkpoint`] into `folder` (a Trainer checkpoint)."""
        if not self.state_dict():
            return
        path = os.path.join(folder, LOSS_STATE_FILENAME)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} does not exist: the checkpoint holds no state of the {type(self).__name__} loss, so the "
                "run cannot resume exactly."
            )
        self.load_state_dict(load_file(path))


__all__ = ["LOSS_STATE_FILENAME", "StageLoss", "StageLossOutput", "unwrap_model"]
