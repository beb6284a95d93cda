"""MLflow for the drift stage: one run per execution (tag ``stage=drift``), and the trend read back from history.

Metrics are the stage's DVC metrics under dotted keys (``drift.pairs.<pair>.<vector>.drifted_share``,
``drift.calibration.detection_rate``, ``coherence.<vector>.genre_knn_accuracy``...), made MLflow-safe by
``metric_key``; each pair and vector's band is a tag (``band.<pair>.<vector>``).
The trend of each metric covers the latest ``drift.trend_windows`` drift runs (this one included).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from animelab.tracking import latest_runs, tracked_run
from animelab.params import TrackingParams

STAGE_TAG = ("stage", "drift")


def log_drift_run(tracking: TrackingParams, metrics: dict[str, float], tags: dict[str, str],
                  run_params: dict[str, Any]) -> str:
    """Log one drift stage run; returns its run id."""
    import mlflow

    with tracked_run(tracking, "drift", run_params) as run:
        mlflow.set_tags(dict([STAGE_TAG]) | tags)
        mlflow.log_metrics(metrics)
        return run.info.run_id


def trend(tracking: TrackingParams, keys: list[str], windows: list[int]) -> dict[str, Any]:
    """Per metric: its values over the latest drift runs (newest first) and mean/min/max per window."""
    runs = latest_runs(tracking, STAGE_TAG[1], max(windows))
    result: dict[str, Any] = {"runs": len(runs), "windows": windows, "metrics": {}}
    for key in keys:
        series = [run.data.metrics.get(key) for run in runs]
        summary: dict[str, Any] = {"series": series}
        for window in windows:
            values = np.array([value for value in series[:window] if value is not None])
            summary[f"last_{window}"] = ({"runs": len(values), "mean": float(values.mean()),
                                          "min": float(values.min()), "max": float(values.max())}
                                         if len(values) else {"runs": 0})
        result["metrics"][key] = summary
    return result
