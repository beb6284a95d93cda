"""The genre fine-tuning experiment end to end: data from the train split, training with early
stopping on dev, and the synopsis genre probe on test anime for the base and the tuned encoder."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from animelab.corpus.schema import AnimeEntry
from animelab.encoders.registry import text_encoder
from animelab.finetune import probe
from animelab.gold.splits import GoldQuery
from animelab.finetune.lora import AdapterModel, DevSet, TrainingData, TrainingResult, train_adapter
from animelab.finetune.pairs import (
    LeakageGuard, batches, confusable_negatives, genre_text, labels, query_pairs, synopsis_pairs,
)
from animelab.io import write_csv
from animelab.params import Params


def split_hash(anime_splits: dict[str, str], queries: list[GoldQuery]) -> str:
    """Identifies the data split an adapter was trained under (anime and query assignments)."""
    assignment = {"anime": anime_splits, "queries": {q.id: q.split for q in queries}}
    return hashlib.sha256(json.dumps(assignment, sort_keys=True).encode()).hexdigest()


def dev_set(entries: list[AnimeEntry], queries: list[GoldQuery], qrels: dict[str, dict[str, int]],
            anime_splits: dict[str, str], categories: list[str]) -> DevSet:
    """Dev queries of the trained categories, judged against dev anime only."""
    dev_anime = {e.id: genre_text(e) for e in entries if anime_splits.get(e.id) == "dev" and genre_text(e)}
    judged = {}
    for query in queries:
        if query.split == "dev" and query.category in categories:
            grades = {a: g for a, g in qrels.get(query.id, {}).items() if a in dev_anime and g > 0}
            if grades:
                judged[query.id] = grades
    texts = {q.id: q.text for q in queries}
    ids = sorted(dev_anime)
    return DevSet(sorted(judged), [texts[q] for q in sorted(judged)], ids, [dev_anime[a] for a in ids], judged)


@dataclass
class FinetuneOutcome:
    model: AdapterModel
    training: TrainingResult
    summary: dict[str, Any]


def finetune_genre(params: Params, entries: list[AnimeEntry], queries: list[GoldQuery],
                   qrels: dict[str, dict[str, int]], anime_splits: dict[str, str]) -> FinetuneOutcome:
    settings, seed = params.finetune, params.seed
    pairs = (query_pairs(queries, qrels, anime_splits, settings.query_categories, settings.pairs_per_query, "train", seed)
             + synopsis_pairs(entries, anime_splits, "train"))
    train_entries = [e for e in entries if anime_splits.get(e.id) == "train" and genre_text(e)]
    data = TrainingData({e.id: genre_text(e) for e in train_entries}, {e.id: labels(e) for e in train_entries})
    pairs = [p for p in pairs if p.anime_id in data.genre_texts]

    # LoRA's update starts at zero, so before training the adapted model *is* the base model.
    model = AdapterModel(text_encoder(params.embed.text_model), settings.lora, seed)
    pool = sorted(data.genre_texts)
    negatives = confusable_negatives(pool, model.encode([data.genre_texts[a] for a in pool], settings.max_length),
                                     [data.label_sets[a] for a in pool], settings.hard_negative_pool)
    probe_train = [e for e in entries if anime_splits.get(e.id) == "train" and e.synopsis and e.genres]
    probe_test = [e for e in entries if anime_splits.get(e.id) == "test" and e.synopsis and e.genres]
    train_truth, test_truth = probe.label_matrix([e.genres for e in probe_train], [e.genres for e in probe_test])

    def predictions() -> np.ndarray:
        return probe.knn_predictions(model.encode([e.synopsis for e in probe_train], settings.probe_max_length),
                                     train_truth, model.encode([e.synopsis for e in probe_test], settings.probe_max_length),
                                     settings.knn_k)

    base_predictions = predictions()
    training = train_adapter(
        model, lambda epoch: batches(pairs, negatives, settings.batch_size, np.random.default_rng([seed, epoch])),
        data, LeakageGuard(anime_splits, queries), dev_set(entries, queries, qrels, anime_splits,
                                                          settings.query_categories), settings)
    tuned_predictions = predictions()
    history = training.history
    summary = {
        "pairs": {source: sum(p.source == source for p in pairs) for source in ("query", "synopsis")},
        "anime": {split: sum(s == split for s in anime_splits.values()) for split in ("train", "dev", "test")},
        "batches_checked_for_leakage": training.batches_checked,
        "epochs_run": len(history) - 1,
        "best_epoch": training.best_epoch,
        "train_seconds": round(sum(record["seconds"] for record in history), 1),
        "train_precision": "bfloat16 autocast" if settings.autocast else "float32",
        "dev_ndcg_at_10": {"base": history[0]["dev_ndcg_at_10"],
                           "tuned": history[training.best_epoch]["dev_ndcg_at_10"]},
        "synopsis_genre_knn": {
            "k": settings.knn_k, "train_anime": len(probe_train), "test_anime": len(probe_test),
            **{average: probe.paired_f1_test(test_truth, base_predictions, tuned_predictions, average,
                                             settings.permutations, seed) for average in probe.AVERAGES},
        },
        "split_sha256": split_hash(anime_splits, queries),
    }
    return FinetuneOutcome(model, training, summary)


def write_curve(path: Path, history: list[dict[str, float]]) -> None:
    """The training curve as DVC plot data: one row per epoch (0 = before training)."""
    columns = ("epoch", "train_loss", "monitor_loss", "dev_ndcg_at_10")
    write_csv(path, [{column: record[column] for column in columns} for record in history])
