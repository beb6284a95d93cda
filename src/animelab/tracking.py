"""MLflow helpers every tracked stage shares: one run in the lab's experiment, MLflow-safe metric names.

The tracking URI and experiment are the top-level ``tracking`` params section: the evaluate,
finetune_genre and drift stages all log there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from animelab.params import TrackingParams


def metric_key(*parts: str) -> str:
    """MLflow names allow letters, digits, ``_-./`` and spaces: ``ndcg@10`` becomes ``ndcg_at_10``."""
    return ".".join(re.sub(r"[^0-9A-Za-z_\-./ ]", "_", part.replace("@", "_at_")) for part in parts)


def flat(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flat(f"{prefix}.{key}" if prefix else key, item).items()}
    return {prefix: value}


def numeric_metrics(headlines: dict[str, Any]) -> dict[str, float]:
    """The numbers of nested dicts under MLflow-safe dotted keys; strings (bands, names) and NaN left out."""
    return {metric_key(key): float(value) for key, value in flat("", headlines).items()
            if isinstance(value, int | float) and not isinstance(value, bool) and value == value}


FINISHED = "attributes.status = 'FINISHED'"


def mark_orphans_failed(client: Any, experiment_id: str, run_name: str) -> list[str]:
    """Mark RUNNING runs named ``run_name`` and their nested runs FAILED; returns their ids."""
    orphans = [run.info.run_id for run in client.search_runs(
        [experiment_id], filter_string=f"tags.mlflow.runName = '{run_name}' AND attributes.status = 'RUNNING'")]
    for orphan in orphans:
        children = client.search_runs([experiment_id], filter_string=f"tags.mlflow.parentRunId = '{orphan}' "
                                                                   "AND attributes.status = 'RUNNING'")
        for run_id in [*(child.info.run_id for child in children), orphan]:
            client.set_terminated(run_id, "FAILED")
    return orphans


EXPERIMENT_KIND, MODEL_DEVELOPMENT = "mlflow.experimentKind", "custom_model_development"


@contextmanager
def tracked_run(tracking: TrackingParams, run_name: str, run_params: dict[str, Any]) -> Iterator[Any]:
    """An MLflow run in the lab's experiment, with the stage's params flattened under dotted keys.

    A run of the same name still RUNNING is an orphan of a killed stage (a stage holds its outputs' lock
    while it logs): it and its nested runs are marked FAILED first, so readers of FINISHED runs skip them."""
    import mlflow

    mlflow.set_tracking_uri(tracking.uri)
    experiment = mlflow.set_experiment(tracking.experiment)
    # MLflow 3's UI opens an untyped experiment on its GenAI overview; this one is model development.
    mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND, MODEL_DEVELOPMENT)
    mark_orphans_failed(mlflow.MlflowClient(), experiment.experiment_id, run_name)
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params({metric_key(k): v for k, v in flat("", run_params).items()})
        yield run


def latest_runs(tracking: TrackingParams, stage: str, count: int) -> list[Any]:
    """The ``count`` latest FINISHED runs of a stage (tag ``stage``), newest first."""
    import mlflow

    mlflow.set_tracking_uri(tracking.uri)
    return mlflow.search_runs(experiment_names=[tracking.experiment], output_format="list",
                              filter_string=f"tags.stage = '{stage}' AND {FINISHED}",
                              order_by=["attributes.start_time DESC"], max_results=count)
