"""Momentum contrast: the training state of AesFormer's image-text contrastive objective.

It holds momentum twins of the parts that produce the contrastive embeddings (the Swin tower, the projection
when there is one, the BERT tower and the contrastive LayerNorm), updated as an exponential moving average of
the trained model, and two ring-buffer queues of their past features. This is *training state*, not model
weights: it lives beside the model (never inside it, so `save_pretrained` holds none of it), in the stage-1 loss
([`MultimodalStageLoss`], which moves, encodes with and fills it), and [`AesformerTrainer`] saves it into, and
restores it from, each Trainer checkpoint through that loss.

Unlike the released code, any batch size works (the queue wraps around), the features of every process are
gathered before they are enqueued (so all processes hold the same queues), and every twin, the projection's
included, follows the model.
"""

from __future__ import annotations

import copy
import os

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn

MOMENTUM_STATE_FILENAME = "momentum_contrast.safetensors"

# Submodules of AesformerForAesthetic that the contrastive embeddings never reach; the twin leaves them out.
_UNUSED_BY_EMBEDDINGS = (
    "model.neck",
    "model.fusion_layers",
    "viaa_norm",
    "viaa_head",
    "miaa_image_norm",
    "miaa_image_head",
    "miaa_text_head",
)


def _momentum_twin(model: nn.Module) -> nn.Module:
    """A frozen copy of `model` that keeps only what `get_contrastive_embeddings` runs.

    `deepcopy`'s memo maps the unused submodules (and the temperature) to None, so they are never copied:
    the twin costs the towers' memory, not the whole model's.
    """
    memo: dict[int, None] = {}
    for name in _UNUSED_BY_EMBEDDINGS:
        submodule = model.get_submodule(name) if _has_submodule(model, name) else None
        if submodule is not None:
            memo[id(submodule)] = None
    if getattr(model, "contrastive_temperature", None) is not None:
        memo[id(model.contrastive_temperature)] = None
    twin = copy.deepcopy(model, memo)
    twin.requires_grad_(False)
    twin.eval()  # momentum targets without dropout
    return twin


def _has_submodule(model: nn.Module, name: str) -> bool:
    try:
        return model.get_submodule(name) is not None
    except AttributeError:
        return False


