"""params.yaml, validated once: every stage gets its own typed section from ``load_params``.

Unknown keys are errors (a typo must not silently fall back to a default), and every error
names the offending key as a dotted path, e.g. ``embed.text_model.max_length``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator,
                      model_validator)

from animelab.corpus.schema import AnimeEntry
from animelab.encoders.registry import TEXT_ENCODERS
from animelab.encoders.text import FlagTextEncoder, native_bf16
from animelab.errors import LabError, problems
from animelab.fields import VECTOR_NAMES, VECTORS_BY_NAME, Priority
from animelab.io import read_yaml
from animelab.payload import PAYLOAD_FIELDS


GOLD_CATEGORIES = ("facet", "studio", "temporal", "known_item", "cross_lingual", "similar", "curated", "paraphrase")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(Section):
    """The shared data files, named relative to ``root``. A queued experiment (``dvc exp run --queue``)
    runs in a copy of the repository under ``.dvc/tmp/exps``, where a relative root does not resolve:
    queue it with ``-S data.root=<absolute path>``."""

    root: Path
    mal_seasons: Path
    enriched: Path
    bangumi: Path

    def path(self, key: Literal["mal_seasons", "enriched", "bangumi"]) -> Path:
        return self.root / getattr(self, key)


class IngestParams(Section):
    max_quarantined_share: float = Field(ge=0, le=1)


def only(allowed: Iterable[str], what: str) -> AfterValidator:
    """A validator refusing names (a name, list items or dict keys) outside ``allowed``, listing the known ones."""
    known = list(allowed)

    def check(values: Any) -> Any:
        unknown = sorted({values} - set(known) if isinstance(values, str) else set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown {what} {unknown}; known: {known}")
        return values

    return AfterValidator(check)


class TextModelParams(Section):
    kind: Annotated[str, only(TEXT_ENCODERS, "text model kinds")]
    path: Path | None = Field(default=None, description="local model directory; null = the kind's packaged model")
    max_length: int = Field(ge=16, le=8192)
    batch_size: int = Field(ge=1)
    query_instruction: str = ""
    device: str = "cpu"
    use_fp16: bool = False
    adapter: Path | None = Field(default=None, description="LoRA adapter directory merged into the model (peft)")
    threads: int = Field(default=1, ge=1, description="CPU threads of a numpy model (use-multilingual)")
    bf16_autocast: bool | Literal["auto"] = Field(
        default=False, description="torch kinds on the CPU: infer under bfloat16 autocast; auto: only where the CPU "
                                   "multiplies bfloat16 natively (AMX or AVX512-BF16: 2.5x float32 there, 5x slower "
                                   "without); bench_embed measures speed and cosine to float32")

    def autocast_applies(self) -> bool:
        kind = TEXT_ENCODERS[self.kind]
        # A lexical head's bfloat16 output is more than FlagEmbedding's numpy conversion takes.
        return issubclass(kind, FlagTextEncoder) and not kind.has_sparse and self.device == "cpu" and not self.use_fp16

    @model_validator(mode="after")
    def autocast_on_cpu(self) -> TextModelParams:
        kind = TEXT_ENCODERS[self.kind]
        if self.bf16_autocast is True and (not issubclass(kind, FlagTextEncoder) or kind.has_sparse):
            raise ValueError(f"bf16_autocast applies to dense torch kinds; {self.kind!r} is not one")
        if self.bf16_autocast is True and (self.device != "cpu" or self.use_fp16):
            raise ValueError("bf16_autocast is CPU inference: it needs device cpu and use_fp16 false")
        return self

    @property
    def autocast(self) -> bool:
        """Whether inference runs under CPU bfloat16 autocast (``auto`` resolved on this machine)."""
        if self.bf16_autocast == "auto":
            return self.autocast_applies() and bool(native_bf16())
        return self.bf16_autocast


class ImageModelParams(Section):
    name: str = Field(description="open_clip architecture, e.g. ViT-L-14, used with a checkpoint file")
    checkpoint: Path | None = Field(
        default=None, description="weights file for `name`, or a directory with open_clip_config.json + weights"
    )
    image_dir: Path | None = Field(default=None, description="local image cache; a file per URL named sha1(url)")
    batch_size: int = Field(ge=1)
    device: str = "cpu"


class EmbedSetParams(Section):
    """An extra embedding set: the text vectors embedded by another text model, into their own directory."""

    text_model: TextModelParams
    vectors: Annotated[list[str], Field(min_length=1), only(VECTOR_NAMES, "vectors")]
    dir: Path = Field(description="the set's embeddings directory (an out of its embed_set stage)")

    @field_validator("vectors")
    @classmethod
    def text_only(cls, vectors: list[str]) -> list[str]:
        images = [name for name in vectors if VECTORS_BY_NAME[name].modality != "text"]
        if images:
            raise ValueError(f"{images} are image vectors: a set varies the text model only")
        return vectors


class EmbedParams(Section):
    text_model: TextModelParams
    image_model: ImageModelParams
    vectors: Annotated[list[str], only(VECTOR_NAMES, "vectors")]
    sets: dict[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")], EmbedSetParams] = Field(
        default_factory=dict, description="extra embedding sets by name (embed_set stage), e.g. a multilingual model")

    def of_set(self, name: str) -> "EmbedParams":
        """These params for embedding set ``name``: its text model and vectors."""
        if name not in self.sets:
            raise KeyError(f"embed.sets has no set {name!r}; it has {sorted(self.sets)}")
        chosen = self.sets[name]
        return self.model_copy(update={"text_model": chosen.text_model, "vectors": chosen.vectors, "sets": {}})


class HnswParams(Section):
    m: int = Field(ge=0, le=128, description="edges per node; 0 builds no graph (exact search only)")
    ef_construct: int = Field(ge=4, le=4096)
    full_scan_threshold: int = Field(ge=0, description="KB of vectors below which a segment is scanned, not walked")


class QuantizationParams(Section):
    kind: Literal["none", "scalar", "binary", "product"]
    quantile: float | None = Field(default=None, gt=0.5, le=1.0, description="scalar only")
    compression: Literal[4, 8, 16, 32, 64] | None = Field(default=None, description="product only: x4..x64")
    always_ram: bool = True

    @model_validator(mode="after")
    def options_fit_kind(self) -> "QuantizationParams":
        if self.quantile is not None and self.kind != "scalar":
            raise ValueError(f"quantile applies to scalar quantization only, not {self.kind!r}")
        if self.kind == "product" and self.compression is None:
            raise ValueError("product quantization needs compression (4, 8, 16, 32 or 64)")
        if self.compression is not None and self.kind != "product":
            raise ValueError(f"compression applies to product quantization only, not {self.kind!r}")
        return self


class PriorityParams(Section):
    hnsw: HnswParams
    quantization: QuantizationParams
    on_disk: bool = Field(default=False, description="original vectors memory-mapped instead of in RAM")


class SparseVectorParams(Section):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    modifier: Literal["none", "idf"] = "none"


class ServerParams(Section):
    url: str | None = None
    api_key: str | None = None
    collection: str = "anime"
    timeout_seconds: int = Field(default=60, ge=1)


class IndexParams(Section):
    backend: Literal["edge", "server"]
    distance: Literal["cosine", "dot", "euclid"]
    vectors: Annotated[list[str], Field(min_length=1), only(VECTOR_NAMES, "vectors")]
    priorities: dict[Priority, PriorityParams]
    indexing_threshold_kb: int = Field(ge=1, description="segments larger than this get their HNSW graph built")
    indexing_threads: int = Field(ge=0, description="HNSW build threads; 0 = all cores")
    segments: int = Field(ge=1, description="segments the optimizer aims for")
    batch_size: int = Field(ge=1)
    payload_indexes: Annotated[dict[str, Literal["keyword", "integer", "float"]], only(PAYLOAD_FIELDS, "payload fields")]
    sparse_vectors: list[SparseVectorParams] = []
    server: ServerParams = ServerParams()

    @field_validator("priorities")
    @classmethod
    def every_priority(cls, priorities: dict[str, PriorityParams]) -> dict[str, PriorityParams]:
        missing = sorted({"high", "medium", "low"} - set(priorities))
        if missing:
            raise ValueError(f"missing priority classes {missing}")
        return priorities

    @model_validator(mode="after")
    def consistent(self) -> "IndexParams":
        if self.backend == "server" and not self.server.url:
            raise ValueError("backend 'server' needs server.url")
        clashes = sorted({s.name for s in self.sparse_vectors} & set(VECTOR_NAMES))
        if clashes:
            raise ValueError(f"sparse_vectors names {clashes} clash with dense vector names")
        return self


class SplitParams(Section):
    train: float = Field(ge=0, le=1)
    dev: float = Field(ge=0, le=1)
    test: float = Field(gt=0, le=1)

    @model_validator(mode="after")
    def sums_to_one(self) -> "SplitParams":
        if abs(self.train + self.dev + self.test - 1) > 1e-9:
            raise ValueError(f"train + dev + test must be 1, got {self.train + self.dev + self.test}")
        return self


class GoldParams(Section):
    curated: Path
    paraphrase: Path = Field(description="hand-written queries in the words people type (gold/paraphrase.yaml)")
    judgements: Path = Field(description="pooled judgements over hand-written queries (jsonl; absent: none yet)")
    pool: Path = Field(description="the pooled anime the judgements were made on (pipelines/pool.py; absent: none)")
    split: SplitParams
    min_relevant: int = Field(ge=1, description="fewest grade-2 anime a facet/studio/temporal query may have")
    max_relevant: int = Field(ge=1, description="most grade-2 anime a facet/studio query may have")
    facet_phrasings: int = Field(ge=1)
    hard_negatives_per_query: int = Field(ge=0)
    cross_lingual_min_synopsis_chars: int = Field(ge=1)
    similar_min_jaccard: float = Field(gt=0, le=1)
    max_queries: Annotated[dict[str, Annotated[int, Field(ge=1)]], only(GOLD_CATEGORIES, "categories")] = Field(
        description="cap per category, sampled by group with the seed")
    min_test_queries: int = Field(ge=1, description="per category; a shortfall is stated in the manifest")


FEATURE_KINDS = ("genre", "theme", "demographic", "studio", "producer", "source", "type", "rating", "year",
                 "season", "episodes", "award", "franchise")


class FeatureParams(Section):
    static_weights: Annotated[dict[str, float], only(FEATURE_KINDS, "feature kinds")] = Field(
        description="the static weight of every feature of a kind (the design's for genre, demographic, ...)")
    year_bucket: int = Field(ge=1, description="years per year bucket, counted from year 0 (5: 2005-2009)")
    episode_buckets: list[Annotated[int, Field(ge=1)]] = Field(
        min_length=1, description="increasing upper bounds of the episode-count buckets; above the last: 'more'")
    min_franchise_size: int = Field(ge=2, description="a franchise feature needs this many anime sharing it")
    synonyms: dict[str, list[str]] = Field(description="query phrase -> feature keys ('kind:value') it stands for")
    stopwords: list[str] = Field(description="query words that name no feature and are not reported as unmatched")

    @field_validator("static_weights")
    @classmethod
    def every_kind(cls, weights: dict[str, float]) -> dict[str, float]:
        missing = sorted(set(FEATURE_KINDS) - set(weights))
        if missing:
            raise ValueError(f"missing feature kinds {missing}")
        return weights

    @field_validator("episode_buckets")
    @classmethod
    def increasing(cls, bounds: list[int]) -> list[int]:
        if any(later <= earlier for earlier, later in zip(bounds, bounds[1:])):
            raise ValueError(f"bucket bounds must increase, got {bounds}")
        return bounds

    @field_validator("synonyms")
    @classmethod
    def keys_have_kinds(cls, synonyms: dict[str, list[str]]) -> dict[str, list[str]]:
        bad = sorted({key for keys in synonyms.values() for key in keys if key.split(":", 1)[0] not in FEATURE_KINDS
                      or ":" not in key})
        if bad:
            raise ValueError(f"feature keys {bad} are not 'kind:value' with a kind of {list(FEATURE_KINDS)}")
        return synonyms


class Bm25Params(Section):
    k1: float = Field(ge=0, description="term-frequency saturation")
    b: float = Field(ge=0, le=1, description="document-length normalisation")
    avg_len: float | None = Field(default=None, gt=0, description="tokens per document; null = the corpus mean")
    tokenizer: Literal["word", "multilingual"] = Field(
        description="Qdrant's tokenizer: word (unicode word boundaries) or multilingual (also segments CJK text)")
    language: str = Field(description="stopwords and Snowball stemmer of this language")
    stopwords: list[str] = Field(default=[], description=(
        "more languages whose Qdrant stopword lists are applied beside the language's (japanese, chinese: "
        "particles such as の, に, 的 that queries in those scripts share with the few CJK titles)"))
    ascii_folding: bool = Field(description="fold accents (shōnen -> shonen)")

    @field_validator("stopwords")
    @classmethod
    def engine_languages(cls, languages: list[str]) -> list[str]:
        import qdrant_edge  # the engine's own list of stopword languages

        known = {name.lower() for name in dir(qdrant_edge.Language) if not name.startswith("_")}
        unknown = sorted(set(languages) - known)
        if unknown:
            raise ValueError(f"unknown stopword languages {unknown}; known: {sorted(known)}")
        return languages


class LearnedParams(Section):
    relevant_grade: int = Field(ge=1, le=2, description="qrels grade from which a pair counts as relevant")
    negatives_per_query: int = Field(ge=1, description="non-relevant candidates sampled per train query (seeded)")
    l1_c: float = Field(gt=0, description="inverse L1 strength of the logistic regression")


class SparseParams(Section):
    features: FeatureParams
    bm25: Bm25Params
    learned: LearnedParams


class LoraParams(Section):
    r: int = Field(ge=1, description="rank of the LoRA update matrices")
    alpha: float = Field(gt=0, description="LoRA scaling numerator (scale = alpha / r)")
    dropout: float = Field(ge=0, lt=1)
    target_modules: list[str] = Field(min_length=1, description="attention projections adapted, e.g. query, value")


class FinetuneParams(Section):
    vectors: Annotated[list[str], only(VECTOR_NAMES, "vectors")] = Field(
        min_length=1, description="vectors re-embedded with the adapter; the others keep the base model")
    query_categories: Annotated[list[str], only(GOLD_CATEGORIES, "categories")] = Field(
        description="train-split gold queries paired with the genre text of their relevant train anime")
    pairs_per_query: int = Field(ge=1, description="relevant train anime sampled per train query")
    lora: LoraParams
    learning_rate: float = Field(gt=0)
    epochs: int = Field(ge=1)
    patience: int = Field(ge=0, description="epochs without a dev improvement before stopping")
    batch_size: int = Field(ge=2)
    max_length: int = Field(ge=16, description="token budget of training texts (the opening of a synopsis)")
    probe_max_length: int = Field(ge=16, description="token budget of the synopses the kNN genre probe embeds")
    temperature: float = Field(gt=0, description="softmax temperature of both contrastive losses")
    supcon_weight: float = Field(ge=0, description="weight of the supervised contrastive loss")
    supcon_min_jaccard: float = Field(gt=0, le=1, description="label-set Jaccard at which two anchors are positives")
    hard_negative_pool: int = Field(ge=0, description="most similar genre texts searched for a confusable negative; 0 = none")
    knn_k: int = Field(ge=1, description="neighbours of the synopsis genre-classification probe")
    permutations: int = Field(ge=100, description="resamples of the paired permutation test on F1")
    registry_name: str = Field(description="MLflow registered model name of the adapter")
    bf16_autocast: bool | Literal["auto"] = Field(
        default=False, description="training forward passes under CPU bfloat16 autocast (float32 weights, "
                                   "gradients and optimiser); auto: only where the CPU multiplies bfloat16 natively")

    @property
    def autocast(self) -> bool:
        """Whether training runs under CPU bfloat16 autocast (``auto`` resolved on this machine)."""
        return bool(native_bf16()) if self.bf16_autocast == "auto" else self.bf16_autocast


class FinetunedModelParams(Section):
    adapter: Path = Field(description="LoRA adapter directory")
    embeddings: Path = Field(description="embeddings of finetune.vectors made with the adapter")


class TrackingParams(Section):
    uri: str = Field(description="MLflow tracking URI: a local sqlite file by default, or a team's server")
    experiment: str


# The names ranx.metrics.metric_switch accepts (ranx keeps no list of them). rbp is left out: it takes a
# persistence (rbp.95), not a cut-off.
RANX_METRICS = ("precision", "recall", "f1", "r-precision", "ndcg", "ndcg_burges", "dcg", "dcg_burges", "mrr", "map",
                "hits", "hit_rate", "bpref")


def ranx_metric(metric: str) -> str:
    """Refuses a name ranx would only reject mid-evaluation, after every variant's search."""
    name, at, cutoff = metric.partition("@")
    if name not in RANX_METRICS or (at and not re.fullmatch(r"[1-9][0-9]*(-l[1-9])?", cutoff)):
        raise ValueError(f"unknown metric {metric!r}; known: {list(RANX_METRICS)}, each with an optional @k "
                         "(k a positive integer) and relevance level -lN (grade N and above relevant)")
    return metric


