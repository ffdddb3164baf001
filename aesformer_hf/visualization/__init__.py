"""Pictures of what AesFormer looks at: the fusion layers' attention as a heatmap over the image."""

from .attention_maps import (
    AttentionMap,
    combine_layers,
    compute_attention_map,
    image_heatmap,
    overlay_heatmap,
    render_attention,
    top_comment_words,
)

__all__ = [
    "AttentionMap",
    "combine_layers",
    "compute_attention_map",
    "image_heatmap",
    "overlay_heatmap",
    "render_attention",
    "top_comment_words",
]
