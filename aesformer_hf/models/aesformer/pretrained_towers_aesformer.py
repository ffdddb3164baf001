"""Build a new AesFormer from a pretrained timm Swin and a pretrained BERT (`from_vision_text_pretrained`).

This is how the released models started training: the Swin and BERT towers carry their own
pretrained weights; fusion layer i is a copy of BERT layer `num_layers - fusion_layers + i` (its attention
becomes the shared self-attention, its feed-forward block both the vision-language and the vision expert);
the neck Linears, adapters, LayerNorms, heads and the contrastive temperature keep the model's documented
initialisation (adapters near identity, std `adapter_init_std`; temperature `contrastive_temperature`).

Towers are read with the transformers loaders, so a name is a local folder or a Hub id, and Hub ids resolve
from the Hub cache (`HF_HUB_CACHE`, `models--org--name/snapshots/<sha>/`) when `HF_HUB_OFFLINE=1`.
The vision folder is a timm one (`config.json` with `architecture`, optionally `model_args`, and
`model.safetensors` or `pytorch_model.bin`, as `timm` pushes them) or a `TimmWrapperModel.save_pretrained` one.
"""

from __future__ import annotations

import os

import torch
from transformers import AutoConfig, BertConfig, BertModel, TimmWrapperConfig, TimmWrapperModel
from transformers.utils import logging

logger = logging.get_logger(__name__)

# Keyword arguments of `from_vision_text_pretrained` that go to the loaders rather than to AesformerConfig.
LOADING_KWARGS = ("cache_dir", "local_files_only", "revision", "token", "force_download")

# Package fusion-layer parameter -> parameter of a transformers BertLayer.
FUSION_FROM_BERT_LAYER = {
    "self_attention.query": "attention.self.query",
    "self_attention.key": "attention.self.key",
    "self_attention.value": "attention.self.value",
    "self_attention.output_dense": "attention.output.dense",
    "self_attention.output_layer_norm": "attention.output.LayerNorm",
    **{
        f"{expert}.{name}": bert
        for expert in ("vision_language_expert", "vision_expert")
        for name, bert in (
            ("intermediate_dense", "intermediate.dense"),
            ("output_dense", "output.dense"),
            ("output_layer_norm", "output.LayerNorm"),
        )
    },
}


def load_vision_tower(name_or_path: str | os.PathLike, **loading_kwargs) -> TimmWrapperModel:
    """A headless timm Swin as a `TimmWrapperModel` (its `config.model_args` hold the shape).

    timm writes the classifier size into `model_args["num_classes"]` of the folders it saves; the wrapper
    builds its tower headless and passes `num_classes=0` itself, so that entry is removed before building.
    """
    name_or_path = os.fspath(name_or_path)
    try:
        config_dict, _ = TimmWrapperConfig.get_config_dict(name_or_path, **loading_kwargs)
        if "architecture" not in config_dict:  # checked first: TimmWrapperConfig fails obscurely without it
            raise ValueError(
                f"{name_or_path!r} holds a {config_dict.get('model_type')!r} config.json without a timm "
                "'architecture'; AesFormer's vision tower must be a timm Swin "
                "(e.g. timm/swin_tiny_patch4_window7_224.ms_in1k)."
            )
        config = TimmWrapperConfig.from_pretrained(name_or_path, **loading_kwargs)
    except OSError as error:
        raise OSError(
            f"Cannot read a timm vision tower from {name_or_path!r}: expected a folder or Hub id with a timm "
            f"config.json ('architecture', optionally 'model_args') and model.safetensors / pytorch_model.bin. "
            f"Offline, a Hub id must already be in the Hub cache. ({error})"
        ) from error
    if not str(config.architecture).startswith("swin"):
        raise ValueError(
            f"{name_or_path!r} holds a timm {config.architecture!r}; AesFormer's vision tower must be a timm Swin "
            "(e.g. timm/swin_tiny_patch4_window7_224.ms_in1k)."
        )
    model_args = {
        k: v for k, v in (config.model_args or {}).items() if k not in ("num_classes", "features_only")
    }
    config.model_args = model_args or None
    return TimmWrapperModel.from_pretrained(name_or_path, config=config, **loading_kwargs)


def load_text_tower(name_or_path: str | os.PathLike, **loading_kwargs) -> BertModel:
    """A pretrained BERT without its pooler (AesFormer's text head reads the fused [CLS] token)."""
    name_or_path = os.fspath(name_or_path)
    # The tower must be a BERT, which transformers holds: code shipped with the folder is never needed, and
    # `trust_remote_code=False` keeps AutoConfig from asking on stdin whether to run it.
    try:
        config = AutoConfig.from_pretrained(name_or_path, **{"trust_remote_code": False, **loading_kwargs})
    except ValueError as error:
        if "trust_remote_code" not in str(error):
            raise
        raise ValueError(
            f"{name_or_path!r} holds a model with code of its own (auto_map), which is not run; AesFormer's "
            "comment tower is a BERT (e.g. bert-base-cased)."
        ) from None
    if not isinstance(config, BertConfig):
        raise ValueError(
            f"{name_or_path!r} is a {type(config).__name__} ({config.model_type!r}); AesFormer's comment tower is a "
            "BERT (e.g. bert-base-cased)."
        )
    return BertModel.from_pretrained(name_or_path, config=config, add_pooling_layer=False, **loading_kwargs)


