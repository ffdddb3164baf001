"""Rate photos with an exported AesFormer and onnxruntime alone (no torch, no transformers, no aesformer_hf).

    aesformer-hf export --model ./aesformer-t --output ./aesformer-t-onnx            # once, where the package is
    python examples/rate_with_onnx.py ./aesformer-t-onnx photo1.jpg photo2.png       # anywhere with onnxruntime

Needs numpy, Pillow and onnxruntime. The image transform is the one `export_config.json` states: RGB, resized to
height x width with bicubic resampling (no crop), scaled to 0..1, normalised with the ImageNet mean and std.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime
from PIL import Image, ImageOps


def prepare(path: str, spec: dict) -> np.ndarray:
    """One image file -> `(3, height, width)` float32, as the model was trained to see it."""
    image = Image.open(path)
    try:
        image = ImageOps.exif_transpose(image)  # the camera's orientation
    except Exception:  # noqa: BLE001 - corrupt EXIF: keep the pixels as stored
        pass
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")  # transparent areas shown on white
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    image = image.convert("RGB").resize((spec["width"], spec["height"]), Image.BICUBIC)
    array = np.asarray(image, dtype=np.float32) * spec["rescale_factor"]
    array = (array - np.array(spec["image_mean"], np.float32)) / np.array(spec["image_std"], np.float32)
    return array.transpose(2, 0, 1)


def rate(export_dir: str, paths: list[str]) -> list[dict]:
    """Score, label and vote distribution of each image (VIAA export)."""
    config = json.loads((Path(export_dir) / "export_config.json").read_text())
    if config["mode"] != "vision":
        raise SystemExit("This example rates images without comments: export with --mode vision.")
    session = onnxruntime.InferenceSession(
        str(Path(export_dir) / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    pixel_values = np.stack([prepare(path, config["image"]) for path in paths])
    _, distribution, score, label = session.run(None, {"pixel_values": pixel_values})
    return [
        {
            "image": path,
            "score": float(value),
            "label": "high" if int(high) else "low",
            "distribution": votes.round(4).tolist(),
        }
        for path, value, high, votes in zip(paths, score, label, distribution)
    ]


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    for result in rate(sys.argv[1], sys.argv[2:]):
        print(json.dumps(result))
