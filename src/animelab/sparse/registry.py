"""The sparse vector methods and the sets they make; variants name sets (``search.sparse``).
Adding a method is a file beside this one (a ``SparseMethod``) and a line here."""

from __future__ import annotations

from pathlib import Path

from scipy import sparse

from animelab.index.query import SparseQuery
from animelab.params import SparseParams
from animelab.sparse.bm25 import Bm25Method
from animelab.sparse.feature_sets import FeatureMethod
from animelab.sparse.lexical import LexicalMethod
from animelab.sparse.method import SparseMethod
from animelab.sparse.store import SparseVectors, content_key

SPARSE_METHODS: tuple[SparseMethod, ...] = (
    FeatureMethod(),
    Bm25Method(),
    LexicalMethod(),
)

METHOD_OF: dict[str, SparseMethod] = {name: method for method in SPARSE_METHODS for name in method.sets}
SET_NAMES: tuple[str, ...] = tuple(METHOD_OF)
MODIFIERS: dict[str, str] = {name: method.modifier for name, method in METHOD_OF.items()}
LABEL_FIELDS: dict[str, frozenset[str]] = {name: method.label_fields for name, method in METHOD_OF.items()}


def load_set(name: str, sparse_dir: Path | None, embeddings_dir: Path) -> SparseVectors:
    return METHOD_OF[name].load(name, sparse_dir, embeddings_dir)


def encode_queries(name: str, texts: list[str], sparse_dir: Path | None, params: SparseParams,
                   lexical: sparse.csr_matrix | None = None) -> list[SparseQuery]:
    """Query vectors for a set; ``lexical``: the lexical weights the text model gave the texts, if it has a head."""
    return METHOD_OF[name].queries(name, texts, sparse_dir, params, lexical)


def sets_key(names: list[str], sparse_dir: Path | None) -> str:
    """Changes whenever the sparse stage rewrites one of the named sets (index caches key on it)."""
    return content_key(names, sparse_dir, [name for name in names if not METHOD_OF[name].from_text_model])
