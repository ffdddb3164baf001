"""Image aesthetic assessment metrics as an `evaluate` module.

Accuracy of the high/low label, PLCC, SRCC, KRCC, RMSE and MAE of the mean score and, when vote
distributions are given, the earth mover's distance (r=1 and r=2) between them.

This file is loaded two ways and must stay self-contained (numpy, scipy, datasets and evaluate
only, one import per line, since `evaluate` copies this single file into its module cache and
parses its imports line by line):

* ``evaluate.load("path/to/aesthetic_metrics")``: the ``AestheticMetrics`` class below;
* ``aesformer_hf.metrics.compute_aesthetic_metrics``: the plain function below, imported from
  the package, so the two share one implementation.
"""

import math
import warnings

import datasets
import evaluate
import numpy as np
from scipy import stats

_CITATION = """\
@inproceedings{murray2012ava,
  title     = {AVA: A large-scale database for aesthetic visual analysis},
  author    = {Murray, Naila and Marchesotti, Luca and Perronnin, Florent},
  booktitle = {CVPR},
  year      = {2012}
}
@article{talebi2018nima,
  title   = {NIMA: Neural Image Assessment},
  author  = {Talebi, Hossein and Milanfar, Peyman},
  journal = {IEEE Transactions on Image Processing},
  year    = {2018}
}
"""

_DESCRIPTION = """\
Metrics of image aesthetic assessment on a mean-score scale (1..10 on AVA): accuracy of the
high/low label at a threshold (high if score > threshold), Pearson (PLCC), Spearman (SRCC) and
Kendall (KRCC) correlations, RMSE and MAE of the mean score, and, when vote distributions are
given, the earth mover's distance between predicted and true distributions with r=1 (the papers'
EMD column) and r=2 (the training loss).
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted mean scores, shape (N,), or predicted vote distributions, shape
        (N, bins). Distributions may be probabilities or raw vote counts: each row is divided
        by its sum.
    references: true mean scores (N,) or true vote distributions (N, bins), the same kind as
        predictions.
    threshold: a score above it is "high" (5.0 on AVA and Photo.net, 0.5 on JAS's 0..1 scale).
    bin_values: the score of each bin, shape (bins,), for distributions. Default: evenly spaced
        from score_min to score_max.
    score_min: the first bin's score when bin_values is not given. Default 1.0.
    score_max: the last bin's score when bin_values is not given. Default score_min + bins - 1,
        i.e. bins 1..10 for 10 bins and 1..7 for 7 bins.
Returns:
    accuracy, plcc, srcc, krcc, rmse, mae (floats; correlations are nan when undefined: fewer
    than 2 samples or a constant input), and emd_r1, emd_r2 only when distributions are given.
Examples:
    >>> metric = evaluate.load("aesformer_hf/metrics/aesthetic_metrics")
    >>> results = metric.compute(predictions=[5.5, 4.0, 6.2], references=[5.9, 4.4, 5.1])
    >>> round(results["accuracy"], 2)
    1.0
"""


def resolve_bin_values(num_bins, bin_values=None, score_min=1.0, score_max=None):
    """Return the score of each of ``num_bins`` bins as a float64 array of shape (num_bins,).

    ``bin_values`` wins when given; otherwise bins are evenly spaced from ``score_min`` to
    ``score_max`` (default ``score_min + num_bins - 1``: unit steps, 1..10 for AVA).
    """
    if bin_values is not None:
        values = np.asarray(bin_values, dtype=np.float64)
        if values.shape != (num_bins,):
            raise ValueError(
                f"bin_values must hold one score per bin: {num_bins} expected, got shape {values.shape}"
            )
        return values
    if score_max is None:
        score_max = score_min + num_bins - 1
    return np.linspace(float(score_min), float(score_max), num_bins)


def normalise_distributions(distributions, name):
    """Validate a (N, bins) array of probabilities or vote counts and return rows summing to 1."""
    array = np.asarray(distributions, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must have shape (num_samples, bins), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains non-finite values (nan or inf)")
    if np.any(array < 0):
        raise ValueError(f"{name} must be non-negative (probabilities or vote counts)")
    totals = array.sum(axis=1, keepdims=True)
    if np.any(totals <= 0):
        raise ValueError(
            f"every row of {name} must have a positive sum, row(s) {np.flatnonzero(totals <= 0)}"
        )
    return array / totals


def expected_scores(distributions, bin_values):
    """Mean score of each distribution: sum_k p_k * v_k. Shapes (N, bins), (bins,) -> (N,)."""
    return np.asarray(distributions, dtype=np.float64) @ np.asarray(bin_values, dtype=np.float64)


def earth_movers_distance(pred_distributions, true_distributions, r):
    """Mean over samples of (mean_k |CDF_pred[k] - CDF_true[k]|^r)^(1/r). Inputs (N, bins), rows sum to 1."""
    cdf_gap = np.cumsum(pred_distributions, axis=1) - np.cumsum(true_distributions, axis=1)
    per_sample = np.mean(np.abs(cdf_gap) ** r, axis=1) ** (1.0 / r)
    return float(np.mean(per_sample))


def _as_scores(values, name):
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} must have shape (num_samples,), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains non-finite values (nan or inf)")
    return array


