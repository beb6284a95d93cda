"""MLflow: one run for the online stage, one nested run per compared pair."""

from __future__ import annotations

from typing import Any

from animelab.params import TrackingParams
from animelab.tracking import metric_key, numeric_metrics, tracked_run


def log_online(tracking: TrackingParams, result: dict[str, Any], run_params: dict[str, Any]) -> str:
    import mlflow

    with tracked_run(tracking, f"online-{result['split']}", run_params) as parent:
        mlflow.set_tag("stage", "online")
        mlflow.log_metrics({metric_key("agreement", row["method"], row["user"], key): value
                            for row in result["agreement"] for key, value in row.items()
                            if key.endswith("agreement") and value is not None})
        mlflow.log_metrics(numeric_metrics({"rows": result["rows"]}))
        for a, b in result["pairs"]:
            tests = [t for t in result["comparisons"] if (t["a"], t["b"]) == (a, b)]
            with mlflow.start_run(run_name=f"{b} vs {a}", nested=True):
                mlflow.set_tags({"a": a, "b": b, "offline.significant": str(tests[0]["offline"]["significant"])})
                mlflow.log_metric("offline.delta", tests[0]["offline"]["delta"])
                mlflow.log_metrics({metric_key(t["method"], t["user"], key): float(t[key]) for t in tests
                                    for key in ("delta", "p_adjusted", "wins_a", "wins_b", "ties", "median_impressions")
                                    if t[key] is not None})
        return parent.info.run_id
