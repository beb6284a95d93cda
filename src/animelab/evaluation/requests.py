"""Search settings + encoded query -> one engine-neutral search request: the evaluation's and the CLI's."""

from __future__ import annotations

from animelab.evaluation.experiments import SearchSettings
from animelab.gold.splits import GoldSplit
from animelab.index.query import FilterSpec, SearchRequest, SparseQuery, VectorQuery


def query_vectors_for(settings: SearchSettings, hint: list[str], indexed: list[str]) -> list[str]:
    if settings.vectors == "all":
        return list(indexed)
    wanted = hint if settings.vectors == "hint" else settings.vectors
    chosen = [name for name in wanted if name in indexed]
    return chosen or list(indexed)


def search_request(settings: SearchSettings, dense: dict[str, list[float]], sparse: dict[str, SparseQuery],
                   limit: int, filter: FilterSpec | None = None, weights: tuple[float, ...] | None = None,
                   with_payload: tuple[str, ...] = ("anime_id",)) -> SearchRequest:
    """One prefetch per dense then sparse vector, fused as the settings say; ``weights`` (one per vector)
    override the settings' own (priority or sparse weights)."""
    queries = tuple(VectorQuery(name, vector, settings.prefetch_limit) for name, vector in (dense | sparse).items())
    return SearchRequest(queries, limit=limit, fusion=settings.fusion, rrf_k=settings.rrf_k,
                         weights=weights or settings.weights_for([*dense, *sparse]), filter=filter,
                         tuning=settings.tuning, with_payload=with_payload)


def build_requests(settings: SearchSettings, split: GoldSplit, encoded: dict[str, dict[str, list[float]]],
                   indexed: list[str], limit: int,
                   sparse_queries: dict[str, dict[str, SparseQuery]] | None = None) -> list[SearchRequest]:
    """One request per gold query; query-by-example sources are fetched extra and dropped later.
    ``encoded``: per dense vector, every query's vector (a tuned model may encode some vectors only).
    ``sparse_queries``: per sparse set the settings name, the query vector of every query."""
    restriction = FilterSpec(anime_id_any=sorted(split.restricted_to)) if split.restricted_to is not None else None
    requests = []
    for query in split.queries:
        names = query_vectors_for(settings, query.vectors, indexed) if settings.dense else []
        requests.append(search_request(settings, {name: encoded[name][query.id] for name in names},
                                       {name: sparse_queries[name][query.id] for name in settings.sparse},
                                       limit + len(query.exclude), restriction))
    return requests
