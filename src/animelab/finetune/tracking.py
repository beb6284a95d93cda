"""MLflow for the fine-tuning run: curves per epoch, the adapter as an artefact and a registry version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from animelab.evaluation.tracking import flat, metric_key
from animelab.params import TrackingParams


def log_finetune(tracking: TrackingParams, registry_name: str, run_params: dict[str, Any],
                 history: list[dict[str, float]], metrics: dict[str, float], adapter_dir: Path,
                 version_tags: dict[str, str]) -> tuple[str, str]:
    """Log the run and register its adapter; returns (run id, registered model version)."""
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(tracking.uri)
    mlflow.set_experiment(tracking.experiment)
    with mlflow.start_run(run_name="finetune_genre") as run:
        mlflow.log_params({metric_key(k): v for k, v in flat("", run_params).items()})
        for record in history:
            step = int(record["epoch"])
            mlflow.log_metrics({metric_key(k): v for k, v in record.items() if k != "epoch" and v == v}, step=step)
        mlflow.log_metrics({metric_key(k): v for k, v in metrics.items() if v == v})
        mlflow.log_artifacts(str(adapter_dir), artifact_path="adapter")
        mlflow.set_tags(version_tags)
        client = MlflowClient()
        if not client.search_registered_models(filter_string=f"name = '{registry_name}'"):
            client.create_registered_model(registry_name, description="LoRA genre adapter of the text encoder")
        version = client.create_model_version(registry_name, source=f"{run.info.artifact_uri}/adapter",
                                              run_id=run.info.run_id, tags=version_tags)
        return run.info.run_id, version.version
