"""Aesthetic metrics as a plain function, without going through ``evaluate.load``.

The math lives once, in the `evaluate` module file ``aesthetic_metrics/aesthetic_metrics.py``
(which must stay a single self-contained file for ``evaluate.load``); this module only re-exports it.
"""

from .aesthetic_metrics.aesthetic_metrics import (
    compute_aesthetic_metrics,
    earth_movers_distance,
    expected_scores,
    resolve_bin_values,
)

__all__ = ["compute_aesthetic_metrics", "earth_movers_distance", "expected_scores", "resolve_bin_values"]
