"""MLflow for the fine-tuning run: curves per epoch, the adapter as an artefact and a registry version."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from animelab.tracking import numeric_metrics, tracked_run
from animelab.params import TrackingParams


def log_finetune(tracking: TrackingParams, registry_name: str, run_params: dict[str, Any],
                 history: list[dict[str, float]], summary: dict[str, Any], adapter_dir: Path,
                 version_tags: dict[str, str]) -> tuple[str, str]:
    """Log the run (curves per epoch, the summary's numbers, the adapter) and register its adapter;
    returns (run id, registered model version)."""
    import mlflow
    from mlflow import MlflowClient

    with tracked_run(tracking, "finetune_genre", run_params) as run:
        for record in history:
            mlflow.log_metrics(numeric_metrics({k: v for k, v in record.items() if k != "epoch"}),
                               step=int(record["epoch"]))
        mlflow.log_metrics(numeric_metrics(summary))
        mlflow.log_artifacts(str(adapter_dir), artifact_path="adapter")
        mlflow.set_tags(version_tags)
        client = MlflowClient()
        if not client.search_registered_models(filter_string=f"name = '{registry_name}'"):
            client.create_registered_model(registry_name, description="LoRA genre adapter of the text encoder")
        version = client.create_model_version(registry_name, source=f"{run.info.artifact_uri}/adapter",
                                              run_id=run.info.run_id, tags=version_tags)
        return run.info.run_id, version.version
