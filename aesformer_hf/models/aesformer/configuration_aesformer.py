"""AesFormer configuration.

One config describes every AesFormer: the Swin vision tower (a timm architecture wrapped by
transformers' `TimmWrapperConfig`), the optional BERT comment tower (`BertConfig`, or `None` for a
vision-only model), the mixture-of-modality-experts fusion layers, the multi-level neck with its
adapters, the score heads and the contrastive-training constants.

It is also the one home of the names and shapes the rest of the package reads: the two modes in both
vocabularies, the training stages, the pipeline task, the released variants and the bins' scores. This file ships
as Hub remote code, so it imports only the standard library and transformers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from huggingface_hub.dataclasses import strict
from transformers import BertConfig, PreTrainedConfig, TimmWrapperConfig
from transformers.configuration_utils import SubConfigSpec

# --------------------------------------------------------------------------------------------------
# Modes: the two paths of one network, in the two vocabularies the package speaks
# --------------------------------------------------------------------------------------------------
# The model, the pipeline's `"mode"`, `aesformer-hf score` rows and `export --mode` say "multimodal" / "vision";
# the paper, the model cards and the attention maps say MIAA / VIAA.
MULTIMODAL_MODE = "multimodal"  # image + comments
VISION_MODE = "vision"  # image only
MIAA = "MIAA"
VIAA = "VIAA"
PAPER_MODE_NAMES = {MULTIMODAL_MODE: MIAA, VISION_MODE: VIAA}
MODE_OF_PAPER_NAME = {paper: mode for mode, paper in PAPER_MODE_NAMES.items()}
MODE_DESCRIPTIONS = {MULTIMODAL_MODE: "image + comments", VISION_MODE: "image only"}

# The training stages (README, "Training"): stage 1 trains the multimodal path, stage 2 adapts the vision path.
MULTIMODAL_STAGE = "multimodal"
ADAPTATION_STAGE = "adaptation"
STAGES = (MULTIMODAL_STAGE, ADAPTATION_STAGE)
MODE_OF_STAGE = {MULTIMODAL_STAGE: MULTIMODAL_MODE, ADAPTATION_STAGE: VISION_MODE}

# The task `pipeline(...)` rates images under: registered by `import aesformer_hf`, saved in `custom_pipelines`.
PIPELINE_TASK = "image-aesthetics"


# --------------------------------------------------------------------------------------------------
# Released variants
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AesformerVariant:
    """One released AesFormer shape (AesFormer-T, -S, -B): its timm Swin, the Swin's numbers and the weights it starts from.

    AesFormer-T, -S and -B are Swin-T, Swin-S and Swin-B (patch 4, window 7, 224 px, MLP ratio 4). The fusion width
    is BERT-base's 768 for all of them; B's Swin is 1024 wide at the last stage, hence its `proj`.
    """

    name: str  # "tiny", "small", "base"
    title: str  # "AesFormer-T": how cards and reports name it
    swin: str  # the timm architecture
    embed_dim: int
    depths: tuple[int, ...]
    num_heads: tuple[int, ...]
    pretrained_swin: str  # Hub id of the ImageNet timm weights a new model of this shape starts from

    @property
    def aliases(self) -> tuple[str, ...]:
        """The variant's other names: `("aesformer-t", "t")` for tiny."""
        title = self.title.lower()
        return (title, title.rsplit("-", 1)[-1])

    @property
    def stage_widths(self) -> tuple[int, ...]:
        """Channels of the Swin's four levels: the width doubles at each patch merging."""
        return tuple(self.embed_dim * 2**level for level in range(len(self.depths)))

    @property
    def vision_config(self) -> dict[str, Any]:
        """The `vision_config` of this shape: the timm architecture, unchanged."""
        return {"architecture": self.swin, "model_args": {}}

    @property
    def swin_shape(self) -> dict[str, Any]:
        """`embed_dim`, `depths` and `num_heads` as timm's `model_args` spell them (lists)."""
        return {"embed_dim": self.embed_dim, "depths": list(self.depths), "num_heads": list(self.num_heads)}


