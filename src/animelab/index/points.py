"""Points to index: an anime's present vectors plus its payload, assembled from stage outputs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from scipy import sparse

from animelab.corpus.schema import AnimeEntry
from animelab.embeddings import VectorEmbeddings
from animelab.payload import payload_for
from animelab.index.query import SparseQuery


@dataclass
class IndexPoint:
    anime_id: str
    dense: dict[str, list[float]]
    payload: dict[str, Any]
    sparse: dict[str, SparseQuery] = field(default_factory=dict)


def sparse_row(matrix: sparse.csr_matrix, row: int) -> SparseQuery:
    start, end = matrix.indptr[row], matrix.indptr[row + 1]
    return SparseQuery(matrix.indices[start:end].tolist(), matrix.data[start:end].tolist())


def index_points(
    entries: list[AnimeEntry],
    dense: dict[str, VectorEmbeddings],
    sparse_vectors: dict[str, tuple[list[str], sparse.csr_matrix]] | None = None,
) -> Iterator[IndexPoint]:
    """One point per anime, carrying exactly the vectors the embed stage produced for it."""
    dense_rows = {name: {anime_id: row for row, anime_id in enumerate(v.ids)} for name, v in dense.items()}
    sparse_rows = {name: {anime_id: row for row, anime_id in enumerate(ids)}
                   for name, (ids, _) in (sparse_vectors or {}).items()}
    for entry in entries:
        vectors = {name: dense[name].dense[rows[entry.id]].tolist()
                   for name, rows in dense_rows.items() if entry.id in rows}
        sparse_values = {name: sparse_row(sparse_vectors[name][1], rows[entry.id])
                         for name, rows in sparse_rows.items() if entry.id in rows}
        yield IndexPoint(entry.id, vectors, payload_for(entry), sparse_values)
