import math
import warnings

import numpy as np
import pytest
from scipy import stats

from aesformer_hf.metrics import AESTHETIC_METRICS_PATH, compute_aesthetic_metrics, load_aesthetic_metrics

SCORE_KEYS = {"accuracy", "plcc", "srcc", "krcc", "rmse", "mae"}


@pytest.fixture(scope="module")
def metric():
    return load_aesthetic_metrics(keep_in_memory=True)


@pytest.fixture(scope="module")
def scores():
    rng = np.random.default_rng(0)
    true = rng.uniform(2.0, 8.0, size=60)
    pred = true + rng.normal(0.0, 0.8, size=60)
    return pred, true


def test_loads_offline_from_the_folder_and_from_the_file(monkeypatch):
    import evaluate

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from_folder = evaluate.load(AESTHETIC_METRICS_PATH, keep_in_memory=True)
    from_file = evaluate.load(f"{AESTHETIC_METRICS_PATH}/aesthetic_metrics.py", keep_in_memory=True)
    assert type(from_folder).__name__ == type(from_file).__name__ == "AestheticMetrics"
    result = from_file.compute(predictions=[6.0, 4.0, 7.0], references=[5.5, 4.5, 6.0])
    assert set(result) == SCORE_KEYS


def test_scores_match_scipy_and_hand_computation(metric, scores):
    pred, true = scores
    result = metric.compute(predictions=pred, references=true)
    assert set(result) == SCORE_KEYS
    assert result["plcc"] == pytest.approx(stats.pearsonr(pred, true)[0], abs=1e-12)
    assert result["srcc"] == pytest.approx(stats.spearmanr(pred, true)[0], abs=1e-12)
    assert result["krcc"] == pytest.approx(stats.kendalltau(pred, true)[0], abs=1e-12)
    assert result["accuracy"] == pytest.approx(np.mean((pred > 5.0) == (true > 5.0)))
    assert result["rmse"] == pytest.approx(
        math.sqrt(sum((p - t) ** 2 for p, t in zip(pred, true)) / len(pred))
    )
    assert result["mae"] == pytest.approx(sum(abs(p - t) for p, t in zip(pred, true)) / len(pred))
    assert compute_aesthetic_metrics(pred, true) == pytest.approx(result)


def test_small_case_by_hand():
    pred = [6.0, 5.0, 3.0, 8.0]
    true = [7.0, 4.0, 5.0, 6.0]
    result = compute_aesthetic_metrics(pred, true, threshold=5.0)
    # Labels (score > 5): pred H L L H, true H L L H; 5.0 itself is "low".
    assert result["accuracy"] == 1.0
    # Errors -1, 1, -2, 2: squares sum to 10.
    assert result["rmse"] == pytest.approx(math.sqrt(10 / 4))
    assert result["mae"] == pytest.approx(1.5)
    # Pearson by its definition: centred pred (0.5, -0.5, -2.5, 2.5), true (1.5, -1.5, -0.5, 0.5).
    covariance = 0.5 * 1.5 + 0.5 * 1.5 + 2.5 * 0.5 + 2.5 * 0.5
    assert result["plcc"] == pytest.approx(covariance / math.sqrt(13.0 * 5.0))
    # Ranks pred (3, 2, 1, 4), true (4, 1, 2, 3): sum d^2 = 1 + 1 + 1 + 1, rho = 1 - 6*4 / (4*15).
    assert result["srcc"] == pytest.approx(1 - 6 * 4 / (4 * 15))
    # Pairs: 6 in all, concordant 4, discordant 2 -> tau = 2/6.
    assert result["krcc"] == pytest.approx(2 / 6)
    assert compute_aesthetic_metrics(pred, true, threshold=6.5)["accuracy"] == pytest.approx(0.5)


def test_distributions_path(metric):
    pred = np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    true = np.array([[0.5, 0.3, 0.2], [0.0, 0.2, 0.8], [0.3, 0.3, 0.4]])
    bins = np.array([1.0, 2.0, 3.0])
    result = metric.compute(predictions=pred, references=true, threshold=2.0)
    assert set(result) == SCORE_KEYS | {"emd_r1", "emd_r2"}

    pred_scores, true_scores = pred @ bins, true @ bins  # 2.1, 2.7, 1.5 and 1.7, 2.8, 2.1
    assert result["rmse"] == pytest.approx(math.sqrt((0.4**2 + 0.1**2 + 0.6**2) / 3))
    assert result["plcc"] == pytest.approx(stats.pearsonr(pred_scores, true_scores)[0])
    # Labels at 2.0: pred H H L, true L H H.
    assert result["accuracy"] == pytest.approx(1 / 3)
    # CDF gaps per row: (-0.3, -0.1, 0), (0.1, 0, 0), (0.3, 0.3, 0).
    assert result["emd_r1"] == pytest.approx((0.4 / 3 + 0.1 / 3 + 0.6 / 3) / 3)
    expected_r2 = (math.sqrt(0.10 / 3) + math.sqrt(0.01 / 3) + math.sqrt(0.18 / 3)) / 3
    assert result["emd_r2"] == pytest.approx(expected_r2)

    functional = compute_aesthetic_metrics(pred_distributions=pred, true_distributions=true, threshold=2.0)
    assert functional == pytest.approx(result)


