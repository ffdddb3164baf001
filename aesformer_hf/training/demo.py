"""`aesformer-hf demo`: the whole AesFormer workflow on one CPU in a few minutes, with nothing downloaded.

1. Build the synthetic aesthetics dataset (`aesformer_hf.data.synthetic`): public-domain photos degraded at
   graded strengths, with simulated votes and comments; the test split holds photos never seen in training.
2. Pre-train a small Swin to recognise the flaws (which one, how strong: how the training images were made, not
   the votes). It stands in for the ImageNet-pretrained Swin that AesFormer's recipe starts from, which cannot
   be downloaded here; without it, stage 2 has a frozen random tower to adapt and VIAA learns nothing. Then
   build a small AesFormer around that tower, with a random text tower and a tokenizer from the comments.
3. Stage 1 (`"multimodal"`): images + comments, EMD of both heads + contrastive alignment.
4. Stage 2 (`"adaptation"`): vision-only adaptation from the stage-1 weights.
5. Save the model and processor, reload them with `pipeline("image-aesthetics", model=folder)`, rate the
   held-out photos with their comments (MIAA) and without (VIAA), and print the metrics and a few scores.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..models.aesformer.configuration_aesformer import (
    ADAPTATION_STAGE,
    MIAA,
    MULTIMODAL_STAGE,
    PIPELINE_TASK,
    VIAA,
)

DEFAULT_OUTPUT = "./aesformer-demo"
METRIC_COLUMNS = ("accuracy", "plcc", "srcc", "rmse", "emd_r1")


@dataclass(frozen=True)
class DemoSettings:
    """Sizes and schedule of the demo; the defaults fit in a few minutes on 2 CPU cores.

    Image sizes are in pixels. `contrastive_weight` is lower than the paper's 0.5 because the demo's text
    tower starts from random weights: from scratch, a strong contrastive term (image vs. short, often repeated
    comments) dominates the shared towers for hundreds of steps and the score heads barely learn. Stage 1's
    learning rate is low next to stage 2's (like the paper's 1e-5 vs 1e-4) so that it fine-tunes the
    pre-trained vision tower rather than overwriting it.
    """

    image_size: int = 64
    embed_dim: int = 16
    text_hidden_size: int = 32
    max_vocab: int = 512
    dataset_image_size: int = 64
    variants: int = 1
    vision_pretraining_steps: int = 2000
    vision_pretraining_learning_rate: float = 1e-3
    stage1_steps: int = 800
    stage2_steps: int = 1200
    stage1_learning_rate: float = 2e-4
    stage2_learning_rate: float = 2e-3
    contrastive_weight: float = 0.05
    batch_size: int = 16
    eval_batch_size: int = 40
    num_scores_shown: int = 6

    @classmethod
    def quick(cls) -> DemoSettings:
        """A run of a few seconds for tests: fewer photos and steps (the metrics mean nothing)."""
        return cls(
            embed_dim=8,
            max_vocab=256,
            vision_pretraining_steps=4,
            stage1_steps=4,
            stage2_steps=4,
            num_scores_shown=3,
        )


@dataclass
class DemoResult:
    """What the demo measured: `metrics[mode][name]` for mode `"MIAA"` / `"VIAA"` on the held-out photos."""

    output_dir: str
    metrics: dict[str, dict[str, float]]
    scores: list[dict[str, Any]]
    parameter_counts: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)


def _build_data(settings: DemoSettings, quick: bool, seed: int):
    from ..data.synthetic import build_synthetic_aesthetics

    kwargs = {"strengths": (0, 2, 4), "num_photos": 3} if quick else {}
    return build_synthetic_aesthetics(
        image_size=settings.dataset_image_size, variants=settings.variants, seed=seed, **kwargs
    )


def _build_model_and_processor(dataset, settings: DemoSettings, vision_dir: str, seed: int, quick: bool):
    """A small AesFormer whose Swin is first pre-trained on the flaw classes, saved to `vision_dir`."""
    from .. import AesformerForAesthetic, AesformerImageProcessor, AesformerProcessor
    from ..data.schema import get_dataset_spec
    from ..data.synthetic import add_flaw_labels
    from ..models.aesformer.pretrained_towers_aesformer import load_vision_tower
    from ..testing_utils import tiny_config, tiny_tokenizer
    from .vision_pretraining import pretrain_vision_tower

    corpus = [comment for comments in dataset["train"]["comments"] for comment in comments]
    tokenizer = tiny_tokenizer(corpus, max_vocab=settings.max_vocab)
    processor = AesformerProcessor(AesformerImageProcessor(size=settings.image_size), tokenizer)
    spec = get_dataset_spec(dataset)
    config = tiny_config(
        image_size=settings.image_size,
        embed_dim=settings.embed_dim,
        text_hidden_size=settings.text_hidden_size,
        vocab_size=len(tokenizer),
        num_bins=spec.num_bins,
        score_min=spec.score_min,
        score_max=spec.score_max,
        label_threshold=spec.label_threshold,
        contrastive_queue_size=256,
    )
    pretrain_vision_tower(
        config.vision_config,
        add_flaw_labels(dataset["train"]),
        "flaw",
        processor,
        vision_dir,
        max_steps=settings.vision_pretraining_steps,
        learning_rate=settings.vision_pretraining_learning_rate,
        batch_size=settings.batch_size,
        seed=seed,
        use_cpu=True,
        logging_steps=1 if quick else 250,
    )
    model = AesformerForAesthetic(config)
    # Strict: the pre-trained folder must hold exactly the tower's weights (its classifier head aside).
    model.model.vision_model.load_state_dict(load_vision_tower(vision_dir).state_dict())
    return model, processor


def _training_arguments(stage: str, run_dir: str, settings: DemoSettings, seed: int, quick: bool):
    from .training_args import AesformerTrainingArguments

    first = stage == MULTIMODAL_STAGE
    return AesformerTrainingArguments(
        output_dir=run_dir,
        stage=stage,
        max_steps=settings.stage1_steps if first else settings.stage2_steps,
        contrastive_weight=settings.contrastive_weight,
        learning_rate=settings.stage1_learning_rate if first else settings.stage2_learning_rate,
        adam_beta2=0.99,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.eval_batch_size,
        eval_strategy="no",
        save_strategy="no",
        logging_steps=50 if not quick else 1,
        logging_first_step=True,
        report_to=[],
        # Explicit: TrainingArguments would read "no bars" from the quieted logging the demo runs under.
        disable_tqdm=False,
        seed=seed,
        use_cpu=True,
        dataloader_num_workers=0,
    )


def _train_stage(stage: str, model, processor, dataset, run_dir: str, settings, seed: int, quick: bool):
    from .trainer import AesformerTrainer

    trainer = AesformerTrainer(
        model=model,
        args=_training_arguments(stage, run_dir, settings, seed, quick),
        train_dataset=dataset["train"],
        eval_dataset=dataset["test"],
        processing_class=processor,
    )
    print(f"  {trainer.parameter_counts}")
    trainer.train()
    metrics = trainer.evaluate()
    heads = ("", "image_head_", "text_head_") if stage == MULTIMODAL_STAGE else ("",)
    summary = ", ".join(f"{head or 'prediction '}SRCC {metrics[f'eval_{head}srcc']:.3f}" for head in heads)
    print(f"  held-out photos after this stage: {summary.replace('_head_', ' head ')}")
    return trainer


def rate_held_out_photos(folder: str, test_split, batch_size: int = 40) -> tuple[dict, list[dict]]:
    """Reload `folder` with `pipeline("image-aesthetics")` and rate `test_split` with and without comments.

    Returns `({"MIAA": metrics, "VIAA": metrics}, per-image records)`.
    """
    from transformers import pipeline

    from ..metrics import compute_aesthetic_metrics

    # The installed classes rate the folder; code saved in it is never run (and transformers never asks).
    rater = pipeline(PIPELINE_TASK, model=folder, device="cpu", trust_remote_code=False)
    images = list(test_split["image"])
    comments = list(test_split["comments"])
    with_comments = rater(images, comments=comments, batch_size=batch_size)
    without_comments = rater(images, batch_size=batch_size)
    bins = rater.model.config.bin_values
    true = np.asarray(test_split["distribution"], dtype=np.float64)
    metrics = {}
    for mode, results in ((MIAA, with_comments), (VIAA, without_comments)):
        predicted = np.asarray([result["distribution"] for result in results], dtype=np.float64)
        metrics[mode] = compute_aesthetic_metrics(
            pred_distributions=predicted,
            true_distributions=true,
            threshold=rater.model.config.label_threshold,
            bin_values=bins,
        )
    # Whole columns: `test_split[i]` would decode every column of the row, its image included, again.
    records = [
        {
            "image_id": image_id,
            "true": float(score),
            MIAA: with_comments[i]["score"],
            VIAA: without_comments[i]["score"],
            "comments": " / ".join(comments[i]),
        }
        for i, (image_id, score) in enumerate(zip(test_split["image_id"], test_split["score"]))
    ]
    return metrics, records


def _pick_examples(records: list[dict], count: int) -> list[dict]:
    """`count` records spread over the range of true scores, best first."""
    ordered = sorted(records, key=lambda record: -record["true"])
    if len(ordered) <= count:
        return ordered
    positions = np.linspace(0, len(ordered) - 1, count).round().astype(int)
    return [ordered[i] for i in positions]


def format_report(result: DemoResult) -> str:
    names = {"accuracy": "Acc", "plcc": "PLCC", "srcc": "SRCC", "rmse": "RMSE", "emd_r1": "EMD(r=1)"}
    lines = [
        "Held-out photos (never seen in training):",
        f"  {'mode':<6}" + "".join(f"{names[c]:>10}" for c in METRIC_COLUMNS),
    ]
    for mode, values in result.metrics.items():
        lines.append(f"  {mode:<6}" + "".join(f"{values[c]:>10.3f}" for c in METRIC_COLUMNS))
    lines += [
        "",
        "A few held-out images (scores on 1..10):",
        f"  {'image_id':<30}{'true':>6}{'MIAA':>7}{'VIAA':>7}  comments",
    ]
    for record in result.scores:
        lines.append(
            f"  {record['image_id']:<30}{record['true']:>6.2f}{record['MIAA']:>7.2f}{record['VIAA']:>7.2f}  "
            f"{record['comments'][:60]}"
        )
    return "\n".join(lines)


@contextlib.contextmanager
def fast_cpu_math(num_threads: int = 1):
    """Flush denormal floats to zero and use `num_threads` threads while the block runs.

    Once a small model trains, some activations and optimiser states fall below float32's normal range, and
    x86 CPUs compute on such denormals up to 50 times slower: without this, the demo's steps slow down from
    ~0.05 s to seconds after a few hundred steps. The flush setting is per thread, hence one thread (the
    demo's model is too small to gain from more). Both settings are restored afterwards, whatever they were.
    """
    import torch

    from .denormals import flush_denormals

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        with flush_denormals():
            yield
    finally:
        torch.set_num_threads(previous_threads)


def run_demo(
    output_dir: str = DEFAULT_OUTPUT, quick: bool = False, seed: int = 0, settings: DemoSettings | None = None
) -> DemoResult:
    """Run the demo end to end (see the module docstring) and return what it measured.

    `output_dir` receives the final model and processor (loadable with `pipeline("image-aesthetics", ...)`),
    `vision_pretrained/` (the pre-trained Swin classifier, a timm folder), `stage1/` (the stage-1 model) and
    the Trainer run folders.
    """
    from transformers.utils import logging as transformers_logging

    from ..utils.optional import require

    require("skimage", purpose="aesformer-hf demo (the photos of its synthetic dataset)")
    settings = settings or (DemoSettings.quick() if quick else DemoSettings())
    verbosity = transformers_logging.get_verbosity()
    datasets_logger = logging.getLogger("datasets")
    datasets_level = datasets_logger.level
    transformers_logging.set_verbosity_error()  # keep the console to the progress bars and the results
    datasets_logger.setLevel(logging.ERROR)
    try:
        with fast_cpu_math():
            return _run_demo(output_dir, quick, seed, settings)
    finally:
        transformers_logging.set_verbosity(verbosity)
        datasets_logger.setLevel(datasets_level)


def _run_demo(output_dir: str, quick: bool, seed: int, settings: DemoSettings) -> DemoResult:
    from transformers import set_seed

    timings: dict[str, float] = {}
    start = time.perf_counter()

    print("[1/5] Building the synthetic aesthetics dataset ...")
    dataset = _build_data(settings, quick, seed)
    print(
        f"  train: {dataset['train'].num_rows} images, test: {dataset['test'].num_rows} images of unseen photos"
    )
    timings["data"] = time.perf_counter() - start

    print(
        "[2/5] Pre-training a small Swin to recognise the flaws (it stands in for ImageNet weights), then "
        "building AesFormer around it"
    )
    mark = time.perf_counter()
    set_seed(seed)
    model, processor = _build_model_and_processor(
        dataset, settings, os.path.join(output_dir, "vision_pretrained"), seed, quick
    )
    timings["vision_pretraining"] = time.perf_counter() - mark

    print("[3/5] Stage 1: multimodal training (images + comments, contrastive alignment)")
    mark = time.perf_counter()
    stage1 = _train_stage(
        MULTIMODAL_STAGE,
        model,
        processor,
        dataset,
        os.path.join(output_dir, "runs", "stage1"),
        settings,
        seed,
        quick,
    )
    stage1_dir = os.path.join(output_dir, "stage1")
    stage1.save_model(stage1_dir)
    counts = {MULTIMODAL_STAGE: str(stage1.parameter_counts)}
    timings["stage1"] = time.perf_counter() - mark

    print("[4/5] Stage 2: multi-level adaptation for vision-only rating")
    from .. import AesformerForAesthetic

    mark = time.perf_counter()
    model = AesformerForAesthetic.from_pretrained(stage1_dir)
    stage2 = _train_stage(
        ADAPTATION_STAGE,
        model,
        processor,
        dataset,
        os.path.join(output_dir, "runs", "stage2"),
        settings,
        seed,
        quick,
    )
    stage2.save_model(output_dir)
    counts[ADAPTATION_STAGE] = str(stage2.parameter_counts)
    timings["stage2"] = time.perf_counter() - mark

    print(
        f"[5/5] Reloading {output_dir} with pipeline('image-aesthetics') and rating the held-out photos ..."
    )
    mark = time.perf_counter()
    metrics, records = rate_held_out_photos(output_dir, dataset["test"], settings.eval_batch_size)
    timings["evaluation"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - start
    return DemoResult(
        output_dir=output_dir,
        metrics=metrics,
        scores=_pick_examples(records, settings.num_scores_shown),
        parameter_counts=counts,
        seconds=timings,
    )


__all__ = [
    "DemoResult",
    "DemoSettings",
    "format_report",
    "rate_held_out_photos",
    "run_demo",
]