def build_from_pretrained_towers(cls, vision, text=None, **config_overrides):
    """A new `cls` (an [`AesformerForAesthetic`]) whose towers start from pretrained weights.

    Args:
        cls: the model class to build.
        vision: timm Swin, a local folder or Hub id (e.g. `"timm/swin_tiny_patch4_window7_224.ms_in1k"`).
        text: BERT, a local folder or Hub id (e.g. `"bert-base-cased"`); `None` builds a vision-only model, whose
            fusion layers then keep their random initialisation (there is no BERT to copy them from).
        config_overrides: [`AesformerConfig`] fields (`fusion_layers`, `num_bins`, `score_min`, ...), plus the
            loading options `cache_dir`, `local_files_only`, `revision`, `token`, `force_download`, which apply to
            both towers.

    Returns:
        The model in float32, in training mode (as `__init__` leaves it). `config.vision_config` is the loaded
        Swin's architecture and model arguments, `config.text_config` the loaded BERT's config.
    """
    loading_kwargs = {k: config_overrides.pop(k) for k in LOADING_KWARGS if k in config_overrides}
    for owned in ("vision_config", "text_config"):
        if owned in config_overrides:
            raise ValueError(
                f"{owned} comes from the pretrained tower; pass the tower you want instead of overriding it."
            )
    if text is None:
        logger.warning(
            "No text tower given: building a vision-only AesFormer with randomly initialised fusion layers."
        )
    from .configuration_aesformer import AesformerConfig

    vision_tower = load_vision_tower(vision, **loading_kwargs)
    text_tower = load_text_tower(text, **loading_kwargs) if text is not None else None

    vision_config = {
        "architecture": vision_tower.config.architecture,
        "model_args": dict(vision_tower.config.model_args or {}),
    }
    text_config = None
    if text_tower is not None:
        text_config = text_tower.config.to_dict()
        # Loading bookkeeping of the BERT checkpoint, not part of its shape.
        for key in ("architectures", "transformers_version", "_name_or_path", "dtype", "torch_dtype"):
            text_config.pop(key, None)
    config = AesformerConfig(vision_config=vision_config, text_config=text_config, **config_overrides)

    if text_tower is not None and config.fusion_layers > text_tower.config.num_hidden_layers:
        raise ValueError(
            f"fusion_layers={config.fusion_layers} but the BERT at {os.fspath(text)!r} has only "
            f"{text_tower.config.num_hidden_layers} layers to initialise them from."
        )

    model = cls(config)
    _copy_state(model.model.vision_model, vision_tower.state_dict(), f"vision tower {os.fspath(vision)!r}")
    if text_tower is not None:
        _copy_state(model.model.text_model, text_tower.state_dict(), f"text tower {os.fspath(text)!r}")
        init_fusion_layers_from_bert(model.model.fusion_layers, text_tower)
    return model


def _copy_state(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Strict copy (cast to the module's dtype): any difference in layout is an error naming the keys."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    misshapen = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or misshapen:
        raise ValueError(
            f"The {what} does not fit the model built from its own config: missing {missing[:10]}, unexpected "
            f"{unexpected[:10]}, misshapen {[(k, tuple(state[k].shape), tuple(own[k].shape)) for k in misshapen[:10]]}."
        )
    with torch.no_grad():
        for key, value in state.items():
            own[key].copy_(value)


def init_fusion_layers_from_bert(fusion_layers: torch.nn.ModuleList, bert: BertModel) -> list[int]:
    """Copy BERT's last layers into the fusion layers: fusion layer i <- BERT layer `L - len(fusion_layers) + i`.

    The attention becomes the shared self-attention; the feed-forward block initialises both experts.
    Returns the BERT layer index used for each fusion layer.
    """
    bert_layers = bert.encoder.layer
    first = len(bert_layers) - len(fusion_layers)
    sources = []
    with torch.no_grad():
        for i, fusion_layer in enumerate(fusion_layers):
            bert_state = bert_layers[first + i].state_dict()
            fusion_state = fusion_layer.state_dict()
            for fusion_module, bert_module in FUSION_FROM_BERT_LAYER.items():
                for param in ("weight", "bias"):
                    key = f"{fusion_module}.{param}"
                    if key in fusion_state:  # a vision-only model has no vision-language expert
                        fusion_state[key].copy_(bert_state[f"{bert_module}.{param}"])
            sources.append(first + i)
    return sources


__all__ = [
    "build_from_pretrained_towers",
    "init_fusion_layers_from_bert",
    "load_text_tower",
    "load_vision_tower",
]