def gather_from_all_processes(features: torch.Tensor) -> torch.Tensor:
    """Concatenate `features` `(n_p, ...)` of every process in rank order; `n_p` may differ between processes.

    Without `torch.distributed` (or with one process) it returns `features` unchanged.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return features
    world_size = dist.get_world_size()
    local_size = torch.tensor([features.shape[0]], device=features.device, dtype=torch.long)
    sizes = [torch.zeros_like(local_size) for _ in range(world_size)]
    dist.all_gather(sizes, local_size)
    sizes = [int(size) for size in sizes]
    # all_gather needs equal shapes: pad to the largest batch, then cut each process's padding away.
    padded = features.new_zeros((max(sizes), *features.shape[1:]))
    padded[: features.shape[0]] = features
    gathered = [torch.zeros_like(padded) for _ in range(world_size)]
    dist.all_gather(gathered, padded.contiguous())
    return torch.cat([chunk[:size] for chunk, size in zip(gathered, sizes)])


class MomentumContrast(nn.Module):
    r"""
    Momentum encoders and feature queues of the image-text contrastive loss.

    Args:
        model ([`AesformerForAesthetic`]): a multimodal AesFormer; its towers are copied as the momentum twins.
        queue_size (`int`, optional): features kept per modality (`Q`); default `config.contrastive_queue_size`.
            0 keeps no queue (in-batch negatives only).
        momentum (`float`, optional): EMA factor `m`; default `config.contrastive_momentum` (0.995).

    State (all saved by [`save`]): the twin's parameters, `image_queue` and `text_queue` `(Q, D)` float32
    (L2-normalised rows, `D = fusion_hidden_size`), `queue_pointer` (next row to write) and `queue_length`
    (rows filled so far, up to `Q`).
    """

    def __init__(self, model: nn.Module, queue_size: int | None = None, momentum: float | None = None):
        super().__init__()
        config = model.config
        if config.is_vision_only:
            raise ValueError("Momentum contrast needs a multimodal AesFormer (this one is vision-only).")
        self.queue_size = int(config.contrastive_queue_size if queue_size is None else queue_size)
        self.momentum = float(config.contrastive_momentum if momentum is None else momentum)
        if self.queue_size < 0 or not 0.0 <= self.momentum < 1.0:
            raise ValueError(
                f"queue_size={self.queue_size} must be >= 0 and momentum={self.momentum} within [0, 1)."
            )
        self.encoder = _momentum_twin(model)
        dim = config.fusion_hidden_size
        self.register_buffer("image_queue", torch.zeros(self.queue_size, dim))
        self.register_buffer("text_queue", torch.zeros(self.queue_size, dim))
        self.register_buffer("queue_pointer", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue_length", torch.zeros((), dtype=torch.long))

    def train(self, mode: bool = True):
        # The twin always runs as in evaluation (no dropout), whatever mode the trainer puts modules in.
        super().train(mode)
        self.encoder.eval()
        return self

    # -- the moving average ------------------------------------------------------------------------
    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """`twin <- m * twin + (1 - m) * online` for every twin parameter (`model` unwrapped from DDP)."""
        online = dict(model.named_parameters())
        for name, twin_parameter in self.encoder.named_parameters():
            source = online[name].detach()
            twin_parameter.lerp_(
                source.to(device=twin_parameter.device, dtype=twin_parameter.dtype), 1.0 - self.momentum
            )

    @torch.no_grad()
    def encode(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Momentum embeddings `(batch, D)` each, float32, L2-normalised: `(image, text)`."""
        self.encoder.eval()
        return self.encoder.get_contrastive_embeddings(pixel_values, input_ids, attention_mask)

    # -- the queues --------------------------------------------------------------------------------
    def queued_features(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The filled part of the queues: `(image, text)`, each `(queue_length, D)`."""
        length = int(self.queue_length)
        return self.image_queue[:length], self.text_queue[:length]

    @torch.no_grad()
    def enqueue(self, image_features: torch.Tensor, text_features: torch.Tensor) -> None:
        """Gather `(batch, D)` momentum features from every process and write them into the ring buffers.

        The oldest rows are overwritten first; a gathered batch larger than the queue keeps its last `Q` rows.
        """
        if self.queue_size == 0:
            return
        both = torch.cat([image_features, text_features], dim=1).float()
        both = gather_from_all_processes(both.to(self.image_queue.device))
        image_features, text_features = both.split(self.image_queue.shape[1], dim=1)
        count = image_features.shape[0]
        kept = min(count, self.queue_size)
        start = int(self.queue_pointer) + count - kept
        rows = (start + torch.arange(kept, device=self.image_queue.device)) % self.queue_size
        self.image_queue[rows] = image_features[-kept:]
        self.text_queue[rows] = text_features[-kept:]
        self.queue_pointer.fill_((int(self.queue_pointer) + count) % self.queue_size)
        self.queue_length.fill_(min(int(self.queue_length) + count, self.queue_size))

    # -- checkpoints -------------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike) -> str:
        """Write the whole state to `folder/momentum_contrast.safetensors`; returns the file's path."""
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, MOMENTUM_STATE_FILENAME)
        state = {name: tensor.detach().contiguous().cpu() for name, tensor in self.state_dict().items()}
        save_file(state, path, metadata={"momentum": repr(self.momentum), "queue_size": str(self.queue_size)})
        return path

    def load(self, folder: str | os.PathLike) -> None:
        """Restore the state saved by [`save`] in `folder` (a Trainer checkpoint)."""
        path = os.path.join(folder, MOMENTUM_STATE_FILENAME)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{path} does not exist: the checkpoint holds no momentum-contrast state, so the run cannot resume "
                "exactly. Was it saved by AesformerTrainer in stage 'multimodal' with contrastive_weight > 0?"
            )
        state = load_file(path)
        if state["image_queue"].shape != self.image_queue.shape:
            raise ValueError(
                f"{path} holds queues of shape {tuple(state['image_queue'].shape)}, this run expects "
                f"{tuple(self.image_queue.shape)}: keep contrastive_queue_size as it was when resuming."
            )
        self.load_state_dict(state)


__all__ = ["MOMENTUM_STATE_FILENAME", "MomentumContrast", "gather_from_all_processes"]
