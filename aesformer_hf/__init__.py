"""aesformer-hf: AesFormer image aesthetic assessment as a transformers model.

Importing the package registers AesFormer with the Auto classes (`AutoConfig`, `AutoModel`,
`AutoModelForImageClassification` for [`AesformerForAesthetic`], `AutoImageProcessor`, `AutoProcessor`)
and registers the `image-aesthetics` pipeline.
"""

from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageClassification,
    AutoProcessor,
)
from transformers.pipelines import PIPELINE_REGISTRY

from .models.aesformer.configuration_aesformer import AesformerConfig
from .models.aesformer.image_processing_aesformer import AesformerImageProcessor
from .models.aesformer.modeling_aesformer import (
    AesformerAestheticOutput,
    AesformerForAesthetic,
    AesformerModel,
    AesformerModelOutput,
    AesformerPreTrainedModel,
)
from .models.aesformer.pipeline_aesformer import ImageAestheticsPipeline
from .models.aesformer.processing_aesformer import AesformerProcessor, has_comments, released_comment_text

__version__ = "0.1.0"

PIPELINE_TASK = "image-aesthetics"


def _register() -> None:
    AutoConfig.register(AesformerConfig.model_type, AesformerConfig, exist_ok=True)
    AutoModel.register(AesformerConfig, AesformerModel, exist_ok=True)
    # The aesthetic head classifies into score bins, so it answers AutoModelForImageClassification; the pipeline
    # and Hub remote code need a transformers Auto class here.
    AutoModelForImageClassification.register(AesformerConfig, AesformerForAesthetic, exist_ok=True)
    # One implementation serves both backends (PIL resize, torch normalisation), so neither choice warns.
    AutoImageProcessor.register(
        AesformerConfig,
        image_processor_classes={"pil": AesformerImageProcessor, "torchvision": AesformerImageProcessor},
        exist_ok=True,
    )
    AutoProcessor.register(AesformerConfig, AesformerProcessor, exist_ok=True)
    PIPELINE_REGISTRY.register_pipeline(
        PIPELINE_TASK,
        pipeline_class=ImageAestheticsPipeline,
        pt_model=AutoModelForImageClassification,
        type="multimodal",
    )
    # save_pretrained / push_to_hub then write the model code and `auto_map`, so `trust_remote_code=True` loads
    # the model where this package is not installed.
    AesformerConfig.register_for_auto_class()
    AesformerModel.register_for_auto_class("AutoModel")
    AesformerForAesthetic.register_for_auto_class("AutoModelForImageClassification")
    AesformerImageProcessor.register_for_auto_class("AutoImageProcessor")
    AesformerProcessor.register_for_auto_class("AutoProcessor")


_register()

__all__ = [
    "AesformerConfig",
    "AesformerModel",
    "AesformerForAesthetic",
    "AesformerPreTrainedModel",
    "AesformerModelOutput",
    "AesformerAestheticOutput",
    "AesformerImageProcessor",
    "AesformerProcessor",
    "ImageAestheticsPipeline",
    "has_comments",
    "released_comment_text",
    "PIPELINE_TASK",
]
