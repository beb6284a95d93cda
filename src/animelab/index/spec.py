"""One collection spec, built from params and the embeddings manifest, that every backend obeys."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from animelab.errors import LabError
from animelab.fields import VECTORS_BY_NAME, Priority, base_vector
from animelab.params import HnswParams, IndexParams, QuantizationParams, SparseVectorParams


class SpecError(LabError):
    pass


@dataclass(frozen=True)
class DenseVectorSpec:
    name: str
    size: int
    distance: str
    priority: Priority
    hnsw: HnswParams
    quantization: QuantizationParams
    on_disk: bool


@dataclass(frozen=True)
class CollectionSpec:
    dense: tuple[DenseVectorSpec, ...]
    sparse: tuple[SparseVectorParams, ...]
    payload_indexes: dict[str, str]
    indexing_threshold_kb: int

    @property
    def dense_names(self) -> list[str]:
        return [vector.name for vector in self.dense]

    def as_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self), default=lambda model: model.model_dump()))

    def key(self) -> str:
        """A short hash of everything that shapes the built index: equal keys, reusable index."""
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()[:16]


def collection_spec(params: IndexParams, dims: dict[str, int | None]) -> CollectionSpec:
    """The spec for ``params.vectors`` with sizes from the embeddings manifest.

    Fails before any work, naming the key, when a vector has no known size or a quantization
    does not fit the vector (product quantization needs a size its compression divides).
    """
    dense = []
    for name in params.vectors:
        size = dims.get(name)
        if not size:
            raise SpecError(f"index.vectors: {name} has no embeddings (run the embed stage with it in embed.vectors)")
        priority = VECTORS_BY_NAME[base_vector(name)].priority
        settings = params.priorities[priority]
        quantization = settings.quantization
        if quantization.kind == "product" and (size * 4) % quantization.compression:
            raise SpecError(
                f"index.priorities.{priority}.quantization.compression: x{quantization.compression} "
                f"does not divide {name}'s {size * 4}-byte vectors"
            )
        dense.append(DenseVectorSpec(name, size, params.distance, priority, settings.hnsw, quantization,
                                     settings.on_disk))
    return CollectionSpec(tuple(dense), tuple(params.sparse_vectors), dict(params.payload_indexes),
                          params.indexing_threshold_kb)
