"""What a sparse vector method is: the sets it makes, how the sparse stage builds them, how a query
becomes a sparse vector for them, and its part of the sparse report. ``registry.py`` lists the methods."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from scipy import sparse

from animelab.corpus.schema import AnimeEntry
from animelab.gold.splits import GoldSplit
from animelab.index.query import SparseQuery
from animelab.params import SparseParams
from animelab.sparse.store import SparseSetError, SparseVectors, load_sparse


@dataclass
class BuiltSets:
    """One method's output of the sparse stage."""

    sets: dict[str, SparseVectors]
    details: dict[str, dict[str, Any]]                        # per set: manifest fields beside modifier and hash
    manifest: dict[str, Any] = field(default_factory=dict)    # top-level manifest entries
    files: dict[str, Any] = field(default_factory=dict)       # extra JSON files of the sparse directory
    state: Any = None                                         # what the method's report section reads


class SparseMethod:
    sets: ClassVar[tuple[str, ...]]
    modifier: ClassVar[str] = "none"  # the Qdrant modifier its collections apply: none | idf
    # Sets that come from a text model's lexical head (the embeddings), not from the sparse stage.
    from_text_model: ClassVar[bool] = False
    # The corpus label fields its documents or its query mapping are built from (gold.RELEVANCE_FIELDS
    # says which categories' relevance they define): a row searching such a set is a metadata row.
    label_fields: ClassVar[frozenset[str]] = frozenset()

    def build(self, entries: list[AnimeEntry], params: SparseParams, train: GoldSplit, seed: int) -> BuiltSets | None:
        """The sets, built by the sparse stage (train queries only for anything fitted); None: built elsewhere."""
        return None

    def load(self, name: str, sparse_dir: Path | None, embeddings_dir: Path) -> SparseVectors:
        if sparse_dir is None:
            raise SparseSetError(f"sparse vector set {name!r} needs the sparse stage's output directory")
        return load_sparse(sparse_dir, name)

    def queries(self, name: str, texts: list[str], sparse_dir: Path | None, params: SparseParams,
                lexical: sparse.csr_matrix | None) -> list[SparseQuery]:
        raise NotImplementedError

    def report(self, built: BuiltSets, splits: dict[str, GoldSplit], params: SparseParams,
               limit: int) -> tuple[list[str], dict[str, Any]]:
        """Markdown lines for reports/sparse.md and numbers for its DVC metrics."""
        return [], {}
