"""MLflow: one parent run per evaluation, one nested run per variant."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from animelab.params import TrackingParams


def metric_key(*parts: str) -> str:
    """MLflow names allow letters, digits, ``_-./`` and spaces: ``ndcg@10`` becomes ``ndcg_at_10``."""
    return ".".join(re.sub(r"[^0-9A-Za-z_\-./ ]", "_", part.replace("@", "_at_")) for part in parts)


def flat(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flat(f"{prefix}.{key}" if prefix else key, item).items()}
    return {prefix: value}


def variant_metrics(record: dict[str, Any]) -> dict[str, float]:
    metrics = {metric_key(metric, group): value for group, scores in record["scores"].items()
               for metric, value in scores.items()}
    metrics |= {metric_key(name): record[name] for name in
                ("hard_negative_intrusion_at_10", "recall_vs_exact_at_10", "build_seconds", "disk_mib", "ram_mib")}
    metrics |= {metric_key("latency", name): value for name, value in record["latency"].items()}
    for group, comparisons in record.get("vs_baseline", {}).items():
        for metric, test in comparisons.items():
            metrics[metric_key("p_adjusted", metric, group)] = test["p_adjusted"]
            metrics[metric_key("delta", metric, group)] = test["delta"]
    return {key: float(value) for key, value in metrics.items() if value == value}  # drop NaN


def numeric_metrics(headlines: dict[str, Any]) -> dict[str, float]:
    """The numbers of nested dicts under MLflow-safe dotted keys; strings (bands, names) and NaN left out."""
    return {metric_key(key): float(value) for key, value in flat("", headlines).items()
            if isinstance(value, int | float) and not isinstance(value, bool) and value == value}


@contextmanager
def tracked_run(tracking: TrackingParams, run_name: str, run_params: dict[str, Any]) -> Iterator[Any]:
    """An MLflow run in the lab's experiment, with the stage's params flattened under dotted keys."""
    import mlflow

    mlflow.set_tracking_uri(tracking.uri)
    mlflow.set_experiment(tracking.experiment)
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params({metric_key(k): v for k, v in flat("", run_params).items()})
        yield run


def log_evaluation(tracking: TrackingParams, results: dict[str, Any], run_params: dict[str, Any],
                   artifacts: dict[str, list[Path]]) -> str:
    """Log the evaluation; returns the parent run id."""
    import mlflow

    with tracked_run(tracking, f"evaluate-{results['split']}", run_params) as parent:
        mlflow.set_tags({"baseline": results["baseline"], "skipped": ", ".join(results["skipped"]) or "none"})
        for name, record in results["variants"].items():
            with mlflow.start_run(run_name=name, nested=True):
                mlflow.set_tags({"axis": record["axis"], "model": record["model"], "description": record["description"]})
                mlflow.log_params({metric_key(k): v for k, v in flat("", record["settings"]).items()})
                mlflow.log_metrics(variant_metrics(record))
                for path in artifacts.get(name, []):
                    mlflow.log_artifact(str(path))
        return parent.info.run_id
