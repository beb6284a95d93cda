"""BGE-M3 lexical weights as a sparse set: the title_vector text's token weights from the model's sparse head.

Not built by the sparse stage: the embed stage saves them beside the dense vectors, and a query's
weights come from the same encoding that gives its dense vector.
"""

from __future__ import annotations

from pathlib import Path

from scipy import sparse

from animelab.embeddings import load_vector
from animelab.index.points import sparse_row
from animelab.index.query import SparseQuery
from animelab.params import SparseParams
from animelab.sparse.method import SparseMethod
from animelab.sparse.store import SparseSetError, SparseVectors

LEXICAL = "bge_m3_lexical"
LEXICAL_SOURCE = "title_vector"  # BGE-M3 lexical weights of the title + synopsis text


def lexical_vectors(embeddings_dir: Path) -> SparseVectors:
    """The BGE-M3 lexical weights saved by the embed stage, as a sparse vector set."""
    vectors = load_vector(embeddings_dir, LEXICAL_SOURCE)
    if vectors.sparse is None:
        raise SparseSetError(f"{embeddings_dir}: {LEXICAL_SOURCE} has no lexical weights (not a BGE-M3 model)")
    return SparseVectors(LEXICAL, vectors.ids, vectors.sparse.tocsr())


class LexicalMethod(SparseMethod):
    sets = (LEXICAL,)
    from_text_model = True

    def load(self, name: str, sparse_dir: Path | None, embeddings_dir: Path) -> SparseVectors:
        return lexical_vectors(embeddings_dir)

    def queries(self, name: str, texts: list[str], sparse_dir: Path | None, params: SparseParams,
                lexical: sparse.csr_matrix | None) -> list[SparseQuery]:
        """``lexical``: the weights the model already gave the query texts when it encoded them."""
        if lexical is None:
            raise ValueError(f"sparse set {LEXICAL} needs the query texts' lexical weights from BGE-M3")
        return [sparse_row(lexical, row) for row in range(len(texts))]