class EvaluateParams(Section):
    experiments: Path
    split: Literal["train", "dev", "test"]
    limit: int = Field(ge=10, description="results retrieved per query (>= the deepest metric cut-off)")
    query_bank: Literal["train", "dev", "test"] = Field(
        default="train", description="the split whose query texts stand in for a deployment's query log (hub_penalty)")
    metrics: list[Annotated[str, AfterValidator(ranx_metric)]] = Field(min_length=1)
    headline: list[str] = Field(min_length=1, description="metrics shown in dvc metrics and the summary")
    primary: str = Field(description="the declared primary metric, macro-averaged over the ranking categories")
    query_understanding: list[str] = Field(
        default_factory=list, description="categories a metadata filter alone answers: reported, kept out of the macro")
    by_script: Annotated[list[str], only(GOLD_CATEGORIES, "categories")] = Field(
        default_factory=list, description="categories also scored per query script (latin, cjk): <category>/<script>")
    min_vector_coverage: float = Field(gt=0, le=1, description="corpus share a vector needs for `vectors: covered`")
    bootstrap: int = Field(ge=100, description="resamples of query groups for each row's confidence interval")
    pairwise_top: int = Field(ge=2, description="the best deployable rows tested pairwise")
    stat_test: Literal["student", "fisher"]
    alpha: float = Field(gt=0, lt=1)
    correction: Literal["holm", "bonferroni"]
    model_paths: Annotated[dict[str, Path | None], only(TEXT_ENCODERS, "text model kinds")] = Field(
        default_factory=dict, description="local model directory per text model kind a variant names; null skips it")
    genre_ft: FinetunedModelParams | None = Field(default=None, description="the finetune_genre outputs; null skips genre_ft")
    workers: int = Field(default=1, ge=1, description="processes for the untimed work (index builds, runs, fidelity, "
                                                      "scores); latency and memory are measured alone in the stage's own")
    latency_queries: int | None = Field(default=None, ge=1, description="requests per row timed (a seeded sample "
                                                                        "of the split); null times every request")

    @model_validator(mode="after")
    def headline_is_measured(self) -> "EvaluateParams":
        missing = sorted((set(self.headline) | {self.primary}) - set(self.metrics))
        if missing:
            raise ValueError(f"headline and primary metrics {missing} are not in metrics")
        if self.query_bank == self.split:
            raise ValueError(f"query_bank {self.query_bank!r} is the evaluated split: the rows would learn its queries")
        deepest = max((int(metric.split("@")[1].split("-")[0]) for metric in self.metrics if "@" in metric), default=0)
        if self.limit < deepest:
            raise ValueError(f"limit {self.limit} is below the deepest metric cut-off @{deepest}: it would score low")
        return self


