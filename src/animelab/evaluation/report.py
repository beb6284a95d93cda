"""Reports from the evaluation results: summary.md, variants.html (plotly) and DVC plot data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from animelab.evaluation.scoring import OVERALL
from animelab.io import write_csv, write_text


def mark(test: dict[str, Any] | None) -> str:
    """▲ significantly better, ▼ significantly worse, = no significant difference (after correction)."""
    if test is None:
        return ""
    if not test["significant"]:
        return "="
    return "▲" if test["delta"] > 0 else "▼"


def summary_markdown(results: dict[str, Any], headline: list[str]) -> str:
    variants = results["variants"]
    baseline = results["baseline"]
    lines = [
        "# Variant summary",
        "",
        f"{variants[baseline]['queries']} {results['split']} queries. Marks against the variant in column *vs* "
        f"(`{baseline}` unless stated): ▲ better / ▼ worse, significant at alpha={results['alpha']} by a paired "
        f"two-sided {results['stat_test']} test with {results['correction']} correction over the variants tested "
        "against the same reference; = no significant difference. Held-out rows (*queries* marked `held out`) are "
        "scored on test-split anime only, judgements and results alike, for models trained on the corpus: compare "
        "them only with each other. Recall vs exact: top 10 against the same search done exactly. "
        "Memory: RSS growth while the index is open and searched / index size on disk.",
        "",
        "| variant | axis | vs | queries | " + " | ".join(headline)
        + " | recall vs exact@10 | p95 ms | QPS | RAM / disk MiB |",
        "|---|---|---|---:|" + "---:|" * (len(headline) + 4),
    ]
    for name, record in variants.items():
        tests = record.get("vs_baseline", {}).get(OVERALL, {})
        cells = [f"{record['scores'][OVERALL][m]:.4f} {mark(tests.get(m))}".strip() for m in headline]
        queries = f"{record['queries']} held out" if record.get("holdout") else str(record["queries"])
        lines.append(f"| {name} | {record['axis']} | {record.get('compared_to', '')} | {queries} | " + " | ".join(cells)
                     + f" | {record['recall_vs_exact_at_10']:.3f} | {record['latency']['p95_ms']:.2f}"
                     f" | {record['latency']['qps']:.0f} | {record['ram_mib']:.0f} / {record['disk_mib']:.0f} |")
    categories = [group for group in next(iter(variants.values()))["scores"] if group != OVERALL]
    metric = headline[0]
    lines += ["", f"## {metric} per category", "",
              "| variant | " + " | ".join(categories) + " |", "|---|" + "---:|" * len(categories)]
    for name, record in variants.items():
        tests = record.get("vs_baseline", {})
        cells = [f"{record['scores'][c][metric]:.3f} {mark(tests.get(c, {}).get(metric))}".strip() for c in categories]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Against the reference", ""]
    for name, record in variants.items():
        if "vs_baseline" not in record:
            continue
        test = record["vs_baseline"][OVERALL][metric]
        verdict = ("no significant difference" if not test["significant"]
                   else "significantly better" if test["delta"] > 0 else "significantly worse")
        lines.append(f"- {name} vs {record['compared_to']}: {metric} {verdict} (delta {test['delta']:+.4f}, effect size "
                     f"{test['effect_size']:+.2f}, p={test['p_value']:.2g}, adjusted p={test['p_adjusted']:.2g})")
    if results["skipped"]:
        lines += ["", "Skipped: " + "; ".join(f"{name} ({why})" for name, why in results["skipped"].items())]
    lines += [
        "",
        "Hard-negative intrusion (share of top 10 that are judged confusable non-relevant anime): "
        + ", ".join(f"{name} {record['hard_negative_intrusion_at_10']:.3f}" for name, record in variants.items()),
        "",
    ]
    return "\n".join(lines)


def finetune_markdown(metrics: dict[str, Any]) -> str:
    """The finetune_genre stage's own measurements, beside the genre_ft rows of the tables above."""
    probe = metrics["synopsis_genre_knn"]
    lines = ["## Fine-tuned genre model", "",
             f"Adapter `{metrics['model']}`: best epoch {metrics['best_epoch']} of {metrics['epochs_run']} run, "
             f"{metrics['train_seconds']:.0f} s of training on {metrics['pairs']['query']} query and "
             f"{metrics['pairs']['synopsis']} synopsis pairs from {metrics['anime']['train']} train anime "
             f"({metrics['batches_checked_for_leakage']} batches passed the leakage guard). Dev NDCG@10 (dev queries "
             f"against dev anime): base {metrics['dev_ndcg_at_10']['base']:.4f}, tuned "
             f"{metrics['dev_ndcg_at_10']['tuned']:.4f}.", "",
             f"Genre labels of {probe['test_anime']} held-out test anime predicted from their synopsis embeddings "
             f"(kNN, k={probe['k']}, over {probe['train_anime']} train anime); p from a paired permutation test:", "",
             "| F1 | base | tuned | delta | p |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {average} | {probe[average]['base']:.4f} | {probe[average]['tuned']:.4f} | "
              f"{probe[average]['delta']:+.4f} | {probe[average]['p_value']:.3g} |" for average in ("micro", "macro")]
    return "\n".join(lines + [""])


