"""BM25 text sparse vectors with Qdrant Edge's own BM25 model (``qdrant_edge.Bm25``).

Document text: title, English title, Japanese title, synonyms and synopsis, one per line.
Tokenisation is Qdrant's, configured by ``sparse.bm25``: the ``word`` tokenizer (unicode word
boundaries) or ``multilingual`` (which also segments Chinese/Japanese text), lower-casing,
optional ASCII folding, the language's stopwords (and those of ``stopwords``' languages) and its
Snowball stemmer. Token ids are Qdrant's hashes of the stemmed tokens, so the same model must encode
documents and queries.

A document's value on a token is BM25's term-frequency part,
``tf (k1 + 1) / (tf + k1 (1 - b + b dl / avg_len))``; a query's is 1 per distinct token. The
collection's IDF modifier supplies the IDF at search time (``ln(1 + (N - n + 0.5) / (n + 0.5))``),
so the dot product is the BM25 score. ``avg_len`` is the corpus mean document length in tokens
unless set: lengths are read from the same model with ``b = 0``, whose value
``v = tf (k1 + 1) / (tf + k1)`` inverts to ``tf = v k1 / (k1 + 1 - v)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as qe
from scipy import sparse

from animelab.corpus.schema import AnimeEntry
from animelab.gold.splits import GoldSplit
from animelab.index.query import SparseQuery
from animelab.params import Bm25Params, SparseParams
from animelab.sparse.method import BuiltSets, SparseMethod
from animelab.sparse.store import SparseVectors, load_sparse_manifest

BM25 = "bm25"

TOKENIZERS = {"word": qe.TokenizerType.Word, "multilingual": qe.TokenizerType.Multilingual}
COLUMNS = 2**32  # Qdrant's token ids are unsigned 32-bit hashes


def document_text(entry: AnimeEntry) -> str:
    parts = [entry.title, entry.title_english, entry.title_japanese, *entry.synonyms, entry.synopsis]
    return "\n".join(part for part in parts if part)


def stopwords(params: Bm25Params) -> qe.StopwordsSet | None:
    """The language's stopwords and those of ``params.stopwords``; None: the language's alone."""
    if not params.stopwords:
        return None
    return qe.StopwordsSet(languages={getattr(qe.Language, name.capitalize())
                                      for name in (params.language, *params.stopwords)})


def bm25_model(params: Bm25Params, avg_len: float, b: float | None = None) -> qe.Bm25:
    return qe.Bm25(qe.Bm25Config(k=params.k1, b=params.b if b is None else b, avg_len=avg_len,
                                 tokenizer=TOKENIZERS[params.tokenizer], language=params.language,
                                 stopwords=stopwords(params), ascii_folding=params.ascii_folding))


def token_count(model_without_length_norm: qe.Bm25, k1: float, text: str) -> float:
    """Tokens in ``text`` after stopwords, from a ``b = 0`` model's saturated term frequencies."""
    values = np.asarray(model_without_length_norm.embed_document(text).values, dtype=np.float64)
    return float(np.sum(values * k1 / (k1 + 1 - values)))


def corpus_avg_len(texts: list[str], params: Bm25Params) -> float:
    model = bm25_model(params, avg_len=1.0, b=0.0)
    return float(np.mean([token_count(model, params.k1, text) for text in texts])) if texts else 1.0


def bm25_documents(entries: list[AnimeEntry], params: Bm25Params) -> tuple[SparseVectors, float]:
    """One BM25 row per anime (every anime has a title) and the average length used."""
    texts = [document_text(entry) for entry in entries]
    avg_len = params.avg_len or corpus_avg_len(texts, params)
    model = bm25_model(params, avg_len)
    rows = [model.embed_document(text) for text in texts]
    indptr = np.cumsum([0] + [len(row.indices) for row in rows])
    indices = np.fromiter((i for row in rows for i in row.indices), dtype=np.int64, count=indptr[-1])
    data = np.fromiter((v for row in rows for v in row.values), dtype=np.float32, count=indptr[-1])
    matrix = sparse.csr_matrix((data, indices, indptr), shape=(len(rows), COLUMNS))
    matrix.sort_indices()
    return SparseVectors(BM25, [entry.id for entry in entries], matrix), avg_len


def bm25_queries(texts: list[str], params: Bm25Params, avg_len: float) -> list[SparseQuery]:
    model = bm25_model(params, avg_len)
    return [SparseQuery(list(vector.indices), list(vector.values)) for vector in map(model.embed_query, texts)]


class Bm25Method(SparseMethod):
    sets = (BM25,)
    modifier = "idf"  # the collection supplies the IDF at search time

    def build(self, entries: list[AnimeEntry], params: SparseParams, train: GoldSplit, seed: int) -> BuiltSets:
        vectors, avg_len = bm25_documents(entries, params.bm25)
        return BuiltSets({BM25: vectors}, {BM25: {"kind": "bm25", "avg_len": avg_len,
                                                  "params": params.bm25.model_dump(mode="json")}}, state=avg_len)

    def queries(self, name: str, texts: list[str], sparse_dir: Path | None, params: SparseParams,
                lexical: sparse.csr_matrix | None) -> list[SparseQuery]:
        return bm25_queries(texts, params.bm25, load_sparse_manifest(sparse_dir)["sets"][BM25]["avg_len"])

    def report(self, built: BuiltSets, splits: dict[str, GoldSplit], params: SparseParams,
               limit: int) -> tuple[list[str], dict[str, Any]]:
        return ["", f"BM25: average document length {built.state:.1f} tokens (title, titles, synonyms, synopsis).",
                ""], {}
