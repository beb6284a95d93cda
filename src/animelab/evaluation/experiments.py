"""Variant definitions (experiments/*.yaml): what each variant changes relative to the baseline.

A variant is data: index overrides (applied to every priority class), search settings (merged
field by field over the baseline's), and the text model. Adding a variant is one YAML entry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from animelab.encoders.registry import TEXT_ENCODERS
from animelab.errors import LabError, problems
from animelab.fields import TEXT_VECTOR_NAMES, VECTORS_BY_NAME
from animelab.index.query import RRF_K, Tuning
from animelab.io import read_yaml
from animelab.params import IndexParams, QuantizationParams, SparseVectorParams, only
from animelab.sparse.registry import METHOD_OF, MODIFIERS, SET_NAMES

PRIORITY_WEIGHTS = {"high": 3.0, "medium": 2.0, "low": 1.0}
MODELS = ("default", "genre_ft", *TEXT_ENCODERS)
# What a variant varies; the summary and notebooks group variants by it, so a typo would make a group of one.
AXES = ("baseline", "hnsw", "quantization", "vectors", "fusion", "model", "genre_ft", "sparse", "hybrid")


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


class SearchSettings(Tuning):
    """How a variant turns a gold query into a search request (the search-time ``Tuning`` knobs included).

    ``vectors``: ``all`` (every indexed text vector), ``hint`` (the query's own target vectors
    from the gold set), or a list. ``weights``: ``priority`` (high 3, medium 2, low 1) for
    weighted RRF, or none. ``sparse``: sparse vector sets searched beside (or, with
    ``dense: false``, instead of) the dense vectors; ``sparse_weight``: their RRF weight (dense
    lists weigh 1, or their priority weight).
    """

    vectors: Literal["all", "hint"] | list[str] = "all"
    fusion: Literal["rrf", "dbsf"] = "rrf"
    rrf_k: int = Field(default=RRF_K, ge=1)
    weights: Literal["priority"] | None = None
    prefetch_limit: int = Field(default=100, ge=1)
    sparse: Annotated[list[str], only(SET_NAMES, "sparse vector sets")] = []
    dense: bool = True
    sparse_weight: float | None = Field(default=None, gt=0)

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
        if (self.weights or self.sparse_weight) and self.fusion != "rrf":
            raise ValueError("weights apply to RRF fusion only")
        if not self.dense and not self.sparse:
            raise ValueError("dense: false needs at least one sparse vector set")
        return self

    @property
    def tuning(self) -> Tuning:
        return Tuning(**{name: getattr(self, name) for name in Tuning.model_fields})

    def weights_for(self, vectors: list[str]) -> tuple[float, ...] | None:
        if not (self.weights == "priority" or self.sparse_weight) or len(vectors) < 2:
            return None
        return tuple(self.sparse_weight or 1.0 if name in SET_NAMES
                     else PRIORITY_WEIGHTS[VECTORS_BY_NAME[name].priority] if self.weights == "priority" else 1.0
                     for name in vectors)


class Variant(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    axis: Annotated[str, only(AXES, "axes")]
    description: str = ""
    model: Annotated[str, only(MODELS, "models")] = Field(
        default="default", description="default (embed.text_model), genre_ft (its adapter), or a text model kind")
    holdout: bool = Field(default=False, description="score on test anime only (qrels and results): for trained models")
    compare_to: str | None = Field(default=None, description="the variant its significance is tested against")
    index: IndexOverrides = IndexOverrides()
    search: SearchSettings = SearchSettings()

    @model_validator(mode="after")
    def lexical_sets_need_their_model(self) -> "Variant":
        for name in self.search.sparse:
            if METHOD_OF[name].from_text_model and not (self.model in TEXT_ENCODERS
                                                        and TEXT_ENCODERS[self.model].has_sparse):
                lexical = sorted(kind for kind, encoder in TEXT_ENCODERS.items() if encoder.has_sparse)
                raise ValueError(f"sparse set {name} comes from a text model's lexical weights: set model to one "
                                 f"of {lexical}")
        return self

    def index_params(self, params: IndexParams) -> IndexParams:
        """The collection params: the overrides applied, plus the sparse vectors the variant searches."""
        sparse = [SparseVectorParams(name=name, modifier=MODIFIERS[name]) for name in self.search.sparse]
        return self.index.apply(params).model_copy(update={"sparse_vectors": [*params.sparse_vectors, *sparse]})


class Experiments(Strict):
    baseline: Variant
    variants: list[Variant]

    def all(self) -> list[Variant]:
        return [self.baseline, *self.variants]

    def reference_of(self, variant: Variant) -> str | None:
        """The variant this one is tested against: ``compare_to``, else the baseline; a held-out
        variant without ``compare_to`` is itself a reference (held-out scores pair only with held-out ones)."""
        if variant.compare_to is not None:
            return variant.compare_to
        return None if variant.holdout or variant is self.baseline else self.baseline.name


def _variant(path: Path, label: str, item: dict[str, Any]) -> Variant:
    try:
        return Variant.model_validate(item)
    except ValidationError as error:
        raise LabError(f"{path}: {label}: " + "; ".join(problems(error))) from error


def load_experiments(path: Path) -> Experiments:
    """Read the variants file; each variant's search settings are merged over the baseline's."""
    try:
        raw = read_yaml(path)
    except FileNotFoundError as error:
        raise LabError(f"evaluate.experiments: {path} does not exist") from error
    try:
        baseline = _variant(path, "baseline", raw["baseline"] | {"name": "baseline", "axis": "baseline"})
        # A variant's search block lists only what it changes; the rest comes from the baseline.
        variants = [_variant(path, f"variant {item['name']}" if "name" in item else f"variant #{position}",
                             item | {"search": baseline.search.model_dump() | item.get("search", {})})
                    for position, item in enumerate(raw.get("variants", []), start=1)]
    except (KeyError, TypeError) as error:
        raise LabError(f"{path}: invalid experiments: {error}") from error
    names = [v.name for v in [baseline, *variants]]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise LabError(f"{path}: duplicate variant names {duplicates}")
    experiments = Experiments(baseline=baseline, variants=variants)
    by_name = {v.name: v for v in experiments.all()}
    for variant in variants:
        if experiments.reference_of(variant) is None:
            continue
        reference = by_name.get(experiments.reference_of(variant))
        if reference is None or reference.compare_to is not None or reference is variant:
            raise LabError(f"{path}: {variant.name}.compare_to must name a variant compared to nothing else")
        if reference.holdout != variant.holdout:
            # Different qrels (all anime vs test anime): the paired test needs the same judgements.
            raise LabError(f"{path}: {variant.name} and {reference.name} must agree on holdout to be compared")
    return experiments

