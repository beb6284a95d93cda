"""Sparse vectors on hand-made entries and tiny real Qdrant Edge collections: features, query mapping,
BM25, hybrid fusion, learned weights and BGE-M3 lexical weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
from ranx import Qrels
from scipy import sparse

from animelab.corpus.schema import AnimeEntry, Award, Tag
from animelab.embeddings import embed_corpus, load_manifest
from animelab.encoders.registry import text_encoder
from animelab.evaluation.requests import build_requests
from animelab.gold.splits import GoldQuery, GoldSplit
from animelab.evaluation.experiments import SearchSettings
from animelab.index.build import build_index, embedding_dims, open_index
from animelab.index.edge import EdgeIndex
from animelab.index.points import IndexPoint, sparse_row
from animelab.index.query import SearchRequest, SparseQuery, VectorQuery
from animelab.index.spec import collection_spec
from animelab.params import FEATURE_KINDS, Bm25Params, FeatureParams, LearnedParams, SparseVectorParams
from animelab.sparse.bm25 import bm25_documents, bm25_queries, corpus_avg_len
from animelab.sparse.registry import encode_queries
from animelab.sparse.features import QueryMapper, corpus_features, idf_weights, kind_weights, weighted
from animelab.sparse.learned import fit_kind_weights, training_pairs
from animelab.sparse.lexical import LEXICAL, lexical_vectors
from animelab.sparse.store import SparseVectors
from tests.conftest import minilm_params

FEATURES = FeatureParams(
    static_weights={kind: 1.0 + position / 10 for position, kind in enumerate(FEATURE_KINDS)},
    year_bucket=5, episode_buckets=[1, 13, 26, 52], min_franchise_size=2,
    synonyms={"shonen": ["demographic:Shounen"], "cooking": ["genre:Gourmet"]},
    stopwords=["a", "an", "the", "about", "from", "series", "anime"],
)


def anime(anime_id: str, title: str, **fields) -> AnimeEntry:
    return AnimeEntry(id=anime_id, origin="test", title=title, **fields)


ENTRIES = [
    anime("a:1", "Death Note", genres=["Supernatural", "Award Winning"], themes=[Tag(name="Psychological")],
          demographics=["Shounen"], studios=["Madhouse"], producers=["VAP"], source_material="MANGA", type="TV",
          rating="R - 17+ (violence & profanity)", year=2006, season="fall", episodes=37,
          awards=[Award(name="Tokyo Anime Award")]),
    anime("a:2", "Death Note: Rewrite", genres=["Supernatural"], studios=["Madhouse"], type="SPECIAL", year=2007,
          episodes=1),
    anime("a:3", "Shokugeki no Souma", genres=["Gourmet", "Ecchi"], themes=[Tag(name="School"), Tag(name="Vampire")],
          demographics=["Shounen"], studios=["J.C.Staff"], year=2015, season="spring", episodes=24),
    anime("a:4", "Kimi ni Todoke", genres=["Romance"], themes=[Tag(name="School")], demographics=["Shoujo"],
          studios=["Production I.G"], year=2009, episodes=25),
]


def test_features_of_hand_made_entries():
    space, per_entry = corpus_features(ENTRIES, FEATURES)
    assert per_entry[0] == [
        "genre:Supernatural", "theme:Psychological", "demographic:Shounen", "studio:Madhouse", "producer:VAP",
        "source:MANGA", "type:TV", "rating:R", "year:2005-2009", "season:fall", "episodes:27-52",
        "award:Tokyo Anime Award", "award:Award Winning", "franchise:deathnote",
    ]
    # One episode is its own bucket; a franchise needs two anime, so a lone title has none.
    assert per_entry[1] == ["genre:Supernatural", "studio:Madhouse", "type:SPECIAL", "year:2005-2009", "episodes:1",
                            "franchise:deathnote"]
    assert "franchise:shokugekinosouma" not in space.column and "year:2015-2019" in per_entry[2]

    binary = space.binary(per_entry)
    static = weighted(binary, kind_weights(space, FEATURES.static_weights)).toarray()
    for key in per_entry[0]:
        assert static[0, space.column[key]] == pytest.approx(FEATURES.static_weights[key.split(":")[0]])
    idf = idf_weights(binary)
    # "genre:Supernatural" is on 2 of 4 anime, "genre:Romance" on 1.
    assert idf[space.column["genre:Supernatural"]] == pytest.approx(math.log(1 + (4 - 2 + 0.5) / (2 + 0.5)))
    assert idf[space.column["genre:Romance"]] == pytest.approx(math.log(1 + (4 - 1 + 0.5) / (1 + 0.5)))


def test_query_mapping_with_synonyms_buckets_and_unmatched_words():
    space, _ = corpus_features(ENTRIES, FEATURES)
    mapper = QueryMapper(space, FEATURES)
    mapped = mapper.map("A shonen cooking series about vampires and school life from the late 2000s")
    assert mapped.keys == ["demographic:Shounen", "genre:Gourmet", "theme:Vampire", "theme:School", "year:2005-2009"]
    assert mapped.unmatched == ["and", "life"]
    # Multi-word values match whole ("Death Note" is the franchise), years and episode counts by bucket.
    assert mapper.map("anime like Death Note: Rewrite").keys == ["franchise:deathnote"]
    assert mapper.map("Madhouse anime from 2015 with 24 episodes").keys == [
        "studio:Madhouse", "year:2015-2019", "episodes:14-26"]
    assert mapper.map("Production I.G romance").keys == ["studio:Production I.G", "genre:Romance"]
    vector = mapper.vector("shoujo romance")
    columns = sorted([space.column["demographic:Shoujo"], space.column["genre:Romance"]])
    assert vector == SparseQuery(columns, [1.0, 1.0])
    assert mapper.map("qwerty").keys == [] and mapper.map("qwerty").unmatched == ["qwerty"]


@pytest.fixture(scope="module")
def index_params(repo_params):
    return repo_params.index.model_copy(update={"vectors": ["title_vector"], "payload_indexes": {}})


def build_edge(tmp_path, params, points, sparse_names, modifier="none"):
    spec = collection_spec(params.model_copy(update={"sparse_vectors": [
        SparseVectorParams(name=name, modifier=modifier) for name in sparse_names]}), {"title_vector": 3})
    EdgeIndex.build(tmp_path / "shard", spec, points, batch_size=8)
    return EdgeIndex(tmp_path / "shard")


def test_hybrid_fusion_order_is_the_one_constructed(tmp_path, index_params):
    dense = {"a": [1.0, 0.0, 0.0], "b": [0.9, 0.3, 0.0], "c": [0.6, 0.8, 0.0], "d": [0.0, 0.2, 1.0]}
    feature = {"a": ([0, 1], [0.5, 0.1]), "b": ([0], [2.0]), "c": ([0, 2], [1.0, 0.5])}  # "d" has none
    points = [IndexPoint(name, {"title_vector": vector}, {"anime_id": name},
                         {"feature_static": SparseQuery(*feature[name])} if name in feature else {})
              for name, vector in dense.items()]
    index = build_edge(tmp_path, index_params, points, ["feature_static"])
    query_dense, query_sparse = [1.0, 0.1, 0.0], SparseQuery([0], [1.0])
    # The two lists, computed independently of the engine: cosine for dense, dot product for sparse.
    cosine = {n: np.dot(v, query_dense) / np.linalg.norm(v) / np.linalg.norm(query_dense) for n, v in dense.items()}
    dense_order = sorted(dense, key=lambda n: -cosine[n])
    sparse_order = sorted(feature, key=lambda n: -dict(zip(*feature[n]))[0])
    assert dense_order == ["a", "b", "c", "d"] and sparse_order == ["b", "c", "a"]

    split = GoldSplit([GoldQuery("q", "", "facet", "q", {"a": 1}, ["title_vector"])], Qrels({"q": {"a": 1}}))

    def order(settings: SearchSettings) -> list[str]:
        request, = build_requests(settings, split, {"title_vector": {"q": query_dense}}, ["title_vector"], 4,
                                  {"feature_static": {"q": query_sparse}})
        return [hit.anime_id for hit in index.search(request)]

    def rrf(weights: dict[str, float]) -> list[str]:
        # README: weighted RRF sums 1 / (k - 1 + rank_from_1 / weight); k=60, weight 1 is plain RRF.
        score = {n: sum(1 / (60 - 1 + (ranked.index(n) + 1) / weight)
                        for ranked, weight in ((dense_order, weights["dense"]), (sparse_order, weights["sparse"]))
                        if n in ranked) for n in dense}
        return sorted(dense, key=lambda n: (-score[n], n))

    plain = order(SearchSettings(sparse=["feature_static"], exact=True))
    assert plain == rrf({"dense": 1.0, "sparse": 1.0}) == ["b", "a", "c", "d"]
    weighted_order = order(SearchSettings(sparse=["feature_static"], sparse_weight=3.0, exact=True))
    assert weighted_order == rrf({"dense": 1.0, "sparse": 3.0}) != plain
    assert order(SearchSettings(sparse=["feature_static"], dense=False, exact=True)) == sparse_order
    assert order(SearchSettings(exact=True)) == dense_order
    index.close()


def test_bm25_scores_are_bm25(tmp_path, index_params):
    params = Bm25Params(k1=1.2, b=0.75, tokenizer="word", language="english", ascii_folding=True)
    entries = [anime("b:1", "dragon dragon knight"), anime("b:2", "knight castle"), anime("b:3", "castle moat river")]
    vectors, avg_len = bm25_documents(entries, params)
    assert avg_len == pytest.approx(8 / 3, abs=1e-4) == corpus_avg_len(["dragon dragon knight", "knight castle",
                                                                        "castle moat river"], params)
    points = [IndexPoint(entry.id, {"title_vector": [1.0, 0.0, 0.0]}, {"anime_id": entry.id},
                         {"bm25": sparse_row(vectors.matrix, row)})
              for row, entry in enumerate(entries)]
    index = build_edge(tmp_path, index_params, points, ["bm25"], modifier="idf")
    query, = bm25_queries(["dragons"], params, avg_len)
    hits = index.search(SearchRequest((VectorQuery("bm25", query),), limit=3))
    # BM25 by hand: "dragon" in 1 of 3 documents, twice in a 3-token document.
    idf = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))
    expected = idf * 2 * (1.2 + 1) / (2 + 1.2 * (1 - 0.75 + 0.75 * 3 / avg_len))
    assert [hit.anime_id for hit in hits] == ["b:1"] and hits[0].score == pytest.approx(expected, rel=1e-4)
    index.close()


def test_cjk_stopwords_drop_the_particles_a_query_shares_with_a_japanese_title():
    # The corpus is English but for a few Japanese titles, so a particle (に) has the IDF of a rare word.
    english = Bm25Params(k1=1.2, b=0.75, tokenizer="multilingual", language="english", ascii_folding=True)
    cjk = english.model_copy(update={"stopwords": ["japanese", "chinese"]})
    titles = {"b:1": "純情ロマンチカ2(に)", "b:2": "knight castle", "b:3": "castle moat river"}
    entries = [anime(anime_id, text) for anime_id, text in titles.items()]
    query = "学校に行った"  # shares only the particle with b:1
    for params, shared in ((english, 1), (cjk, 0)):
        vectors, avg_len = bm25_documents(entries, params)
        (encoded,) = bm25_queries([query], params, avg_len)
        assert len(set(encoded.indices) & set(vectors.matrix[0].indices)) == shared
    # English stopwords still apply beside the others.
    assert bm25_queries(["the castle"], cjk, 2.0)[0].indices == bm25_queries(["castle"], cjk, 2.0)[0].indices


def test_an_unknown_stopword_language_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown stopword languages \\['klingon'\\]; known: .*'japanese'"):
        Bm25Params(k1=1.2, b=0.75, tokenizer="word", language="english", ascii_folding=True, stopwords=["klingon"])


def test_learned_weights_recover_known_true_weights():
    rng = np.random.default_rng(7)
    kinds = np.repeat(np.arange(len(FEATURE_KINDS)), 2)  # two features per kind
    true = rng.uniform(0.0, 1.5, len(FEATURE_KINDS))
    true[[3, 8]] = 0.0  # kinds that do not matter
    queries = sparse.csr_matrix((rng.random((150, len(kinds))) < 0.35).astype(np.float32))
    documents = sparse.csr_matrix((rng.random((400, len(kinds))) < 0.35).astype(np.float32))
    indicator = sparse.csr_matrix((np.ones(len(kinds)), (np.arange(len(kinds)), kinds)),
                                  shape=(len(kinds), len(FEATURE_KINDS)))
    shared = (queries.toarray()[:, None, :] * documents.toarray()[None, :, :]) @ indicator.toarray()
    relevant_probability = 1 / (1 + np.exp(-(-4.0 + shared @ true)))
    relevant = rng.random(relevant_probability.shape) < relevant_probability
    learned = LearnedParams(relevant_grade=1, negatives_per_query=400, l1_c=100.0)
    pairs = training_pairs(queries, documents, indicator, [set(np.flatnonzero(row)) for row in relevant], learned, 0)
    weights = fit_kind_weights(pairs, learned, 0)
    assert np.allclose([weights[kind] for kind in FEATURE_KINDS], true, atol=0.15)


def test_bge_m3_lexical_weights_are_a_searchable_sparse_vector(tmp_path, repo_params, tiny_bge_m3_dir, index_params):
    text_model = minilm_params(kind="bge-m3", path=tiny_bge_m3_dir, max_length=64)
    entries = [anime("c:1", "volcano expedition"), anime("c:2", "orchestra violin"), anime("c:3", "submarine sonar")]
    embed_corpus(entries, repo_params.embed.model_copy(update={"text_model": text_model, "vectors": ["title_vector"]}),
                 tmp_path / "embeddings")
    lexical = lexical_vectors(tmp_path / "embeddings")
    assert isinstance(lexical, SparseVectors) and lexical.ids == ["c:1", "c:2", "c:3"] and lexical.matrix.nnz > 0
    params = index_params.model_copy(update={"sparse_vectors": [SparseVectorParams(name=LEXICAL)]})
    spec = collection_spec(params, embedding_dims(load_manifest(tmp_path / "embeddings")))
    build_index(params, spec, entries, tmp_path / "embeddings", tmp_path / "index",
                {LEXICAL: (lexical.ids, lexical.matrix)})
    index = open_index(params, tmp_path / "index")
    lexical_weights = text_encoder(text_model).encode_queries(["orchestra violin"]).sparse
    queries = encode_queries(LEXICAL, ["orchestra violin"], None, None, lexical_weights)
    hits = index.search(SearchRequest((VectorQuery(LEXICAL, queries[0]),), limit=3))
    # The texts share no token, so only the anime with the query's own text has a non-zero score.
    assert [hit.anime_id for hit in hits] == ["c:2"]
    index.close()
