"""Text in, ranked anime out: queries go through the same encoder as the corpus."""

from __future__ import annotations

from collections.abc import Sequence

from animelab.encoders.text import TextEncoder
from animelab.index.backend import SearchIndex
from animelab.index.query import FilterSpec, Hit, SearchRequest, Tuning, VectorQuery


def search_text(index: SearchIndex, encoder: TextEncoder, text: str, vectors: Sequence[str], *, limit: int = 10,
                prefetch_limit: int = 100, fusion: str = "rrf", rrf_k: int = 60,
                weights: Sequence[float] | None = None, filter: FilterSpec | None = None,
                tuning: Tuning = Tuning()) -> list[Hit]:
    """One encoding serves every named vector: they share the model. The encoder applies the
    model's query-side instruction (``embed.text_model.query_instruction``)."""
    dense = encoder.encode_queries([text]).dense[0].tolist()
    queries = tuple(VectorQuery(name, dense, prefetch_limit) for name in vectors)
    request = SearchRequest(queries, limit=limit, fusion=fusion, rrf_k=rrf_k,
                            weights=tuple(weights) if weights else None, filter=filter, tuning=tuning)
    return index.search(request)
