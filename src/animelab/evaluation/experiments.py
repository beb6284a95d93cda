"""Variant definitions (experiments/*.yaml): what each variant changes relative to the baseline.

A variant is data: index overrides (applied to every priority class), search settings (merged
field by field over the file's ``search_defaults``, or over the baseline's for ``on_baseline``
rows), the text model and its row class. Adding a variant is one YAML entry. The baseline is
one variant, or the best of several ``candidates`` on a tuning split (``choose_on``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from animelab.encoders.registry import TEXT_ENCODERS
from animelab.errors import LabError, problems
from animelab.fields import SET_SEPARATOR, TEXT_VECTOR_NAMES, VECTORS_BY_NAME, base_vector, vector_set
from animelab.gold.generators import RELEVANCE_FIELDS
from animelab.index.query import RRF_K, Tuning
from animelab.io import read_yaml
from animelab.params import IndexParams, QuantizationParams, SparseVectorParams, only
from animelab.sparse.registry import LABEL_FIELDS, METHOD_OF, MODIFIERS, SET_NAMES

PRIORITY_WEIGHTS = {"high": 3.0, "medium": 2.0, "low": 1.0}
MODELS = ("default", "genre_ft", *TEXT_ENCODERS)
# A cosine score threshold.
Score = Annotated[float, Field(gt=-1, lt=1)]
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

    ``vectors``: ``all`` (every indexed text vector), ``covered`` (those on at least
    ``evaluate.min_vector_coverage`` of the corpus), ``hint`` (the query's own target vectors from
    the gold set: an oracle), ``routed`` (the vectors the route stage's router predicts from the query text:
    deployable), or a list. ``weights``: ``priority`` (high 3, medium 2, low 1) or
    ``coverage`` (each list's share of the corpus) for weighted RRF, or none. ``extra_vectors``: vectors of
    other embedding sets (``use:title_vector``: title_vector by embedding set ``use``'s model) searched
    beside them, each list with the query encoded by its set's model: a multi-model hybrid;
    ``extra_score_threshold``: their prefetches' least score (each model has its own score scale), one
    for all or one per extra vector (a list absent from the mapping keeps every score).
    ``low_coverage_threshold``: the least score a prefetch of a vector below the coverage minimum
    keeps, so a vector few anime have adds only the anime it really matches; ``score_threshold``: the
    same for the other dense vectors. ``hub_penalty``: each result's fused score less this times the anime's hub
    share, the share of a query log's top-10 lists that hold it under the same search without the penalty
    (``evaluate.query_bank``'s query texts, no judgements): anime that come up for every query sink, results
    re-ranked from twice the limit. ``sparse``: sparse vector sets searched beside (or, with
    ``dense: false``, instead of) the dense vectors; ``sparse_weight``: their RRF weight (dense lists
    weigh 1, or their priority/coverage weight).
    """

    vectors: Literal["all", "covered", "hint", "routed"] | list[str] = "all"
    extra_vectors: list[str] = []
    extra_score_threshold: Score | dict[str, Score] | None = None
    fusion: Literal["rrf", "dbsf"] = "rrf"
    rrf_k: int = Field(default=RRF_K, ge=1)
    weights: Literal["priority", "coverage"] | None = None
    low_coverage_threshold: float | None = Field(default=None, gt=-1, lt=1)
    score_threshold: float | None = Field(default=None, gt=-1, lt=1)
    prefetch_limit: int = Field(default=100, ge=1)
    sparse: Annotated[list[str], only(SET_NAMES, "sparse vector sets")] = []
    dense: bool = True
    sparse_weight: float | None = Field(default=None, gt=0)
    hub_penalty: float | None = Field(default=None, gt=0)

    @field_validator("vectors")
    @classmethod
    def text_vectors_only(cls, vectors: str | list[str]) -> str | list[str]:
        if isinstance(vectors, list):
            unknown = sorted(set(vectors) - set(TEXT_VECTOR_NAMES))
            if unknown:
                raise ValueError(f"unknown text vectors {unknown}")
        return vectors

    @field_validator("extra_vectors")
    @classmethod
    def qualified_text_vectors(cls, names: list[str]) -> list[str]:
        bad = [name for name in names if not vector_set(name) or base_vector(name) not in TEXT_VECTOR_NAMES]
        if bad:
            raise ValueError(f"extra vectors {bad} are not <embedding set>{SET_SEPARATOR}<text vector> names")
        return names

    @model_validator(mode="after")
    def thresholds_name_extra_vectors(self) -> "SearchSettings":
        if isinstance(self.extra_score_threshold, dict):
            unknown = sorted(set(self.extra_score_threshold) - set(self.extra_vectors))
            if unknown:
                raise ValueError(f"extra_score_threshold names {unknown}, which extra_vectors does not list")
        return self

    def extra_threshold(self, name: str) -> float | None:
        if isinstance(self.extra_score_threshold, dict):
            return self.extra_score_threshold.get(name)
        return self.extra_score_threshold

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

    def weights_for(self, vectors: list[str], coverage: dict[str, float] | None = None) -> tuple[float, ...] | None:
        """One RRF weight per list, or None for plain RRF; ``coverage``: each dense vector's corpus share."""
        if not (self.weights or self.sparse_weight) or len(vectors) < 2:
            return None
        if self.weights == "coverage" and coverage is None:
            raise ValueError("coverage weights need each vector's corpus coverage")

        def dense_weight(name: str) -> float:
            if self.weights == "priority":
                return PRIORITY_WEIGHTS[VECTORS_BY_NAME[base_vector(name)].priority]
            return coverage[name] if self.weights == "coverage" else 1.0

        return tuple(self.sparse_weight or 1.0 if name in SET_NAMES else dense_weight(name) for name in vectors)


