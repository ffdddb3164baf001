"""The package's pieces with a plain `transformers.Trainer`: metrics from its output tuples, a clear collator error."""

import pytest
import torch
from transformers import Trainer, TrainingArguments

from aesformer_hf.training import AesformerDataCollator, AesformerTrainer
from aesformer_hf.training.evaluation import AestheticMetricsForTrainer

from .conftest import make_args, make_model

METRIC_NAMES = ("accuracy", "plcc", "srcc", "rmse", "emd")


def plain_args(tmp_path, **overrides):
    settings = dict(
        output_dir=str(tmp_path / "plain"),
        per_device_eval_batch_size=6,
        report_to=[],
        use_cpu=True,
        remove_unused_columns=False,
        disable_tqdm=True,
    )
    settings.update(overrides)
    return TrainingArguments(**settings)


@pytest.mark.parametrize("multimodal", [False, True])
def test_plain_trainer_metrics_equal_the_aesformer_trainers(
    tmp_path, aesthetics, training_processor, multimodal
):
    model = make_model().eval()
    collator = AesformerDataCollator(training_processor, multimodal=multimodal, training=False)
    plain = Trainer(
        model=model,
        args=plain_args(tmp_path),
        data_collator=collator,
        compute_metrics=AestheticMetricsForTrainer.from_config(model.config),
    )
    ours = AesformerTrainer(
        model=model,
        args=make_args(tmp_path / "ours", stage="multimodal" if multimodal else "adaptation"),
        processing_class=training_processor,
    )
    plain_metrics = plain.evaluate(aesthetics["test"])
    our_metrics = ours.evaluate(aesthetics["test"])
    names = [f"eval_{n}" for n in METRIC_NAMES]
    if multimodal:
        names += [f"eval_{head}_head_{n}" for head in ("image", "text") for n in METRIC_NAMES]
    for name in names:
        # Heads: softmax in float64 here vs float32 in the Trainer; the nearly constant scores of a random tiny
        # model amplify that in the correlations (the heads' PLCC differ by ~1 between each other, so a mix-up fails).
        tolerance = 2e-3 if name.endswith(("plcc", "srcc")) else 1e-5
        assert plain_metrics[name] == pytest.approx(our_metrics[name], abs=tolerance), name


def test_metrics_refuse_predictions_that_are_not_distributions():
    metrics = AestheticMetricsForTrainer([1.0, 2.0, 3.0], 2.0)
    from transformers import EvalPrediction

    logits = torch.randn(4, 3).numpy()
    with pytest.raises(ValueError, match="expects predicted distributions"):
        metrics(
            EvalPrediction(
                predictions=(logits, logits), label_ids=torch.softmax(torch.randn(4, 3), -1).numpy()
            )
        )


def test_collator_names_remove_unused_columns_when_the_image_column_was_dropped(
    aesthetics, training_processor
):
    collator = AesformerDataCollator(training_processor, multimodal=False, training=False)
    rows = [{k: v for k, v in aesthetics["test"][i].items() if k != "image"} for i in range(2)]
    with pytest.raises(KeyError, match="remove_unused_columns=False"):
        collator(rows)
