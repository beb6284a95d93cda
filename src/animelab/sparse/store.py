"""Storing sparse vector sets, like embeddings: anime ids plus a CSR matrix, with a manifest.

Layout of a sparse directory (``data/sparse/``)::

    manifest.json      per set: kind, the Qdrant modifier its collection applies (none | idf),
                       a content hash, and what is needed to encode queries for it
    <set>.npz          ids (anime ids, one per row), CSR data / indices / indptr / shape
    vocabulary.json    the feature key of every column of the feature sets

BM25 columns are Qdrant's token hashes (up to 2**32), so those matrices are very wide and
have no vocabulary. Sets from a text model's lexical head (BGE-M3) are not stored here: they
come from its embeddings directory (``lexical.py``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from animelab.embeddings import csr_arrays, csr_from_arrays
from animelab.errors import LabError

MANIFEST = "manifest.json"


class SparseSetError(LabError):
    pass


@dataclass
class SparseVectors:
    name: str
    ids: list[str]
    matrix: sparse.csr_matrix


def save_sparse(directory: Path, vectors: SparseVectors) -> str:
    """Write ``<name>.npz``; returns the sha256 of its arrays (the manifest records it; the zip
    file itself carries timestamps)."""
    arrays = {"ids": np.asarray(vectors.ids, dtype=str)} | csr_arrays(vectors.matrix)
    np.savez(Path(directory) / f"{vectors.name}.npz", **arrays)
    digest = hashlib.sha256()
    for name, array in arrays.items():
        digest.update(name.encode() + np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def load_sparse(directory: Path, name: str) -> SparseVectors:
    path = Path(directory) / f"{name}.npz"
    if not path.is_file():
        raise SparseSetError(f"sparse vector set {name!r}: {path} does not exist (run the sparse stage)")
    with np.load(path) as arrays:
        return SparseVectors(name, arrays["ids"].tolist(), csr_from_arrays(arrays))


def load_sparse_manifest(directory: Path) -> dict[str, Any]:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise SparseSetError(f"{path} does not exist (run the sparse stage)")
    return json.loads(path.read_text(encoding="utf-8"))


def content_key(names: list[str], sparse_dir: Path | None, stored: list[str]) -> str:
    """What the sets' contents hash to: changes whenever the sparse stage rewrites one of them.
    ``stored``: those of ``names`` that the sparse stage writes (the others hash to null)."""
    hashes = load_sparse_manifest(sparse_dir)["sets"] if sparse_dir and stored else {}
    return hashlib.sha256(json.dumps({name: hashes.get(name, {}).get("sha256") for name in sorted(names)},
                                     sort_keys=True).encode()).hexdigest()[:16]
