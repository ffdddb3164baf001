"""A small synthetic aesthetics dataset made offline from the photographs scikit-image ships.

Real IAA datasets (AVA, Photo.net, JAS) may not be redistributed, so demos, tutorials and tests
need data that anyone can build in seconds without a download. Each public-domain / CC0
photograph bundled with scikit-image (colour and black-and-white photos, a micrograph, three
texture photos) is brought to a standard exposure, then degraded at graded strengths (blur,
noise, under- and over-exposure, low contrast, JPEG blocking, a tilted horizon, a poor crop), and
a crowd of simulated voters rates every version: the worse the flaw, the lower the votes.
Comments name the flaw and its severity, so the multimodal path has something to read.

The score is mostly a function of the strength (the kind of flaw shifts it a little), and the
flaws are strong enough to see at a glance, even after a model downsizes the image to 64 px. The
test split holds photos never seen in training, so it measures whether a model learnt the flaws
rather than the photos.

Columns follow :mod:`aesformer_hf.data.schema` (``image``, ``image_id``, ``votes``,
``distribution``, ``score``, ``label``, ``comments``) plus ``degradation`` (``"none"`` for clean
versions) and ``strength`` (0 = clean .. 4 = worst). ``image_id`` is
``"<photo>-<degradation>-s<strength>-v<variant>"`` (clean: ``"<photo>-clean-<index>"``): its
first part names the source photo.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, DatasetInfo, Value
from PIL import Image
from scipy import ndimage

from aesformer_hf.data.schema import AestheticDatasetSpec, build_features, targets_from_votes
from aesformer_hf.utils.optional import require

SYNTHETIC_SPEC = AestheticDatasetSpec(
    "synthetic_aesthetics", num_bins=10, score_min=1.0, score_max=10.0, label_threshold=5.0
)


def _load_skimage_photo(name: str) -> np.ndarray:
    """A photo bundled with scikit-image as (height, width, 3) uint8; greyscale is repeated to RGB."""
    # Imported lazily: scikit-image (the `[demo]` extra) is only needed to build this dataset.
    require("skimage", purpose="The synthetic aesthetics dataset (its photos)")
    from skimage import data as skimage_data

    photo = np.asarray(getattr(skimage_data, name)())
    if photo.ndim == 2:
        photo = np.repeat(photo[..., None], 3, axis=2)
    return photo[..., :3]


# Photographs bundled inside scikit-image (no pooch download), each public domain, CC0 or with
# no known copyright restrictions (see each loader's docstring in skimage.data): colour and
# black-and-white photos, a stained micrograph and three texture photos, so that "clean" covers
# smooth and detailed, warm and grey content. Left out: ``stereo_motorcycle`` (its Middlebury
# licence is not stated as public domain), ``hubble_deep_field`` (almost black already, so
# exposure, contrast and tilt flaws barely show), ``retina`` (its black surround looks like the
# black corners of a tilted frame), ``clock`` (motion-blurred on purpose), ``moon`` and ``cell``
# (smooth enough to pass for blurred) and the scans of text. The order matters: ``num_photos``
# takes the first ones.
SOURCE_PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": lambda: _load_skimage_photo("astronaut"),  # colour, NASA, public domain
    "chelsea": lambda: _load_skimage_photo("chelsea"),  # colour, a cat, CC0 (Stefan van der Walt)
    "rocket": lambda: _load_skimage_photo("rocket"),  # colour, SpaceX, public domain
    "camera": lambda: _load_skimage_photo("camera"),  # black and white, CC0 (Lav Varshney)
    "coins": lambda: _load_skimage_photo("coins"),  # black and white, Brooklyn Museum, no known restrictions
    # colour micrograph, no known restrictions
    "immunohistochemistry": lambda: _load_skimage_photo("immunohistochemistry"),
    "brick": lambda: _load_skimage_photo("brick"),  # black and white texture, CC0 (cc0textures.com)
    "grass": lambda: _load_skimage_photo("grass"),  # black and white texture, CC0 (cc0textures.com)
    "gravel": lambda: _load_skimage_photo("gravel"),  # black and white texture, CC0 (cc0textures.com)
    "coffee": lambda: _load_skimage_photo("coffee"),  # colour, CC0 (Rachel Michetti)
}
DEFAULT_HELD_OUT_PHOTOS = ("coffee",)

DEGRADATIONS = (
    "blur",
    "noise",
    "underexposure",
    "overexposure",
    "low_contrast",
    "jpeg",
    "tilt",
    "poor_crop",
)
MAX_STRENGTH = 4

# ---------------------------------------------------------------------------------------------------
# How each flaw looks at strengths 1..4 (index 0 is "clean"). Strong on purpose: the dataset
# must be learnable by a tiny model from a few photos.

# Sizes are fractions of the image (given in pixels of a 224 px image) so that a flaw looks the
# same at any image_size and survives a model's downsizing to 64-128 px.
_BLUR_SIGMA_AT_224 = (0.0, 2.5, 4.5, 7.0, 11.0)  # Gaussian sigma
_NOISE_STD = (0.0, 0.05, 0.1, 0.16, 0.24)  # on the 0..1 intensity scale, for each of two grains
_NOISE_COARSE_GRAIN_AT_224 = 4  # pixels per cell of the coarse (blotchy, chroma-like) noise
_JPEG_BLOCK_SCALE = 2  # compress at 1/2 size and enlarge: 16 px blocks at 224 px
_UNDEREXPOSURE_GAIN = (1.0, 0.55, 0.35, 0.22, 0.13)
_UNDEREXPOSURE_GAMMA = (1.0, 1.3, 1.6, 1.9, 2.2)  # darkens the shadows more than the highlights
_OVEREXPOSURE_LIFT = (0.0, 0.1, 0.2, 0.32, 0.42)
_OVEREXPOSURE_GAIN = (1.0, 1.2, 1.4, 1.6, 1.8)  # then clipped: blown highlights
_CONTRAST_KEPT = (1.0, 0.5, 0.3, 0.18, 0.1)  # fraction of the deviation from the mean grey kept
_JPEG_QUALITY = (95, 15, 8, 4, 1)
_TILT_DEGREES = (0.0, 6.0, 12.0, 20.0, 30.0)
_CROP_FRACTION = (1.0, 0.6, 0.45, 0.33, 0.25)  # side of the kept window / side of the image

# How the crowd rates it: mean = _CLEAN_MEAN - _MEAN_DROP_PER_STRENGTH * strength * severity.
_CLEAN_MEAN = 7.4
_MEAN_DROP_PER_STRENGTH = 1.2
_SEVERITY = {
    "blur": 1.0,
    "noise": 1.05,
    "underexposure": 0.95,
    "overexposure": 1.0,
    "low_contrast": 0.9,
    "jpeg": 1.0,
    "tilt": 0.85,
    "poor_crop": 0.9,
}
_MEAN_JITTER = 0.12  # std of the per-image shift of the crowd's mean
_VOTE_SPREAD = (1.1, 1.5)  # range of the std of the crowd's (discretised Gaussian) opinions

# ---------------------------------------------------------------------------------------------------
# What the voters write, by flaw and strength (index 1..4; index 0 unused).

_FLAW_COMMENTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "blur": (
        (),
        ("focus is a little soft", "slightly soft, sharpen it"),
        ("noticeably blurry", "the focus missed"),
        ("too blurry, the detail is gone", "very out of focus"),
        ("completely out of focus", "a blur, nothing is sharp"),
    ),
    "noise": (
        (),
        ("a bit grainy", "some noise in the shadows"),
        ("noisy, high ISO shows", "too much grain"),
        ("very noisy, hard to see the subject", "the noise ruins it"),
        ("drowned in noise", "pure static, can barely see anything"),
    ),
    "underexposure": (
        (),
        ("a touch dark", "slightly underexposed"),
        ("underexposed, lift the shadows", "too dark"),
        ("very underexposed", "the subject is lost in the dark"),
        ("almost black", "far too dark to see anything"),
    ),
    "overexposure": (
        (),
        ("a bit bright", "highlights slightly hot"),
        ("overexposed, the highlights are blown", "too bright"),
        ("very overexposed and washed out", "most of it is blown out"),
        ("almost white, nothing left", "completely blown out"),
    ),
    "low_contrast": (
        (),
        ("a little flat", "could use more contrast"),
        ("flat and dull", "low contrast, looks hazy"),
        ("very washed out and grey", "no contrast at all"),
        ("a grey fog, no contrast", "lifeless and muddy"),
    ),
    "jpeg": (
        (),
        ("slight compression artefacts", "some jpeg artefacts"),
        ("blocky compression", "heavy jpeg artefacts"),
        ("very blocky, over-compressed", "compression destroyed the detail"),
        ("nothing but jpeg blocks", "a mosaic of compression blocks"),
    ),
    "tilt": (
        (),
        ("the horizon is slightly tilted", "a bit crooked"),
        ("the horizon is tilted", "straighten it"),
        ("badly tilted", "the frame is very crooked"),
        ("tilted so much it makes me dizzy", "completely crooked, with black corners"),
    ),
    "poor_crop": (
        (),
        ("a slightly awkward crop", "cropped a bit tight"),
        ("awkward crop, the subject is cut", "poor composition"),
        ("bad crop, the subject is mostly cut off", "cropped far too tight"),
        ("a random corner of the scene", "no subject left in the frame"),
    ),
}
_CLEAN_COMMENTS = (
    "lovely sharp detail",
    "well exposed and nicely composed",
    "great colours",
    "beautiful light",
    "clean and crisp",
    "excellent framing",
)
_OVERALL_COMMENTS = {  # by the crowd's mean score band
    "high": ("great shot", "would hang this on my wall", "well done"),
    "mid": ("decent but not special", "ok, nothing more", "close, but not quite"),
    "low": ("not for me", "needs another try", "sorry, this one does not work"),
}


def build_synthetic_aesthetics(
    num_photos: int | None = None,
    strengths: Sequence[int] = (0, 1, 2, 3, 4),
    degradations: Sequence[str] = DEGRADATIONS,
    image_size: int = 224,
    variants: int = 1,
    num_voters: int = 100,
    held_out_photos: Sequence[str] = DEFAULT_HELD_OUT_PHOTOS,
    seed: int = 0,
) -> DatasetDict:
    """Build the synthetic aesthetics dataset (``train`` and ``test`` splits) in memory.

    Every source photo gives, for each degradation and each strength > 0, ``variants`` degraded
    versions (each a slightly different square crop), plus ``len(degradations) * variants`` clean
    versions when 0 is among ``strengths``. The defaults give 10 photos x 8 degradations x 5
    strengths = 400 images of 224 x 224 px (360 train from 9 photos, 40 test from ``coffee``);
    building them takes a few seconds.

    Args:
        num_photos: how many source photos to use, the held-out ones included: the held-out
            photos plus the first others of :data:`SOURCE_PHOTOS` (default: all of them).
        strengths: levels to generate, from 0 (clean) to 4 (worst).
        degradations: which flaws, a subset of :data:`DEGRADATIONS`.
        image_size: side of the square images, in pixels.
        variants: versions per (photo, degradation, strength), each from its own crop and seed.
        num_voters: simulated votes per image.
        held_out_photos: names of the source photos whose every version goes to ``test`` (so the
            test split measures generalisation to unseen photos); the others go to ``train``.
        seed: everything (crops, noise, votes, comments) is a function of it; an image's content
            depends only on the seed and on its own photo, degradation, strength and variant.

    Returns:
        ``DatasetDict`` with ``train`` and ``test``; columns ``image``, ``image_id``, ``votes``
        (10 int32 counts for ratings 1..10), ``distribution`` (float32, sums to 1), ``score``
        (float32 mean on 1..10), ``label`` (``high`` when score > 5), ``comments``,
        ``degradation`` and ``strength``. The :data:`SYNTHETIC_SPEC` travels in the features.
    """
    photos, held_out = _choose_photos(num_photos, held_out_photos)
    strengths = _check_strengths(strengths)
    degradations = _check_degradations(degradations)
    if image_size < 32:
        raise ValueError(f"image_size must be at least 32 pixels, got {image_size}")
    if variants < 1 or num_voters < 1:
        raise ValueError(f"variants and num_voters must be >= 1, got {variants} and {num_voters}")

    rows: dict[str, list[dict]] = {"train": [], "test": []}
    for photo in photos:
        source = _standardise_tones(SOURCE_PHOTOS[photo]())
        split = "test" if photo in held_out else "train"
        for degradation, strength, variant, image_id in _versions_of(
            photo, strengths, degradations, variants
        ):
            rng = _rng_for(seed, photo, degradation, strength, variant)
            image = _render(source, degradation, strength, image_size, rng)
            rows[split].append(_annotate(image, image_id, degradation, strength, num_voters, rng))

    features = build_features(
        SYNTHETIC_SPEC, extra={"degradation": Value("string"), "strength": Value("int32")}
    )
    info = DatasetInfo(
        features=features,
        description=(
            "Synthetic aesthetics: public-domain/CC0 scikit-image photographs degraded at graded "
            "strengths, with simulated votes (ratings 1..10) and comments. The test split holds "
            f"photos not seen in training ({', '.join(sorted(held_out))})."
        ),
        license="Images: public domain / CC0 (scikit-image sample data). Annotations: CC0.",
    )
    return DatasetDict(
        {
            split: Dataset.from_list(split_rows, features=features, info=info.copy())
            for split, split_rows in rows.items()
        }
    )


def flaw_class_names(
    degradations: Sequence[str] = DEGRADATIONS, max_strength: int = MAX_STRENGTH
) -> list[str]:
    """Names of the (flaw, strength) classes: ``"clean"``, then ``"<degradation>-s<strength>"``.

    With the defaults: 1 + 8 x 4 = 33 classes, ``"clean"``, ``"blur-s1"`` .. ``"poor_crop-s4"``.
    """
    return ["clean"] + [f"{d}-s{s}" for d in degradations for s in range(1, max_strength + 1)]


def add_flaw_labels(dataset: Dataset | DatasetDict, column: str = "flaw") -> Dataset | DatasetDict:
    """Add ``column``: a ``ClassLabel`` of :func:`flaw_class_names` from ``degradation`` and ``strength``.

    These labels say how an image was made, not how the simulated crowd voted: which flaw, how strong.
    They serve as a pre-training task for a vision tower that has no pretrained weights (the way
    DB-CNN pre-trains on synthetic distortion type and level); ``aesformer-hf demo`` uses them so.
    """
    names = flaw_class_names()
    index = {name: i for i, name in enumerate(names)}

    def label(degradation: str, strength: int) -> dict:
        name = "clean" if degradation == "none" or strength == 0 else f"{degradation}-s{strength}"
        if name not in index:
            raise ValueError(f"No flaw class for degradation={degradation!r}, strength={strength!r}.")
        return {column: index[name]}

    def add(split: Dataset) -> Dataset:
        features = split.features.copy()
        features[column] = ClassLabel(names=names)
        return split.map(label, input_columns=["degradation", "strength"], features=features)

    if isinstance(dataset, DatasetDict):
        return DatasetDict({name: add(split) for name, split in dataset.items()})
    return add(dataset)


# ---------------------------------------------------------------------------------------------------
# Arguments


def _choose_photos(num_photos: int | None, held_out_photos: Sequence[str]) -> tuple[list[str], set[str]]:
    if isinstance(held_out_photos, str):
        held_out_photos = (held_out_photos,)
    unknown = [name for name in held_out_photos if name not in SOURCE_PHOTOS]
    if unknown:
        raise ValueError(f"unknown held_out_photos {unknown}; available photos: {list(SOURCE_PHOTOS)}")
    held_out = set(held_out_photos)
    if not held_out:
        raise ValueError("held_out_photos must name at least one photo, or the test split would be empty")
    training_candidates = [name for name in SOURCE_PHOTOS if name not in held_out]
    max_photos = len(training_candidates) + len(held_out)
    if num_photos is None:
        num_photos = max_photos
    if not len(held_out) < num_photos <= max_photos:
        raise ValueError(
            f"num_photos must be between {len(held_out) + 1} and {max_photos} with "
            f"held_out_photos={sorted(held_out)} (at least one training photo), got {num_photos}"
        )
    chosen = training_candidates[: num_photos - len(held_out)] + [
        name for name in SOURCE_PHOTOS if name in held_out
    ]
    return chosen, held_out


def _check_strengths(strengths: Sequence[int]) -> list[int]:
    strengths = sorted({int(strength) for strength in strengths})
    if not strengths or strengths[0] < 0 or strengths[-1] > MAX_STRENGTH:
        raise ValueError(f"strengths must be a non-empty subset of 0..{MAX_STRENGTH}, got {strengths}")
    return strengths


def _check_degradations(degradations: Sequence[str]) -> list[str]:
    unknown = [name for name in degradations if name not in DEGRADATIONS]
    if unknown or not degradations:
        raise ValueError(
            f"degradations must be a non-empty subset of {DEGRADATIONS}, got {list(degradations)}"
        )
    return list(dict.fromkeys(degradations))


def _versions_of(photo: str, strengths: list[int], degradations: list[str], variants: int):
    """Yield (degradation, strength, variant, image_id) for every version of one photo."""
    if 0 in strengths:
        # As many clean versions as one strength level of degraded ones, so that "clean" is not a
        # rare class; the crops differ, the content does not.
        for index in range(len(degradations) * variants):
            yield "none", 0, index, f"{photo}-clean-{index:02d}"
    for degradation in degradations:
        for strength in (s for s in strengths if s > 0):
            for variant in range(variants):
                yield degradation, strength, variant, f"{photo}-{degradation}-s{strength}-v{variant}"


def _rng_for(seed: int, photo: str, degradation: str, strength: int, variant: int) -> np.random.Generator:
    # Keyed on the version itself (not on its position in the build) so that changing
    # num_photos, strengths or degradations leaves every other image unchanged.
    photo_key = list(SOURCE_PHOTOS).index(photo)
    degradation_key = 0 if degradation == "none" else 1 + DEGRADATIONS.index(degradation)
    return np.random.default_rng([seed, photo_key, degradation_key, strength, variant])


# ---------------------------------------------------------------------------------------------------
# Images


def _standardise_tones(photo: np.ndarray) -> np.ndarray:
    """Stretch a photo's tones to the full range and its mean brightness to mid-grey (uint8 -> uint8).

    The clean version then is "well exposed" by construction: exposure and contrast flaws are
    departures from one standard, not from whatever the source photo happened to be.
    """
    image = photo.astype(np.float32) / 255.0
    luminance = image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    low, high = np.percentile(luminance, [0.5, 99.5])
    image = np.clip((image - low) / max(high - low, 1e-3), 0.0, 1.0)
    mean = float(np.clip((image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).mean(), 0.05, 0.95))
    # A gamma that maps the mean luminance to ~0.45, bounded so no photo is bent out of shape.
    gamma = float(np.clip(np.log(0.45) / np.log(mean), 0.5, 2.0))
    return np.round(np.power(image, gamma) * 255.0).astype(np.uint8)


def _render(
    source: np.ndarray, degradation: str, strength: int, size: int, rng: np.random.Generator
) -> Image.Image:
    """One version of a photo: a square crop resized to ``size``, then the flaw, as 8-bit RGB."""
    if degradation == "poor_crop":
        image = _poor_crop(source, _CROP_FRACTION[strength], size, rng)
    else:
        image = _square_view(source, size, rng)
    if degradation not in ("none", "poor_crop"):
        image = _DEGRADE[degradation](image, strength, rng)
    return Image.fromarray(np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8), mode="RGB")


def _square_view(source: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    # A random 80-100 % square crop and flip: versions of one photo differ a little, like
    # different shots of the same scene, so no two images are pixel-identical.
    height, width = source.shape[:2]
    side = int(min(height, width) * rng.uniform(0.8, 1.0))
    top = int(rng.integers(0, height - side + 1))
    left = int(rng.integers(0, width - side + 1))
    crop = source[top : top + side, left : left + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return _resize(crop, size)


def _poor_crop(source: np.ndarray, fraction: float, size: int, rng: np.random.Generator) -> np.ndarray:
    # A small window of the standard view, pushed towards a random corner and enlarged back to
    # full size: the subject is cut off and the enlargement (1 / fraction times) is soft, as an
    # aggressive crop would be. Cropping the view, not the source, makes the softness the same
    # for every photo whatever its resolution.
    view = _square_view(source, size, rng)
    side = max(4, round(size * fraction))
    top = round((size - side) * _near_an_edge(rng))
    left = round((size - side) * _near_an_edge(rng))
    window = np.round(view[top : top + side, left : left + side] * 255.0)
    return _resize(window, size, resample=Image.Resampling.BILINEAR)


def _near_an_edge(rng: np.random.Generator) -> float:
    """A position in [0, 1] within 10 % of either end."""
    offset = rng.uniform(0.0, 0.1)
    return offset if rng.random() < 0.5 else 1.0 - offset


def _resize(
    array: np.ndarray, size: int, resample: Image.Resampling = Image.Resampling.LANCZOS
) -> np.ndarray:
    image = Image.fromarray(np.ascontiguousarray(array).astype(np.uint8), mode="RGB")
    return np.asarray(image.resize((size, size), resample=resample), dtype=np.float32) / 255.0


def _blur(image: np.ndarray, strength: int, rng: np.random.Generator) -> np.ndarray:
    sigma = _BLUR_SIGMA_AT_224[strength] * image.shape[0] / 224.0
    return ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0.0))


def _noise(image: np.ndarray, strength: int, rng: np.random.Generator) -> np.ndarray:
    # Per-pixel grain plus coarser blotches: the blotches stay visible after a model downsizes.
    size = image.shape[0]
    fine = rng.normal(0.0, _NOISE_STD[strength], size=image.shape)
    cells = 224 // _NOISE_COARSE_GRAIN_AT_224  # the same number of blotches at any image_size
    coarse_cells = rng.normal(0.0, _NOISE_STD[strength], size=(cells, cells, 3))
    coarse = ndimage.zoom(coarse_cells, (size / cells, size / cells, 1), order=1)[:size, :size]
    return image + (fine + coarse).astype(np.float32)


def _underexpose(image: np.ndarray, strength: int, rng: np.random.Generator) -> np.ndarray:
    return _UNDEREXPOSURE_GAIN[strength] * np.power(image, _UNDEREXPOSURE_GAMMA[strength])


def _overexpose(image: np.ndarray, strength: int, rng: np.random.Generator) -> np.ndarray:
    return (image + _OVEREXPOSURE_LIFT[strength]) * _OVEREXPOSURE_GAIN[strength]


def _low_contrast(image: np.ndarray, strength: int, rng: np.random.Generator) -> np.ndarray:
    mean_grey = image.mean()
    return mean_grey + (image - mean_grey) * _CONTRAST_KEPT[strength]


def _jpeg(image: np.ndarray, strength: int, rng: np.random.Generator) -> np.ndarray:
    # Compressed small and enlarged with nearest neighbours, like an over-compressed web image
    # blown up: blocks big enough to survive a model's downsizing.
    size = image.shape[0]
    small = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).resize(
        (size // _JPEG_BLOCK_SCALE, size // _JPEG_BLOCK_SCALE), resample=Image.Resampling.BILINEAR
    )
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=_JPEG_QUALITY[strength])
    buffer.seek(0)
    decoded = Image.open(buffer).convert("RGB").resize((size, size), resample=Image.Resampling.NEAREST)
    return np.asarray(decoded, dtype=np.float32) / 255.0


def _tilt(image: np.ndarray, strength: int, rng: np.random.Generator) -> np.ndarray:
    # The rotated frame keeps its black corners: a crooked, badly framed shot, easy to see.
    angle = _TILT_DEGREES[strength] * (1 if rng.random() < 0.5 else -1)
    pil_image = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    rotated = pil_image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))
    return np.asarray(rotated, dtype=np.float32) / 255.0


_DEGRADE: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "blur": _blur,
    "noise": _noise,
    "underexposure": _underexpose,
    "overexposure": _overexpose,
    "low_contrast": _low_contrast,
    "jpeg": _jpeg,
    "tilt": _tilt,
}

# ---------------------------------------------------------------------------------------------------
# Votes and comments


def _annotate(
    image: Image.Image,
    image_id: str,
    degradation: str,
    strength: int,
    num_voters: int,
    rng: np.random.Generator,
) -> dict:
    votes = _simulate_votes(degradation, strength, num_voters, rng)
    distribution, score, label = targets_from_votes(votes, SYNTHETIC_SPEC)
    return {
        "image": image,
        "image_id": image_id,
        "votes": votes,
        "distribution": distribution,
        "score": score,
        "label": label,
        "comments": _write_comments(degradation, strength, score, rng),
        "degradation": degradation,
        "strength": strength,
    }


def _simulate_votes(degradation: str, strength: int, num_voters: int, rng: np.random.Generator) -> list[int]:
    """Counts of ratings 1..10 from ``num_voters`` voters whose opinions centre on the crowd mean."""
    severity = _SEVERITY.get(degradation, 1.0)
    crowd_mean = _CLEAN_MEAN - _MEAN_DROP_PER_STRENGTH * strength * severity + rng.normal(0.0, _MEAN_JITTER)
    spread = rng.uniform(*_VOTE_SPREAD)
    ratings = np.arange(1, SYNTHETIC_SPEC.num_bins + 1)
    # A Gaussian discretised onto the ratings: unimodal, like real AVA vote histograms.
    weights = np.exp(-0.5 * ((ratings - crowd_mean) / spread) ** 2)
    return rng.multinomial(num_voters, weights / weights.sum()).tolist()


def _write_comments(degradation: str, strength: int, score: float, rng: np.random.Generator) -> list[str]:
    """1-3 short comments: the flaw and its severity (or praise), then maybe an overall verdict."""
    if strength == 0:
        count = int(rng.integers(1, 3))
        comments = list(rng.choice(_CLEAN_COMMENTS, size=count, replace=False))
    else:
        options = _FLAW_COMMENTS[degradation][strength]
        comments = [options[int(rng.integers(len(options)))]]
    if rng.random() < 0.6:
        band = "high" if score > 6.5 else "mid" if score > 4.5 else "low"
        options = _OVERALL_COMMENTS[band]
        comments.append(options[int(rng.integers(len(options)))])
    return [str(comment) for comment in comments]
