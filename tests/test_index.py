"""Indexing and search on the real Qdrant Edge engine (and qdrant-client's local mode)."""

from __future__ import annotations

import math
import shutil
from dataclasses import replace
from functools import partial

import numpy as np
import pytest
from qdrant_client import QdrantClient
from ranx import Qrels

from animelab.embeddings import embed_corpus, load_vector
from animelab.evaluation.runs import execute
from animelab.evaluation.timing import concurrent_latency, in_fresh_process, index_memory
from animelab.fields import VECTORS_BY_NAME, vector_inputs
from animelab.gold.splits import GoldQuery, GoldSplit
from animelab.index.edge import EdgeIndex, linked_copy
from animelab.errors import LabError
from animelab.index.exact import ExactIndex, recall_at_k
from animelab.payload import point_id, point_table
from animelab.index.points import IndexPoint, index_points
from animelab.index.query import RRF_K, FilterSpec, Hit, SearchRequest, Tuning, VectorQuery, demote_hubs, ranked
from animelab.index.server import ServerIndex
from animelab.index.spec import SpecError, collection_spec
from animelab.index.synthetic import resample_with_noise
from animelab.params import EmbedParams, IndexParams, QuantizationParams, SparseVectorParams
from tests.conftest import minilm_params

SMALL_VECTORS = ["title_vector", "genre_vector", "character_vector", "episode_vector", "staff_vector"]


def index_params(repo_params, **changes) -> IndexParams:
    """The committed index params with HNSW forced on (no full scans) for small test collections."""
    priorities = {
        name: settings.model_copy(update={"hnsw": settings.hnsw.model_copy(update={"full_scan_threshold": 0})})
        for name, settings in repo_params.index.priorities.items()
    }
    values = repo_params.index.model_dump() | {"priorities": priorities, "indexing_threshold_kb": 1} | changes
    return IndexParams.model_validate(values)


def with_quantization(params: IndexParams, **quantization) -> IndexParams:
    setting = QuantizationParams(**quantization)
    priorities = {name: p.model_copy(update={"quantization": setting}) for name, p in params.priorities.items()}
    return params.model_copy(update={"priorities": priorities})


@pytest.fixture(scope="module")
def small_corpus(enriched_sample, mal_lines):
    from animelab.corpus.readers import parse_jikan

    return enriched_sample + [parse_jikan(line) for line in mal_lines[:150]]


@pytest.fixture(scope="module")
def small_embeddings(small_corpus, repo_params, tmp_path_factory):
    directory = tmp_path_factory.mktemp("embeddings") / "embeddings"
    params = EmbedParams(text_model=minilm_params(), image_model=repo_params.embed.image_model,
                         vectors=SMALL_VECTORS)
    manifest = embed_corpus(small_corpus, params, directory)
    return directory, manifest


@pytest.fixture(scope="module")
def small_index(small_corpus, small_embeddings, repo_params, tmp_path_factory):
    directory, manifest = small_embeddings
    params = index_params(repo_params, vectors=SMALL_VECTORS)
    spec = collection_spec(params, {n: s.get("dim") for n, s in manifest["vectors"].items()})
    dense = {name: load_vector(directory, name) for name in SMALL_VECTORS}
    path = tmp_path_factory.mktemp("index") / "shard"
    report = EdgeIndex.build(path, spec, index_points(small_corpus, dense), batch_size=64)
    index = EdgeIndex(path)
    yield index, spec, report, dense
    index.close()


def test_build_indexes_every_vector_and_payload(small_index, small_corpus):
    index, spec, report, dense = small_index
    assert report.points == len(small_corpus) == index.count()
    assert report.indexed_vectors == sum(len(v.ids) for v in dense.values())
    assert report.payload_indexes["genres"] == sum(bool(e.genres) for e in small_corpus)
    assert report.disk_bytes > 0


def test_named_vectors_exist_exactly_where_the_mapper_produced_them(small_index, small_corpus):
    index, *_ = small_index
    records = index.shard.retrieve([point_id(e.id) for e in small_corpus], with_payload=["anime_id"], with_vector=True)
    stored = {record.payload["anime_id"]: set(record.vector) for record in records}
    for entry in small_corpus:
        expected = {name for name in SMALL_VECTORS if vector_inputs(entry, VECTORS_BY_NAME[name])}
        assert stored[entry.id] == expected, entry.id
    assert any("episode_vector" in names for names in stored.values())
    assert any("episode_vector" not in names for names in stored.values())


