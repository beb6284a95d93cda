"""Qdrant Edge backend: the real Qdrant engine in-process, one shard directory per collection."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import qdrant_edge as qe
from tqdm import tqdm

from animelab.errors import LabError
from animelab.index.backend import BuildReport, CollectionDescription, directory_bytes
from animelab.payload import point_id
from animelab.index.points import IndexPoint
from animelab.index.query import (
    Condition, Hit, SearchRequest, SparseQuery, Tuning, hit_of, must_clauses, payload_to_read, with_whole_ties,
)
from animelab.index.spec import CollectionSpec, DenseVectorSpec
from animelab.io import atomic_path, batched

DISTANCES = {"cosine": qe.Distance.Cosine, "dot": qe.Distance.Dot, "euclid": qe.Distance.Euclid}
PAYLOAD_TYPES = {"keyword": qe.PayloadSchemaType.Keyword, "integer": qe.PayloadSchemaType.Integer,
                 "float": qe.PayloadSchemaType.Float}
COMPRESSION = {4: qe.CompressionRatio.X4, 8: qe.CompressionRatio.X8, 16: qe.CompressionRatio.X16,
               32: qe.CompressionRatio.X32, 64: qe.CompressionRatio.X64}
CONFIG_FILE = "edge_config.json"
CONFIG_PATTERN = "*.json"  # every JSON file of a shard: the engine re-serialises them on load


def quantization_config(vector: DenseVectorSpec) -> Any:
    quantization = vector.quantization
    if quantization.kind == "scalar":
        return qe.ScalarQuantizationConfig(qe.ScalarType.Int8, quantile=quantization.quantile,
                                           always_ram=quantization.always_ram)
    if quantization.kind == "binary":
        return qe.BinaryQuantizationConfig(always_ram=quantization.always_ram)
    if quantization.kind == "product":
        return qe.ProductQuantizationConfig(COMPRESSION[quantization.compression], always_ram=quantization.always_ram)
    return None


def edge_config(spec: CollectionSpec, indexing_threads: int, segments: int) -> qe.EdgeConfig:
    vectors = {
        vector.name: qe.EdgeVectorParams(
            size=vector.size,
            distance=DISTANCES[vector.distance],
            on_disk=vector.on_disk,
            quantization_config=quantization_config(vector),
            hnsw_config=qe.HnswIndexConfig(m=vector.hnsw.m, ef_construct=vector.hnsw.ef_construct,
                                           full_scan_threshold=vector.hnsw.full_scan_threshold,
                                           max_indexing_threads=indexing_threads),
        )
        for vector in spec.dense
    }
    sparse_vectors = {
        sparse.name: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf if sparse.modifier == "idf" else None)
        for sparse in spec.sparse
    }
    optimizers = qe.EdgeOptimizersConfig(indexing_threshold=spec.indexing_threshold_kb,
                                         default_segment_number=segments)
    return qe.EdgeConfig(vectors=vectors, sparse_vectors=sparse_vectors or None, optimizers=optimizers)


def edge_vector(vector: list[float] | SparseQuery) -> Any:
    return qe.SparseVector(vector.indices, vector.values) if isinstance(vector, SparseQuery) else vector


def edge_point(point: IndexPoint) -> qe.Point:
    vectors = {name: edge_vector(values) for name, values in (point.dense | point.sparse).items()}
    return qe.Point(id=point_id(point.anime_id), vector=vectors, payload=point.payload)


EDGE_CLAUSES = {
    "any": lambda key, values: qe.FieldCondition(key, match=qe.MatchAny(values)),
    "value": lambda key, value: qe.FieldCondition(key, match=qe.MatchValue(value)),
    "range": lambda key, bounds: qe.FieldCondition(key, range=qe.RangeFloat(gte=bounds[0], lte=bounds[1])),
}


def edge_filter(conditions: list[Condition]) -> qe.Filter | None:
    must = [EDGE_CLAUSES[kind](key, argument) for kind, key, argument in must_clauses(conditions)]
    return qe.Filter(must=must) if must else None


def edge_search_params(tuning: Tuning) -> qe.SearchParams:
    quantization = None
    if tuning.quantization_ignore or tuning.rescore is not None or tuning.oversampling is not None:
        quantization = qe.QuantizationSearchParams(ignore=tuning.quantization_ignore, rescore=tuning.rescore,
                                                   oversampling=tuning.oversampling)
    return qe.SearchParams(hnsw_ef=tuning.hnsw_ef, exact=tuning.exact, quantization=quantization)


def edge_request(request: SearchRequest, limit: int, payload: list[str] | bool) -> qe.QueryRequest:
    params = edge_search_params(request.tuning)
    conditions = edge_filter(request.filter.conditions()) if request.filter else None
    if not request.fused:
        query = request.queries[0]
        return qe.QueryRequest(limit=limit, query=qe.Query.Nearest(edge_vector(query.vector), using=query.using),
                               filter=conditions, params=params, with_payload=payload,
                               score_threshold=query.score_threshold)
    prefetches = [
        qe.Prefetch(limit=query.limit, query=qe.Query.Nearest(edge_vector(query.vector), using=query.using),
                    params=params, filter=conditions, score_threshold=query.score_threshold)
        for query in request.queries
    ]
    weights = list(request.weights) if request.weights else None
    fusion = qe.Fusion.Rrf(k=request.rrf_k, weights=weights) if request.fusion == "rrf" else qe.Fusion.Dbsf()
    return qe.QueryRequest(limit=limit, prefetches=prefetches, query=fusion, filter=conditions, with_payload=payload)


def describe_edge_config(config: dict[str, Any], payload_schema: dict[str, str]) -> CollectionDescription:
    """The engine's persisted config, in the form every backend's description takes."""
    vectors = {}
    for name, vector in config.get("vectors", {}).items():
        hnsw = vector.get("hnsw_config")
        quantization = vector.get("quantization_config")
        vectors[name] = {
            "size": vector["size"],
            "distance": vector["distance"].lower(),
            "on_disk": bool(vector.get("on_disk")),
            "hnsw": {key: hnsw[key] for key in ("m", "ef_construct", "full_scan_threshold")} if hnsw else None,
            "quantization": normalise_quantization(quantization),
        }
    sparse = {name: {"modifier": (params or {}).get("modifier") or "none"}
              for name, params in (config.get("sparse_vectors") or {}).items()}
    return CollectionDescription(vectors, sparse, payload_schema)


def normalise_quantization(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """``{"scalar": {...}}`` (either backend's JSON) -> ``{"kind": "scalar", ...}``."""
    if not config:
        return None
    (kind, options), = config.items()
    options = options or {}
    result = {"kind": kind, "always_ram": bool(options.get("always_ram"))}
    if kind == "scalar":
        result["quantile"] = options.get("quantile")
    if kind == "product":
        result["compression"] = int(str(options["compression"]).lower().lstrip("x"))
    return result


def config_files(path: Path) -> dict[Path, bytes]:
    return {file: file.read_bytes() for file in sorted(Path(path).rglob(CONFIG_PATTERN))}


def linked_copy(directory: Path, copy: Path) -> None:
    """A copy of a built index that another process can open while ``directory`` is open: new folders (the
    engine locks the write-ahead log's folder), the config files copied (the engine rewrites them on load),
    every other file a hard link: opening and searching leave their bytes unchanged. A full copy wrote about
    420 MB per corpus index, most of it the zeros of preallocated files."""

    def link_or_copy(source: str, target: str) -> None:
        if Path(source).match(CONFIG_PATTERN):
            shutil.copy2(source, target)
        else:
            os.link(source, target)

    shutil.copytree(directory, copy, copy_function=link_or_copy)


def restore_config_files(saved: dict[Path, bytes]) -> None:
    """Put back the bytes of config files the engine rewrote with the same content: it re-serialises them
    in hash-map order on every load, which would make DVC see a changed index after a mere search."""
    for file, content in saved.items():
        if file.is_file() and file.read_bytes() != content and json.loads(file.read_bytes()) == json.loads(content):
            file.write_bytes(content)


class EdgeIndex:
    """An open shard. Build with ``EdgeIndex.build``; open an existing one with ``EdgeIndex(path)``, with
    ``anime_ids`` (point id -> anime id) to search without reading payload when only anime ids are asked for.
    Opening and searching leave the shard's files as they were (``close`` restores the configs)."""

    def __init__(self, path: Path, anime_ids: Mapping[uuid.UUID, str] | None = None):
        self.path = Path(path)
        self.anime_ids = anime_ids
        if not (self.path / CONFIG_FILE).is_file():
            raise LabError(f"{self.path} is not a built Qdrant Edge index (no {CONFIG_FILE}): "
                           "run the stage that builds it (dvc repro index)")
        self.saved_configs = config_files(self.path)
        self.shard = qe.EdgeShard.load(str(self.path))
        restore_config_files(self.saved_configs)

    @staticmethod
    def build(path: Path, spec: CollectionSpec, points: Iterable[IndexPoint], batch_size: int,
              indexing_threads: int = 1, segments: int = 1) -> BuildReport:
        """Create, fill, index and optimise a shard in a temporary directory, then rename it into place."""
        path = Path(path)
        start = time.perf_counter()
        with atomic_path(path) as staging:
            shard = qe.EdgeShard.create(str(staging), edge_config(spec, indexing_threads, segments))
            count = 0
            for batch in batched(tqdm(points, desc=f"upsert {path.name}", unit="point"), batch_size):
                shard.update(qe.UpdateOperation.upsert_points([edge_point(point) for point in batch]))
                count += len(batch)
            for field, kind in spec.payload_indexes.items():
                shard.update(qe.UpdateOperation.create_field_index(field, PAYLOAD_TYPES[kind]))
            shard.optimize()
            info = shard.info()
            report = BuildReport(
                points=count,
                segments=info.segments_count,
                indexed_vectors=info.indexed_vectors_count,
                payload_indexes={field: index.points for field, index in sorted(info.payload_schema.items())},
            )
            shard.close()
            # The first load completes what the build left in the WAL (segment versions, config defaults):
            # done here, later opens for search leave the files' content as DVC recorded it.
            qe.EdgeShard.load(str(staging)).close()
        report.seconds = time.perf_counter() - start
        report.disk_bytes = directory_bytes(path)
        return report

    def search(self, request: SearchRequest) -> list[Hit]:
        payload = payload_to_read(request, self.anime_ids) or False

        def fetch(limit: int) -> list[Hit]:
            return [hit_of(p.id, p.score, p.payload, self.anime_ids)
                    for p in self.shard.query(edge_request(request, limit, payload))]

        return with_whole_ties(request, fetch)

    def describe(self) -> CollectionDescription:
        config = json.loads((self.path / CONFIG_FILE).read_text(encoding="utf-8"))
        schema = {field: str(index.data_type).rsplit(".", 1)[-1].lower()
                  for field, index in self.shard.info().payload_schema.items()}
        return describe_edge_config(config, schema)

    def count(self) -> int:
        return self.shard.info().points_count

    def close(self) -> None:
        self.shard.close()
        restore_config_files(self.saved_configs)