class DriftSideParams(Section):
    embeddings: Path = Field(description="an embeddings directory (manifest.json + <vector>.npz)")
    years: tuple[int, int] | None = Field(default=None, description="inclusive corpus year range; null = every anime")

    @field_validator("years")
    @classmethod
    def ordered(cls, years: tuple[int, int] | None) -> tuple[int, int] | None:
        if years is not None and years[0] > years[1]:
            raise ValueError(f"year range {list(years)} runs backwards")
        return years


class DriftPairParams(Section):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: Literal["distribution", "spaces"] = Field(
        default="distribution", description="distribution: one space, two samples; spaces: two models, the same anime")
    vectors: Annotated[list[str], Field(min_length=1), only(VECTOR_NAMES, "vectors")]
    a: DriftSideParams = Field(description="the reference set")
    b: DriftSideParams = Field(description="the set compared with the reference")


class DriftBandParams(Section):
    """Upper edges of the drifted share per band; above ``good`` up to ``drift.alert_share`` is warning."""

    excellent: float = Field(ge=0, le=1)
    good: float = Field(ge=0, le=1)


class CalibrationParams(Section):
    vector: Literal[VECTOR_NAMES] = Field(description="the set split for the controls")
    repetitions: int = Field(ge=1)
    sample: int = Field(ge=4, description="vectors per side of each split")
    shift_share: float = Field(gt=0, le=1, description="share of dimensions the injected shift moves")
    shift_std: float = Field(gt=0, description="injected shift per moved dimension, in that dimension's std")


