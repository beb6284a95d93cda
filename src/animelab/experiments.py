"""Variant definitions (experiments/*.yaml): what each variant changes relative to the baseline.

A variant is data: index overrides (applied to every priority class), search settings (merged
field by field over the baseline's), and the text model. Adding a variant is one YAML entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from animelab.errors import LabError
from animelab.fields import TEXT_VECTOR_NAMES, VECTORS_BY_NAME
from animelab.index.query import Tuning
from animelab.params import IndexParams, QuantizationParams

PRIORITY_WEIGHTS = {"high": 3.0, "medium": 2.0, "low": 1.0}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HnswOverride(Strict):
    m: int | None = Field(default=None, ge=0, le=128)
    ef_construct: int | None = Field(default=None, ge=4, le=4096)


class IndexOverrides(Strict):
    hnsw: HnswOverride = HnswOverride()
    quantization: QuantizationParams | None = None

    def apply(self, params: IndexParams) -> IndexParams:
        """``params`` with these overrides on every priority class."""
        priorities = {}
        for name, settings in params.priorities.items():
            hnsw = settings.hnsw.model_copy(update=self.hnsw.model_dump(exclude_none=True))
            update = {"hnsw": hnsw} | ({"quantization": self.quantization} if self.quantization else {})
            priorities[name] = settings.model_copy(update=update)
        return params.model_copy(update={"priorities": priorities})


class SearchSettings(Strict):
    """How a variant turns a gold query into a search request.

    ``vectors``: ``all`` (every indexed text vector), ``hint`` (the query's own target vectors
    from the gold set), or a list. ``weights``: ``priority`` (high 3, medium 2, low 1) for
    weighted RRF, or none.
    """

    vectors: Literal["all", "hint"] | list[str] = "all"
    fusion: Literal["rrf", "dbsf"] = "rrf"
    rrf_k: int = Field(default=60, ge=1)
    weights: Literal["priority"] | None = None
    prefetch_limit: int = Field(default=100, ge=1)
    hnsw_ef: int | None = Field(default=None, ge=1)
    exact: bool = False
    quantization_ignore: bool = False
    rescore: bool | None = None
    oversampling: float | None = Field(default=None, ge=1.0)

    @field_validator("vectors")
    @classmethod
    def text_vectors_only(cls, vectors: str | list[str]) -> str | list[str]:
        if isinstance(vectors, list):
            unknown = sorted(set(vectors) - set(TEXT_VECTOR_NAMES))
            if unknown:
                raise ValueError(f"unknown text vectors {unknown}")
        return vectors

    @model_validator(mode="after")
    def weights_need_rrf(self) -> "SearchSettings":
        if self.weights and self.fusion != "rrf":
            raise ValueError("weights apply to RRF fusion only")
        return self

    @property
    def tuning(self) -> Tuning:
        return Tuning(hnsw_ef=self.hnsw_ef, exact=self.exact, quantization_ignore=self.quantization_ignore,
                      rescore=self.rescore, oversampling=self.oversampling)

    def weights_for(self, vectors: list[str]) -> tuple[float, ...] | None:
        if self.weights != "priority" or len(vectors) < 2:
            return None
        return tuple(PRIORITY_WEIGHTS[VECTORS_BY_NAME[name].priority] for name in vectors)


class Variant(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    axis: str
    description: str = ""
    model: Literal["default", "bge-m3"] = "default"
    index: IndexOverrides = IndexOverrides()
    search: SearchSettings = SearchSettings()


class Experiments(Strict):
    baseline: Variant
    variants: list[Variant]

    def all(self) -> list[Variant]:
        return [self.baseline, *self.variants]


def load_experiments(path: Path) -> Experiments:
    """Read the variants file; each variant's search settings are merged over the baseline's."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise LabError(f"evaluate.experiments: {path} does not exist") from error
    try:
        baseline = Variant.model_validate(raw["baseline"] | {"name": "baseline", "axis": "baseline"})
        # A variant's search block lists only what it changes; the rest comes from the baseline.
        variants = [Variant.model_validate(item | {"search": baseline.search.model_dump() | item.get("search", {})})
                    for item in raw.get("variants", [])]
    except (ValidationError, KeyError, TypeError) as error:
        raise LabError(f"{path}: invalid experiments: {error}") from error
    names = [v.name for v in [baseline, *variants]]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise LabError(f"{path}: duplicate variant names {duplicates}")
    return Experiments(baseline=baseline, variants=variants)