def test_bin_values_and_score_range(metric):
    pred = np.array([[0.5, 0.5], [1.0, 0.0], [0.0, 1.0]])
    true = np.array([[0.0, 1.0], [0.5, 0.5], [0.0, 1.0]])
    # Explicit bins 0.25 and 0.75: pred scores 0.5, 0.25, 0.75; true 0.75, 0.5, 0.75.
    explicit = metric.compute(predictions=pred, references=true, bin_values=[0.25, 0.75], threshold=0.6)
    assert explicit["mae"] == pytest.approx((0.25 + 0.25 + 0.0) / 3)
    ranged = metric.compute(predictions=pred, references=true, score_min=0.25, score_max=0.75, threshold=0.6)
    assert ranged == pytest.approx(explicit)
    # Default bins are 1, 2: pred scores 1.5, 1, 2; true 2, 1.5, 2.
    default = compute_aesthetic_metrics(pred_distributions=pred, true_distributions=true)
    assert default["mae"] == pytest.approx((0.5 + 0.5 + 0.0) / 3)


def test_vote_counts_are_normalised():
    votes_pred = np.array([[2, 5, 3], [1, 1, 8]])
    votes_true = np.array([[50, 30, 20], [0, 2, 8]])
    from_counts = compute_aesthetic_metrics(pred_distributions=votes_pred, true_distributions=votes_true)
    from_probabilities = compute_aesthetic_metrics(
        pred_distributions=votes_pred / votes_pred.sum(1, keepdims=True),
        true_distributions=votes_true / votes_true.sum(1, keepdims=True),
    )
    assert from_counts == pytest.approx(from_probabilities)


def test_explicit_scores_win_over_expected_values():
    pred = np.array([[0.5, 0.5], [1.0, 0.0]])
    result = compute_aesthetic_metrics(
        [9.0, 1.0], [8.0, 2.0], pred_distributions=pred, true_distributions=pred
    )
    assert result["mae"] == pytest.approx(1.0)
    assert result["emd_r1"] == pytest.approx(0.0)


def test_add_batch_accumulates_like_one_call(metric, scores):
    pred, true = scores
    for start in range(0, len(pred), 16):
        metric.add_batch(predictions=pred[start : start + 16], references=true[start : start + 16])
    assert metric.compute() == pytest.approx(compute_aesthetic_metrics(pred, true))


def test_constant_predictions_give_nan_correlations_without_warnings(metric):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = compute_aesthetic_metrics([5.5, 5.5, 5.5, 5.5], [3.0, 6.0, 7.0, 4.0])
    assert math.isnan(result["plcc"]) and math.isnan(result["srcc"]) and math.isnan(result["krcc"])
    assert result["accuracy"] == pytest.approx(0.5)
    assert result["mae"] == pytest.approx((2.5 + 0.5 + 1.5 + 1.5) / 4)
    assert math.isnan(metric.compute(predictions=[1.0, 2.0], references=[4.0, 4.0])["srcc"])


def test_single_sample():
    result = compute_aesthetic_metrics([6.0], [4.0])
    assert math.isnan(result["plcc"]) and math.isnan(result["srcc"]) and math.isnan(result["krcc"])
    assert result["accuracy"] == 0.0
    assert result["rmse"] == pytest.approx(2.0)


def test_invalid_inputs_raise_clear_errors(metric):
    with pytest.raises(ValueError, match="pred_scores has 3 values but true_scores has 2"):
        compute_aesthetic_metrics([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(2, 4\)"):
        compute_aesthetic_metrics(pred_distributions=np.ones((2, 3)), true_distributions=np.ones((2, 4)))
    with pytest.raises(ValueError, match="0 samples"):
        compute_aesthetic_metrics([], [])
    with pytest.raises(ValueError, match="pred_scores contains non-finite"):
        compute_aesthetic_metrics([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError, match="true_distributions must be non-negative"):
        compute_aesthetic_metrics(pred_distributions=np.ones((1, 3)), true_distributions=[[1.0, -1.0, 1.0]])
    with pytest.raises(ValueError, match="positive sum"):
        compute_aesthetic_metrics(pred_distributions=np.zeros((1, 3)), true_distributions=np.ones((1, 3)))
    with pytest.raises(ValueError, match="one score per bin: 3 expected"):
        compute_aesthetic_metrics(
            pred_distributions=np.ones((1, 3)), true_distributions=np.ones((1, 3)), bin_values=[1, 2]
        )
    with pytest.raises(ValueError, match="both pred_distributions and true_distributions"):
        compute_aesthetic_metrics([1.0], [1.0], pred_distributions=np.ones((1, 3)))
    with pytest.raises(ValueError, match="3.*2|2.*3"):
        metric.compute(predictions=[1.0, 2.0, 3.0], references=[1.0, 2.0])


def test_metric_card_names_no_file_the_module_lacks():
    from pathlib import Path

    import aesformer_hf.metrics

    folder = Path(aesformer_hf.metrics.__file__).parent / "aesthetic_metrics"
    front_matter = (folder / "README.md").read_text().split("---")[1]
    for line in front_matter.splitlines():
        if line.split(":")[0].strip().endswith("_file"):
            assert (folder / line.split(":", 1)[1].strip()).is_file(), line
    assert "app.py" not in front_matter or (folder / "app.py").is_file()


def test_the_metric_cites_ava_as_the_data_registry_does():
    """The metric file stays self-contained (`evaluate` copies it alone), so it holds its own copy of the citation."""
    import re

    from aesformer_hf.data.schema import DATASET_FACTS
    from aesformer_hf.metrics.aesthetic_metrics import aesthetic_metrics

    def fields(bibtex):
        return dict(re.findall(r"(\w+)\s*=\s*\{(.*?)\},?\s*$", bibtex, flags=re.MULTILINE))

    ava = DATASET_FACTS["ava"].citation
    start = aesthetic_metrics._CITATION.index(ava.split(",")[0])
    copy = aesthetic_metrics._CITATION[start : aesthetic_metrics._CITATION.index("\n}", start) + 2]
    assert fields(copy) == fields(ava)  # the same entry, aligned differently
