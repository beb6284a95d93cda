"""MLflow: one parent run per evaluation, one nested run per variant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from animelab.evaluation.scoring import MACRO
from animelab.params import TrackingParams
from animelab.tracking import flat, metric_key, tracked_run


# Digits sort before letters: the MLflow runs table lists these columns first.
PRIMARY_PREFIX = "0_primary"


def primary_metrics(record: dict[str, Any], primary: str) -> dict[str, float]:
    """The declared primary metric (macro over ranking categories) and its group-bootstrap 95% CI."""
    low, high = record["primary_ci"]
    name = metric_key(PRIMARY_PREFIX, f"macro_{primary}")
    return {name: record["scores"][MACRO][primary], f"{name}.ci_low": low, f"{name}.ci_high": high}


def variant_metrics(record: dict[str, Any], primary: str) -> dict[str, float]:
    metrics = primary_metrics(record, primary)
    metrics |= {metric_key(metric, group): value for group, scores in record["scores"].items()
                for metric, value in scores.items()}
    metrics |= {metric_key(name): record[name] for name in
                ("hub_rate_at_10", "hard_negative_intrusion_at_10", "recall_vs_exact_at_10", "build_seconds",
                 "disk_mib", "ram_mib")}
    metrics |= {metric_key("fidelity", vector, f"recall{k}"): value
                for vector, recalls in record["fidelity"].items() for k, value in recalls.items()}
    metrics |= {metric_key("latency", name): value for name, value in record["latency"].items()}
    metrics |= {metric_key("bias", attribute, group, part): value
                for attribute, groups in record.get("bias", {}).items() for group, parts in groups.items()
                for part, value in parts.items() if part != "ci"}
    metrics |= {metric_key("bias", attribute, group, bound): parts["ci"][position]
                for attribute, groups in record.get("bias", {}).items() for group, parts in groups.items()
                for position, bound in enumerate(("ci_low", "ci_high"))}
    for group, comparisons in record.get("vs_baseline", {}).items():
        for metric, test in comparisons.items():
            metrics[metric_key("p_adjusted", metric, group)] = test["p_adjusted"]
            metrics[metric_key("delta", metric, group)] = test["delta"]
    return {key: float(value) for key, value in metrics.items() if value == value}  # drop NaN


def log_evaluation(tracking: TrackingParams, results: dict[str, Any], run_params: dict[str, Any],
                   artifacts: dict[str, list[Path]]) -> str:
    """Log the evaluation; returns the parent run id."""
    import mlflow

    with tracked_run(tracking, f"evaluate-{results['split']}", run_params) as parent:
        mlflow.set_tags({"baseline": results["baseline"], "skipped": ", ".join(results["skipped"]) or "none",
                         "primary": f"macro {results['primary']} over {', '.join(results['ranking_categories'])}"}
                        | ({"baseline.chosen": results["baseline_selection"]["chosen"]}
                           if results.get("baseline_selection") else {}))
        for name, record in results["variants"].items():
            with mlflow.start_run(run_name=name, nested=True):
                mlflow.set_tags({"axis": record["axis"], "class": record["class"], "model": record["model"],
                                 "description": record["description"]})
                mlflow.log_params({metric_key(k): v for k, v in flat("", record["settings"]).items()})
                mlflow.log_metrics(variant_metrics(record, results["primary"]))
                for path in artifacts.get(name, []):
                    mlflow.log_artifact(str(path))
        return parent.info.run_id
