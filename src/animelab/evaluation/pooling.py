"""TREC-style pooling: the union of several rows' top results on some queries, judged by hand afterwards.

The pool fills the holes of predicate-made qrels: an anime a row ranks high that no predicate graded is read
and judged (gold/paraphrase_judgements.jsonl). The rows: the full run's best deployable ones, the best oracle
row, and any named besides (a row new since that run).
"""

from __future__ import annotations

from typing import Any

from animelab.errors import LabError
from animelab.evaluation import scoring
from animelab.evaluation.experiments import Experiments, Variant
from animelab.evaluation.models import model_source
from animelab.evaluation.runner import Evaluation, run_variant
from animelab.evaluation.sampled import as_evaluated
from animelab.gold.splits import GoldSplit


def pool_rows(experiments: Experiments, results: dict[str, Any], deployable: int, also: list[str]) -> list[Variant]:
    """The full run's ``deployable`` best deployable rows, its best oracle row, and the ``also`` rows."""
    records, primary = results["variants"], results["primary"]
    chosen = (results.get("baseline_selection") or {}).get("chosen")
    experiments = as_evaluated(experiments, results)
    oracle = sorted((name for name, r in records.items() if r["class"] == "oracle" and not r["holdout"]),
                    key=lambda name: -records[name]["scores"][scoring.MACRO][primary])[:1]
    names = [*scoring.top_deployable(records, primary, deployable), *oracle, *also]
    by_name = {variant.name: variant for variant in experiments.all()}
    unknown = sorted(set(names) - set(by_name))
    if unknown:
        raise ValueError(f"rows {unknown} are not variants of the experiments file")
    rows = [by_name[name] for name in dict.fromkeys(names)]
    # The pool names the baseline by its candidate, which stays meaningful after a later run chooses another.
    return [row.model_copy(update={"name": chosen}) if chosen and row.name == experiments.baseline.name else row
            for row in rows]


def pool(evaluation: Evaluation, rows: list[Variant], evaluated: GoldSplit, split: GoldSplit,
         depth: int) -> list[dict[str, Any]]:
    """Per query of ``split``, every anime in some row's top ``depth``: the rows that put it there and its grade
    so far (None: unjudged, to be read and judged). ``split`` holds queries of ``evaluated``, the split the
    evaluate run scored: its queries are encoded together as that run encoded them, so each row's top ``depth``
    is the run's (under bfloat16 a query's vector moves with the batch it is encoded in)."""
    titles = {entry.id: entry.title for entry in evaluation.entries}
    judged = split.judged
    pooled: dict[str, dict[str, list[str]]] = {query.id: {} for query in split.queries}
    for row in rows:
        source = model_source(evaluation.params, row)
        if isinstance(source, str):
            raise LabError(f"pool row {row.name} cannot run here: {source}")
        ranked = run_variant(evaluation, row, source, evaluated, split).ranked
        for query in split.queries:
            for anime in ranked.get(query.id, [])[:depth]:
                pooled[query.id].setdefault(anime, []).append(row.name)
    texts = {query.id: query.text for query in split.queries}
    return [{"query": query, "text": texts[query], "anime": anime, "title": titles[anime], "rows": found,
             "grade": judged.get(query, {}).get(anime)}
            for query, anime_rows in pooled.items() for anime, found in anime_rows.items()]