class CoherenceParams(Section):
    vectors: Annotated[list[str], only(VECTOR_NAMES, "vectors")]
    knn_k: int = Field(ge=1)
    folds: int = Field(ge=2, description="cross-validation folds of the kNN genre classifier")
    min_label_count: int = Field(ge=2, description="labels with fewer anime are not used as a primary label")
    max_pairs: int = Field(ge=10, description="pairs per relation (franchise, studio...), sampled with the seed")
    min_anime: int = Field(ge=3, description="vectors with fewer anime are reported as skipped")


class SpaceParams(Section):
    vectors: Annotated[list[str], only(VECTOR_NAMES, "vectors")]
    n_neighbors: int = Field(ge=2)
    min_dist: float = Field(ge=0, le=1)
    max_points: int = Field(ge=10, description="anime per picture, sampled with the seed")


class SpacesParams(Section):
    knn_k: int = Field(ge=1, description="neighbours compared per anime (kNN overlap@k)")
    max_pairs: int = Field(ge=10, description="anime pairs whose similarities are rank-correlated, sampled with the seed")


class DriftParams(Section):
    pairs: list[DriftPairParams]
    spaces: SpacesParams
    min_samples: int = Field(ge=4, description="a side with fewer vectors is skipped")
    max_samples: int = Field(ge=4, description="vectors per side, sampled with the seed")
    wasserstein_threshold: float = Field(gt=0, description="a dimension drifted above this normed Wasserstein")
    alert_share: float = Field(gt=0, le=1, description="alert when more than this share of dimensions drifted")
    bands: DriftBandParams
    alpha: float = Field(gt=0, lt=1)
    permutations: int = Field(ge=19, description="permutations of the whole-vector two-sample test")
    dimension_permutations: int = Field(ge=19, description="relabellings behind each dimension's p-value")
    trend_windows: list[Annotated[int, Field(ge=1)]] = Field(min_length=1, description="MLflow runs per trend")
    calibration: CalibrationParams
    coherence: CoherenceParams
    space: SpaceParams

    @model_validator(mode="after")
    def consistent(self) -> "DriftParams":
        names = [pair.name for pair in self.pairs]
        if len(set(names)) != len(names):
            raise ValueError(f"pair names repeat: {names}")
        if not self.bands.excellent < self.bands.good < self.alert_share:
            raise ValueError(f"bands must rise: excellent {self.bands.excellent} < good {self.bands.good} "
                             f"< alert_share {self.alert_share}")
        if self.min_samples > self.max_samples:
            raise ValueError(f"min_samples {self.min_samples} exceeds max_samples {self.max_samples}")
        return self