def test_an_anime_id_filter_searches_only_those_anime(small_index, small_corpus):
    """How held-out variants search: only test-split anime can be returned."""
    index, *_ = small_index
    chosen = sorted(entry.id for entry in small_corpus[::3])
    query = VectorQuery("title_vector", [1.0] + [0.0] * 383)
    hits = index.search(SearchRequest((query,), limit=len(small_corpus), filter=FilterSpec(anime_id_any=chosen),
                                      tuning=Tuning(exact=True)))
    assert sorted(hit.anime_id for hit in hits) == chosen


@pytest.mark.parametrize(
    "filter_spec",
    [
        FilterSpec(genres_any=["Sports", "Comedy"]),
        FilterSpec(genres_all=["Action", "Fantasy"]),
        FilterSpec(demographics_any=["Shounen"], year_gte=2006, year_lte=2006),
        FilterSpec(year_gte=2015),
        FilterSpec(studios_any=["Madhouse", "Sunrise"]),
        FilterSpec(type_any=["TV"], status_any=["FINISHED"], score_gte=7.5),
        FilterSpec(themes_all=["School"], score_lte=7.0),
    ],
)
def test_filters_return_exactly_the_matching_anime(small_index, small_corpus, filter_spec):
    index, *_ = small_index
    query = VectorQuery("title_vector", [1.0] + [0.0] * 383)
    hits = index.search(SearchRequest((query,), limit=len(small_corpus), filter=filter_spec, tuning=Tuning(exact=True)))
    f = filter_spec

    def matches(e) -> bool:
        return (
            (not f.genres_any or bool(set(f.genres_any) & set(e.genres)))
            and set(f.genres_all) <= set(e.genres)
            and (not f.demographics_any or bool(set(f.demographics_any) & set(e.demographics)))
            and (not f.studios_any or bool(set(f.studios_any) & set(e.studios)))
            and (not f.type_any or e.type in f.type_any)
            and (not f.status_any or e.status in f.status_any)
            and set(f.themes_all) <= set(e.theme_names)
            and (f.year_gte is None or (e.year is not None and e.year >= f.year_gte))
            and (f.year_lte is None or (e.year is not None and e.year <= f.year_lte))
            and (f.score_gte is None or (e.score is not None and e.score >= f.score_gte))
            and (f.score_lte is None or (e.score is not None and e.score <= f.score_lte))
        )

    expected = {e.id for e in small_corpus if matches(e)}
    assert expected, "each filter must select something in the test corpus"
    assert {hit.anime_id for hit in hits} == expected


def test_engine_exact_search_equals_numpy_brute_force(small_index):
    index, _, _, dense = small_index
    exact = ExactIndex(dense, "cosine")
    queries = dense["title_vector"].dense[:20]
    for query, reference in zip(queries, exact.top_k("title_vector", queries, 10), strict=True):
        hits = index.search(SearchRequest((VectorQuery("title_vector", query.tolist()),), limit=10,
                                          tuning=Tuning(exact=True)))
        assert [hit.anime_id for hit in hits] == reference


def test_an_exact_row_searches_a_graphless_collection_as_it_would_a_graph(small_index, small_corpus, small_embeddings,
                                                                         repo_params, tmp_path):
    """Exact rows build no HNSW graph (m 0): their plain, fused and filtered lists are the graph index's."""
    index, spec, _, dense = small_index
    priorities = {name: settings.model_copy(update={"hnsw": settings.hnsw.model_copy(update={"m": 0})})
                  for name, settings in index_params(repo_params, vectors=SMALL_VECTORS).priorities.items()}
    graphless_params = index_params(repo_params, vectors=SMALL_VECTORS, priorities=priorities)
    graphless_spec = collection_spec(graphless_params, {vector.name: vector.size for vector in spec.dense})
    EdgeIndex.build(tmp_path / "shard", graphless_spec, index_points(small_corpus, dense), 64)
    graphless = EdgeIndex(tmp_path / "shard")
    assert graphless.describe().vectors["title_vector"]["hnsw"]["m"] == 0
    chosen = FilterSpec(anime_id_any=sorted(entry.id for entry in small_corpus[::2]))
    compared = 0
    for position in range(0, 60, 3):
        plain = [VectorQuery(name, dense[name].dense[position % len(dense[name].ids)].tolist(), limit=30)
                 for name in ("title_vector", "genre_vector", "character_vector")]
        for request in (SearchRequest(plain[:1], limit=20), SearchRequest(tuple(plain), limit=20),
                        SearchRequest(tuple(plain), limit=20, filter=chosen, fusion="dbsf")):
            exact = replace(request, tuning=Tuning(exact=True))
            assert [h.anime_id for h in graphless.search(exact)] == [h.anime_id for h in index.search(exact)]
            compared += 1
    graphless.close()
    assert compared == 60


