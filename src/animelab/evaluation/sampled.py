"""Evaluation on stratified samples of the corpus: would a 10% or 25% sample have given the full run's
verdicts? The plan's path to catalogues too large to evaluate whole.

Each sample restricts judgements and results to its anime (as the held-out view does: searches filtered
to them, queries left without a relevant anime dropped). The baseline chosen by the full run and every
deployable exact-search row tested against it are scored on it, with the same group-level test and correction; a
row's verdict (better / worse / no significant difference) is compared with the full run's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau

from animelab.corpus.schema import AnimeEntry
from animelab.dataquality.sampling import stratified_sample
from animelab.evaluation import scoring
from animelab.evaluation.experiments import Experiments, Variant
from animelab.evaluation.models import model_source
from animelab.evaluation.report import mark
from animelab.evaluation.runner import Evaluation, prepare_rows, check_variants, score_variant
from animelab.evaluation.workers import map_in_workers
from animelab.gold.splits import GoldSplit
from animelab.params import Params

log = logging.getLogger(__name__)


def as_evaluated(experiments: Experiments, results: dict[str, Any]) -> Experiments:
    """The experiments on the baseline the full run chose (its results' ``baseline_selection``)."""
    chosen = (results.get("baseline_selection") or {}).get("chosen")
    if chosen is None:
        return experiments
    return experiments.with_baseline(next(c for c in experiments.candidates if c.name == chosen))


def sampled_rows(experiments: Experiments, results: dict[str, Any]) -> tuple[Variant, list[Variant]]:
    """The full run's baseline and the deployable exact-search rows it tested against it (ANN rows would need
    an index per sample; oracle and metadata rows are upper bounds, not configurations to choose between)."""
    experiments = as_evaluated(experiments, results)
    records = results["variants"]
    rows = [v for v in experiments.variants if v.name in records and v.search.exact and not v.holdout
            and v.row_class == "deployable" and records[v.name].get("compared_to") == results["baseline"]]
    return experiments.baseline, rows


def verdicts(results: dict[str, Any], names: list[str], primary: str) -> dict[str, str]:
    return {name: mark(results["variants"][name]["vs_baseline"][scoring.MACRO][primary]) for name in names}


def sample_view(split: GoldSplit, anime: list[str], query_understanding: list[str]) -> tuple[GoldSplit, str | None]:
    """The sample's view of ``split``, and why it cannot be scored (None when it can)."""
    view = split.restricted(frozenset(anime))
    if not {q.category for q in view.queries} - set(query_understanding):
        return view, "no query of a ranking category keeps a relevant anime in the sample"
    return view, None


def sample_summary(params: Params, baseline: Variant, rows: list[Variant], view: GoldSplit,
                   values: dict[str, scoring.PerQuery], full: dict[str, str], results: dict[str, Any]) -> dict[str, Any]:
    """The baseline and ``rows`` scored on the sample's ``view`` (``values``, per row): scores, verdicts, and their
    agreement with the full run (``full`` verdicts, ``results`` scores)."""
    settings, primary = params.evaluate, params.evaluate.primary
    design = scoring.Design.of_split(view, settings)
    scores = {name: design.score(value[primary], scoring.MACRO) for name, value in values.items()}
    names = [row.name for row in rows]
    tests = scoring.significance(values[baseline.name], {name: values[name] for name in names}, design,
                                 [scoring.MACRO], settings.stat_test, settings.alpha, settings.correction, params.seed)
    sample = {name: mark(tests[name][scoring.MACRO][primary]) for name in names}
    significant = [name for name in names if full[name] != "="]
    tau = kendalltau([results["variants"][name]["scores"][scoring.MACRO][primary] for name in names],
                     [scores[name] for name in names])
    return {
        "baseline": {"score": scores[baseline.name],
                     "ci": design.bootstrap(values[baseline.name][primary], scoring.MACRO, settings.bootstrap,
                                            params.seed)},
        "agreement": float(np.mean([sample[name] == full[name] for name in names])) if names else float("nan"),
        # Of the full run's significant differences, the share the sample finds too (same direction).
        "significant_kept": (float(np.mean([sample[name] == full[name] for name in significant]))
                             if significant else float("nan")),
        "kendall_tau": float(tau.statistic),
        "verdicts": {name: {"full": full[name], "sample": sample[name],
                            "score": scores[name]} for name in names}}


def evaluate_samples(params: Params, experiments: Experiments, results: dict[str, Any], split: GoldSplit,
                     entries: list[AnimeEntry], embeddings_dir: Path, cache_dir: Path,
                     sparse_dir: Path | None, bank: GoldSplit | None = None,
                     routes: dict[str, list[str]] | None = None) -> dict[str, Any]:
    primary, sampling = params.evaluate.primary, params.data_quality.sample_evaluation
    baseline, rows = sampled_rows(experiments, results)
    check_variants(params, experiments)
    # Each row's own model, on_baseline rows included: they search the chosen baseline's lists.
    sources = {row.name: model_source(params, row) for row in [baseline, *rows]}
    rows = [row for row in rows if not isinstance(sources[row.name], str)]
    names = [row.name for row in rows]
    full = verdicts(results, names, primary)
    workers = params.evaluate.workers
    evaluation = Evaluation(params, entries, embeddings_dir, cache_dir, sparse_dir, bank, routes)
    scored_rows = [baseline, *rows]
    prepare_rows(evaluation, [(row, sources[row.name], split) for row in scored_rows], workers)
    draws = [(fraction, params.seed + offset) for fraction in sampling.fractions for offset in range(sampling.seeds)]
    views = [sample_view(split, stratified_sample(entries, fraction, params.data_quality.strata, seed),
                         params.evaluate.query_understanding) for fraction, seed in draws]
    # One task per sample and row: the samples' sizes differ, rows balance the workers.
    tasks = [(row, sources[row.name], split, view, [primary]) for view, skipped in views if skipped is None
             for row in scored_rows]
    log.info("corpus samples: %d, %d rows scored over %d worker(s)", len(draws), len(tasks), workers)
    row_values = iter(map_in_workers(evaluation, score_variant, tasks, workers))
    samples = []
    for (fraction, seed), (view, skipped) in zip(draws, views, strict=True):
        summary = {"fraction": fraction, "seed": seed, "anime": len(view.restricted_to), "queries": len(view.queries)}
        if skipped is not None:
            samples.append(summary | {"skipped": skipped})
            continue
        values = {row.name: next(row_values) for row in scored_rows}
        samples.append(summary | sample_summary(params, baseline, rows, view, values, full, results))
    scored = [s for s in samples if "skipped" not in s]
    by_fraction = {str(f): {"samples": len([s for s in scored if s["fraction"] == f])}
                   | {key: float(np.nanmean([s[key] for s in scored if s["fraction"] == f] or [np.nan]))
                      for key in ("agreement", "significant_kept", "kendall_tau")}
                   for f in sampling.fractions}
    full_baseline = results["variants"][results["baseline"]]
    return {"primary": primary, "baseline": baseline.name, "rows": names,
            "full_baseline": {"score": full_baseline["scores"][scoring.MACRO][primary], "ci": full_baseline["primary_ci"],
                              "queries": len(split.queries)},
            "full_verdicts": full, "by_fraction": by_fraction, "samples": samples}


def sample_markdown(report: dict[str, Any]) -> str:
    primary, full = report["primary"], report["full_baseline"]
    lines = ["# Evaluation on stratified corpus samples", "",
             f"Would a sample of the corpus have told the same? Each sample keeps a stratified share of the anime "
             f"(genre, year, popularity, studio); searches and judgements are restricted to it and queries left "
             f"without a relevant anime are dropped. The baseline and the {len(report['rows'])} deployable exact-search rows "
             f"tested against it are re-scored and re-tested (same group-level test and correction). Agreement: "
             f"the share of rows whose verdict (▲ / ▼ / =) against the baseline matches the full run's; "
             f"significant kept: of the full run's ▲ / ▼ rows, the share the sample finds too; Kendall tau: the "
             f"rows' macro {primary} order, sample vs full.", "",
             f"Full run: baseline macro {primary} {full['score']:.4f} [{full['ci'][0]:.3f}, {full['ci'][1]:.3f}] "
             f"on {full['queries']} queries.", "",
             f"| fraction | seed | anime | queries | baseline macro {primary} [95% CI] | verdict agreement | "
             "significant kept | Kendall tau |", "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    scored = [s for s in report["samples"] if "skipped" not in s]
    for sample in report["samples"]:
        if "skipped" in sample:
            lines.append(f"| {sample['fraction']} | {sample['seed']} | {sample['anime']} | {sample['queries']} | "
                         f"skipped: {sample['skipped']} | | | |")
            continue
        low, high = sample["baseline"]["ci"]
        lines.append(f"| {sample['fraction']} | {sample['seed']} | {sample['anime']} | {sample['queries']} | "
                     f"{sample['baseline']['score']:.4f} [{low:.3f}, {high:.3f}] | {sample['agreement']:.2f} | "
                     f"{sample['significant_kept']:.2f} | {sample['kendall_tau']:.2f} |")
    lines += ["", "Mean per fraction: " + "; ".join(f"{fraction}: agreement {part['agreement']:.2f}, significant "
                                                      f"kept {part['significant_kept']:.2f}, tau {part['kendall_tau']:.2f}"
                                                      for fraction, part in report["by_fraction"].items()), "",
              "| row | full | " + " | ".join(f"{s['fraction']}/{s['seed']}" for s in scored) + " |",
              "|---|---|" + "---|" * len(scored)]
    for name in report["rows"]:
        lines.append(f"| {name} | {report['full_verdicts'][name]} | "
                     + " | ".join(s["verdicts"][name]["sample"] for s in scored) + " |")
    return "\n".join(lines) + "\n"
