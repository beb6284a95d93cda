"""Reports from the evaluation results: summary.md, variants.html (plotly) and DVC plot data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
from scipy.stats import kendalltau

from animelab.evaluation.scoring import MACRO, top_deployable
from animelab.gold.predicates import HAND_CATEGORIES
from animelab.io import write_csv, write_text


def mark(test: dict[str, Any] | None) -> str:
    """▲ significantly better, ▼ significantly worse, = no significant difference (after correction)."""
    if test is None:
        return ""
    if not test["significant"]:
        return "="
    return "▲" if test["delta"] > 0 else "▼"


CLASS_TITLES = {
    "deployable": "Deployable rows: the query text and the index only",
    "oracle": "Oracle rows (upper bounds): they read each query's target vectors from the gold file",
    "metadata": "Metadata rows (upper bounds): their sparse sets are built from the label fields that define "
                "relevance for some categories",
}
COINCIDES = "†"


def primary_cell(record: dict[str, Any], primary: str) -> str:
    low, high = record["primary_ci"]
    return f"{record['scores'][MACRO][primary]:.4f} [{low:.3f}, {high:.3f}]"


def ordered(variants: dict[str, Any], primary: str) -> list[tuple[str, dict[str, Any]]]:
    """Best primary score first (then name)."""
    return sorted(variants.items(), key=lambda item: (-item[1]["scores"][MACRO][primary], item[0]))


def row_table(rows: list[tuple[str, dict[str, Any]]], results: dict[str, Any], headline: list[str]) -> list[str]:
    primary = results["primary"]
    lines = ["| variant | axis | vs | queries | macro " + primary + " [95% CI] | hub rate@10 | p95 ms | "
             + " | ".join(headline) + " | recall vs exact@10 | QPS | RAM / disk MiB |",
             "|---|---|---|---:|---:|---:|---:|" + "---:|" * (len(headline) + 3)]
    for name, record in rows:
        tests = record.get("vs_baseline", {}).get(MACRO, {})
        cells = [f"{record['scores'][MACRO][m]:.4f} {mark(tests.get(m))}".strip() for m in headline]
        queries = f"{record['queries']} held out" if record.get("holdout") else str(record["queries"])
        lines.append(f"| {name} | {record['axis']} | {record.get('compared_to', '')} | {queries} | "
                     f"{primary_cell(record, primary)} {mark(tests.get(primary))}".rstrip()
                     + f" | {record['hub_rate_at_10']:.3f} | {record['latency']['p95_ms']:.2f} | " + " | ".join(cells)
                     + f" | {record['recall_vs_exact_at_10']:.3f} | {record['latency']['qps']:.0f}"
                     f" | {record['ram_mib']:.0f} / {record['disk_mib']:.0f} |")
    return lines


def selection_lines(selection: dict[str, Any] | None, primary: str) -> list[str]:
    if not selection:
        return []
    lines = [f"## Baseline choice ({selection['split']} split, {selection['queries']} queries)", "",
             f"The candidate with the best macro {primary} on {selection['split']} is the baseline: "
             f"**{selection['chosen']}**. The test split never took part in the choice.", "",
             f"| candidate | macro {primary} [95% CI] | hub rate@10 | description |", "|---|---:|---:|---|"]
    for name, row in sorted(selection["candidates"].items(), key=lambda item: -item[1]["scores"][MACRO][primary]):
        lines.append(f"| {name} | {primary_cell(row, primary)} | {row['hub_rate_at_10']:.3f} | {row['description']} |")
    return lines + [""]


QUANT_COST = {"product": 0, "binary": 1, "scalar": 2, "none": 3}


def quantization_cost(record: dict[str, Any]) -> tuple[float, ...]:
    """Cheaper first: fewer bytes per vector (product x32 before x16), then no rescoring, then less oversampling."""
    quantization = record["settings"]["index"].get("quantization") or {"kind": "none"}
    search = record["settings"]["search"]
    return (QUANT_COST[quantization["kind"]], -(quantization.get("compression") or 0),
            1.0 if search.get("rescore") else 0.0, search.get("oversampling") or 1.0)


def fidelity_lines(variants: dict[str, Any], baseline: str, primary: str, tolerance: float = 0.01) -> list[str]:
    """Per ANN row: fidelity of the fused list and of each vector alone, quality with CI, and per
    quantization kind the cheapest setting within ``tolerance`` of exact search."""
    approximate = [(name, r) for name, r in variants.items() if r["fidelity"] and not r.get("holdout")]
    if not approximate:
        return []
    exact = variants[baseline]["scores"][MACRO][primary]
    vectors = list(dict.fromkeys(v for _, r in approximate for v in r["fidelity"] if v != "fused"))
    lines = ["## ANN and quantization against exact search", "",
             f"Every row runs the baseline's search on its own index; exact search (the baseline) scores macro "
             f"{primary} {exact:.4f}. Fidelity: recall@10 / recall@100 of the row's results against the same "
             "request scanned exactly on the original vectors, for the fused list and for each vector alone.", "",
             f"| variant | macro {primary} [95% CI] | delta vs exact | fused @10 / @100 | "
             + " | ".join(vectors) + " | p95 ms |", "|---|---:|---:|---:|" + "---:|" * (len(vectors) + 1)]
    for name, record in approximate:
        fid = record["fidelity"]
        cells = [f"{fid[v]['@10']:.3f} / {fid[v]['@100']:.3f}" if v in fid else "" for v in vectors]
        lines.append(f"| {name} | {primary_cell(record, primary)} | "
                     f"{record['scores'][MACRO][primary] - exact:+.4f} | "
                     f"{fid['fused']['@10']:.3f} / {fid['fused']['@100']:.3f} | " + " | ".join(cells)
                     + f" | {record['latency']['p95_ms']:.2f} |")
    lines += ["", f"Cheapest setting per quantization kind whose macro {primary} is within {tolerance} of exact "
                  "search (cost: bytes per vector, then rescoring, then oversampling):", ""]
    kinds: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, record in approximate:
        if record["axis"] == "quantization":
            kind = (record["settings"]["index"].get("quantization") or {"kind": "none"})["kind"]
            kinds.setdefault(kind, []).append((name, record))
    for kind, rows in sorted(kinds.items(), key=lambda item: QUANT_COST[item[0]]):
        near = [(name, r) for name, r in sorted(rows, key=lambda item: quantization_cost(item[1]))
                if r["scores"][MACRO][primary] >= exact - tolerance]
        verdict = (f"**{near[0][0]}** ({near[0][1]['scores'][MACRO][primary] - exact:+.4f})" if near
                   else f"none of {len(rows)} settings")
        lines.append(f"- {kind}: {verdict}")
    return lines + [""]


def category_lines(variants: dict[str, Any], results: dict[str, Any]) -> list[str]:
    primary = results["primary"]
    ranking, understanding = results["ranking_categories"], results["query_understanding"]
    categories = ranking + [c for c in understanding if c in next(iter(variants.values()))["scores"]]
    lines = [f"## {primary} per category", "",
             f"Ranking categories ({', '.join(ranking)}) make the macro average; query-understanding categories "
             f"({', '.join(understanding)}: a payload filter alone answers them) are shown apart. {COINCIDES}: the "
             "row's sparse sets are built from a label field that this category's relevance rule reads.", "",
             "| variant | class | " + " | ".join(categories) + " |", "|---|---|" + "---:|" * len(categories)]
    for name, record in variants.items():
        tests = record.get("vs_baseline", {})
        coincide = set(record["coincides_with"]) if record["class"] == "metadata" else set()
        cells = [f"{record['scores'][c][primary]:.3f}{COINCIDES if c in coincide else ''} "
                 f"{mark(tests.get(c, {}).get(primary))}".strip() for c in categories]
        lines.append(f"| {name} | {record['class']} | " + " | ".join(cells) + " |")
    return lines + [""]


def router_lines(route: dict[str, Any]) -> list[str]:
    """The route stage's accuracy: how often the router picks the gold hint's vector set (reports/route.md)."""
    test = route["accuracy"]["test"]
    lines = ["## Query router (reports/route.md)", "",
             f"Accuracy on the test queries: {test['overall']:.3f} (macro over categories {test['macro']:.3f}); per "
             "category: " + ", ".join(f"{category} {value:.3f} ({test['queries'][category]} queries)"
                                      for category, value in test["per_category"].items()) + "."]
    return lines + [""]


def routed_pairs(variants: dict[str, Any]) -> list[tuple[str, str]]:
    """Each routed row and the oracle row it is tested against."""
    return [(name, record["compared_to"]) for name, record in variants.items()
            if record["settings"]["search"]["vectors"] == "routed"
            and variants.get(record.get("compared_to") or "", {}).get("class") == "oracle"]


def routed_headline(variants: dict[str, Any], primary: str) -> list[str]:
    pairs = routed_pairs(variants)
    if not pairs:
        return []
    gaps = [f"{routed} {variants[routed]['scores'][MACRO][primary]:.4f} vs {oracle} "
            f"{variants[oracle]['scores'][MACRO][primary]:.4f} "
            f"({variants[routed]['scores'][MACRO][primary] - variants[oracle]['scores'][MACRO][primary]:+.4f})"
            for routed, oracle in pairs]
    return [f"**Router vs oracle** (macro {primary}, the vectors predicted from the text vs read from the gold file): "
            + "; ".join(gaps) + ".", ""]


def routed_lines(variants: dict[str, Any], results: dict[str, Any]) -> list[str]:
    """Each routed row beside the oracle row it mirrors: the cost of predicting the vectors from the text."""
    primary, ranking = results["primary"], results["ranking_categories"]
    pairs = routed_pairs(variants)
    if not pairs:
        return []
    groups = [MACRO, *ranking]
    lines = [f"## Routed vs oracle vectors ({primary}: routed / oracle, and the gap)", "",
             "A routed row searches the vectors the router predicts from the query text (deployable); the oracle "
             "row it mirrors reads them from the gold file. Marks: the routed row against the oracle row.", "",
             "| routed row | oracle row | " + " | ".join(groups) + " |", "|---|---|" + "---:|" * len(groups)]
    for routed, oracle in pairs:
        tests = variants[routed].get("vs_baseline", {})
        cells = [f"{variants[routed]['scores'][g][primary]:.3f} / {variants[oracle]['scores'][g][primary]:.3f} "
                 f"({variants[routed]['scores'][g][primary] - variants[oracle]['scores'][g][primary]:+.3f}) "
                 f"{mark(tests.get(g, {}).get(primary))}".strip() for g in groups]
        lines.append(f"| {routed} | {oracle} | " + " | ".join(cells) + " |")
    return lines + [""]


def template_split(results: dict[str, Any]) -> tuple[list[str], str | None]:
    """The templated ranking categories, and the hand-written paraphrase category when it was scored."""
    templated = [c for c in results["ranking_categories"] if c not in HAND_CATEGORIES]
    return templated, ("paraphrase" if "paraphrase" in results["ranking_categories"] else None)


def template_rows(variants: dict[str, Any], results: dict[str, Any]) -> list[tuple[str, float, float]]:
    """Per deployable search configuration (not held out, not the baseline's search on another index): its
    primary metric macro-averaged over the templated categories, and on the paraphrase queries; by the first."""
    primary = results["primary"]
    templated, paraphrase = template_split(results)
    rows = [(name, float(np.mean([r["scores"][c][primary] for c in templated])), r["scores"][paraphrase][primary])
            for name, r in variants.items()
            if r["class"] == "deployable" and not r["holdout"] and not r["settings"]["on_baseline"]]
    return sorted(rows, key=lambda row: (-row[1], row[0]))


def template_lines(variants: dict[str, Any], results: dict[str, Any], pool: dict[str, Any]) -> list[str]:
    templated, paraphrase = template_split(results)
    if paraphrase is None:
        return []
    pooled = set(pool.get("rows", []))
    # The pool names the baseline by its candidate.
    chosen = (results.get("baseline_selection") or {}).get("chosen")
    pooled |= {results["baseline"]} if chosen in pooled else set()
    rows = template_rows(variants, results)
    tau = kendalltau([t for _, t, _ in rows], [p for _, _, p in rows])
    by_template = {name: rank for rank, (name, _, _) in enumerate(rows, start=1)}
    by_paraphrase = {name: rank for rank, (name, _, _) in enumerate(sorted(rows, key=lambda r: -r[2]), start=1)}
    primary = results["primary"]
    lines = ["## Templates vs paraphrases: does the ranking of rows hold on queries no generator wrote?", "",
             f"Deployable rows: {primary} macro-averaged over the templated categories ({', '.join(templated)}) and "
             f"on the hand-written paraphrase queries (gold/paraphrase.yaml, qrels with the pooled judgements). "
             f"Kendall's tau between the two rankings of {len(rows)} rows: **{tau.statistic:.3f}** "
             f"(p={tau.pvalue:.2g}). Pooled rows (ᵖ) had their paraphrase top 10s judged; a row outside the pool "
             "may hold relevant anime nobody judged, so its paraphrase score is a lower bound.", "",
             "| row | templated | rank | paraphrase | rank |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {name}{'ᵖ' if name in pooled else ''} | {t:.3f} | {by_template[name]} | {p:.3f} | {by_paraphrase[name]} |" for name, t, p in rows]
    holes = pool.get("holes", {})
    if holes:
        lines += ["", "Pool holes (paraphrase test queries; pipelines/pool.py, gold/paraphrase_judgements.jsonl): the "
                  "share of pooled anime that no predicate had graded and a reader judged relevant, per need:", "",
                  "| need | pooled | unjudged when pooled | still unjudged | hole rate |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {need} | {h['pooled']} | {h['unjudged_when_pooled']} | {h['still_unjudged']} | {h['hole_rate']:.3f} |"
                  for need, h in holes.items()]
    return lines + [""]


def template_figure(variants: dict[str, Any], results: dict[str, Any]) -> go.Figure | None:
    if template_split(results)[1] is None:
        return None
    rows = template_rows(variants, results)
    figure = go.Figure(go.Scatter(x=[t for _, t, _ in rows], y=[p for _, _, p in rows], mode="markers+text",
                                  text=[name for name, _, _ in rows], textposition="top center",
                                  hovertemplate="%{text}<br>templated %{x:.3f}<br>paraphrase %{y:.3f}<extra></extra>"))
    primary = results["primary"]
    figure.update_layout(title=f"{primary}: templated categories vs paraphrase queries (deployable rows)",
                         xaxis_title=f"macro {primary}, templated categories", yaxis_title=f"{primary}, paraphrase",
                         height=700)
    return figure


def is_model_row(name: str, record: dict[str, Any], baseline: str) -> bool:
    """The baseline, the rows of another text model, and the multi-model hybrids (other sets' vectors); not
    the baseline's own search on other indexes (on_baseline rows)."""
    if name == baseline:
        return True
    if record["settings"]["on_baseline"] or record.get("holdout"):
        return False
    return record["axis"] == "model" or bool(record["settings"]["search"].get("extra_vectors"))


def short_model(name: str) -> str:
    """A model name without its organisation prefixes (sentence-transformers/all-MiniLM-L6-v2 -> all-MiniLM-L6-v2)."""
    return re.sub(r"[\w.-]+/", "", name)


def model_lines(variants: dict[str, Any], results: dict[str, Any]) -> list[str]:
    """Per category and per query script, the rows that change the text model or add another model's lists."""
    primary = results["primary"]
    rows = [(name, r) for name, r in ordered(variants, primary) if is_model_row(name, r, results["baseline"])]
    if len(rows) < 2:
        return []
    categories = results["ranking_categories"]
    scripts = [group for group in rows[0][1]["scores"] if "/" in group]
    lines = [f"## Text models and multi-model hybrids: {primary} per category and query script", "",
             "Marks on categories against the row's reference (as above); script columns (gold's `script`: "
             "latin or cjk) are means over those queries only, not tested.", "",
             f"| variant | model | macro {primary} [95% CI] | " + " | ".join(categories + scripts) + " |",
             "|---|---|---:|" + "---:|" * (len(categories) + len(scripts))]
    for name, record in rows:
        tests = record.get("vs_baseline", {})
        cells = [f"{record['scores'][c][primary]:.3f} {mark(tests.get(c, {}).get(primary))}".strip() for c in categories]
        cells += [f"{record['scores'][g][primary]:.3f}" if g in record["scores"] else "" for g in scripts]
        lines.append(f"| {name} | {short_model(record['model'])} | {primary_cell(record, primary)} "
                     f"{mark(tests.get(MACRO, {}).get(primary))}"
                     .rstrip() + " | " + " | ".join(cells) + " |")
    return lines + [""]


def coverage_lines(variants: dict[str, Any], results: dict[str, Any]) -> list[str]:
    """The vector-selection and fusion rows beside the corpus coverage of each dense list they search."""
    primary = results["primary"]
    rows = [(n, r) for n, r in ordered(variants, primary)
            if r["axis"] in ("vectors", "fusion") or n == results["baseline"]]
    if not rows:
        return []
    lines = ["## Vector selection and the coverage of what it searches", "",
             "Coverage: the share of the corpus for which a searched vector exists (embeddings manifest; the "
             "data_quality stage reports the fields that feed each). A list over a vector a few anime have "
             "returns those anime for every query.", "",
             f"| variant | class | macro {primary} | hub rate@10 | least coverage | searched vectors (coverage) |",
             "|---|---|---:|---:|---:|---|"]
    for name, record in rows:
        coverage = {v: c for v, c in record["vector_coverage"].items() if c is not None}
        searched = ", ".join(f"{v} ({c:.3f})" if c is not None else v for v, c in record["vector_coverage"].items())
        least = f"{min(coverage.values()):.3f}" if coverage else ""
        lines.append(f"| {name} | {record['class']} | {record['scores'][MACRO][primary]:.4f} | "
                     f"{record['hub_rate_at_10']:.3f} | {least} | {searched or 'none (sparse only)'} |")
    return lines + [""]


BIAS_UNITS = {"year": ("Recency bias", "years", 1.0), "members": ("Popularity bias", "thousand MAL members", 1e-3)}


def bias_lines(variants: dict[str, Any], results: dict[str, Any]) -> list[str]:
    """Per row and category: mean start year (members) of the top 10 minus that of the relevant anime."""
    primary = results["primary"]
    rows = [(n, r) for n, r in ordered(variants, primary) if not r["settings"]["on_baseline"]]
    if not rows or "bias" not in rows[0][1]:
        return []
    lines = []
    for attribute, (title, unit, scale) in BIAS_UNITS.items():
        reference = variants[results["baseline"]]["bias"][attribute]
        groups = [MACRO] + [g for g in reference if g != MACRO]
        lines += [f"## {title}: top 10 minus relevant anime, in {unit}", "",
                  "Per query, the mean of the top 10 minus the mean of its relevant anime (grades 1-2), averaged "
                  "like the primary metric; macro with its group-bootstrap 95% CI. Positive: newer (more popular) "
                  "than what the query asks for. Relevant anime average: "
                  + ", ".join(f"{g} {reference[g]['relevant'] * scale:.1f}" for g in groups) + ".", "",
                  "| variant | class | " + " | ".join(f"{g} [95% CI]" if g == MACRO else g for g in groups) + " |",
                  "|---|---|" + "---:|" * len(groups)]
        for name, record in rows:
            bias = record["bias"][attribute]
            cells = []
            for group in groups:
                if group not in bias:
                    cells.append("")
                    continue
                cell = f"{bias[group]['difference'] * scale:+.1f}"
                if group == MACRO:
                    low, high = (bound * scale for bound in bias[group]["ci"])
                    cell += f" [{low:+.1f}, {high:+.1f}]"
                cells.append(cell)
            lines.append(f"| {name} | {record['class']} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def pairwise_lines(results: dict[str, Any]) -> list[str]:
    pairs = results.get("pairwise") or []
    if not pairs:
        return []
    lines = [f"## The best deployable configurations, pairwise (macro {results['primary']})", "",
             f"Paired {results['stat_test']} tests on query-group values, {results['correction']} over these "
             f"{len(pairs)} pairs. The HNSW and quantization rows run the baseline's search on other indexes and "
             "are compared with exact search above, not here.", "", "| a | b | delta (b - a) | p | adjusted p | |", "|---|---|---:|---:|---:|---|"]
    for test in pairs:
        lines.append(f"| {test['a']} | {test['b']} | {test['delta']:+.4f} | {test['p_value']:.2g} | "
                     f"{test['p_adjusted']:.2g} | {'significant' if test['significant'] else '='} |")
    return lines + [""]


def primary_holdout_lines(variants: dict[str, Any], primary: str) -> list[str]:
    """The primary trained-model comparison: a deployable held-out row searching a fixed vector list against
    its base-model reference (a hint row's gain may come from the oracle's vector choice)."""
    rows = [(name, r) for name, r in variants.items() if r["holdout"] and r["class"] == "deployable"
            and isinstance(r["settings"]["search"]["vectors"], list) and "vs_baseline" in r]
    lines = []
    for name, record in rows:
        test = record["vs_baseline"][MACRO][primary]
        lines.append(f"**Primary trained-model comparison: {name} vs {record['compared_to']}** (fixed vectors "
                     f"{', '.join(record['settings']['search']['vectors'])}): macro {primary} delta {test['delta']:+.4f}, "
                     f"adjusted p={test['p_adjusted']:.2g} ({mark(test)}).")
    return lines + [""] if lines else []


def latency_queries(variants: dict[str, Any]) -> str:
    """How many requests each row's latency was timed on, as the summary states it."""
    counts = sorted({record["latency_queries"] for record in variants.values()})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"


def summary_markdown(results: dict[str, Any], headline: list[str], route: dict[str, Any],
                     pool: dict[str, Any]) -> str:
    variants = results["variants"]
    primary = results["primary"]
    baseline = variants[results["baseline"]]
    deployable = [(n, r) for n, r in ordered(variants, primary) if r["class"] == "deployable" and not r["holdout"]]
    # An on_baseline row is the baseline's search on another index, never "best" (its gains over exact are noise).
    best = next(iter(top_deployable(variants, primary, 1)), None)
    lines = [
        "# Variant summary",
        "",
        f"{baseline['queries']} {results['split']} queries. Primary metric: **{primary} macro-averaged over the "
        f"ranking categories** ({', '.join(results['ranking_categories'])}), each category's mean over its queries; "
        f"95% CIs by a bootstrap over query groups ({results['bootstrap']} resamples, stratified by category: the "
        "phrasings of one need share qrels and are resampled together). Marks against the row in column *vs*: "
        f"▲ better / ▼ worse, significant at alpha={results['alpha']} by a paired two-sided {results['stat_test']} "
        f"test on query-group means (each group's phrasings averaged, weighted as in the macro average), "
        f"{results['correction']}-corrected over the rows tested against the same reference; = no significant "
        "difference. Metrics with -l2 count grade 2 only. Hub rate: the share of the ranking categories' top-10 "
        "lists holding the anime found in most of them. Latency: p95 around the engine call (point ids, named from a "
        f"table: no payload read), one query at a time, on {latency_queries(variants)} of each row's requests (a "
        "seeded sample, the same for rows scored on the same queries), timed with nothing else running; RAM: RSS "
        "growth while the index is open and searched / disk: the index on disk.",
        "",
        f"**Best deployable configuration: {best}** (macro {primary} {primary_cell(variants[best], primary)}; the "
        "HNSW and quantization rows run the baseline's search on other indexes and are read against exact search "
        "below)." if best else "",
        "",
        *routed_headline(variants, primary),
        "## " + CLASS_TITLES["deployable"],
        "",
        *row_table(deployable, results, headline),
        "",
    ]
    for row_class in ("oracle", "metadata"):
        rows = [(n, r) for n, r in ordered(variants, primary) if r["class"] == row_class and not r["holdout"]]
        if rows:
            lines += ["## " + CLASS_TITLES[row_class], "", *row_table(rows, results, headline), ""]
    held_out = [(n, r) for n, r in variants.items() if r["holdout"]]
    if held_out:
        lines += ["## Held-out rows (trained models)", "",
                  "Scored on test-split anime only, judgements and results alike: compare them only with each other.",
                  "", *row_table(held_out, results, headline), "", *primary_holdout_lines(variants, primary)]
    lines += selection_lines(results.get("baseline_selection"), primary)
    lines += fidelity_lines(variants, results["baseline"], primary)
    lines += pairwise_lines(results)
    lines += category_lines(variants, results)
    lines += router_lines(route)
    lines += routed_lines(variants, results)
    lines += template_lines(variants, results, pool)
    lines += model_lines(variants, results)
    lines += coverage_lines(variants, results)
    lines += bias_lines(variants, results)
    lines += ["## Against the reference", ""]
    for name, record in variants.items():
        if "vs_baseline" not in record:
            continue
        test = record["vs_baseline"][MACRO][primary]
        verdict = ("no significant difference" if not test["significant"]
                   else "significantly better" if test["delta"] > 0 else "significantly worse")
        lines.append(f"- {name} vs {record['compared_to']}: macro {primary} {verdict} (delta {test['delta']:+.4f}, "
                     f"effect size {test['effect_size']:+.2f} over {test['groups']} query groups, "
                     f"p={test['p_value']:.2g}, adjusted p={test['p_adjusted']:.2g})")
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
             f"{metrics['train_seconds']:.0f} s of training ({metrics['train_precision']}) on "
             f"{metrics['pairs']['query']} query and "
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
    """Points no other beats with a lower cost and a higher score, by increasing cost."""
    front, best = [], float("-inf")
    for cost, score, name in sorted(points, key=lambda p: (p[0], -p[1])):
        if score > best:
            front.append((cost, score, name))
            best = score
    return front


def tradeoff_figure(rows: list[tuple[str, dict[str, Any]]], primary: str, cost: str, cost_title: str) -> go.Figure:
    """Primary metric (95% CI bars) against one cost, deployable rows: each Pareto-front row is its own
    legend entry (legible however close the points lie), the others are named on hover."""
    points = [(COSTS[cost](r), r["scores"][MACRO][primary], name) for name, r in rows]
    front = pareto_front(points)
    on_front = {name for _, _, name in front}
    records = dict(rows)

    def error(names: list[str]) -> dict[str, Any]:
        scores = {n: records[n]["scores"][MACRO][primary] for n in names}
        return {"type": "data", "symmetric": False, "thickness": 1,
                "array": [records[n]["primary_ci"][1] - scores[n] for n in names],
                "arrayminus": [scores[n] - records[n]["primary_ci"][0] for n in names]}

    hover = "%{text}<br>" + cost_title + " %{x}<br>macro " + primary + " %{y:.4f}<extra></extra>"
    others = [p for p in points if p[2] not in on_front]
    figure = go.Figure()
    figure.add_scatter(x=[p[0] for p in others], y=[p[1] for p in others], text=[p[2] for p in others],
                       mode="markers", name="other deployable rows (hover)", marker={"size": 8, "color": "#9aa5b1"},
                       error_y=error([p[2] for p in others]), hovertemplate=hover)
    figure.add_scatter(x=[p[0] for p in front], y=[p[1] for p in front], mode="lines", name="Pareto front",
                       line={"dash": "dot", "shape": "hv", "color": "#444"}, hoverinfo="skip")
    for x, y, name in front:
        figure.add_scatter(x=[x], y=[y], text=[name], mode="markers", name=name, marker={"size": 11},
                           error_y=error([name]), hovertemplate=hover)
    figure.update_layout(title=f"macro {primary} (95% CI) vs {cost_title}: deployable rows", xaxis_title=cost_title,
                         yaxis_title=f"macro {primary}", height=520, xaxis={"rangemode": "tozero"},
                         yaxis={"rangemode": "tozero"}, legend={"title": {"text": "Pareto front, cheapest first"}})
    return figure


COSTS = {"p95_ms": lambda r: r["latency"]["p95_ms"], "ram_mib": lambda r: r["ram_mib"]}


def category_heatmap(variants: dict[str, Any], results: dict[str, Any]) -> go.Figure:
    primary = results["primary"]
    categories = results["ranking_categories"] + results["query_understanding"]
    rows = ordered(variants, primary)
    figure = go.Figure(go.Heatmap(
        z=[[r["scores"][c][primary] if c in r["scores"] else None for c in categories] for _, r in rows],
        x=[c + (" (filter task)" if c in results["query_understanding"] else "") for c in categories],
        y=[f"{name} [{r['class']}]" for name, r in rows], colorscale="Viridis", zmin=0, zmax=1,
        text=[[f"{r['scores'][c][primary]:.2f}" if c in r["scores"] else "" for c in categories] for _, r in rows],
        texttemplate="%{text}", hovertemplate="%{y}<br>%{x}: %{z:.3f}<extra></extra>"))
    figure.update_layout(title=f"{primary} per category (rows by macro {primary})", height=max(400, 22 * len(rows)),
                         yaxis={"autorange": "reversed"}, margin={"l": 260})
    return figure


def variants_html(results: dict[str, Any]) -> str:
    variants = results["variants"]
    primary = results["primary"]
    deployable = [(n, r) for n, r in ordered(variants, primary) if r["class"] == "deployable" and not r["holdout"]]
    figures = [tradeoff_figure(deployable, primary, "p95_ms", "p95 latency (ms)"),
               tradeoff_figure(deployable, primary, "ram_mib", "RAM growth (MiB)"),
               category_heatmap(variants, results), template_figure(variants, results)]
    figures = [figure for figure in figures if figure is not None]
    body = "".join(figure.to_html(full_html=False, include_plotlyjs=position == 0)
                   for position, figure in enumerate(figures))
    return f"<html><head><meta charset='utf-8'><title>Variants</title></head><body>{body}</body></html>\n"


def write_reports(results: dict[str, Any], headline: list[str], reports_dir: Path,
                  finetune: dict[str, Any], route: dict[str, Any], pool: dict[str, Any]) -> None:
    variants = results["variants"]
    primary = results["primary"]
    summary = summary_markdown(results, headline, route, pool)
    write_text(reports_dir / "summary.md", summary + "\n" + finetune_markdown(finetune))
    write_text(reports_dir / "variants.html", variants_html(results))
    key = f"macro_{primary}".replace("@", "_at_")
    write_csv(reports_dir / "plots" / "quality_latency.csv", [
        {"variant": name, "class": r["class"], "p95_ms": r["latency"]["p95_ms"], "ram_mib": r["ram_mib"],
         key: round(r["scores"][MACRO][primary], 4), "ci_low": round(r["primary_ci"][0], 4),
         "ci_high": round(r["primary_ci"][1], 4), "hub_rate_at_10": round(r["hub_rate_at_10"], 4),
         "recall_vs_exact_at_10": round(r["recall_vs_exact_at_10"], 4)} for name, r in ordered(variants, primary)
    ])
    write_csv(reports_dir / "plots" / "ndcg_per_category.csv", [
        {"variant": name} | {group: round(scores[primary], 4) for group, scores in r["scores"].items()}
        for name, r in variants.items()
    ])
