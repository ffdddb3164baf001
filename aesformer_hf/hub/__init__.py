"""Sharing AesFormer checkpoints on the Hugging Face Hub: remote code, one-commit pushes and model cards.

* [`push_model_to_hub`] / [`save_for_hub`]: model, processor, their code, the `image-aesthetics` pipeline and the
  model card in one folder or commit, checked so that `trust_remote_code=True` loads it without aesformer_hf.
* [`write_model_card`] / [`build_model_card`]: the card, with the figures this package measured as `model-index`.
"""

from .model_card import (
    MIAA,
    VIAA,
    MeasuredResults,
    build_model_card,
    canonical_dataset_name,
    write_model_card,
)
from .remote_code import (
    RemoteCodeError,
    check_remote_code_folder,
    complete_for_hub,
    push_model_to_hub,
    remote_code_problems,
    save_for_hub,
)

__all__ = [
    "MIAA",
    "VIAA",
    "MeasuredResults",
    "RemoteCodeError",
    "build_model_card",
    "canonical_dataset_name",
    "check_remote_code_folder",
    "complete_for_hub",
    "push_model_to_hub",
    "remote_code_problems",
    "save_for_hub",
    "write_model_card",
]
