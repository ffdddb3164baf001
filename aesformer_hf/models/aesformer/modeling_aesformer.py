"""AesFormer: Swin + BERT + mixture-of-modality-experts fusion for image aesthetic assessment.

Two paths share one network, the paper's MIAA and VIAA:

* **MIAA** (image + comments): the last Swin level (49 tokens at 224 px, through `image_projection`
  when the Swin is wider than the fusion layers) is concatenated with BERT's comment tokens; the
  fusion layers run their shared self-attention and the **vision-language** feed-forward expert;
  an image head (LayerNorm, mean over image tokens) and a text head (the [CLS] token) each predict
  a vote distribution, and the prediction is their weighted mean.
* **VIAA** (image only): four Swin levels, pooled to the last level's grid, widened by Linears,
  projected, each through its own residual adapter, concatenated (196 tokens); the fusion layers
  run the same shared attention and the **vision** feed-forward expert; a LayerNorm, a mean and the
  VIAA head predict the distribution.

Everything is a logit over `num_bins` bins whose values run from `score_min` to `score_max`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from timm.models import checkpoint_seq
from torch import nn
from transformers import BertModel, PreTrainedModel, TimmWrapperModel
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput, logging

from .configuration_aesformer import MULTIMODAL_MODE, VISION_MODE, AesformerConfig
from .losses_aesformer import check_labels, expected_score, supervised_loss

logger = logging.get_logger(__name__)


def is_tracing() -> bool:
    """True while `torch.compile`, `torch.export` (and so the ONNX exporter) or `torch.jit` trace the model.

    Checks that read tensor values (NaN, empty comments, label sums) would synchronise with the device and break
    the graph, so they run in eager mode only; data entering through the processor, the collator and the pipeline
    is checked there as well.
    """
    compiler = torch.compiler
    exporting = getattr(compiler, "is_exporting", lambda: False)
    return compiler.is_compiling() or exporting() or torch.jit.is_tracing() or torch.jit.is_scripting()


# --------------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------------
@dataclass
class AesformerModelOutput(ModelOutput):
    """
    Args:
        last_hidden_state (`(batch, tokens, fusion_hidden_size)`): tokens after the fusion layers. In MIAA the
            first `image_tokens.shape[1]` are image tokens, then the comment tokens; in VIAA all are image tokens
            (four levels of `grid*grid` tokens each).
        image_tokens (`(batch, image_tokens, fusion_hidden_size)`): the image tokens that entered the fusion layers.
        text_hidden_state (`(batch, text_tokens, fusion_hidden_size)`): BERT's output (MIAA only).
        fusion_attention_mask (`(batch, tokens)`): 1 for tokens the fusion layers attended to, 0 for padding.
        hidden_states (`tuple` of `(batch, tokens, fusion_hidden_size)`): fusion input, then each fusion layer's output.
        attentions (`tuple` of `(batch, heads, tokens, tokens)`): each fusion layer's attention probabilities.
    """

    last_hidden_state: torch.FloatTensor | None = None
    image_tokens: torch.FloatTensor | None = None
    text_hidden_state: torch.FloatTensor | None = None
    fusion_attention_mask: torch.LongTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class AesformerAestheticOutput(ModelOutput):
    """
    Args:
        loss (`()`): with `labels`, the supervised objective of the stage that trains this path (the Trainer adds
            the contrastive term in stage 1). Distribution labels: MIAA `EMD_2(image head) + EMD_2(text head)`;
            VIAA `EMD_2 + 10 * MSE` over the bin probabilities. Scalar scores: the MSE of each head's mean score
            (squared score units), summed. Defined once in `losses_aesformer.py`.
        logits (`(batch, num_bins)`): pre-softmax scores; `softmax(logits) == distribution`. In MIAA they are the
            log of the mixed distribution, since the prediction mixes two softmaxes.
        distribution (`(batch, num_bins)`): predicted vote distribution (sums to 1).
        score (`(batch,)`): expected score `sum_k p_k * bin_value_k`, in `[score_min, score_max]`.
        label (`(batch,)`): 1 ("high") when `score > label_threshold`, else 0 ("low").
        image_logits, text_logits (`(batch, num_bins)`): MIAA only, each head's logits.
        image_embeds, text_embeds (`(batch, fusion_hidden_size)`): MIAA only, the L2-normalised embeddings of the
            image-text contrastive objective (mean of the normed last-level tokens; BERT's [CLS]).
        hidden_states, attentions: as in [`AesformerModelOutput`].
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    distribution: torch.FloatTensor | None = None
    score: torch.FloatTensor | None = None
    label: torch.LongTensor | None = None
    image_logits: torch.FloatTensor | None = None
    text_logits: torch.FloatTensor | None = None
    image_embeds: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


# --------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------
def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain attention that returns its probabilities. `query/key/value`: `(batch, heads, tokens, head_dim)`.

    The softmax runs in float32 so that bf16/fp16 padding masks (very negative numbers) cannot overflow.
    """
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        scores = scores + attention_mask
    probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    probs_dropped = F.dropout(probs, p=dropout, training=module.training)
    output = torch.matmul(probs_dropped, value).transpose(1, 2).contiguous()
    return output, probs


class AesformerFusionSelfAttention(nn.Module):
    """The self-attention shared by both modalities: BERT's post-LayerNorm attention block."""

    def __init__(self, config: AesformerConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.fusion_num_attention_heads
        self.head_dim = config.fusion_hidden_size // self.num_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False
        hidden = config.fusion_hidden_size
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.output_dense = nn.Linear(hidden, hidden)
        self.output_layer_norm = nn.LayerNorm(hidden, eps=config.fusion_layer_norm_eps)
        self.attention_dropout = config.fusion_attention_dropout_prob
        self.hidden_dropout = nn.Dropout(config.fusion_hidden_dropout_prob)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, tokens, _ = hidden_states.shape
        shape = (batch, tokens, self.num_heads, self.head_dim)
        query = self.query(hidden_states).view(shape).transpose(1, 2)
        key = self.key(hidden_states).view(shape).transpose(1, 2)
        value = self.value(hidden_states).view(shape).transpose(1, 2)

        # Fused kernels return no probabilities, so attention maps always take the eager path.
        implementation = "eager" if output_attentions else (self.config._attn_implementation or "sdpa")
        attention_fn: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            implementation, eager_attention_forward
        )
        if implementation == "eager":
            attention_fn = eager_attention_forward
        context, probs = attention_fn(
            self,
            query,
            key,
            value,
            attention_mask,
            scaling=self.scaling,
            dropout=self.attention_dropout if self.training else 0.0,
        )
        context = context.reshape(batch, tokens, -1)
        output = self.output_layer_norm(self.hidden_dropout(self.output_dense(context)) + hidden_states)
        return output, (probs if output_attentions else None)


class AesformerFeedForwardExpert(nn.Module):
    """One modality expert: BERT's feed-forward block (Linear, GELU, Linear, residual, LayerNorm)."""

    def __init__(self, config: AesformerConfig):
        super().__init__()
        self.intermediate_dense = nn.Linear(config.fusion_hidden_size, config.fusion_intermediate_size)
        self.activation = ACT2FN[config.fusion_hidden_act]
        self.output_dense = nn.Linear(config.fusion_intermediate_size, config.fusion_hidden_size)
        self.output_layer_norm = nn.LayerNorm(config.fusion_hidden_size, eps=config.fusion_layer_norm_eps)
        self.dropout = nn.Dropout(config.fusion_hidden_dropout_prob)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        expanded = self.activation(self.intermediate_dense(hidden_states))
        return self.output_layer_norm(self.dropout(self.output_dense(expanded)) + hidden_states)


class AesformerFusionLayer(GradientCheckpointingLayer):
    """A mixture-of-modality-experts layer: shared self-attention, then the expert the mode selects.

    This module alone owns the expert choice, so nothing else branches on the modality.
    """

    def __init__(self, config: AesformerConfig):
        super().__init__()
        self.self_attention = AesformerFusionSelfAttention(config)
        self.vision_language_expert = None if config.is_vision_only else AesformerFeedForwardExpert(config)
        self.vision_expert = AesformerFeedForwardExpert(config)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mode: str = VISION_MODE,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        attended, probs = self.self_attention(
            hidden_states, attention_mask, output_attentions=output_attentions
        )
        expert = self.vision_language_expert if mode == MULTIMODAL_MODE else self.vision_expert
        return expert(attended), probs


class AesformerLevelAdapter(nn.Module):
    """Residual bottleneck adapter for one Swin level: `x + up(GELU(down(x)))` (768 -> 192 -> 768 by default)."""

    def __init__(self, hidden_size: int, reduction: int):
        super().__init__()
        self.down = nn.Linear(hidden_size, hidden_size // reduction)
        self.activation = nn.GELU()
        self.up = nn.Linear(hidden_size // reduction, hidden_size)
        # transformers skips `_init_weights` on parameter-less containers of custom models, so the Linears
        # themselves carry the mark that selects the adapter initialisation.
        self.down.is_adapter_linear = self.up.is_adapter_linear = True

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states + self.up(self.activation(self.down(hidden_states)))


class AesformerScoreHead(nn.Module):
    """`hidden -> head_hidden_size -> ReLU -> num_bins` logits."""

    def __init__(self, config: AesformerConfig):
        super().__init__()
        self.dense = nn.Linear(config.fusion_hidden_size, config.head_hidden_size)
        self.activation = nn.ReLU()
        self.out_proj = nn.Linear(config.head_hidden_size, config.num_bins)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.activation(self.dense(pooled)))


@dataclass
class SwinLevels:
    """The four Swin levels the VIAA neck reads (L1..L3 right after each patch merging, before the next stage's
    blocks; L4 the last stage's output), each `(batch, height, width, channels)` (timm's NHWC layout)."""

    level1: torch.Tensor
    level2: torch.Tensor
    level3: torch.Tensor
    level4: torch.Tensor


def _tokens(nhwc: torch.Tensor) -> torch.Tensor:
    return nhwc.flatten(1, 2)


def _pool_to_grid(nhwc: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    # Average pooling to the last level's grid: 28x28 -> 7x7 (4x4 windows) and 14x14 -> 7x7 (2x2) at 224 px.
    pooled = F.adaptive_avg_pool2d(nhwc.permute(0, 3, 1, 2), grid)
    return pooled.flatten(2).transpose(1, 2)


class AesformerMultiLevelNeck(nn.Module):
    """Turns four Swin levels into `4 * grid*grid` adapted fusion tokens (VIAA).

    L1 and L2 are average-pooled to L4's grid and widened to L4's width by their own Linear; all four
    levels then pass the shared `image_projection` (owned by the model) and their own adapter.
    """

    def __init__(self, config: AesformerConfig, level_widths: tuple[int, int, int, int]):
        super().__init__()
        last_width = level_widths[3]
        self.level1_linear = nn.Linear(level_widths[0], last_width)
        self.level2_linear = nn.Linear(level_widths[1], last_width)
        self.adapters = nn.ModuleList(
            AesformerLevelAdapter(config.fusion_hidden_size, config.adapter_reduction) for _ in range(4)
        )

    def forward(self, levels: SwinLevels, projection: nn.Module) -> torch.Tensor:
        grid = tuple(levels.level4.shape[1:3])
        tokens = [
            self.level1_linear(_pool_to_grid(levels.level1, grid)),
            self.level2_linear(_pool_to_grid(levels.level2, grid)),
            _tokens(levels.level3),
            _tokens(levels.level4),
        ]
        return torch.cat([adapter(projection(t)) for adapter, t in zip(self.adapters, tokens)], dim=1)


# --------------------------------------------------------------------------------------------------
# Pre-trained base class
# --------------------------------------------------------------------------------------------------
class AesformerPreTrainedModel(PreTrainedModel):
    config: AesformerConfig
    config_class = AesformerConfig
    base_model_prefix = "model"
    main_input_name = "pixel_values"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = False
    _supports_attention_backend = True
    _no_split_modules = ["AesformerFusionLayer", "BertLayer", "TimmWrapperModel"]
    accepts_loss_kwargs = False

    def _init_weights(self, module):
        super()._init_weights(module)
        from transformers import initialization as init

        if isinstance(module, nn.Linear) and getattr(module, "is_adapter_linear", False):
            # Near-identity start: the adapters must not disturb the stage-1 features at first.
            init.normal_(module.weight, mean=0.0, std=self.config.adapter_init_std)
            init.zeros_(module.bias)
        elif isinstance(module, AesformerForAesthetic):
            # A non-persistent buffer: from_pretrained builds on the meta device, so it must be refilled here.
            init.copy_(module.bin_values, torch.tensor(self.config.bin_values, dtype=module.bin_values.dtype))
            if module.contrastive_temperature is not None:
                init.constant_(module.contrastive_temperature, self.config.contrastive_temperature)

    def _set_gradient_checkpointing(self, enable: bool = True, *args, **kwargs):
        super()._set_gradient_checkpointing(enable, *args, **kwargs)
        # `gradient_checkpointing_enable()` does not call timm's `set_grad_checkpointing` by itself.
        for module in self.modules():
            if isinstance(module, TimmWrapperModel):
                module.timm_model.set_grad_checkpointing(enable)


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------
class AesformerModel(AesformerPreTrainedModel):
    """Towers, neck and fusion layers; returns fused tokens. [`AesformerForAesthetic`] adds the heads."""

    def __init__(self, config: AesformerConfig):
        super().__init__(config)
        self.vision_model = TimmWrapperModel(config.vision_config)
        level_widths = self._swin_level_widths()
        self.image_projection = (
            nn.Linear(level_widths[3], config.fusion_hidden_size)
            if level_widths[3] != config.fusion_hidden_size
            else None
        )
        self.neck = AesformerMultiLevelNeck(config, level_widths)
        self.text_model = (
            None if config.is_vision_only else BertModel(config.text_config, add_pooling_layer=False)
        )
        self.fusion_layers = nn.ModuleList(AesformerFusionLayer(config) for _ in range(config.fusion_layers))
        self.post_init()

    # -- vision ------------------------------------------------------------------------------------
    def _swin_level_widths(self) -> tuple[int, int, int, int]:
        info = self.vision_model.timm_model.feature_info
        if len(info) != 4:
            raise ValueError(
                f"vision_config describes a Swin with {len(info)} stages; AesFormer needs exactly 4 (L1..L4)."
            )
        widths = [stage["num_chs"] for stage in info]
        # L1, L2 are the patch mergings at the start of timm's stages 2 and 3, so they have those stages' widths;
        # L3 (the merging at the start of stage 4) has L4's width.
        return widths[1], widths[2], widths[3], widths[3]

    @property
    def image_size(self) -> tuple[int, int]:
        """`(height, width)` in pixels that the Swin tower was built for."""
        size = self.vision_model.timm_model.patch_embed.img_size
        return tuple(size) if isinstance(size, (tuple, list)) else (size, size)

    def get_swin_levels(self, pixel_values: torch.Tensor) -> SwinLevels:
        """Run the Swin tower (no final norm) and keep the four levels the released model read.

        The released Swin merges patches at the *end* of a stage; timm merges at the *start* of the next. The
        released levels L1..L3 are therefore each stage's output after the next patch merging and *before* the
        next stage's blocks (`layers[i + 1].downsample`), and L4 is the last stage's output:

            L1 = layers[1].downsample(layers[0](x))   28x28 x 2C at 224 px
            L2 = layers[2].downsample(layers[1].blocks(L1))   14x14 x 4C
            L3 = layers[3].downsample(layers[2].blocks(L2))   7x7 x 8C
            L4 = layers[3].blocks(L3)   7x7 x 8C

        Reading L1, L2 after the next stage's blocks instead (timm's stage outputs) gives a different model.
        """
        swin = self.vision_model.timm_model
        hidden = swin.layers[0](swin.patch_embed(pixel_values))
        merged = []
        for stage in swin.layers[1:]:
            level = stage.downsample(hidden)
            merged.append(level)
            hidden = self._run_stage_blocks(stage, level)
        return SwinLevels(merged[0], merged[1], merged[2], hidden)

    def _run_stage_blocks(self, stage: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        # The blocks alone (the stage's own forward would merge patches first), checkpointed as timm would.
        if stage.grad_checkpointing and self.training and not torch.jit.is_scripting():
            return checkpoint_seq(stage.blocks, hidden)
        return stage.blocks(hidden)

    def project_image_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """Swin width -> fusion width (`proj` of AesFormer-B; identity when the widths agree)."""
        return tokens if self.image_projection is None else self.image_projection(tokens)

    def get_miaa_image_tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """`(batch, grid*grid, fusion_hidden_size)`: the last level's tokens, projected (MIAA's image input)."""
        return self.project_image_tokens(_tokens(self.get_swin_levels(pixel_values).level4))

    def get_text_hidden_state(self, input_ids, attention_mask=None, token_type_ids=None) -> torch.Tensor:
        """`(batch, text_tokens, hidden)`: BERT's last hidden state."""
        self._require_text_tower("encode comments")
        return self.text_model(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state

    # -- checks ------------------------------------------------------------------------------------
    def _require_text_tower(self, what: str):
        if self.text_model is None:
            raise ValueError(
                f"Cannot {what}: this AesFormer is vision-only (config.text_config is None), so it has no comment "
                "tower and no vision-language experts. Call it without `input_ids` (VIAA), or load a full model."
            )

    def _check_pixel_values(self, pixel_values: torch.Tensor):
        if not isinstance(pixel_values, torch.Tensor):
            raise TypeError(f"pixel_values must be a torch.Tensor, got {type(pixel_values).__name__}.")
        height, width = self.image_size
        if pixel_values.ndim != 4 or pixel_values.shape[1] != 3:
            raise ValueError(
                f"pixel_values has shape {tuple(pixel_values.shape)}; expected (batch, 3, {height}, {width}): "
                "RGB images as produced by AesformerImageProcessor."
            )
        if tuple(pixel_values.shape[2:]) != (height, width):
            raise ValueError(
                f"pixel_values are {tuple(pixel_values.shape[2:])} pixels; this model's Swin expects "
                f"{(height, width)}. Resize with AesformerImageProcessor (size={height})."
            )
        if not pixel_values.is_floating_point():
            raise ValueError(
                f"pixel_values must be floating point (normalised images), got {pixel_values.dtype}."
            )
        if pixel_values.shape[0] == 0:
            raise ValueError("pixel_values hold no images (batch of 0); pass at least one image.")
        if not is_tracing() and not torch.isfinite(pixel_values).all():
            bad = (~torch.isfinite(pixel_values.flatten(1))).any(dim=1).nonzero().flatten().tolist()
            raise ValueError(f"pixel_values of images {bad} contain NaN or inf values.")

    def _check_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, batch: int):
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids has shape {tuple(input_ids.shape)}; expected (batch, text_tokens).")
        if input_ids.shape[0] != batch:
            raise ValueError(
                f"Got {batch} images but {input_ids.shape[0]} comment sequences: every image of a multimodal "
                "batch needs its own comments."
            )
        if attention_mask is not None:
            if attention_mask.shape != input_ids.shape:
                raise ValueError(
                    f"attention_mask has shape {tuple(attention_mask.shape)}; expected {tuple(input_ids.shape)} "
                    "like input_ids."
                )
            if is_tracing():
                return
            # [CLS] + [SEP] alone means the comment list was empty: nothing for the text head to read.
            empty = (attention_mask.sum(dim=1) <= 2).nonzero().flatten().tolist()
            if empty:
                raise ValueError(
                    f"Images {empty} of the multimodal batch have no comment tokens. Rate images without comments "
                    "with VIAA (no input_ids); the pipeline and the processor route them for you."
                )

    @staticmethod
    def _fusion_mask(token_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """`(batch, tokens)` 1/0 -> additive `(batch, 1, 1, tokens)` mask (0 where attended, dtype's min on padding).

        Always built when there is a mask (MIAA), even when nothing is padded: skipping it would need the host to
        read the mask, which breaks one-graph compilation and export. VIAA has no padding and passes no mask.
        """
        return (1.0 - token_mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min

    # -- forward -----------------------------------------------------------------------------------
    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> AesformerModelOutput | tuple:
        """
        Args:
            pixel_values (`(batch, 3, H, W)`): normalised images (see [`AesformerImageProcessor`]).
            input_ids, attention_mask, token_type_ids (`(batch, text_tokens)`): tokenised comments. Given, the model
                runs MIAA; left out, VIAA.
        """
        output_attentions = bool(output_attentions)
        output_hidden_states = (
            output_hidden_states if output_hidden_states is not None else self.config.output_hidden_states
        )
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        self._check_pixel_values(pixel_values)
        batch = pixel_values.shape[0]

        text_hidden = None
        if input_ids is not None:
            self._require_text_tower("run the multimodal (MIAA) path")
            self._check_text(input_ids, attention_mask, batch)
            mode = MULTIMODAL_MODE
            image_tokens = self.get_miaa_image_tokens(pixel_values)
            text_hidden = self.get_text_hidden_state(input_ids, attention_mask, token_type_ids)
            image_mask = torch.ones(image_tokens.shape[:2], dtype=torch.long, device=image_tokens.device)
            text_mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
            hidden = torch.cat([image_tokens, text_hidden.to(image_tokens.dtype)], dim=1)
            token_mask = torch.cat([image_mask, text_mask.to(image_mask.dtype)], dim=1)
            additive_mask = self._fusion_mask(token_mask, hidden.dtype)
        else:
            mode = VISION_MODE
            image_tokens = self.neck(self.get_swin_levels(pixel_values), self.project_image_tokens)
            hidden = image_tokens
            token_mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
            additive_mask = None  # every image token is attended
        all_hidden = (hidden,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        for layer in self.fusion_layers:
            hidden, probs = layer(hidden, additive_mask, mode=mode, output_attentions=output_attentions)
            if output_hidden_states:
                all_hidden = all_hidden + (hidden,)
            if output_attentions:
                all_attentions = all_attentions + (probs,)

        output = AesformerModelOutput(
            last_hidden_state=hidden,
            image_tokens=image_tokens,
            text_hidden_state=text_hidden,
            fusion_attention_mask=token_mask,
            hidden_states=all_hidden,
            attentions=all_attentions,
        )
        return output if return_dict else output.to_tuple()


class AesformerForAesthetic(AesformerPreTrainedModel):
    """AesFormer with its score heads: predicts the vote distribution, the mean score and the high/low label."""

    _vision_only_unused_prefixes = (
        r"model\.text_model\.",
        r"model\.fusion_layers\.\d+\.vision_language_expert\.",
        r"miaa_",
        r"contrastive_",
    )

    def __init__(self, config: AesformerConfig):
        super().__init__(config)
        self.model = AesformerModel(config)
        self.viaa_norm = nn.LayerNorm(config.fusion_hidden_size)
        self.viaa_head = AesformerScoreHead(config)
        if config.is_vision_only:
            self.miaa_image_norm = self.miaa_image_head = self.miaa_text_head = None
            self.contrastive_norm = None
            self.contrastive_temperature = None
            # Loading a full checkpoint into a vision-only model drops these on purpose.
            self._keys_to_ignore_on_load_unexpected = list(self._vision_only_unused_prefixes)
        else:
            self.miaa_image_norm = nn.LayerNorm(config.fusion_hidden_size)
            self.miaa_image_head = AesformerScoreHead(config)
            self.miaa_text_head = AesformerScoreHead(config)
            self.contrastive_norm = nn.LayerNorm(config.fusion_hidden_size)
            self.contrastive_temperature = nn.Parameter(torch.tensor(float(config.contrastive_temperature)))
        self.register_buffer(
            "bin_values", torch.tensor(config.bin_values, dtype=torch.float32), persistent=False
        )
        self.post_init()

    # -- loading -----------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, vision_only: bool = False, **kwargs):
        """`from_pretrained`, plus `vision_only=True` to build a VIAA-only model from a full checkpoint.

        The comment tower, the vision-language experts and the MIAA heads are then left out (their weights are
        dropped with a note), which saves about half the parameters of a T model.
        """
        if vision_only:
            config = kwargs.pop("config", None)
            if config is None or isinstance(config, str):
                config_kwargs = {
                    k: kwargs[k]
                    for k in ("cache_dir", "revision", "token", "local_files_only")
                    if k in kwargs
                }
                config = AesformerConfig.from_pretrained(
                    config or pretrained_model_name_or_path, **config_kwargs
                )
            if not config.is_vision_only:
                logger.warning(
                    "Loading a vision-only AesFormer from a full checkpoint: the comment tower, vision-language "
                    "experts, MIAA heads and contrastive weights are dropped."
                )
                config = config.to_vision_only()
            kwargs["config"] = config
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def from_vision_text_pretrained(
        cls, vision_model_name_or_path: str, text_model_name_or_path: str | None = None, **config_overrides
    ) -> AesformerForAesthetic:
        """A new AesFormer whose towers start from a pretrained timm Swin and BERT (Hub ids or local folders).

        Each fusion layer starts as a copy of one of BERT's last layers (both experts from its feed-forward block);
        heads and adapters keep their documented initialisation. `text_model_name_or_path=None` builds a
        vision-only model. `config_overrides` go to [`AesformerConfig`] (e.g. `fusion_layers=2`, `num_bins=7`).
        """
        from .pretrained_towers_aesformer import build_from_pretrained_towers

        return build_from_pretrained_towers(
            cls, vision_model_name_or_path, text_model_name_or_path, **config_overrides
        )

    def set_score_scale(self, score_min: float, score_max: float, label_threshold: float) -> None:
        """Read the same `num_bins` bins on another scale, e.g. AVA's 1..10 as JAS's 0..1 before fine-tuning.

        Updates the config (validated) and the bin values the mean score is computed with; weights are unchanged.
        """
        config = self.config
        previous = (config.score_min, config.score_max, config.label_threshold)
        config.score_min, config.score_max, config.label_threshold = (
            float(score_min),
            float(score_max),
            float(label_threshold),
        )
        try:
            config.check_values()
        except ValueError:
            config.score_min, config.score_max, config.label_threshold = previous
            raise
        self.bin_values.copy_(torch.tensor(config.bin_values, dtype=self.bin_values.dtype))

    # -- helpers -----------------------------------------------------------------------------------
    def _predict(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        distribution = F.softmax(logits.float(), dim=-1)
        return distribution, *self._score_and_label(distribution)

    def _score_and_label(self, distribution: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        score = expected_score(distribution, self.bin_values)
        return score, (score > self.config.label_threshold).long()

    def get_contrastive_embeddings(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The image-text contrastive embeddings `(batch, fusion_hidden_size)` each, L2-normalised.

        Image: LayerNorm of the projected last-level tokens, averaged. Text: BERT's [CLS]. No fusion layers run.
        """
        self.model._require_text_tower("compute text embeddings")
        image_tokens = self.model.get_miaa_image_tokens(pixel_values)
        text_hidden = self.model.get_text_hidden_state(input_ids, attention_mask)
        return self._contrastive_image_embeds(image_tokens), F.normalize(text_hidden[:, 0].float(), dim=-1)

    def _contrastive_image_embeds(self, image_tokens: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.contrastive_norm(image_tokens).mean(dim=1).float(), dim=-1)

    # -- forward -----------------------------------------------------------------------------------
    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> AesformerAestheticOutput | tuple:
        """
        Args:
            pixel_values (`(batch, 3, H, W)`): normalised images.
            input_ids, attention_mask, token_type_ids (`(batch, text_tokens)`): tokenised comments; given -> MIAA.
            labels (`(batch, num_bins)` distributions or `(batch,)` mean scores on the model's scale).
        """
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        outputs = self.model(
            pixel_values,
            input_ids=input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        if labels is not None:
            labels = check_labels(
                labels, pixel_values.shape[0], self.config.num_bins, check_values=not is_tracing()
            )
        fused = outputs.last_hidden_state
        image_logits = text_logits = image_embeds = text_embeds = None

        if input_ids is not None:
            num_image_tokens = outputs.image_tokens.shape[1]
            image_pooled = self.miaa_image_norm(fused[:, :num_image_tokens]).mean(dim=1)
            image_logits = self.miaa_image_head(image_pooled).float()
            text_logits = self.miaa_text_head(fused[:, num_image_tokens]).float()
            image_distribution = F.softmax(image_logits, dim=-1)
            text_distribution = F.softmax(text_logits, dim=-1)
            weight = self.config.miaa_text_weight
            distribution = (1.0 - weight) * image_distribution + weight * text_distribution
            logits = torch.log(distribution.clamp_min(torch.finfo(distribution.dtype).tiny))
            score, label = self._score_and_label(distribution)
            image_embeds = self._contrastive_image_embeds(outputs.image_tokens)
            text_embeds = F.normalize(outputs.text_hidden_state[:, 0].float(), dim=-1)
            loss = (
                None
                if labels is None
                else supervised_loss(
                    [image_distribution, text_distribution], labels, self.bin_values, MULTIMODAL_MODE
                )
            )
        else:
            logits = self.viaa_head(self.viaa_norm(fused).mean(dim=1)).float()
            distribution, score, label = self._predict(logits)
            loss = (
                None
                if labels is None
                else supervised_loss([distribution], labels, self.bin_values, VISION_MODE)
            )

        output = AesformerAestheticOutput(
            loss=loss,
            logits=logits,
            distribution=distribution,
            score=score,
            label=label,
            image_logits=image_logits,
            text_logits=text_logits,
            image_embeds=image_embeds,
            text_embeds=text_embeds,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )
        return output if return_dict else output.to_tuple()


__all__ = [
    "AesformerPreTrainedModel",
    "AesformerModel",
    "AesformerForAesthetic",
    "AesformerModelOutput",
    "AesformerAestheticOutput",
]
