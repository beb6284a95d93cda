"""The route stage's markdown report and MLflow run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from animelab.params import TrackingParams
from animelab.tracking import numeric_metrics, tracked_run


def route_markdown(metrics: dict[str, Any]) -> str:
    chosen, accuracy = metrics["chosen"], metrics["accuracy"]
    lines = ["# Query router", "",
             f"Target: each query's vector set (the gold hint the oracle rows read). Chosen on dev by macro accuracy "
             f"over categories: features {'+'.join(chosen['features'])}, C={chosen['c']}, class weights "
             f"{chosen['class_weight']} (dev macro accuracy {chosen['dev_macro_accuracy']:.3f}, "
             f"{len(metrics['trials'])} combinations tried). Classifier time {metrics['ms_per_query']:.3f} ms per "
             f"query after the embedding.", "",
             "| split | queries | accuracy | macro over categories |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {sum(scored['queries'].values())} | {scored['overall']:.3f} | {scored['macro']:.3f} |"
              for name, scored in accuracy.items()]
    test = accuracy["test"]
    lines += ["", "Test accuracy per category:", "", "| category | queries | accuracy |", "|---|---:|---:|"]
    lines += [f"| {category} | {test['queries'][category]} | {value:.3f} |"
              for category, value in test["per_category"].items()]
    lines += ["", "## Test confusion matrices (rows: the hint's vector set, columns: routed)", ""]
    for category, confusion in metrics["confusion_test"].items():
        short = [label.replace("_vector", "") for label in confusion["labels"]]
        lines += [f"**{category}**", "", "| hint \\ routed | " + " | ".join(short) + " |",
                  "|---|" + "---:|" * len(short)]
        lines += [f"| {label} | " + " | ".join(str(n) for n in row) + " |"
                  for label, row in zip(short, confusion["matrix"], strict=True)]
        lines.append("")
    return "\n".join(lines)


def log_route(tracking: TrackingParams, run_params: dict[str, Any], metrics: dict[str, Any], router_path: Path) -> str:
    import mlflow

    with tracked_run(tracking, "route", run_params) as run:
        mlflow.set_tag("stage", "route")
        mlflow.log_metrics(numeric_metrics({"accuracy": metrics["accuracy"], "chosen": metrics["chosen"],
                                            "ms_per_query": metrics["ms_per_query"]}))
        mlflow.log_artifact(str(router_path))
        return run.info.run_id
