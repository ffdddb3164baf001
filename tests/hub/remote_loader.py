"""Run in a subprocess by test_remote_code.py, where aesformer_hf must not be importable.

Loads each saved folder named on the command line through the Auto classes and the pipeline, with and without
`trust_remote_code`, rates a fixed image with and without comments, and writes what it saw as JSON.

Usage: python remote_loader.py RESULT_JSON IMAGE_PNG COMMENT FOLDER [FOLDER ...]
"""

import sys


class _BlockAesformerHf:
    """A meta path finder that makes `import aesformer_hf` fail, as where the package is not installed (even once
    CI pip-installs it)."""

    def find_spec(self, name, path=None, target=None):
        if name == "aesformer_hf" or name.startswith("aesformer_hf."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked for the remote-code test)")
        return None


sys.meta_path.insert(0, _BlockAesformerHf())

import json  # noqa: E402

import torch  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import (  # noqa: E402
    AutoConfig,
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageClassification,
    AutoProcessor,
    pipeline,
)


def _error_of(load) -> str | None:
    try:
        load()
    except Exception as error:  # noqa: BLE001 - the message is what the test checks
        return f"{type(error).__name__}: {error}"
    return None


def _rate_folder(folder: str, image: Image.Image, comment: str, image_path: str) -> dict:
    seen = {
        "error_without_trust_config": _error_of(lambda: AutoConfig.from_pretrained(folder)),
        "error_without_trust_pipeline": _error_of(lambda: pipeline("image-aesthetics", model=folder)),
    }
    config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
    model = AutoModelForImageClassification.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    image_processor = AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)
    rate = pipeline("image-aesthetics", model=folder, trust_remote_code=True)
    seen["classes"] = {
        "config": type(config).__module__ + "." + type(config).__name__,
        "model": type(model).__module__ + "." + type(model).__name__,
        "processor": type(processor).__module__ + "." + type(processor).__name__,
        "image_processor": type(image_processor).__module__ + "." + type(image_processor).__name__,
        "pipeline": type(rate).__module__ + "." + type(rate).__name__,
    }
    if "AutoModel" in (config.auto_map or {}):  # written by save_for_hub, not by Pipeline.save_pretrained
        base = AutoModel.from_pretrained(folder, trust_remote_code=True)
        seen["classes"]["base_model"] = type(base).__module__ + "." + type(base).__name__
    with torch.no_grad():
        viaa = model(**image_processor(image, return_tensors="pt"))
        miaa = model(**processor(images=image, text=[comment], return_tensors="pt"))
    seen["model_viaa"] = {"score": viaa.score.tolist(), "distribution": viaa.distribution.tolist()}
    seen["model_miaa"] = {"score": miaa.score.tolist(), "distribution": miaa.distribution.tolist()}
    seen["pipeline_viaa"] = rate(image)
    seen["pipeline_miaa"] = rate(image, comments=[comment])
    # Streamed (a generator), batched across modes, one unreadable file skipped in its place.
    stream = (
        {"image": i, "comments": c}
        for i, c in [(image_path, [comment]), (image_path + ".missing", None), (image, None)]
    )
    seen["pipeline_stream"] = list(rate(stream, batch_size=2, on_error="skip"))
    return seen


def main() -> None:
    result_path, image_path, comment, *folders = sys.argv[1:]
    import_error = _error_of(lambda: __import__("aesformer_hf"))
    image = Image.open(image_path).convert("RGB")
    results = {
        "import_aesformer_hf": import_error,
        "folders": {f: _rate_folder(f, image, comment, image_path) for f in folders},
    }
    results["aesformer_hf_modules_loaded"] = sorted(m for m in sys.modules if m.startswith("aesformer_hf"))
    with open(result_path, "w", encoding="utf-8") as handle:
        json.dump(results, handle)


if __name__ == "__main__":
    main()
