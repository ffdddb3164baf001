"""Image-text contrastive (ITC) loss against a batch of momentum features plus a feature queue."""

import torch
from torch import nn
from torch.nn import functional as F

MIN_TEMPERATURE = 0.001
MAX_TEMPERATURE = 0.5


@torch.no_grad()
def clamp_temperature_(
    temperature: torch.Tensor,
    min_temperature: float = MIN_TEMPERATURE,
    max_temperature: float = MAX_TEMPERATURE,
) -> torch.Tensor:
    """Clamp a learnable temperature parameter in place to [min_temperature, max_temperature].

    Call it on the model's parameter before each forward (as ALBEF does). The loss also clamps
    the value it uses, but an out-of-place clamp has zero gradient outside the range: a parameter
    that an optimiser step pushed out of range would never come back on its own.
    """
    return temperature.clamp_(min_temperature, max_temperature)


class ImageTextContrastiveLoss(nn.Module):
    r"""Symmetric InfoNCE between image and text embeddings, with MoCo/ALBEF-style queues.

    With B image/text pairs, L2-normalised features f_i (image) and g_i (text), momentum features
    f'_i, g'_i and queues of Q earlier momentum features F' (image) and G' (text), and temperature
    t (clamped to [min_temperature, max_temperature] before use):

        logits_i2t = f @ [g' ; G']^T / t          shape (B, B + Q)
        logits_t2i = g @ [f' ; F']^T / t          shape (B, B + Q)
        loss = ( CE(logits_i2t, y) + CE(logits_t2i, y) ) / 2,   y_i = i

    i.e. one-hot targets on the positive pair (the paper's choice; ALBEF's momentum-distilled soft
    targets are not used), CE averaged over the batch. Unitless (nats).

    Momentum features and queues are constants: they are detached here, so gradients reach only
    the online features and the temperature. Everything is computed in float32. The queues may be
    ``None`` or empty (0, D), and Q need not be a multiple of B.

    Where the temperature is clamped: ``forward`` clamps the value it uses (out of place, so the
    gradient still reaches a temperature inside the range). Keep the parameter itself in range by
    calling :func:`clamp_temperature_` on it before each forward.

    Shapes:
        image_features, text_features, image_features_m, text_features_m: (B, D), L2-normalised.
        image_queue, text_queue: (Q, D) or None.
        temperature: scalar tensor (or float).
        output: ().
    """

    def __init__(self, min_temperature: float = MIN_TEMPERATURE, max_temperature: float = MAX_TEMPERATURE):
        super().__init__()
        if not 0 < min_temperature <= max_temperature:
            raise ValueError(
                "temperature bounds must satisfy 0 < min_temperature <= max_temperature, got "
                f"min_temperature={min_temperature}, max_temperature={max_temperature}"
            )
        self.min_temperature = float(min_temperature)
        self.max_temperature = float(max_temperature)

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        image_features_m: torch.Tensor,
        text_features_m: torch.Tensor,
        temperature: torch.Tensor | float,
        image_queue: torch.Tensor | None = None,
        text_queue: torch.Tensor | None = None,
    ) -> torch.Tensor:
        batch_features = {
            "image_features": image_features,
            "text_features": text_features,
            "image_features_m": image_features_m,
            "text_features_m": text_features_m,
        }
        for name, features in batch_features.items():
            if features.dim() != 2 or features.shape != image_features.shape:
                raise ValueError(
                    f"{name} must have shape (batch, dim) = {tuple(image_features.shape)} like image_features, "
                    f"got {tuple(features.shape)}"
                )
        dim = image_features.shape[1]
        for name, queue in (("image_queue", image_queue), ("text_queue", text_queue)):
            if queue is not None and (queue.dim() != 2 or queue.shape[1] != dim):
                raise ValueError(f"{name} must have shape (queue_size, {dim}), got {tuple(queue.shape)}")

        temperature = torch.as_tensor(temperature, dtype=torch.float32, device=image_features.device)
        temperature = temperature.clamp(self.min_temperature, self.max_temperature)

        text_candidates = _with_queue(text_features_m, text_queue)
        image_candidates = _with_queue(image_features_m, image_queue)
        logits_i2t = image_features.float() @ text_candidates.T / temperature
        logits_t2i = text_features.float() @ image_candidates.T / temperature

        # Row i's positive is column i: the momentum twin of its own pair comes first in the candidates.
        targets = torch.arange(image_features.shape[0], device=image_features.device)
        return (F.cross_entropy(logits_i2t, targets) + F.cross_entropy(logits_t2i, targets)) / 2

    def extra_repr(self) -> str:
        return f"min_temperature={self.min_temperature:g}, max_temperature={self.max_temperature:g}"


def _with_queue(batch_features_m: torch.Tensor, queue: torch.Tensor | None) -> torch.Tensor:
    candidates = batch_features_m.detach().float()
    if queue is None or queue.shape[0] == 0:
        return candidates
    return torch.cat([candidates, queue.detach().float().to(candidates.device)], dim=0)