def pareto_front(points: list[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Points not beaten by another with lower latency and higher recall, by increasing latency."""
    front, best = [], -1.0
    for latency, recall, name in sorted(points, key=lambda p: (p[0], -p[1])):
        if recall > best:
            front.append((latency, recall, name))
            best = recall
    return front


def variants_html(results: dict[str, Any], metric: str) -> str:
    variants = results["variants"]
    points = [(r["latency"]["p95_ms"], r["recall_vs_exact_at_10"], name) for name, r in variants.items()]
    tradeoff = go.Figure()
    tradeoff.add_scatter(x=[p[0] for p in points], y=[p[1] for p in points], text=[p[2] for p in points],
                         mode="markers+text", textposition="top center", name="variants")
    front = pareto_front(points)
    tradeoff.add_scatter(x=[p[0] for p in front], y=[p[1] for p in front], mode="lines", name="Pareto front")
    tradeoff.update_layout(title="Recall@10 against exact search vs p95 latency", xaxis_title="p95 latency (ms)",
                           yaxis_title="recall@10 vs exact")
    categories = [group for group in next(iter(variants.values()))["scores"]]
    per_category = go.Figure()
    for name, record in variants.items():
        per_category.add_bar(name=name, x=categories, y=[record["scores"][c][metric] for c in categories])
    per_category.update_layout(barmode="group", title=f"{metric} per category", yaxis_title=metric)
    memory = go.Figure()
    memory.add_bar(name="RAM (MiB)", x=list(variants), y=[r["ram_mib"] for r in variants.values()])
    memory.add_bar(name="disk (MiB)", x=list(variants), y=[r["disk_mib"] for r in variants.values()])
    memory.update_layout(barmode="group", title="Memory per variant")
    body = (tradeoff.to_html(full_html=False, include_plotlyjs=True)
            + per_category.to_html(full_html=False, include_plotlyjs=False)
            + memory.to_html(full_html=False, include_plotlyjs=False))
    return f"<html><head><meta charset='utf-8'><title>Variants</title></head><body>{body}</body></html>\n"


def write_reports(results: dict[str, Any], headline: list[str], reports_dir: Path,
                  finetune: dict[str, Any]) -> None:
    variants = results["variants"]
    metric = headline[0]
    summary = summary_markdown(results, headline)
    write_text(reports_dir / "summary.md", summary + "\n" + finetune_markdown(finetune))
    write_text(reports_dir / "variants.html", variants_html(results, metric))
    write_csv(reports_dir / "plots" / "recall_latency.csv", [
        {"variant": name, "p95_ms": r["latency"]["p95_ms"], "recall_vs_exact": round(r["recall_vs_exact_at_10"], 4),
         metric.replace("@", "_at_"): round(r["scores"][OVERALL][metric], 4)} for name, r in variants.items()
    ])
    write_csv(reports_dir / "plots" / "ndcg_per_category.csv", [
        {"variant": name} | {group: round(scores[metric], 4) for group, scores in r["scores"].items()}
        for name, r in variants.items()
    ])