def test_the_exact_reference_is_a_search_index_for_plain_searches(small_index):
    index, _, _, dense = small_index
    exact = ExactIndex(dense, "cosine")
    # title_vector: no two anime share a text, so the engine's top 10 has no tie at its edge.
    for query in dense["title_vector"].dense[:10]:
        request = SearchRequest((VectorQuery("title_vector", query.tolist()),), limit=10)
        engine = index.search(replace(request, tuning=Tuning(exact=True)))
        reference = exact.search(request)
        assert [hit.anime_id for hit in reference] == [hit.anime_id for hit in engine]
        assert np.allclose([hit.score for hit in reference], [hit.score for hit in engine], atol=1e-5)
    assert exact.count() == index.count()
    fused = SearchRequest(tuple(VectorQuery(name, dense[name].dense[0].tolist()) for name in ("title_vector", "genre_vector")))
    with pytest.raises(LabError, match="exact_twin"):
        exact.search(fused)


def angle(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


@pytest.fixture(params=["edge", "client-local"])
def fusion_index(request, repo_params, tmp_path):
    """Three points whose rank in each of two vectors is set by angle: a = p1,p2,p3 and b = p3,p1,p2."""
    points = [
        IndexPoint("p1", {"a": angle(0), "b": angle(20)}, {"anime_id": "p1"}),
        IndexPoint("p2", {"a": angle(10), "b": angle(40)}, {"anime_id": "p2"}),
        IndexPoint("p3", {"a": angle(30), "b": angle(0)}, {"anime_id": "p3"}),
    ]
    params = index_params(repo_params, vectors=["title_vector", "genre_vector"], payload_indexes={})
    spec = collection_spec(params, {"title_vector": 2, "genre_vector": 2})
    renamed = [IndexPoint(p.anime_id, {"title_vector": p.dense["a"], "genre_vector": p.dense["b"]}, p.payload)
               for p in points]
    if request.param == "edge":
        EdgeIndex.build(tmp_path / "shard", spec, renamed, batch_size=10)
        index = EdgeIndex(tmp_path / "shard")
    else:
        client = QdrantClient(":memory:")
        ServerIndex.build(client, "fusion", spec, renamed, batch_size=10)
        index = ServerIndex(client, "fusion")
    yield index
    index.close()


def fused(index, fusion: str, **options) -> list[tuple[str, float]]:
    queries = (VectorQuery("title_vector", angle(0), 3), VectorQuery("genre_vector", angle(0), 3))
    hits = index.search(SearchRequest(queries, limit=3, fusion=fusion, **options))
    return [(hit.anime_id, hit.score) for hit in hits]


def assert_ranking(actual: list[tuple[str, float]], expected: list[tuple[str, float]]) -> None:
    assert [anime for anime, _ in actual] == [anime for anime, _ in expected]
    assert [score for _, score in actual] == pytest.approx([score for _, score in expected], abs=1e-6)


def test_rrf_scores_each_list_by_reciprocal_rank(fusion_index):
    # Qdrant's RRF: sum over lists of 1 / (k + rank), rank counted from 0 (the paper's k=60 is Qdrant's 61).
    assert_ranking(fused(fusion_index, "rrf", rrf_k=2),
                   [("p1", 1 / 2 + 1 / 3), ("p3", 1 / 4 + 1 / 2), ("p2", 1 / 3 + 1 / 4)])


def test_weighted_rrf_divides_each_rank_by_its_weight(fusion_index):
    # Weighted: 1 / (k - 1 + rank_1based / weight); weight 3 on the first list.
    assert_ranking(fused(fusion_index, "rrf", rrf_k=2, weights=(3.0, 1.0)),
                   [("p1", 1 / (1 + 1 / 3) + 1 / (1 + 2)), ("p3", 1 / (1 + 3 / 3) + 1 / (1 + 1)),
                    ("p2", 1 / (1 + 2 / 3) + 1 / (1 + 3))])
    # With k=1 a list's contribution is weight / rank, so weight 5 on the second list puts its leader first.
    assert_ranking(fused(fusion_index, "rrf", rrf_k=1, weights=(1.0, 5.0)),
                   [("p3", 1 / 3 + 5 / 1), ("p1", 1 / 1 + 5 / 2), ("p2", 1 / 2 + 5 / 3)])


def test_a_prefetch_score_threshold_drops_weak_matches_before_fusion(fusion_index):
    # The title list keeps p1 (1.0) and p2 (cos 10 deg) but not p3 (cos 30 deg), which then scores from the
    # genre list alone; without the threshold p3 was second.
    queries = (VectorQuery("title_vector", angle(0), 3, score_threshold=math.cos(math.radians(15))),
               VectorQuery("genre_vector", angle(0), 3))
    hits = fusion_index.search(SearchRequest(queries, limit=3, rrf_k=2))
    assert_ranking([(hit.anime_id, hit.score) for hit in hits],
                   [("p1", 1 / 2 + 1 / 3), ("p2", 1 / 3 + 1 / 4), ("p3", 1 / 2)])


def test_dbsf_normalises_each_list_by_mean_and_three_deviations(fusion_index):
    lists = {"a": {"p1": 1.0, "p2": math.cos(math.radians(10)), "p3": math.cos(math.radians(30))},
             "b": {"p1": math.cos(math.radians(20)), "p2": math.cos(math.radians(40)), "p3": 1.0}}
    expected: dict[str, float] = {}
    for scores in lists.values():
        values = np.array(list(scores.values()))
        low, high = values.mean() - 3 * values.std(ddof=1), values.mean() + 3 * values.std(ddof=1)
        for anime, score in scores.items():
            expected[anime] = expected.get(anime, 0.0) + (score - low) / (high - low)
    ranked = sorted(expected.items(), key=lambda item: -item[1])
    assert [anime for anime, _ in ranked] == ["p1", "p3", "p2"]
    assert_ranking(fused(fusion_index, "dbsf"), ranked)


def synthetic_points(base: np.ndarray, count: int) -> tuple[np.ndarray, list[IndexPoint]]:
    vectors = resample_with_noise(base, count, noise=0.5, seed=7)
    return vectors, [IndexPoint(f"s{i}", {"title_vector": row.tolist()}, {"anime_id": f"s{i}"})
                     for i, row in enumerate(vectors)]


@pytest.fixture(scope="module")
def recall_setup(small_index):
    """3,000 points resampled from real MiniLM title embeddings, 50 held-out queries, exact top 10."""
    _, _, _, dense = small_index
    vectors, points = synthetic_points(dense["title_vector"].dense, 3000)
    queries = resample_with_noise(dense["title_vector"].dense, 50, noise=0.5, seed=99)
    from animelab.embeddings import VectorEmbeddings

    exact = ExactIndex({"title_vector": VectorEmbeddings("title_vector", [p.anime_id for p in points], vectors)},
                       "cosine").top_k("title_vector", queries, 10)
    return points, queries, exact


def measured_recall(repo_params, tmp_path, recall_setup, tuning: Tuning, **quantization) -> float:
    points, queries, exact = recall_setup
    params = with_quantization(index_params(repo_params, vectors=["title_vector"], payload_indexes={}), **quantization)
    spec = collection_spec(params, {"title_vector": 384})
    EdgeIndex.build(tmp_path / "shard", spec, points, batch_size=500)
    index = EdgeIndex(tmp_path / "shard")
    found = [[hit.anime_id for hit in index.search(SearchRequest((VectorQuery("title_vector", q.tolist()),),
                                                                 limit=10, tuning=tuning))]
             for q in queries]
    index.close()
    return recall_at_k(found, exact, 10)


def test_scalar_int8_keeps_recall(repo_params, tmp_path, recall_setup):
    # int8 keeps ~2 significant digits per dimension: neighbours of 384-d unit vectors barely move,
    # so with an ample beam (ef 128 on 3k points) recall must stay near the unquantized graph's.
    recall = measured_recall(repo_params, tmp_path, recall_setup, Tuning(hnsw_ef=128), kind="scalar", quantile=0.99)
    assert recall >= 0.95


def test_binary_needs_rescoring(repo_params, tmp_path, recall_setup):
    # One bit per dimension ranks coarsely; rescoring an oversampled candidate set with the
    # original vectors recovers the order. Floors: rescored >= 0.9 and clearly above raw binary.
    raw = measured_recall(repo_params, tmp_path / "raw", recall_setup,
                          Tuning(hnsw_ef=128, rescore=False), kind="binary")
    rescored = measured_recall(repo_params, tmp_path / "rescored", recall_setup,
                               Tuning(hnsw_ef=128, rescore=True, oversampling=4.0), kind="binary")
    assert rescored >= 0.9
    assert rescored > raw + 0.05


def test_memory_as_paid_tells_vectors_held_in_ram_from_originals_left_on_disk(repo_params, tmp_path, recall_setup):
    """Binary quantization without rescoring never reads the originals: memory-mapped from disk they stay out of
    memory; stored in RAM the engine loads them all. Each measured in a fresh process, as a user's server starts."""
    points, queries, _ = recall_setup
    requests = [SearchRequest((VectorQuery("title_vector", q.tolist()),), limit=10, tuning=Tuning(rescore=False))
                for q in queries]
    resident_originals = {}
    for on_disk in (False, True):
        params = with_quantization(index_params(repo_params, vectors=["title_vector"], payload_indexes={}), kind="binary")
        params = params.model_copy(update={"priorities": {name: p.model_copy(update={"on_disk": on_disk})
                                                          for name, p in params.priorities.items()}})
        path = tmp_path / f"on_disk_{on_disk}"
        EdgeIndex.build(path, collection_spec(params, {"title_vector": 384}), points, batch_size=500)
        memory = in_fresh_process(index_memory, path, requests)
        assert memory["searches"] == len(requests) and memory["anonymous"] > 0
        resident_originals[on_disk] = sum(size for name, size in memory["files"].items()
                                          if name.endswith("vector_storage-title_vector/matrix.dat"))
    originals = len(points) * 384 * 4
    assert resident_originals[False] >= 0.9 * originals
    assert resident_originals[True] <= 0.1 * originals


def test_concurrent_clients_share_one_shard(small_index):
    index, _, _, dense = small_index
    requests = [SearchRequest((VectorQuery("title_vector", row.tolist()),), limit=5) for row in dense["title_vector"].dense[:40]]
    served = []

    def search(request):
        served.append(request)
        return index.search(request)

    levels = [concurrent_latency(search, requests, clients) for clients in (1, 4)]
    assert len(served) == 2 * len(requests)
    assert [level["clients"] for level in levels] == [1, 4] and all(level["qps"] > 0 for level in levels)
    assert all(level["p50_ms"] <= level["p95_ms"] <= level["p99_ms"] for level in levels)


def test_spec_errors_name_the_key(repo_params):
    product = with_quantization(index_params(repo_params, vectors=["title_vector"]), kind="product", compression=64)
    with pytest.raises(SpecError, match=r"index\.priorities\.high\.quantization\.compression: x64 does not divide"):
        collection_spec(product, {"title_vector": 6})
    with pytest.raises(SpecError, match=r"index\.vectors: review_vector has no embeddings"):
        collection_spec(index_params(repo_params, vectors=["review_vector"]), {"review_vector": None})
    with pytest.raises(ValueError, match="quantile applies to scalar quantization only"):
        QuantizationParams(kind="binary", quantile=0.9)
    with pytest.raises(ValueError, match="product quantization needs compression"):
        QuantizationParams(kind="product")


def test_server_backend_builds_the_same_collection(small_corpus, small_embeddings, small_index, repo_params):
    edge_index, spec, _, dense = small_index
    client = QdrantClient(":memory:")
    report = ServerIndex.build(client, "anime", spec, index_points(small_corpus, dense), batch_size=64)
    server_index = ServerIndex(client, "anime")
    edge, server = edge_index.describe(), server_index.describe()
    assert server.vectors == edge.vectors
    assert set(edge.vectors) == set(SMALL_VECTORS)
    assert edge.vectors["title_vector"]["hnsw"] == {"m": 32, "ef_construct": 256, "full_scan_threshold": 0}
    assert server.sparse_vectors == edge.sparse_vectors
    # Local mode keeps no payload indexes (qdrant-client says so); the engine reports all of them.
    assert edge.payload_indexes == spec.payload_indexes and server.payload_indexes == {}
    assert report.points == len(small_corpus) == server_index.count()
    request = SearchRequest((VectorQuery("genre_vector", dense["genre_vector"].dense[3].tolist()),), limit=10,
                            filter=FilterSpec(year_gte=2006), tuning=Tuning(exact=True))
    assert [h.anime_id for h in server_index.search(request)] == [h.anime_id for h in edge_index.search(request)]
    # Rebuilds of the same spec swap the alias to a new collection each time and drop the old one.
    for _ in range(2):
        ServerIndex.build(client, "anime", spec, index_points(small_corpus, dense), batch_size=64)
    assert [c.name for c in client.get_collections().collections] == [f"anime-{spec.key()}-3"]
    server_index.close()


def test_a_point_table_names_hits_without_reading_payload(small_corpus, small_index, tmp_path):
    """With point id -> anime id, both backends return the same hits (ids, order, scores) as when each hit's
    payload is read; a field beyond the anime id is still read, and a point outside the table is an error."""
    edge_index, spec, _, dense = small_index
    client = QdrantClient(":memory:")
    ServerIndex.build(client, "anime", spec, index_points(small_corpus, dense), batch_size=64)
    table = point_table(entry.id for entry in small_corpus)
    shutil.copytree(edge_index.path, tmp_path / "shard")  # the engine locks an open shard: search a copy
    named_edge = EdgeIndex(tmp_path / "shard", table)
    for plain, named in ((edge_index, named_edge),
                         (ServerIndex(client, "anime"), ServerIndex(client, "anime", table))):
        for position in range(0, 40, 4):
            queries = tuple(VectorQuery(name, dense[name].dense[position].tolist(), limit=30)
                            for name in ("title_vector", "genre_vector"))
            for request in (SearchRequest(queries[:1], limit=20, with_payload=("anime_id",)),
                            SearchRequest(queries, limit=20, with_payload=("anime_id",), tuning=Tuning(exact=True))):
                read, looked_up = plain.search(request), named.search(request)
                assert [h.anime_id for h in looked_up] == [h.anime_id for h in read]
                # qdrant-client's local mode (numpy) scored the two calls apart in the 7th digit.
                assert np.allclose([h.score for h in looked_up], [h.score for h in read], rtol=1e-6, atol=0)
                assert all(h.payload == {} for h in looked_up) and all(h.payload for h in read)
            titled = named.search(SearchRequest(queries[:1], limit=5, with_payload=("anime_id", "title")))
            assert all(h.payload["title"] for h in titled)
    named_edge.close()
    few = dict(list(table.items())[:10])
    for short in (EdgeIndex(tmp_path / "shard", few), ServerIndex(client, "anime", few)):
        with pytest.raises(LabError, match="another corpus"):
            short.search(SearchRequest(queries[:1], limit=50, with_payload=("anime_id",)))
        short.close()  # the server's closes the shared client


def file_bytes(directory) -> dict[str, bytes]:
    return {str(file.relative_to(directory)): file.read_bytes() for file in sorted(directory.rglob("*")) if file.is_file()}


def test_a_linked_copy_opens_beside_its_open_original_and_leaves_the_built_bytes_unchanged(small_index, tmp_path):
    """Evaluation workers search linked copies of one built index at the same time: the copy opens while the
    original is open (a second open of the same shard is refused), its data files are the original's (hard
    links, no bytes written), both return the same hits, and searching and closing the copy changes no byte."""
    index, _, _, dense = small_index
    built = file_bytes(index.path)
    with pytest.raises(Exception, match="WAL"):
        EdgeIndex(index.path)
    linked_copy(index.path, tmp_path / "copy")
    copy = EdgeIndex(tmp_path / "copy")
    for position in range(0, 40, 8):
        request = SearchRequest((VectorQuery("title_vector", dense["title_vector"].dense[position].tolist(),
                                             limit=20),), limit=20)
        assert [(h.anime_id, h.score) for h in copy.search(request)] == [
            (h.anime_id, h.score) for h in index.search(request)]
    copy.close()
    files = [file for file in index.path.rglob("*") if file.is_file()]
    linked = [file for file in files if (tmp_path / "copy" / file.relative_to(index.path)).samefile(file)]
    assert linked and all(file.suffix != ".json" for file in linked)
    assert {file for file in files if file.suffix != ".json"} == set(linked)
    assert file_bytes(index.path) == built and file_bytes(tmp_path / "copy") == built


def test_quantization_configs_reach_both_backends(small_corpus, small_index, repo_params, tmp_path):
    _, _, _, dense = small_index
    params = index_params(repo_params, vectors=["title_vector", "genre_vector", "staff_vector"])
    priorities = dict(params.priorities)
    priorities["high"] = priorities["high"].model_copy(update={"quantization": QuantizationParams(kind="scalar", quantile=0.99)})
    priorities["medium"] = priorities["medium"].model_copy(update={"quantization": QuantizationParams(kind="product", compression=16), "on_disk": True})
    params = params.model_copy(update={"priorities": priorities,
                                       "sparse_vectors": [SparseVectorParams(name="lexical", modifier="idf")]})
    spec = collection_spec(params, {n: 384 for n in params.vectors})
    subset = {name: dense[name] for name in params.vectors}
    EdgeIndex.build(tmp_path / "shard", spec, index_points(small_corpus, subset), batch_size=64)
    edge = EdgeIndex(tmp_path / "shard")
    client = QdrantClient(":memory:")
    ServerIndex.build(client, "anime", spec, index_points(small_corpus, subset), batch_size=64)
    described = [edge.describe(), ServerIndex(client, "anime").describe()]
    for description in described:
        assert description.vectors["title_vector"]["quantization"] == {"kind": "scalar", "always_ram": True, "quantile": 0.99}
        assert description.vectors["staff_vector"]["quantization"] == {"kind": "product", "always_ram": True, "compression": 16}
        assert description.vectors["staff_vector"]["on_disk"] is True
        assert description.sparse_vectors == {"lexical": {"modifier": "idf"}}
    assert described[0].vectors == described[1].vectors
    edge.close()


def test_a_failed_build_leaves_no_index(repo_params, tmp_path):
    spec = collection_spec(index_params(repo_params, vectors=["title_vector"]), {"title_vector": 2})

    def points():
        yield IndexPoint("ok", {"title_vector": [1.0, 0.0]}, {"anime_id": "ok"})
        raise RuntimeError("embedding file truncated")

    with pytest.raises(RuntimeError, match="truncated"):
        EdgeIndex.build(tmp_path / "shard", spec, points(), batch_size=1)
    assert list(tmp_path.iterdir()) == []


def test_tied_fused_scores_are_ordered_by_anime_id(repo_params, tmp_path):
    # "zeta" leads the first list and "alpha" the second: equal RRF scores, so the id decides.
    points = [IndexPoint("zeta", {"title_vector": angle(0), "genre_vector": angle(40)}, {"anime_id": "zeta"}),
              IndexPoint("alpha", {"title_vector": angle(40), "genre_vector": angle(0)}, {"anime_id": "alpha"})]
    spec = collection_spec(index_params(repo_params, vectors=["title_vector", "genre_vector"], payload_indexes={}),
                           {"title_vector": 2, "genre_vector": 2})
    EdgeIndex.build(tmp_path / "shard", spec, points, batch_size=10)
    index = EdgeIndex(tmp_path / "shard")
    queries = (VectorQuery("title_vector", angle(0), 2), VectorQuery("genre_vector", angle(0), 2))
    for _ in range(5):
        hits = index.search(SearchRequest(queries, limit=1, rrf_k=2))
        assert [hit.anime_id for hit in hits] == ["alpha"]
    index.close()


@pytest.mark.parametrize("fusion", [None, "dbsf"])
def test_a_tie_group_across_the_cut_is_fetched_whole_and_broken_by_anime_id(repo_params, tmp_path, fusion):
    """40 anime share one genre vector (one genre text); a search cut at 10 inside their group returns the
    10 smallest ids, where the engine alone returns an arbitrary part of the group."""
    points = [IndexPoint(f"anime-{n:02d}", {"title_vector": angle(n), "genre_vector": angle(30)},
                         {"anime_id": f"anime-{n:02d}"}) for n in range(40)]
    points.append(IndexPoint("best", {"title_vector": angle(80), "genre_vector": angle(0)}, {"anime_id": "best"}))
    spec = collection_spec(index_params(repo_params, vectors=["title_vector", "genre_vector"], payload_indexes={}),
                           {"title_vector": 2, "genre_vector": 2})
    EdgeIndex.build(tmp_path / "shard", spec, reversed(points), batch_size=7)
    index = EdgeIndex(tmp_path / "shard")
    genre = VectorQuery("genre_vector", angle(0), 41)
    if fusion is None:
        request = SearchRequest((genre,), limit=10, tuning=Tuning(exact=True))
        expected = ["best", *(f"anime-{n:02d}" for n in range(9))]
    else:
        # DBSF keeps equal scores equal; the title list lifts "best" and anime-39 out of the tie.
        request = SearchRequest((genre, VectorQuery("title_vector", angle(90), 2)), limit=10, fusion=fusion,
                                tuning=Tuning(exact=True))
        hits = index.search(request)
        expected = [hit.anime_id for hit in hits[:2]] + [f"anime-{n:02d}" for n in range(8)]
        assert set(expected[:2]) == {"best", "anime-39"}
    for _ in range(5):
        assert [hit.anime_id for hit in index.search(request)] == expected
    index.close()


def test_fused_searches_filtered_to_anime_ids_are_exact_and_repeatable(small_index, small_corpus):
    """Held-out rows fuse prefetches filtered to the test anime. Filtered by point ids, the engine's prefetch
    lists were not the exact top k and changed from call to call; by the anime_id payload field they are."""
    index, _, _, dense = small_index
    chosen = sorted(entry.id for entry in small_corpus[::2])
    only_chosen = FilterSpec(anime_id_any=chosen)
    titles = dense["title_vector"].dense  # no two anime share a title text: no ties within a list
    for position in range(0, 60, 4):
        queries = [VectorQuery("title_vector", titles[position + offset].tolist(), limit=15) for offset in range(3)]
        by_hand: dict[str, float] = {}
        for query in queries:
            alone = index.search(SearchRequest((query,), limit=15, filter=only_chosen, tuning=Tuning(exact=True)))
            for rank, hit in enumerate(alone):
                by_hand[hit.anime_id] = by_hand.get(hit.anime_id, 0.0) + 1 / (RRF_K + rank)
        request = SearchRequest(tuple(queries), limit=10, filter=only_chosen, tuning=Tuning(exact=True))
        hits = index.search(request)
        assert {hit.anime_id for hit in hits} <= set(chosen)
        assert [hit.score for hit in hits] == pytest.approx([by_hand[hit.anime_id] for hit in hits], abs=1e-6)
        assert [hit.score for hit in hits] == pytest.approx(sorted(by_hand.values(), reverse=True)[:10], abs=1e-6)
        for again in range(3):
            assert index.search(request) == hits
            assert index.search(replace(request, fusion="dbsf")) == index.search(replace(request, fusion="dbsf"))


def test_fused_scores_equal_in_exact_arithmetic_tie_and_break_by_anime_id():
    # 12 lists; every anime sits at the same 12 ranks in a different order, so its RRF sum is the same in
    # exact arithmetic, but float32 sums in list order differ by a step or two.
    rng = np.random.default_rng(0)
    ranks = np.arange(12)
    hits, sums = [], set()
    for number in range(40):
        order = rng.permutation(ranks)
        total = np.float32(0)
        for rank in order:
            total = np.float32(total + np.float32(1.0) / np.float32(RRF_K + rank))
        sums.add(round(float(total), 9))
        hits.append(Hit(f"anime-{number:02d}", float(total), {}))
    hits.append(Hit("z-better", float(np.float32(sum(1 / (RRF_K + r) for r in ranks)) * 1.01), {}))
    hits.append(Hit("a-worse", float(np.float32(sum(1 / (RRF_K + r) for r in ranks)) * 0.99), {}))
    assert len(sums) > 1  # rounding to 9 decimals would split the tie
    result = [hit.anime_id for hit in ranked(hits, limit=42)]
    assert result == ["z-better", *sorted(f"anime-{n:02d}" for n in range(40)), "a-worse"]
    assert [hit.anime_id for hit in ranked(list(reversed(hits)), limit=5)] == result[:5]


def test_a_re_ranked_run_keeps_the_engine_lists_of_the_same_pass(small_index):
    """One engine pass per re-ranked row: its engine lists (ANN fidelity reads them) are a plain run's."""
    index, _, _, dense = small_index
    ids = dense["title_vector"].ids
    queries = [GoldQuery(f"q{i}", f"q{i}", "similar", f"q{i}", {ids[i]: 1}, ["title_vector"], exclude=[ids[i]])
               for i in range(12)]
    split = GoldSplit(queries, Qrels({q.id: q.qrels for q in queries}))
    requests = [SearchRequest((VectorQuery("title_vector", dense["title_vector"].dense[i].tolist()),), limit=20,
                              tuning=Tuning(hnsw_ef=32)) for i in range(12)]
    plain = execute(index, split, requests, 10, "plain")
    shares = {anime: 1.0 for ranking in plain.ranked.values() for anime in ranking[:2]}
    demoted = execute(index, split, requests, 10, "demoted", partial(demote_hubs, shares=shares, penalty=1.0))
    assert demoted.engine_ranked == plain.ranked == plain.engine_ranked
    assert not any(ranking[0] in shares for ranking in demoted.ranked.values())  # the hubs sank


def test_hub_demotion_sinks_the_anime_a_query_log_keeps_seeing():
    # RRF k=10 scores of three lists: the hub leads, but it sits in 30% of the log's top 10s.
    hits = [Hit("hub", 0.30, {}), Hit("b", 0.25, {}), Hit("c", 0.20, {}), Hit("d", 0.10, {})]
    shares = {"hub": 0.30, "c": 0.01}
    assert [h.anime_id for h in demote_hubs(hits, shares, penalty=0.1)] == ["hub", "b", "c", "d"]  # 0.27 > 0.25
    assert [h.anime_id for h in demote_hubs(hits, shares, penalty=0.5)] == ["b", "c", "hub", "d"]
    assert [h.anime_id for h in demote_hubs(hits, shares, penalty=1.0)] == ["b", "c", "d", "hub"]
    demoted = demote_hubs(hits, shares, penalty=1.0)
    assert math.isclose(demoted[1].score, 0.20 - 0.01) and math.isclose(demoted[-1].score, 0.0)
    # An anime the log never saw keeps its score; ties after demotion break by anime id, as undemoted ones do.
    assert [h.anime_id for h in demote_hubs([Hit("y", 0.2, {}), Hit("x", 0.3, {})], {"x": 1.0}, 0.1)] == ["x", "y"]
    assert demote_hubs([], shares, 1.0) == []
