"""Pick the backend from params: build a collection from stage outputs, or open a built one."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from pathlib import Path

from scipy import sparse

from animelab.corpus.schema import AnimeEntry
from animelab.embeddings import load_manifest, load_vector
from animelab.errors import LabError
from animelab.index.backend import BuildReport, SearchIndex
from animelab.index.edge import EdgeIndex
from animelab.index.points import index_points
from animelab.index.server import ServerIndex, connect
from animelab.index.spec import CollectionSpec, collection_spec
from animelab.io import write_json
from animelab.params import IndexParams

SHARD = "shard"
SERVER_MARKER = "server.json"
SPEC_FILE = "spec.json"  # the collection spec an index directory was built from, and its text model


def embedding_dims(manifest: dict) -> dict[str, int | None]:
    return {name: stats.get("dim") if stats.get("count") else None for name, stats in manifest["vectors"].items()}


def spec_for(params: IndexParams, embeddings_dir: Path, text_model: str | None = None) -> CollectionSpec:
    """The spec sized by the embeddings, which must come from ``text_model`` when it is given."""
    return collection_spec(params, embedding_dims(load_manifest(embeddings_dir, text_model)))


def build_index(params: IndexParams, spec: CollectionSpec, entries: list[AnimeEntry], embeddings_dir: Path,
                out_dir: Path, sparse_sets: dict[str, tuple[list[str], sparse.csr_matrix]] | None = None) -> BuildReport:
    """Build the collection; ``out_dir`` gets the shard (edge) or a marker naming the server collection.

    ``sparse_sets``: (anime ids, CSR rows) of every sparse vector the spec lists, loaded by the caller."""
    missing = sorted({vector.name for vector in spec.sparse} - set(sparse_sets or {}))
    if missing:
        raise LabError(f"sparse vectors {missing} of the collection spec were not given to the build")
    dense = {name: load_vector(embeddings_dir, name) for name in spec.dense_names}
    points = index_points(entries, dense, sparse_sets)
    if params.backend == "edge":
        report = EdgeIndex.build(out_dir / SHARD, spec, points, params.batch_size, params.indexing_threads,
                                 params.segments)
    else:
        report = ServerIndex.build(connect(params.server), params.server.collection, spec, points,
                                   params.batch_size, params.indexing_threads, params.segments)
        write_json(out_dir / SERVER_MARKER, {"url": params.server.url, "collection": params.server.collection,
                                             "spec_key": spec.key()})
    return report


def indexed_text_model(index_dir: Path) -> str:
    """The text model the index stage built ``index_dir`` from (its spec file says)."""
    path = Path(index_dir) / SPEC_FILE
    if not path.is_file():
        raise LabError(f"{index_dir}: no built index ({SPEC_FILE} missing); run the index stage (dvc repro index)")
    model = json.loads(path.read_text(encoding="utf-8")).get("text_model")
    if model is None:
        raise LabError(f"{path} names no text model: the index predates that record; rebuild it (dvc repro -f index)")
    return model


def open_index(params: IndexParams, index_dir: Path, anime_ids: Mapping[uuid.UUID, str] | None = None) -> SearchIndex:
    """The built index; ``anime_ids`` (``point_table``) lets it name hits without reading their payload."""
    if params.backend == "edge":
        return EdgeIndex(Path(index_dir) / SHARD, anime_ids)
    # The marker records what the index stage built (for DVC); the params name the collection to open.
    if not (Path(index_dir) / SERVER_MARKER).is_file():
        raise LabError(f"{index_dir}: no {SERVER_MARKER}; run the index stage with index.backend: server")
    return ServerIndex(connect(params.server), params.server.collection, anime_ids)