VARIANTS: dict[str, AesformerVariant] = {
    variant.name: variant
    for variant in (
        AesformerVariant(
            "tiny",
            "AesFormer-T",
            "swin_tiny_patch4_window7_224",
            embed_dim=96,
            depths=(2, 2, 6, 2),
            num_heads=(3, 6, 12, 24),
            pretrained_swin="timm/swin_tiny_patch4_window7_224.ms_in1k",
        ),
        AesformerVariant(
            "small",
            "AesFormer-S",
            "swin_small_patch4_window7_224",
            embed_dim=96,
            depths=(2, 2, 18, 2),
            num_heads=(3, 6, 12, 24),
            pretrained_swin="timm/swin_small_patch4_window7_224.ms_in1k",
        ),
        AesformerVariant(
            "base",
            "AesFormer-B",
            "swin_base_patch4_window7_224",
            embed_dim=128,
            depths=(2, 2, 18, 2),
            num_heads=(4, 8, 16, 32),
            pretrained_swin="timm/swin_base_patch4_window7_224.ms_in1k",
        ),
    )
}
# Views of `VARIANTS` by the names the package used before.
SWIN_VARIANTS: dict[str, dict[str, Any]] = {name: variant.vision_config for name, variant in VARIANTS.items()}
VARIANT_ALIASES = {alias: variant.name for variant in VARIANTS.values() for alias in variant.aliases}


def variant_name(variant: str) -> str:
    """`"t"`, `"AesFormer-T"` or `"tiny"` -> `"tiny"`; another name comes back stripped and lower-cased."""
    name = str(variant).strip().lower()
    return VARIANT_ALIASES.get(name, name)


def bin_values(num_bins: int, score_min: float, score_max: float) -> list[float]:
    """The score of each of `num_bins` bins, evenly spaced from `score_min` to `score_max` (1..10 on AVA)."""
    step = (score_max - score_min) / (num_bins - 1)
    return [score_min + i * step for i in range(num_bins)]


# bert-base-cased, the comment tower of the released models.
BERT_BASE_CASED: dict[str, Any] = {"vocab_size": 28996}

_DEFAULT_TEXT_CONFIG = object()


