"""params.yaml, validated once: every stage gets its own typed section from ``load_params``.

Unknown keys are errors (a typo must not silently fall back to a default), and every error
names the offending key as a dotted path, e.g. ``embed.text_model.max_length``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from animelab.errors import LabError
from animelab.fields import VECTOR_NAMES, Priority
from animelab.index.payload import PAYLOAD_FIELDS


GOLD_CATEGORIES = ("facet", "studio", "temporal", "known_item", "cross_lingual", "similar", "curated")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(Section):
    mal_seasons: Path
    enriched: Path
    bangumi: Path


class IngestParams(Section):
    max_quarantined_share: float = Field(ge=0, le=1)


class TextModelParams(Section):
    kind: Literal["minilm", "bge-m3"]
    path: Path | None = Field(default=None, description="local model directory; null = the installed MiniLM")
    max_length: int = Field(ge=16, le=8192)
    batch_size: int = Field(ge=1)
    query_instruction: str = ""
    device: str = "cpu"
    use_fp16: bool = False


class ImageModelParams(Section):
    name: str = Field(description="open_clip architecture, e.g. ViT-L-14, used with a checkpoint file")
    checkpoint: Path | None = Field(
        default=None, description="weights file for `name`, or a directory with open_clip_config.json + weights"
    )
    image_dir: Path | None = Field(default=None, description="local image cache; a file per URL named sha1(url)")
    batch_size: int = Field(ge=1)
    device: str = "cpu"


def only(allowed: Iterable[str], what: str) -> AfterValidator:
    """A validator refusing names (list items or dict keys) outside ``allowed``, listing the known ones."""
    known = list(allowed)

    def check(values: Any) -> Any:
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown {what} {unknown}; known: {known}")
        return values

    return AfterValidator(check)


class EmbedParams(Section):
    text_model: TextModelParams
    image_model: ImageModelParams
    vectors: Annotated[list[str], only(VECTOR_NAMES, "vectors")]


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
    split: SplitParams
    min_relevant: int = Field(ge=1, description="fewest grade-2 anime a facet/studio/temporal query may have")
    max_relevant: int = Field(ge=1, description="most grade-2 anime a facet/studio query may have")
    facet_phrasings: int = Field(ge=1)
    hard_negatives_per_query: int = Field(ge=0)
    cross_lingual_min_synopsis_chars: int = Field(ge=1)
    similar_min_jaccard: float = Field(gt=0, le=1)
    max_queries: Annotated[dict[str, int], only(GOLD_CATEGORIES, "categories")] = Field(
        description="cap per category, sampled by group with the seed")
    min_test_queries: int = Field(ge=1, description="per category; a shortfall is stated in the manifest")
    holdout_categories: Annotated[list[str], only(GOLD_CATEGORIES, "categories")] = Field(
        description="categories whose test targets fine-tuning must hold out")


class TrackingParams(Section):
    uri: str = Field(description="MLflow tracking URI: a local sqlite file by default, or a team's server")
    experiment: str


class EvaluateParams(Section):
    experiments: Path
    split: Literal["train", "dev", "test"]
    limit: int = Field(ge=10, description="results retrieved per query (>= the deepest metric cut-off)")
    metrics: list[str] = Field(min_length=1)
    headline: list[str] = Field(min_length=1, description="metrics shown in dvc metrics and the summary")
    stat_test: Literal["student", "fisher"]
    alpha: float = Field(gt=0, lt=1)
    correction: Literal["holm", "bonferroni"]
    bge_m3_path: Path | None = Field(default=None, description="local BGE-M3 directory; null skips model-bge-m3")
    tracking: TrackingParams

    @model_validator(mode="after")
    def headline_is_measured(self) -> "EvaluateParams":
        missing = sorted(set(self.headline) - set(self.metrics))
        if missing:
            raise ValueError(f"headline metrics {missing} are not in metrics")
        return self


class Params(Section):
    seed: int
    data: DataParams
    ingest: IngestParams
    embed: EmbedParams
    index: IndexParams
    gold: GoldParams
    evaluate: EvaluateParams


class ParamsError(LabError):
    pass


def describe(error: ValidationError, source: Path) -> str:
    lines = [f"{source}: invalid params"]
    for detail in error.errors():
        key = ".".join(str(part) for part in detail["loc"])
        lines.append(f"  {key}: {detail['msg']}")
    return "\n".join(lines)


def load_params(path: Path | str = "params.yaml") -> Params:
    """Read and validate params; relative data/model paths stay relative to the working directory."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ParamsError(f"params file not found: {path}") from error
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        raise ParamsError(describe(error, path)) from error
