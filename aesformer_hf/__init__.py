"""aesformer-hf: AesFormer image aesthetic assessment as a transformers model.

Importing the package registers AesFormer with the Auto classes (`AutoConfig`, `AutoModel`,
`AutoModelForImageClassification` for [`AesformerForAesthetic`], `AutoImageProcessor`, `AutoProcessor`)
and registers the `image-aesthetics` pipeline.

One exception keeps `aesformer-hf --help` fast: when the package is imported only as the parent of
`aesformer_hf.cli` (the `aesformer-hf` console script, `python -m aesformer_hf.cli`), torch and transformers are
not imported until a command runs or a public name (`aesformer_hf.AesformerConfig`, ...) is first used; either
registers everything as above.
"""

import sys

__version__ = "0.1.0"


# Public name -> the module defining it, imported by `_register`.
_EXPORTS = {
    "AesformerConfig": "models.aesformer.configuration_aesformer",
    "PIPELINE_TASK": "models.aesformer.configuration_aesformer",
    "AesformerImageProcessor": "models.aesformer.image_processing_aesformer",
    "AesformerImageProcessorFast": "models.aesformer.image_processing_aesformer",
    "AesformerAestheticOutput": "models.aesformer.modeling_aesformer",
    "AesformerForAesthetic": "models.aesformer.modeling_aesformer",
    "AesformerModel": "models.aesformer.modeling_aesformer",
    "AesformerModelOutput": "models.aesformer.modeling_aesformer",
    "AesformerPreTrainedModel": "models.aesformer.modeling_aesformer",
    "ImageAestheticsPipeline": "models.aesformer.pipeline_aesformer",
    "AesformerProcessor": "models.aesformer.processing_aesformer",
    "has_comments": "models.aesformer.processing_aesformer",
    "released_comment_text": "models.aesformer.processing_aesformer",
}
_registered = False


def _register() -> None:
    """Import the public names and register them with transformers; once (later calls return at once)."""
    global _registered
    if _registered:
        return
    import importlib

    from transformers import (
        AutoConfig,
        AutoImageProcessor,
        AutoModel,
        AutoModelForImageClassification,
        AutoProcessor,
    )
    from transformers.models.auto import image_processing_auto
    from transformers.pipelines import PIPELINE_REGISTRY

    names = {
        name: getattr(importlib.import_module(f".{module}", __name__), name)
        for name, module in _EXPORTS.items()
    }
    globals().update(names)
    AesformerConfig, AesformerModel = names["AesformerConfig"], names["AesformerModel"]
    AesformerForAesthetic, AesformerProcessor = names["AesformerForAesthetic"], names["AesformerProcessor"]
    AesformerImageProcessor = names["AesformerImageProcessor"]
    AesformerImageProcessorFast = names["AesformerImageProcessorFast"]
    PIPELINE_TASK = names["PIPELINE_TASK"]

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
        pipeline_class=names["ImageAestheticsPipeline"],
        pt_model=AutoModelForImageClassification,
        type="multimodal",
    )
    # A folder saved for the Hub lists this task in `custom_pipelines` (remote code); with the package installed,
    # the registered pipeline above serves it instead, with no `trust_remote_code`.
    AesformerConfig.pipeline_tasks_registered_locally = (PIPELINE_TASK,)
    # save_pretrained / push_to_hub then write the model code and `auto_map`, so `trust_remote_code=True` loads
    # the model where this package is not installed.
    AesformerConfig.register_for_auto_class()
    AesformerModel.register_for_auto_class("AutoModel")
    AesformerForAesthetic.register_for_auto_class("AutoModelForImageClassification")
    AesformerImageProcessor.register_for_auto_class("AutoImageProcessor")
    AesformerImageProcessorFast.register_for_auto_class("AutoImageProcessor")
    AesformerProcessor.register_for_auto_class("AutoProcessor")
    _registered = True


def __getattr__(name: str):
    if name in _EXPORTS:
        _register()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


def _imported_only_for_the_command_line() -> bool:
    """True while Python imports this package as the parent of `aesformer_hf.cli` and nothing else asked for it.

    Python imports a package before its submodule, so the frames of the import machinery (or of `runpy`, for
    `python -m`) name the module actually wanted. Where they cannot be read the answer is False, and the package
    registers at once, as always.
    """
    try:
        frame = sys._getframe(1)
    except (AttributeError, ValueError):
        return False
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(("<frozen importlib", "<frozen runpy")) or filename.endswith("runpy.py"):
            wanted = frame.f_locals.get("name", frame.f_locals.get("mod_name"))
            if isinstance(wanted, str) and wanted.startswith(__name__ + "."):
                return wanted == __name__ + ".cli"
        frame = frame.f_back
    return False


if not _imported_only_for_the_command_line():
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
