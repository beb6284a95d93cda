"""Completeness: the share of records of each source that fill each field, the share of anime each named
vector exists for (and the fields feeding it), and a weighted completeness score per record."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pydantic import BaseModel

from animelab.corpus.schema import AnimeEntry
from animelab.fields import VECTORS, vector_inputs
from animelab.params import ANIME_FIELDS, DataQualityParams


def present(value: Any) -> bool:
    """A value is present unless it is null, blank, or a container or record whose parts are all absent.
    ``False`` and ``0`` are values."""
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, dict):
        return any(present(item) for item in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return any(present(item) for item in value)
    if isinstance(value, BaseModel):
        return any(present(getattr(value, name)) for name in type(value).model_fields)
    return True


def field_completeness(records: Sequence[BaseModel], fields: Sequence[str]) -> dict[str, float]:
    """Per field, the share of ``records`` in which it is present (NaN for no records)."""
    if not records:
        return {name: float("nan") for name in fields}
    return {name: sum(present(getattr(record, name)) for record in records) / len(records) for name in fields}


def vector_coverage(entries: Sequence[AnimeEntry]) -> dict[str, dict[str, Any]]:
    """Per named vector: how many anime have any input for it (its text or image URLs), their share, and
    the fields that feed it."""
    result = {}
    for spec in VECTORS:
        count = sum(bool(vector_inputs(entry, spec)) for entry in entries)
        result[spec.name] = {"anime": count, "share": count / len(entries) if entries else float("nan"),
                             "modality": spec.modality, "fields": list(spec.sources)}
    return result


def record_scores(entries: Sequence[AnimeEntry], settings: DataQualityParams) -> np.ndarray:
    """Each record's weighted share of present fields: required fields weigh ``required_weight``, every
    other AnimeEntry field ``optional_weight``."""
    required = set(settings.required_fields)
    weights = np.array([settings.required_weight if name in required else settings.optional_weight
                        for name in ANIME_FIELDS])
    filled = np.array([[present(getattr(entry, name)) for name in ANIME_FIELDS] for entry in entries], dtype=float)
    return filled @ weights / weights.sum() if len(entries) else np.zeros(0)


QUANTILES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0)


def distribution(values: np.ndarray) -> dict[str, Any]:
    """Mean and quantiles of a score, and its histogram over ten bins of [0, 1]."""
    counts, edges = np.histogram(values, bins=10, range=(0.0, 1.0))
    return {"mean": float(values.mean()), "quantiles": {f"p{round(q * 100)}": float(np.quantile(values, q))
                                                        for q in QUANTILES},
            "histogram": {"edges": [round(float(edge), 2) for edge in edges], "counts": counts.tolist()}}


def completeness_report(sources: dict[str, Sequence[BaseModel]], corpus: Sequence[AnimeEntry],
                        settings: DataQualityParams) -> dict[str, Any]:
    """Field completeness per source (every field of the source's own record type), vector coverage and
    record scores over the corpus (the anime every later stage reads), with their distribution per origin."""
    scores = record_scores(corpus, settings)
    origins = sorted({entry.origin for entry in corpus})
    per_origin = {origin: distribution(scores[[i for i, e in enumerate(corpus) if e.origin == origin]])
                  for origin in origins}
    lowest = sorted(zip(scores.tolist(), (entry.id for entry in corpus)))[:settings.examples]
    return {
        "fields": {name: {"records": len(records),
                          "completeness": field_completeness(records, list(type(records[0]).model_fields))
                          if records else {}}
                   for name, records in sources.items()},
        "vectors": vector_coverage(corpus),
        "record_score": {"corpus": distribution(scores), "per_origin": per_origin,
                         "lowest": [{"id": anime, "score": round(score, 4)} for score, anime in lowest],
                         "required_fields": settings.required_fields},
    }
