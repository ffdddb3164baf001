"""AesFormer model files. This folder is flat and imports only its siblings, so that the same files run
from the installed package and as Hub remote code (`trust_remote_code=True`)."""

from .configuration_aesformer import AesformerConfig
from .modeling_aesformer import (
    AesformerAestheticOutput,
    AesformerForAesthetic,
    AesformerModel,
    AesformerModelOutput,
    AesformerPreTrainedModel,
)

__all__ = [
    "AesformerConfig",
    "AesformerModel",
    "AesformerForAesthetic",
    "AesformerPreTrainedModel",
    "AesformerModelOutput",
    "AesformerAestheticOutput",
]
