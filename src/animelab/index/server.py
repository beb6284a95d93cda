"""Qdrant server backend through qdrant-client: the same spec -> the same collection on a server.

Atomic builds: points go into a new collection named ``<collection>-<spec key>-<n>``; only
when it is complete does the alias ``<collection>`` switch to it (and the previous target is
dropped), so searches never see a half-built collection.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from qdrant_client import QdrantClient, models
from tqdm import tqdm

from animelab.index.backend import BuildReport, CollectionDescription
from animelab.index.edge import normalise_quantization
from animelab.payload import point_id
from animelab.index.points import IndexPoint
from animelab.index.query import (
    Condition, Hit, SearchRequest, SparseQuery, Tuning, hit_of, must_clauses, payload_to_read, with_whole_ties,
)
from animelab.index.spec import CollectionSpec, DenseVectorSpec
from animelab.io import batched
from animelab.params import ServerParams

DISTANCES = {"cosine": models.Distance.COSINE, "dot": models.Distance.DOT, "euclid": models.Distance.EUCLID}
PAYLOAD_TYPES = {"keyword": models.PayloadSchemaType.KEYWORD, "integer": models.PayloadSchemaType.INTEGER,
                 "float": models.PayloadSchemaType.FLOAT}


def connect(params: ServerParams) -> QdrantClient:
    """A client for ``index.server.url``; ``:memory:`` gives qdrant-client's in-process local mode."""
    if params.url == ":memory:":
        return QdrantClient(":memory:")
    return QdrantClient(url=params.url, api_key=params.api_key, timeout=params.timeout_seconds)


def quantization_config(vector: DenseVectorSpec) -> Any:
    quantization = vector.quantization
    if quantization.kind == "scalar":
        return models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(
            type=models.ScalarType.INT8, quantile=quantization.quantile, always_ram=quantization.always_ram))
    if quantization.kind == "binary":
        return models.BinaryQuantization(binary=models.BinaryQuantizationConfig(always_ram=quantization.always_ram))
    if quantization.kind == "product":
        return models.ProductQuantization(product=models.ProductQuantizationConfig(
            compression=models.CompressionRatio(f"x{quantization.compression}"), always_ram=quantization.always_ram))
    return None


def vectors_config(spec: CollectionSpec, indexing_threads: int) -> dict[str, models.VectorParams]:
    return {
        vector.name: models.VectorParams(
            size=vector.size,
            distance=DISTANCES[vector.distance],
            on_disk=vector.on_disk,
            quantization_config=quantization_config(vector),
            hnsw_config=models.HnswConfigDiff(m=vector.hnsw.m, ef_construct=vector.hnsw.ef_construct,
                                              full_scan_threshold=vector.hnsw.full_scan_threshold,
                                              max_indexing_threads=indexing_threads),
        )
        for vector in spec.dense
    }


def client_vector(vector: list[float] | SparseQuery) -> Any:
    if isinstance(vector, SparseQuery):
        return models.SparseVector(indices=vector.indices, values=vector.values)
    return vector


CLIENT_CLAUSES = {
    "any": lambda key, values: models.FieldCondition(key=key, match=models.MatchAny(any=values)),
    "value": lambda key, value: models.FieldCondition(key=key, match=models.MatchValue(value=value)),
    "range": lambda key, bounds: models.FieldCondition(key=key, range=models.Range(gte=bounds[0], lte=bounds[1])),
}


def client_filter(conditions: list[Condition]) -> models.Filter | None:
    must = [CLIENT_CLAUSES[kind](key, argument) for kind, key, argument in must_clauses(conditions)]
    return models.Filter(must=must) if must else None


def client_search_params(tuning: Tuning) -> models.SearchParams:
    quantization = None
    if tuning.quantization_ignore or tuning.rescore is not None or tuning.oversampling is not None:
        quantization = models.QuantizationSearchParams(ignore=tuning.quantization_ignore, rescore=tuning.rescore,
                                                       oversampling=tuning.oversampling)
    return models.SearchParams(hnsw_ef=tuning.hnsw_ef, exact=tuning.exact, quantization=quantization)