@strict
class AesformerConfig(PreTrainedConfig):
    r"""
    Configuration of an AesFormer model. The defaults describe AesFormer-T (Swin-T + BERT-base-cased,
    2 fusion layers, 10 bins on the AVA 1..10 scale); `AesformerConfig.from_variant("base")` gives B.

    Args:
        vision_config (`TimmWrapperConfig` or `dict`):
            The Swin tower: `architecture` (a timm Swin name) and `model_args` (keyword arguments
            for `timm.create_model`, e.g. `embed_dim`, `depths`, `num_heads`, `img_size`).
        text_config (`BertConfig`, `dict` or `None`):
            The comment tower. `None` describes a vision-only model: no text tower, no VL experts,
            no MIAA heads. Left out, it is BERT-base-cased.
        fusion_layers (`int`, defaults to 2): mixture-of-modality-experts layers after the towers.
        fusion_hidden_size, fusion_num_attention_heads, fusion_intermediate_size, fusion_hidden_act,
        fusion_layer_norm_eps, fusion_hidden_dropout_prob, fusion_attention_dropout_prob:
            Shape of the fusion layers. They copy the text tower's values when it exists (the fusion
            layers start as copies of its last layers); a vision-only config stores them itself.
        adapter_reduction (`int`, defaults to 4): bottleneck ratio of the four level adapters (768 -> 192 -> 768).
        adapter_init_std (`float`, defaults to 0.01): std of the adapters' initial weights (near identity).
        head_hidden_size (`int`, defaults to 256): width of the score heads' hidden layer.
        num_bins (`int`, defaults to 10): bins of the vote distribution.
        score_min, score_max (`float`, defaults to 1.0 and 10.0): values of the first and last bin
            (the bins are evenly spaced between them; the mean score lies in this range).
        label_threshold (`float`, defaults to 5.0): a mean score above it is labelled "high".
        miaa_text_weight (`float`, defaults to 0.5): weight of the text head's distribution in the MIAA prediction.
        contrastive_queue_size (`int`, defaults to 1024), contrastive_momentum (`float`, 0.995),
        contrastive_temperature (`float`, 0.07): image-text contrastive training constants; the
            temperature is learnable and clamped to [0.001, 0.5].
        initializer_range (`float`, defaults to 0.02): std of the truncated-normal init of new Linears.
    """

    model_type = "aesformer"
    # Tasks whose pipeline the installed package registers with transformers itself (`import aesformer_hf` sets
    # this). A saved folder's `custom_pipelines` entries for them, which ship the pipeline as remote code, are left
    # out on loading, so `pipeline("image-aesthetics", model=folder)` runs the installed pipeline without
    # `trust_remote_code`. Run as remote code (aesformer_hf not installed) it is empty and the entries are kept.
    pipeline_tasks_registered_locally = ()
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(
            config_class=TimmWrapperConfig, init_kwargs=dict(SWIN_VARIANTS["tiny"])
        ),
        "text_config": SubConfigSpec(
            config_class=BertConfig, init_kwargs=dict(BERT_BASE_CASED), optional=True
        ),
    }

    vision_config: TimmWrapperConfig | dict | None = None
    text_config: BertConfig | dict | None = field(default_factory=dict)
    fusion_layers: int = 2
    fusion_hidden_size: int | None = None
    fusion_num_attention_heads: int | None = None
    fusion_intermediate_size: int | None = None
    fusion_hidden_act: str | None = None
    fusion_layer_norm_eps: float | None = None
    fusion_hidden_dropout_prob: float | None = None
    fusion_attention_dropout_prob: float | None = None
    adapter_reduction: int = 4
    adapter_init_std: float = 0.01
    head_hidden_size: int = 256
    num_bins: int = 10
    score_min: float = 1.0
    score_max: float = 10.0
    label_threshold: float = 5.0
    miaa_text_weight: float = 0.5
    contrastive_queue_size: int = 1024
    contrastive_momentum: float = 0.995
    contrastive_temperature: float = 0.07
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        # `{}` (the default) means "BERT-base-cased"; `None` means "no text tower".
        if isinstance(self.text_config, dict) and not self.text_config:
            self.text_config = BertConfig(**BERT_BASE_CASED)
        if isinstance(self.vision_config, dict) and "architecture" not in self.vision_config:
            self.vision_config = {**SWIN_VARIANTS["tiny"], **self.vision_config}
        kwargs.setdefault("id2label", {0: "low", 1: "high"})
        pipelines = kwargs.get("custom_pipelines")
        if isinstance(pipelines, dict) and self.pipeline_tasks_registered_locally:
            kept = {t: s for t, s in pipelines.items() if t not in self.pipeline_tasks_registered_locally}
            if kept:
                kwargs["custom_pipelines"] = kept
            else:
                del kwargs["custom_pipelines"]
        super().__post_init__(**kwargs)
        self._sync_fusion_shape_with_text_tower()
        # `@strict` runs every `validate_*` method once `__init__` returns (wrapping its ValueError in its own
        # error type); the values are checked here instead, once, with a plain ValueError naming the field.
        self.check_values()

    def _sync_fusion_shape_with_text_tower(self):
        text = self.text_config
        defaults = {
            "fusion_hidden_size": ("hidden_size", 768),
            "fusion_num_attention_heads": ("num_attention_heads", 12),
            "fusion_intermediate_size": ("intermediate_size", 3072),
            "fusion_hidden_act": ("hidden_act", "gelu"),
            "fusion_layer_norm_eps": ("layer_norm_eps", 1e-12),
            "fusion_hidden_dropout_prob": ("hidden_dropout_prob", 0.1),
            "fusion_attention_dropout_prob": ("attention_probs_dropout_prob", 0.1),
        }
        for name, (text_name, default) in defaults.items():
            value = getattr(self, name)
            if text is not None:
                text_value = getattr(text, text_name)
                # Dropout may differ from the text tower's (a regularisation choice); shapes may not.
                if name.endswith("dropout_prob") and value is not None:
                    continue
                if value is not None and value != text_value:
                    raise ValueError(
                        f"{name}={value!r} disagrees with text_config.{text_name}={text_value!r}: the fusion "
                        "layers are copies of the text tower's last layers, so their shape is the text tower's."
                    )
                value = text_value
            elif value is None:
                value = default
            setattr(self, name, value)

    def check_values(self):
        """Raise a ValueError naming the field when the numbers cannot describe a working model.

        Not named `validate_*`, so that `@strict` does not collect it and run it a second time.
        """
        if not str(self.vision_config.architecture).startswith("swin"):
            raise ValueError(
                f"vision_config.architecture={self.vision_config.architecture!r} is not supported: AesFormer "
                "reads four levels of a Swin Transformer, so use a timm Swin architecture such as "
                "'swin_tiny_patch4_window7_224'."
            )
        checks = [
            (self.fusion_layers >= 1, "fusion_layers", "at least 1"),
            (self.num_bins >= 2, "num_bins", "at least 2"),
            (self.score_max > self.score_min, "score_max", f"greater than score_min={self.score_min}"),
            (
                self.score_min <= self.label_threshold <= self.score_max,
                "label_threshold",
                f"within [score_min, score_max] = [{self.score_min}, {self.score_max}]",
            ),
            (0.0 <= self.miaa_text_weight <= 1.0, "miaa_text_weight", "within [0, 1]"),
            (
                self.adapter_reduction >= 1 and self.fusion_hidden_size % self.adapter_reduction == 0,
                "adapter_reduction",
                f"a divisor of the fusion width {self.fusion_hidden_size}",
            ),
            (
                self.fusion_hidden_size % self.fusion_num_attention_heads == 0,
                "fusion_num_attention_heads",
                f"a divisor of fusion_hidden_size={self.fusion_hidden_size}",
            ),
            (self.contrastive_queue_size >= 0, "contrastive_queue_size", "non-negative"),
            (0.0 <= self.contrastive_momentum < 1.0, "contrastive_momentum", "within [0, 1)"),
            (0.001 <= self.contrastive_temperature <= 0.5, "contrastive_temperature", "within [0.001, 0.5]"),
        ]
        for ok, name, expected in checks:
            if not ok:
                raise ValueError(f"AesformerConfig.{name}={getattr(self, name)!r} must be {expected}.")

    # ----------------------------------------------------------------------------------------------
    @property
    def is_vision_only(self) -> bool:
        """True when the model has no comment tower (VIAA only)."""
        return self.text_config is None

    @property
    def bin_values(self) -> list[float]:
        """Score of each bin, evenly spaced from `score_min` to `score_max` (1..10 on AVA)."""
        return bin_values(self.num_bins, self.score_min, self.score_max)

    @property
    def released_variant(self) -> str | None:
        """`"tiny"`, `"small"` or `"base"` when the Swin is one of the released shapes unchanged, else None."""
        vision = self.vision_config
        for name, variant in VARIANTS.items():
            if vision.architecture == variant.swin and not (vision.model_args or {}):
                return name
        return None

    @classmethod
    def from_variant(cls, variant: str = "tiny", **kwargs) -> AesformerConfig:
        """The released AesFormer-T, -S or -B shape (`"tiny"|"small"|"base"`, or `"t"`, `"aesformer-b"`, ...)."""
        name = variant_name(variant)
        if name not in VARIANTS:
            raise ValueError(f"Unknown AesFormer variant {variant!r}; expected one of {sorted(VARIANTS)}.")
        kwargs.setdefault("vision_config", VARIANTS[name].vision_config)
        return cls(**kwargs)

    def to_vision_only(self) -> AesformerConfig:
        """A copy of this config without the comment tower (fusion shape kept)."""
        data = self.to_dict()
        data["text_config"] = None
        for key in ("model_type", "transformers_version", "architectures", "auto_map"):
            data.pop(key, None)
        return type(self)(**data)


__all__ = [
    "ADAPTATION_STAGE",
    "MIAA",
    "MODE_OF_STAGE",
    "MULTIMODAL_MODE",
    "MULTIMODAL_STAGE",
    "PAPER_MODE_NAMES",
    "PIPELINE_TASK",
    "STAGES",
    "VARIANTS",
    "VIAA",
    "VISION_MODE",
    "AesformerConfig",
    "AesformerVariant",
    "bin_values",
    "variant_name",
]