def _correlation(statistic, pred_scores, true_scores):
    # Undefined (not an error) for < 2 samples or a constant input: report nan so that an
    # evaluation loop keeps running on a collapsed model instead of crashing.
    if len(pred_scores) < 2 or np.ptp(pred_scores) == 0 or np.ptp(true_scores) == 0:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(statistic(pred_scores, true_scores).statistic)


def compute_aesthetic_metrics(
    pred_scores=None,
    true_scores=None,
    pred_distributions=None,
    true_distributions=None,
    threshold=5.0,
    bin_values=None,
    score_min=1.0,
    score_max=None,
):
    """Aesthetic metrics from scores, distributions, or both.

    Args:
        pred_scores, true_scores: mean scores, shape (N,). When omitted they are the expected
            values of the distributions over the bin values.
        pred_distributions, true_distributions: vote distributions or vote counts, shape
            (N, bins); rows are normalised to sum to 1. Optional; needed for the EMD.
        threshold: scores above it are "high" (label 1).
        bin_values, score_min, score_max: the score of each bin (see ``resolve_bin_values``).

    Returns:
        dict with float values: ``accuracy`` (fraction of matching high/low labels), ``plcc``,
        ``srcc``, ``krcc`` (nan when undefined), ``rmse``, ``mae`` (score units) and, when both
        distributions are given, ``emd_r1`` and ``emd_r2``.
    """
    if (pred_distributions is None) != (true_distributions is None):
        raise ValueError("pass both pred_distributions and true_distributions, or neither")
    has_distributions = pred_distributions is not None
    if has_distributions:
        pred_distributions = normalise_distributions(pred_distributions, "pred_distributions")
        true_distributions = normalise_distributions(true_distributions, "true_distributions")
        if pred_distributions.shape != true_distributions.shape:
            raise ValueError(
                "pred_distributions and true_distributions must have the same shape, got "
                f"{pred_distributions.shape} and {true_distributions.shape}"
            )
        bins = resolve_bin_values(pred_distributions.shape[1], bin_values, score_min, score_max)
        if pred_scores is None:
            pred_scores = expected_scores(pred_distributions, bins)
        if true_scores is None:
            true_scores = expected_scores(true_distributions, bins)
    if pred_scores is None or true_scores is None:
        raise ValueError("pass pred_scores and true_scores, or pred_distributions and true_distributions")

    pred_scores = _as_scores(pred_scores, "pred_scores")
    true_scores = _as_scores(true_scores, "true_scores")
    if len(pred_scores) != len(true_scores):
        raise ValueError(
            f"pred_scores has {len(pred_scores)} values but true_scores has {len(true_scores)}: "
            "they must describe the same images"
        )
    if len(pred_scores) == 0:
        raise ValueError("cannot compute metrics on 0 samples")
    if has_distributions and len(pred_distributions) != len(pred_scores):
        raise ValueError(
            f"the distributions have {len(pred_distributions)} rows but the scores have "
            f"{len(pred_scores)} values: they must describe the same images"
        )

    error = pred_scores - true_scores
    results = {
        "accuracy": float(np.mean((pred_scores > threshold) == (true_scores > threshold))),
        "plcc": _correlation(stats.pearsonr, pred_scores, true_scores),
        "srcc": _correlation(stats.spearmanr, pred_scores, true_scores),
        "krcc": _correlation(stats.kendalltau, pred_scores, true_scores),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
    }
    if has_distributions:
        results["emd_r1"] = earth_movers_distance(pred_distributions, true_distributions, r=1)
        results["emd_r2"] = earth_movers_distance(pred_distributions, true_distributions, r=2)
    return results


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AestheticMetrics(evaluate.Metric):
    """`evaluate` wrapper of :func:`compute_aesthetic_metrics` (scores or distributions)."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # Two accepted input kinds; evaluate picks the one the first batch matches.
            features=[
                datasets.Features(
                    {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
                ),
                datasets.Features(
                    {
                        "predictions": datasets.Sequence(datasets.Value("float64")),
                        "references": datasets.Sequence(datasets.Value("float64")),
                    }
                ),
            ],
            reference_urls=[
                "https://docs.scipy.org/doc/scipy/reference/stats.html",
                "https://arxiv.org/abs/1709.05424",
            ],
        )

    def _compute(
        self, predictions, references, threshold=5.0, bin_values=None, score_min=1.0, score_max=None
    ):
        predictions = np.asarray(predictions, dtype=np.float64)
        references = np.asarray(references, dtype=np.float64)
        if predictions.ndim == 2:
            return compute_aesthetic_metrics(
                pred_distributions=predictions,
                true_distributions=references,
                threshold=threshold,
                bin_values=bin_values,
                score_min=score_min,
                score_max=score_max,
            )
        return compute_aesthetic_metrics(predictions, references, threshold=threshold)
