"""Evaluation metrics of image aesthetic assessment.

``compute_aesthetic_metrics`` is the plain function; ``load_aesthetic_metrics()`` (or
``evaluate.load(AESTHETIC_METRICS_PATH)``) gives the same computation as an ``evaluate`` module.
"""

from pathlib import Path

from .functional import compute_aesthetic_metrics, earth_movers_distance, expected_scores, resolve_bin_values

AESTHETIC_METRICS_PATH = str(Path(__file__).resolve().parent / "aesthetic_metrics")


def load_aesthetic_metrics(**load_kwargs):
    """``evaluate.load`` of the bundled module, offline; keyword arguments go to ``evaluate.load``."""
    import evaluate  # deferred: importing evaluate is slow and most users only need the function

    return evaluate.load(AESTHETIC_METRICS_PATH, **load_kwargs)


__all__ = [
    "AESTHETIC_METRICS_PATH",
    "compute_aesthetic_metrics",
    "earth_movers_distance",
    "expected_scores",
    "load_aesthetic_metrics",
    "resolve_bin_values",
]
