"""`compute_metrics` for the Trainer: the paper's metrics through the bundled `evaluate` module.

Accuracy of the high/low label, PLCC, SRCC, RMSE of the mean score and, when the data has vote distributions,
the EMD with r=1 between distributions (the paper's EMD column). Stage 1 reports them for the MIAA prediction
(the mean of both heads' distributions at the default `miaa_text_weight` 0.5) and, prefixed `image_head_` and
`text_head_`, for each head; stage 2 for the VIAA prediction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from transformers import EvalPrediction

# The names of the stage losses' predictions (`StageLossOutput.predictions`), which
# `AesformerTrainer.compute_loss(..., return_outputs=True)` gives after the loss, in this order.
PREDICTION_KEYS = ("distribution", "image_distribution", "text_distribution")
_HEAD_PREFIXES = {"distribution": "", "image_distribution": "image_head_", "text_distribution": "text_head_"}
_REPORTED = {"accuracy": "accuracy", "plcc": "plcc", "srcc": "srcc", "rmse": "rmse", "emd_r1": "emd"}


class AestheticMetricsForTrainer:
    r"""
    A `compute_metrics` callable for [`AesformerTrainer`].

    Args:
        bin_values (`list[float]`): the score of each bin (the model config's `bin_values`).
        label_threshold (`float`): a mean score above it is "high".

    Called with an `EvalPrediction` whose `label_ids` are true distributions `(N, num_bins)` or true mean scores
    `(N,)`, and whose `predictions` are either

    * what [`AesformerTrainer`] gathers: the predicted distributions `(N, num_bins)`, or a tuple of them named by
      `PREDICTION_KEYS`; or
    * what a plain `transformers.Trainer` gathers: the model's output tuple without the loss, `(logits,
      distribution, score, label, ...)` and, in MIAA, each head's logits after them.

    Returns `{name: float}`; the Trainer prefixes `eval_`.
    """

    def __init__(self, bin_values, label_threshold: float):
        self.bin_values = np.asarray(bin_values, dtype=np.float64)
        self.label_threshold = float(label_threshold)
        self._metric = None

    @classmethod
    def from_config(cls, config) -> AestheticMetricsForTrainer:
        return cls(config.bin_values, config.label_threshold)

    @property
    def metric(self):
        if self._metric is None:  # evaluate is slow to import and load: once, on first use
            from ..metrics import load_aesthetic_metrics

            self._metric = load_aesthetic_metrics()
        return self._metric

    def compute_one(self, predicted: np.ndarray, references: np.ndarray) -> dict[str, float]:
        """Metrics of one head: `predicted` `(N, bins)`; `references` `(N, bins)` or `(N,)`."""
        predicted = np.asarray(predicted, dtype=np.float64)
        references = np.asarray(references, dtype=np.float64)
        if references.ndim == 2:
            results = self.metric.compute(
                predictions=predicted,
                references=references,
                threshold=self.label_threshold,
                bin_values=self.bin_values,
            )
        else:
            results = self.metric.compute(
                predictions=predicted @ self.bin_values, references=references, threshold=self.label_threshold
            )
        return {reported: float(results[key]) for key, reported in _REPORTED.items() if key in results}

    def __call__(self, eval_prediction: EvalPrediction) -> dict[str, Any]:
        predictions = eval_prediction.predictions
        if not isinstance(predictions, (tuple, list)):
            predictions = (predictions,)
        if not _is_distribution(predictions[0]):
            predictions = _model_output_distributions(predictions)
        metrics = {}
        for key, predicted in zip(PREDICTION_KEYS, predictions):
            prefix = _HEAD_PREFIXES[key]
            for name, value in self.compute_one(predicted, eval_prediction.label_ids).items():
                metrics[prefix + name] = value
        return metrics


def _is_distribution(array) -> bool:
    array = np.asarray(array, dtype=np.float64)
    return array.ndim == 2 and bool((array >= 0).all()) and np.allclose(array.sum(axis=1), 1.0, atol=1e-3)


def _softmax(logits) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _model_output_distributions(outputs) -> tuple[np.ndarray, ...]:
    """A plain Trainer's `(logits, distribution, score, label[, image_logits, text_logits, ...])` -> the
    distributions in `PREDICTION_KEYS` order."""
    if len(outputs) < 2 or not _is_distribution(outputs[1]):
        raise ValueError(
            "AestheticMetricsForTrainer expects predicted distributions (AesformerTrainer) or the output tuple of "
            f"AesformerForAesthetic (plain Trainer: logits, distribution, ...); got {len(outputs)} arrays of shapes "
            f"{[np.shape(o) for o in outputs]}."
        )
    heads = [_softmax(o) for o in outputs[4:6] if np.ndim(o) == 2 and np.shape(o) == np.shape(outputs[1])]
    return (np.asarray(outputs[1]), *heads) if len(heads) == 2 else (np.asarray(outputs[1]),)


__all__ = ["PREDICTION_KEYS", "AestheticMetricsForTrainer"]