class ServerIndex:
    """A collection (or alias) on a Qdrant server; ``anime_ids`` as for ``EdgeIndex``."""

    def __init__(self, client: QdrantClient, collection: str, anime_ids: Mapping[uuid.UUID, str] | None = None):
        self.client = client
        self.collection = collection
        self.anime_ids = anime_ids
        if not client.collection_exists(collection):
            raise FileNotFoundError(f"collection or alias {collection!r} does not exist on the server")

    @staticmethod
    def build(client: QdrantClient, collection: str, spec: CollectionSpec, points: Iterable[IndexPoint],
              batch_size: int, indexing_threads: int = 1, segments: int = 1) -> BuildReport:
        previous = {alias.alias_name: alias.collection_name for alias in client.get_aliases().aliases}.get(collection)
        prefix = f"{collection}-{spec.key()}-"
        # One past the newest: earlier generations are deleted after each swap, so a count would repeat a name.
        generation = 1 + max((int(c.name.removeprefix(prefix)) for c in client.get_collections().collections
                              if c.name.startswith(prefix)), default=0)
        target = f"{prefix}{generation}"
        start = time.perf_counter()
        client.create_collection(
            target,
            vectors_config=vectors_config(spec, indexing_threads),
            sparse_vectors_config={
                sparse.name: models.SparseVectorParams(modifier=models.Modifier.IDF if sparse.modifier == "idf" else None)
                for sparse in spec.sparse
            } or None,
            optimizers_config=models.OptimizersConfigDiff(indexing_threshold=spec.indexing_threshold_kb,
                                                          default_segment_number=segments),
        )
        try:
            count = 0
            for batch in batched(tqdm(points, desc=f"upsert {target}", unit="point"), batch_size):
                client.upsert(target, points=[
                    models.PointStruct(id=point_id(p.anime_id),
                                       vector={n: client_vector(v) for n, v in (p.dense | p.sparse).items()},
                                       payload=p.payload)
                    for p in batch
                ], wait=True)
                count += len(batch)
            for field, kind in spec.payload_indexes.items():
                client.create_payload_index(target, field, field_schema=PAYLOAD_TYPES[kind], wait=True)
        except BaseException:
            client.delete_collection(target)
            raise
        actions: list[Any] = [models.CreateAliasOperation(
            create_alias=models.CreateAlias(collection_name=target, alias_name=collection))]
        if previous:
            actions.insert(0, models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=collection)))
        client.update_collection_aliases(change_aliases_operations=actions)
        if previous:
            client.delete_collection(previous)
        info = client.get_collection(target)
        return BuildReport(
            points=count,
            segments=info.segments_count or 0,
            indexed_vectors=info.indexed_vectors_count or 0,
            payload_indexes={field: schema.points or 0 for field, schema in sorted(info.payload_schema.items())},
            seconds=time.perf_counter() - start,
        )

    def search(self, request: SearchRequest) -> list[Hit]:
        params = client_search_params(request.tuning)
        conditions = client_filter(request.filter.conditions()) if request.filter else None
        payload = payload_to_read(request, self.anime_ids) or False

        # Built once: a refetch (a tie across the cut) changes only the limit.
        if request.fused:
            fusion: Any = (models.RrfQuery(rrf=models.Rrf(k=request.rrf_k, weights=list(request.weights or []) or None))
                           if request.fusion == "rrf" else models.FusionQuery(fusion=models.Fusion.DBSF))
            search = {"prefetch": [models.Prefetch(query=client_vector(q.vector), using=q.using, limit=q.limit,
                                                   params=params, filter=conditions, score_threshold=q.score_threshold)
                                   for q in request.queries],
                      "query": fusion}
        else:
            only = request.queries[0]
            search = {"query": client_vector(only.vector), "using": only.using, "search_params": params,
                      "score_threshold": only.score_threshold}

        def fetch(limit: int) -> list[Hit]:
            response = self.client.query_points(self.collection, limit=limit, query_filter=conditions,
                                                with_payload=payload, **search)
            # The server returns point ids as strings, the point table holds UUIDs (as the embedded engine returns).
            return [hit_of(uuid.UUID(p.id), p.score, p.payload, self.anime_ids) for p in response.points]

        return with_whole_ties(request, fetch)

    def describe(self) -> CollectionDescription:
        info = self.client.get_collection(self.collection)
        vectors = {}
        for name, vector in (info.config.params.vectors or {}).items():
            hnsw = vector.hnsw_config
            quantization = vector.quantization_config
            vectors[name] = {
                "size": vector.size,
                "distance": {"Cosine": "cosine", "Dot": "dot", "Euclid": "euclid"}[vector.distance.value],
                "on_disk": bool(vector.on_disk),
                "hnsw": {"m": hnsw.m, "ef_construct": hnsw.ef_construct,
                         "full_scan_threshold": hnsw.full_scan_threshold} if hnsw else None,
                "quantization": normalise_quantization(quantization.model_dump(mode="json", exclude_none=True))
                if quantization else None,
            }
        sparse = {name: {"modifier": params.modifier.value if params.modifier else "none"}
                  for name, params in (info.config.params.sparse_vectors or {}).items()}
        schema = {field: index.data_type.value for field, index in info.payload_schema.items()}
        return CollectionDescription(vectors, sparse, schema)

    def count(self) -> int:
        return self.client.count(self.collection, exact=True).count

    def close(self) -> None:
        self.client.close()