ANIME_FIELDS = tuple(name for name in AnimeEntry.model_fields if name not in ("id", "origin"))
RULE_CHECKS = {  # check -> how many fields it reads
    "same_year": 2, "season_month": 2, "ordered": 2, "in_range": 1, "absent_when": 2, "present_when": 2}


def anime_field_path(path: str) -> str:
    """A dotted path into AnimeEntry (``aired_dates.start``): every step must be a field of the model."""
    model: Any = AnimeEntry
    for step in path.split("."):
        fields = getattr(model, "model_fields", None)
        if fields is None or step not in fields:
            raise ValueError(f"{path!r} is not a field path of AnimeEntry ({step!r} unknown)")
        model = fields[step].annotation
    return path


class ConsistencyRuleParams(Section):
    """One cross-field rule: ``check`` reads ``fields`` (dotted AnimeEntry paths) and holds or not."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    check: Literal[tuple(RULE_CHECKS)]
    fields: list[Annotated[str, AfterValidator(anime_field_path)]]
    severity: Literal["warning", "error"]
    values: list[str] = Field(default=[], description="absent_when/present_when: the second field's values that "
                                                      "make the first one absent/present (case-insensitive)")
    min: float | None = Field(default=None, description="in_range: least allowed value")
    max: float | None = Field(default=None, description="in_range: largest allowed value")
    tolerance: int = Field(default=0, ge=0, description="same_year: years; season_month: months before the season")

    @model_validator(mode="after")
    def arity(self) -> "ConsistencyRuleParams":
        if len(self.fields) != RULE_CHECKS[self.check]:
            raise ValueError(f"rule {self.name}: check {self.check} reads {RULE_CHECKS[self.check]} fields, "
                             f"got {self.fields}")
        if self.check in ("absent_when", "present_when") and not self.values:
            raise ValueError(f"rule {self.name}: check {self.check} needs values")
        if self.check == "in_range" and self.min is None and self.max is None:
            raise ValueError(f"rule {self.name}: in_range needs min or max")
        return self


class LinkParams(Section):
    labelled: Path = Field(description="hand-checked MAL <-> bangumi candidate pairs (csv with a `same` label)")
    min_precision: float = Field(gt=0, le=1, description="the fuzzy threshold is the lowest whose labelled-sample "
                                                         "precision reaches this")
    max_start_gap_days: int = Field(ge=0, description="fuzzy candidates started airing at most this many days apart")
    year_window: int = Field(ge=0, description="fuzzy candidates differ in year by at most this (where a start date is missing)")
    min_candidate_similarity: float = Field(ge=0, lt=1, description="best candidates below this are not links")
    labelling_sample: int = Field(ge=1, description="candidate pairs written out for a person to label, seeded")


class StrataParams(Section):
    year_bucket: int = Field(ge=1, description="years per year stratum")
    popularity_buckets: int = Field(ge=1, description="quantile buckets of members")
    top_studios: int = Field(ge=1, description="studios kept as their own stratum; the rest are `other`")


class SampleEvaluationParams(Section):
    fractions: list[Annotated[float, Field(gt=0, lt=1)]] = Field(min_length=1, description="corpus shares sampled")
    seeds: int = Field(ge=1, description="samples per fraction (seed, seed+1, ...)")


class DataQualityParams(Section):
    required_fields: Annotated[list[str], only(ANIME_FIELDS, "AnimeEntry fields")] = Field(
        min_length=1, description="fields a usable record has; the rest of AnimeEntry's fields are optional")
    required_weight: float = Field(gt=0, description="weight of a required field in a record's completeness score")
    optional_weight: float = Field(ge=0, description="weight of an optional field")
    rules: list[ConsistencyRuleParams] = Field(min_length=1)
    examples: int = Field(ge=0, description="violating records listed per rule")
    links: LinkParams
    max_completeness_drop: float = Field(gt=0, le=1, description="alert when a field's completeness falls by more "
                                                                 "than this since the last tracked run")
    strata: StrataParams
    sample_evaluation: SampleEvaluationParams

    @field_validator("rules")
    @classmethod
    def unique_rules(cls, rules: list[ConsistencyRuleParams]) -> list[ConsistencyRuleParams]:
        names = [rule.name for rule in rules]
        if len(set(names)) != len(names):
            raise ValueError(f"rule names repeat: {names}")
        return rules


class UserModelParams(Section):
    """One simulated user: per relevance grade (0, 1, 2) the chance a seen result is clicked, and the
    chance a click satisfies (the user stops)."""

    click: list[Annotated[float, Field(ge=0, le=1)]] = Field(min_length=3, max_length=3)
    stop: list[Annotated[float, Field(ge=0, le=1)]] = Field(min_length=3, max_length=3)


class InterleavingParams(Section):
    methods: list[Literal["team_draft", "probabilistic"]] = Field(min_length=1)
    click_model: Literal["cascade", "dcm", "pbm"] = Field(description="the click model users click by")
    tau: float = Field(gt=0, description="probabilistic interleaving: a ranker picks rank r with weight 1 / r^tau")
    impressions_per_group: int = Field(ge=1, description="simulated impressions per query group and pair")
    top: int = Field(ge=2, description="the best deployable rows compared pairwise (the baseline faces every row)")


class SensitivityParams(Section):
    sizes: list[Annotated[int, Field(ge=1)]] = Field(min_length=1, description=(
        "traffic sizes (impressions) tried, ascending: the answer is the least at which the sign test "
        "rejects with chance >= 1/2 (the median stream's)"))

    @field_validator("sizes")
    @classmethod
    def ascending(cls, sizes: list[int]) -> list[int]:
        if sizes != sorted(set(sizes)):
            raise ValueError(f"sizes must ascend without repeats: {sizes}")
        return sizes


class OnlineParams(Section):
    page_size: int = Field(ge=1, description="results a user sees (the rest of a run is never examined)")
    users: dict[str, UserModelParams] = Field(min_length=1, description="perfect, navigational, informational...")
    pbm_eta: float = Field(ge=0, description="position-based model: rank r is examined with chance 1 / r^eta")
    interleaving: InterleavingParams
    sensitivity: SensitivityParams
    alpha: float = Field(gt=0, lt=1, description="the interleaving sign tests' level")


class RouteParams(Section):
    """The query router (route stage): which vectors to search, predicted from the query text alone."""

    embedding: str = Field(description="'default' or an embed.sets name: the text model whose query embedding "
                                       "is a feature")
    feature_sets: list[list[Literal["dense", "lexical"]]] = Field(
        min_length=1, description="feature combinations tried: dense (the query embedding), lexical (TF-IDF "
                                  "character n-grams)")
    c_values: list[Annotated[float, Field(gt=0)]] = Field(min_length=1, description="logistic regression C tried")
    class_weights: list[Literal["none", "balanced"]] = Field(min_length=1)
    char_ngrams: tuple[int, int] = Field(description="character n-gram lengths of the lexical features")
    choose_on: Literal["dev"] = Field(description="the split the combination is chosen on (macro accuracy)")

    @field_validator("char_ngrams")
    @classmethod
    def ordered(cls, ngrams: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= ngrams[0] <= ngrams[1]:
            raise ValueError(f"char_ngrams must be 1 <= low <= high, got {list(ngrams)}")
        return ngrams


class Params(Section):
    seed: int
    tracking: TrackingParams
    data: DataParams
    ingest: IngestParams
    embed: EmbedParams
    index: IndexParams
    gold: GoldParams
    finetune: FinetuneParams
    evaluate: EvaluateParams
    sparse: SparseParams
    drift: DriftParams
    data_quality: DataQualityParams
    online: OnlineParams
    route: RouteParams

    @model_validator(mode="after")
    def route_embedding_exists(self) -> "Params":
        if self.route.embedding != "default" and self.route.embedding not in self.embed.sets:
            raise ValueError(f"route.embedding {self.route.embedding!r} is neither 'default' nor an embed.sets name "
                             f"{sorted(self.embed.sets)}")
        return self

    def route_model(self) -> TextModelParams:
        """The text model whose query embedding the router reads."""
        if self.route.embedding == "default":
            return self.embed.text_model
        return self.embed.sets[self.route.embedding].text_model


class ParamsError(LabError):
    pass


def describe(error: ValidationError, source: Path) -> str:
    return "\n".join([f"{source}: invalid params", *(f"  {problem}" for problem in problems(error))])


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate params; relative data/model paths stay relative to the working directory."""
    path = Path(path)
    try:
        raw = read_yaml(path)
    except FileNotFoundError as error:
        raise ParamsError(f"params file not found: {path}") from error
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        raise ParamsError(describe(error, path)) from error
