"""MLflow for the data_quality stage: one run per execution (tag ``stage=data_quality``), and regression
alerts against the previous run: a field's completeness or a vector's coverage that fell by more than
``data_quality.max_completeness_drop``."""

from __future__ import annotations

from typing import Any

from animelab.params import TrackingParams
from animelab.tracking import latest_runs, metric_key, numeric_metrics, tracked_run

STAGE = "data_quality"
TRACKED = ("completeness.", "coverage.")


def headline_metrics(report: dict[str, Any]) -> dict[str, float]:
    """The figures a later corpus is compared on: completeness per source and field, coverage per vector,
    violations per rule, link counts, the record score's mean."""
    return numeric_metrics({
        "completeness": {source: part["completeness"] for source, part in report["completeness"]["fields"].items()},
        "coverage": {vector: part["share"] for vector, part in report["completeness"]["vectors"].items()},
        "record_score_mean": report["completeness"]["record_score"]["corpus"]["mean"],
        "violations": {rule: part["violations"] for rule, part in report["rules"].items()},
        "links": {key: value for key, value in report["links"]["mal_bangumi"].items()
                  if isinstance(value, int | float)},
    })


def regression_alerts(previous: dict[str, float], current: dict[str, float], max_drop: float) -> list[dict[str, Any]]:
    return [{"metric": key, "before": previous[key], "now": value, "drop": round(previous[key] - value, 6)}
            for key, value in sorted(current.items())
            if key.startswith(TRACKED) and key in previous and previous[key] - value > max_drop]


def log_data_quality(tracking: TrackingParams, metrics: dict[str, float], max_drop: float,
                     run_params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """Compare with the latest tracked run, then log this one (alerts as a metric and a tag); returns its run
    id and the alerts."""
    import mlflow

    previous = latest_runs(tracking, STAGE, 1)
    alerts = regression_alerts(previous[0].data.metrics, metrics, max_drop) if previous else []
    with tracked_run(tracking, STAGE, run_params) as run:
        mlflow.set_tags({"stage": STAGE, "compared_to": previous[0].info.run_id if previous else "none"})
        mlflow.log_metrics(metrics | {metric_key("regression_alerts"): float(len(alerts))})
        return run.info.run_id, alerts