def coinciding_categories(search: SearchSettings) -> list[str]:
    """The categories whose relevance rule reads a label field that the row's sparse sets are built from."""
    fields = set().union(*(LABEL_FIELDS[name] for name in search.sparse))
    return sorted(category for category, rule in RELEVANCE_FIELDS.items() if rule & fields)


def row_class(search: SearchSettings) -> str:
    """What a row reads besides the query text and the index: gold hints, or the relevance-defining labels."""
    if search.vectors == "hint":
        return "oracle"
    return "metadata" if any(LABEL_FIELDS[name] for name in search.sparse) else "deployable"


class Variant(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    axis: Annotated[str, only(AXES, "axes")]
    # deployable: only the query text and the index; oracle: reads gold-file hints (vectors: hint);
    # metadata: searches a sparse set built from the label fields that define some categories' relevance.
    row_class: Literal["deployable", "oracle", "metadata"] = Field(alias="class")
    description: str = ""
    on_baseline: bool = Field(default=False, description="search settings merged over the (chosen) baseline's")
    model: Annotated[str, only(MODELS, "models")] = Field(
        default="default", description="default (embed.text_model), genre_ft (its adapter), or a text model kind")
    holdout: bool = Field(default=False, description="score on test anime only (qrels and results): for trained models")
    compare_to: str | None = Field(default=None, description="the variant its significance is tested against")
    index: IndexOverrides = IndexOverrides()
    search: SearchSettings = SearchSettings()

    @model_validator(mode="after")
    def class_is_what_it_reads(self) -> "Variant":
        derived = row_class(self.search)
        if self.row_class != derived:
            reason = {"oracle": "it takes each query's vectors from the gold file (vectors: hint)",
                      "metadata": f"it searches {[s for s in self.search.sparse if LABEL_FIELDS[s]]}, built from "
                                  "the label fields that define relevance",
                      "deployable": "it reads only the query text and the index"}[derived]
            raise ValueError(f"class is {self.row_class!r} but must be {derived!r}: {reason}")
        return self

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
        """The collection params: the overrides applied, plus the sparse vectors the variant searches.

        Graphs are built only where the row walks them, as its deployment would: an exact row's collection
        has none (m 0: the engine scans; the same lists, tested), and an approximate row that lists its vectors
        indexes only those (their graphs are not the same as beside the other vectors': on title and genre,
        238 of 300 top-100 lists equal). The saving is most of a fresh clone's variant index builds."""
        sparse = [SparseVectorParams(name=name, modifier=MODIFIERS[name]) for name in self.search.sparse]
        vectors = params.vectors
        if not self.search.exact and isinstance(self.search.vectors, list):
            vectors = [name for name in params.vectors if name in self.search.vectors]
        applied = self.index.apply(params)
        if self.search.exact:
            applied = IndexOverrides(hnsw=HnswOverride(m=0)).apply(applied)
        return applied.model_copy(update={"sparse_vectors": [*params.sparse_vectors, *sparse],
                                          "vectors": [*vectors, *self.search.extra_vectors]})


class Experiments(Strict):
    baseline: Variant
    variants: list[Variant]
    candidates: list[Variant] = Field(description="the baselines chosen among; [baseline] for a fixed one")
    choose_on: Literal["train", "dev"] | None = None
    # The on_baseline rows' own search keys, re-merged over the chosen baseline's settings.
    on_baseline_search: dict[str, dict[str, Any]] = {}

    def all(self) -> list[Variant]:
        return [self.baseline, *self.variants]

    def with_baseline(self, candidate: Variant) -> "Experiments":
        """These experiments on ``candidate`` as the baseline (named ``baseline``)."""
        described = (f"{candidate.name} (chosen on {self.choose_on}): {candidate.description}" if self.choose_on
                     else candidate.description)
        baseline = candidate.model_copy(update={"name": BASELINE, "axis": BASELINE, "description": described})
        variants = [variant.model_copy(update={"search": SearchSettings.model_validate(
                        baseline.search.model_dump() | self.on_baseline_search[variant.name])})
                    if variant.on_baseline else variant for variant in self.variants]
        return self.model_copy(update={"baseline": baseline, "variants": variants})

    def reference_of(self, variant: Variant) -> str | None:
        """The variant this one is tested against: ``compare_to``, else the baseline; a held-out
        variant without ``compare_to`` is itself a reference (held-out scores pair only with held-out ones)."""
        if variant.compare_to is not None:
            return variant.compare_to
        return None if variant.holdout or variant is self.baseline else self.baseline.name


BASELINE = "baseline"


def _variant(path: Path, label: str, item: dict[str, Any]) -> Variant:
    try:
        return Variant.model_validate(item)
    except ValidationError as error:
        raise LabError(f"{path}: {label}: " + "; ".join(problems(error))) from error


def _label(item: Any, position: int, kind: str = "variant") -> str:
    return f"{kind} {item['name']}" if isinstance(item, dict) and "name" in item else f"{kind} #{position}"


def load_experiments(path: Path) -> Experiments:
    """Read the variants file: ``search_defaults`` under every row's search settings, the baseline's
    under ``on_baseline`` rows'. A baseline with ``candidates`` is chosen later (``with_baseline``)."""
    try:
        raw = read_yaml(path)
    except FileNotFoundError as error:
        raise LabError(f"evaluate.experiments: {path} does not exist") from error
    try:
        defaults = raw.get("search_defaults") or {}
        spec = raw["baseline"]
        if "candidates" in spec:
            unknown = sorted(set(spec) - {"candidates", "choose_on"})
            if unknown or not spec["candidates"]:
                raise LabError(f"{path}: baseline: a choice is {{choose_on, candidates (at least one)}}, "
                               f"not {unknown or 'no candidates'}")
            candidates = [_variant(path, _label(item, position, "baseline candidate"),
                                   {"axis": BASELINE} | item | {"search": defaults | item.get("search", {})})
                          for position, item in enumerate(spec["candidates"], start=1)]
            choose_on = spec.get("choose_on", "dev")
            if choose_on not in ("train", "dev"):
                raise LabError(f"{path}: baseline.choose_on must be train or dev (the test split only scores), "
                               f"not {choose_on!r}")
        else:
            candidates = [_variant(path, BASELINE, spec | {"name": BASELINE, "axis": BASELINE,
                                                           "search": defaults | spec.get("search", {})})]
            choose_on = None
        items = raw.get("variants") or []
        overrides = {item["name"]: item.get("search", {}) for item in items
                     if isinstance(item, dict) and item.get("on_baseline") and "name" in item}
        variants = [_variant(path, _label(item, position),
                             item | {"search": (candidates[0].search.model_dump() if item.get("on_baseline")
                                                else defaults) | item.get("search", {})})
                    for position, item in enumerate(items, start=1)]
    except (KeyError, TypeError, AttributeError) as error:
        raise LabError(f"{path}: invalid experiments: {error}") from error
    undeployable = [c.name for c in candidates if c.row_class != "deployable"]
    if undeployable:
        raise LabError(f"{path}: baseline candidates {undeployable} are not deployable: a baseline is what a team "
                       "could ship")
    names = [v.name for v in [*candidates, *variants]]
    duplicates = sorted({n for n in names if names.count(n) > 1} | ({BASELINE} & set(names) if choose_on else set()))
    if duplicates:
        raise LabError(f"{path}: duplicate variant names {duplicates}")
    experiments = Experiments(baseline=candidates[0], variants=variants, candidates=candidates, choose_on=choose_on,
                              on_baseline_search=overrides)
    if choose_on is None:
        experiments = experiments.with_baseline(candidates[0])
    by_name = {v.name: v for v in experiments.all()} | {BASELINE: experiments.baseline}
    for variant in variants:
        reference_name = experiments.reference_of(variant)
        if reference_name is None:
            continue
        reference = by_name.get(reference_name)
        if reference is None or reference.compare_to is not None or reference is variant:
            raise LabError(f"{path}: {variant.name}.compare_to must name a variant compared to nothing else")
        if reference.holdout != variant.holdout:
            # Different qrels (all anime vs test anime): the paired test needs the same judgements.
            raise LabError(f"{path}: {variant.name} and {reference.name} must agree on holdout to be compared")
    return experiments
