"""Embed the corpus per named vector and store the result; load it back with its provenance.

Layout of an embeddings directory::

    manifest.json            model names, dims, field-mapper version, per-vector counts
    <vector>.npz             ids (anime ids that have this vector), dense (float32, unit rows)
                             and, for models with lexical weights, sparse_* (a CSR matrix)

Only anime whose vector has source content appear in a vector's file.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from tqdm import tqdm

from animelab.corpus.schema import AnimeEntry
from animelab.encoders.image import ImageEncoder, cached_image, open_clip_identifier
from animelab.encoders.registry import text_encoder
from animelab.encoders.text import TextEncoder
from animelab.errors import LabError
from animelab.fields import FIELD_MAPPER_VERSION, VECTORS_BY_NAME, vector_inputs
from animelab.io import atomic_path
from animelab.params import EmbedParams

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SPARSE_PREFIX = "sparse_"


class StaleEmbeddingsError(LabError):
    pass


@dataclass
class VectorEmbeddings:
    name: str
    ids: list[str]
    dense: np.ndarray
    sparse: sparse.csr_matrix | None = None


def csr_arrays(matrix: sparse.spmatrix, prefix: str = "") -> dict[str, np.ndarray]:
    """A sparse matrix as the plain arrays an ``.npz`` file holds (``<prefix>data``, ``indices``, ...)."""
    matrix = matrix.tocsr()
    return {f"{prefix}data": matrix.data.astype(np.float32), f"{prefix}indices": matrix.indices.astype(np.int64),
            f"{prefix}indptr": matrix.indptr.astype(np.int64), f"{prefix}shape": np.asarray(matrix.shape, dtype=np.int64)}


def csr_from_arrays(arrays: Any, prefix: str = "") -> sparse.csr_matrix:
    return sparse.csr_matrix((arrays[f"{prefix}data"], arrays[f"{prefix}indices"], arrays[f"{prefix}indptr"]),
                             shape=tuple(arrays[f"{prefix}shape"]))


def save_vector(directory: Path, vectors: VectorEmbeddings) -> None:
    arrays: dict[str, Any] = {"ids": np.asarray(vectors.ids, dtype=str), "dense": vectors.dense}
    if vectors.sparse is not None:
        arrays |= csr_arrays(vectors.sparse, SPARSE_PREFIX)
    np.savez(directory / f"{vectors.name}.npz", **arrays)


def load_vector(directory: Path, name: str) -> VectorEmbeddings:
    with np.load(Path(directory) / f"{name}.npz") as arrays:
        matrix = csr_from_arrays(arrays, SPARSE_PREFIX) if f"{SPARSE_PREFIX}data" in arrays else None
        return VectorEmbeddings(name, arrays["ids"].tolist(), arrays["dense"], matrix)


def load_manifest(directory: Path, expected_text_model: str | None = None) -> dict[str, Any]:
    """The manifest, refusing embeddings made by another field mapper or text model."""
    manifest = json.loads((Path(directory) / MANIFEST).read_text(encoding="utf-8"))
    if manifest["field_mapper_version"] != FIELD_MAPPER_VERSION:
        raise StaleEmbeddingsError(
            f"{directory}: embeddings from field mapper v{manifest['field_mapper_version']}, "
            f"code is v{FIELD_MAPPER_VERSION}: re-run the embed stage"
        )
    if expected_text_model and manifest["text_model"]["name"] != expected_text_model:
        raise StaleEmbeddingsError(
            f"{directory}: embeddings from {manifest['text_model']['name']}, expected {expected_text_model}"
        )
    return manifest


def embed_text_vector(entries: list[AnimeEntry], name: str, encoder: TextEncoder) -> tuple[VectorEmbeddings, dict]:
    spec = VECTORS_BY_NAME[name]
    inputs = [(entry.id, vector_inputs(entry, spec)) for entry in entries]
    present = [(anime_id, segments) for anime_id, segments in inputs if segments]
    if not present:
        return VectorEmbeddings(name, [], np.zeros((0, encoder.dim), np.float32)), {"count": 0}
    encoded = encoder.encode_documents([segments for _, segments in present], spec.long_text)
    stats = {"count": len(present), "chunks": encoded.chunks, "truncated": encoded.truncated,
             "long_text": spec.long_text, "dim": encoder.dim}
    return VectorEmbeddings(name, [anime_id for anime_id, _ in present], encoded.dense, encoded.sparse), stats


def embed_image_vector(
    entries: list[AnimeEntry], name: str, image_dir: Path | None, encoder: Callable[[], ImageEncoder]
) -> tuple[VectorEmbeddings | None, dict]:
    """Embed the anime that have cached images; with none, nothing is written (no placeholders)."""
    spec = VECTORS_BY_NAME[name]
    urls = with_urls = 0
    present: list[tuple[str, list[Path]]] = []
    for entry in entries:
        entry_urls = vector_inputs(entry, spec)
        urls += len(entry_urls)
        with_urls += bool(entry_urls)
        files = [path for url in entry_urls if (path := cached_image(image_dir, url))]
        if files:
            present.append((entry.id, files))
    stats = {"count": len(present), "anime_with_image_urls": with_urls, "image_urls": urls,
             "images_found": sum(len(files) for _, files in present)}
    if not present:
        log.warning("%s: no cached images under %s for %d URLs: vector not written", name, image_dir, urls)
        return None, stats
    dense = encoder().encode_image_sets([files for _, files in present])
    stats["dim"] = encoder().dim
    return VectorEmbeddings(name, [anime_id for anime_id, _ in present], dense), stats


def check_image_model(entries: list[AnimeEntry], params: EmbedParams) -> None:
    """Before any work: a configured image checkpoint must exist, and cached images need one."""
    specs = [VECTORS_BY_NAME[name] for name in params.vectors if VECTORS_BY_NAME[name].modality == "image"]
    if not specs:
        return
    image_dir = params.image_model.image_dir
    cached = image_dir is not None and any(cached_image(image_dir, url) for spec in specs for entry in entries
                                           for url in vector_inputs(entry, spec))
    if params.image_model.checkpoint is not None or cached:
        open_clip_identifier(params.image_model)  # a ModelPathError naming embed.image_model.checkpoint


def embed_corpus(entries: list[AnimeEntry], params: EmbedParams, out_dir: Path) -> dict[str, Any]:
    """Embed every requested vector and write the directory atomically; returns the manifest."""
    check_image_model(entries, params)
    text_vectors = [name for name in params.vectors if VECTORS_BY_NAME[name].modality == "text"]
    encoder = text_encoder(params.text_model) if text_vectors else None
    # Loaded on first use: with no cached images the image model is never needed.
    image_encoder = functools.cache(lambda: ImageEncoder(params.image_model))
    manifest: dict[str, Any] = {
        "field_mapper_version": FIELD_MAPPER_VERSION,
        "corpus_size": len(entries),
        "text_model": {
            "name": encoder.name if encoder else None,
            "kind": params.text_model.kind,
            "package_version": encoder.package_version() if encoder else None,
            "max_length": params.text_model.max_length,
            # The precision inference ran in (bf16_autocast: auto depends on the machine's CPU).
            "bf16_autocast": bool(encoder) and params.text_model.autocast,
            "dim": encoder.dim if encoder else None,
            "sparse": bool(encoder and encoder.has_sparse),
        },
        "image_model": {"name": params.image_model.name, "image_dir": str(params.image_model.image_dir)},
        "vectors": {},
    }
    with atomic_path(out_dir) as staging:
        staging.mkdir()
        for name in tqdm(params.vectors, desc="embed vectors", unit="vector"):
            if name in text_vectors:
                vectors, stats = embed_text_vector(entries, name, encoder)
            else:
                vectors, stats = embed_image_vector(entries, name, params.image_model.image_dir, image_encoder)
            if vectors is not None and vectors.ids:
                save_vector(staging, vectors)
            manifest["vectors"][name] = stats
            log.info("%s: %s", name, stats)
        if image_encoder.cache_info().currsize:
            manifest["image_model"]["name"] = image_encoder().name
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest
