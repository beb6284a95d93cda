"""Text in, ranked anime out: queries go through the same encoder as the corpus."""

from __future__ import annotations

from collections.abc import Sequence

from animelab.encoders.text import TextEncoder
from animelab.index.backend import SearchIndex
from animelab.index.points import sparse_row
from animelab.index.query import FilterSpec, Hit, SearchRequest, SparseQuery, Tuning, VectorQuery


def text_queries(encoder: TextEncoder, texts: Sequence[str], vectors: Sequence[str], prefetch_limit: int,
                 sparse_vectors: Sequence[str] = ()) -> list[tuple[VectorQuery, ...]]:
    """Per text, one query per named vector: every text vector shares the model, so one encoding serves all.

    The encoder applies the model's query-side instruction (``embed.text_model.query_instruction``).
    Sparse vectors get the query's lexical weights (BGE-M3 only).
    """
    encoded = encoder.encode_queries(list(texts))
    if sparse_vectors and encoded.sparse is None:
        raise ValueError(f"sparse vectors {list(sparse_vectors)} need a text model with lexical weights (bge-m3)")
    result = []
    for row in range(len(texts)):
        dense = encoded.dense[row].tolist()
        queries = [VectorQuery(name, dense, prefetch_limit) for name in vectors]
        sparse: list[VectorQuery] = []
        if sparse_vectors:
            weights: SparseQuery = sparse_row(encoded.sparse, row)
            sparse = [VectorQuery(name, weights, prefetch_limit) for name in sparse_vectors]
        result.append(tuple(queries + sparse))
    return result


def search_text(index: SearchIndex, encoder: TextEncoder, text: str, vectors: Sequence[str], *, limit: int = 10,
                prefetch_limit: int = 100, fusion: str = "rrf", rrf_k: int = 60,
                weights: Sequence[float] | None = None, filter: FilterSpec | None = None,
                tuning: Tuning = Tuning()) -> list[Hit]:
    (queries,) = text_queries(encoder, [text], vectors, prefetch_limit)
    request = SearchRequest(queries, limit=limit, fusion=fusion, rrf_k=rrf_k,
                            weights=tuple(weights) if weights else None, filter=filter, tuning=tuning)
    return index.search(request)
