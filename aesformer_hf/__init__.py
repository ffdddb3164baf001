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
from transformers.models.auto import image_processing_auto
from transformers.pipelines import PIPELINE_REGISTRY

from .models.aesformer.configuration_aesformer import AesformerConfig
from .models.aesformer.image_processing_aesformer import AesformerImageProcessor, AesformerImageProcessorFast
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
    AutoImageProcessor.register(
        AesformerConfig,
        image_processor_classes={"pil": AesformerImageProcessor, "torchvision": AesformerImageProcessorFast},
        exist_ok=True,
    )
    # The PIL backend is the released preprocessing, bit for bit; torchvision's bicubic differs slightly, so it is
    # picked only when asked (backend="torchvision" / use_fast=True), as transformers does for its Lanczos processors.
    _default_backends = image_processing_auto.DEFAULT_TO_PIL_BACKEND_IMAGE_PROCESSORS
    if AesformerImageProcessor.__name__ not in _default_backends:
        _default_backends.append(AesformerImageProcessor.__name__)
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
    AesformerImageProcessorFast.register_for_auto_class("AutoImageProcessor")
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
    "AesformerImageProcessorFast",
    "AesformerProcessor",
    "ImageAestheticsPipeline",
    "has_comments",
    "released_comment_text",
    "PIPELINE_TASK",
]
