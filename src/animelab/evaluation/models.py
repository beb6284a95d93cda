"""Where a variant's vectors come from: the text model it names, its corpus embeddings (the embed stage's,
another model's built here, or a tuned model's composed with the base ones) and the queries it encodes."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from animelab.corpus.schema import AnimeEntry
from animelab.embeddings import MANIFEST, embed_corpus, load_manifest
from animelab.encoders.registry import TEXT_ENCODERS, text_encoder
from animelab.encoders.text import EncodedTexts
from animelab.evaluation.experiments import Variant
from animelab.gold.splits import GoldSplit
from animelab.index.build import embedding_dims
from animelab.io import atomic_path, write_json
from animelab.params import Params, TextModelParams


@dataclass
class ModelContext:
    """A text model with its corpus embeddings and the gold queries encoded by it, per dense vector."""

    name: str
    embeddings_dir: Path
    manifest_hash: str
    dims: dict[str, int | None]
    query_vectors: dict[str, dict[str, list[float]]]
    query_lexical: sparse.csr_matrix | None  # BGE-M3's lexical weights of the queries, one row per query
    coverage: dict[str, float]  # each vector's share of the corpus


@dataclass(frozen=True)
class ModelSource:
    """Where a variant's vectors come from: ``model`` for every vector, or, for a tuned model, for
    ``tuned_vectors`` only (embedded by its stage into ``tuned_embeddings``; the rest stay the base model's)."""

    model: TextModelParams
    tuned_vectors: tuple[str, ...] = ()
    tuned_embeddings: Path | None = None


def model_source(params: Params, variant: Variant) -> ModelSource | str:
    """The variant's model, or why it cannot run here."""
    if variant.model == "default":
        return ModelSource(params.embed.text_model)
    if variant.model == "genre_ft":
        if params.evaluate.genre_ft is None:
            return "evaluate.genre_ft is not set: no fine-tuned adapter to load"
        tuned = params.embed.text_model.model_copy(update={"adapter": params.evaluate.genre_ft.adapter})
        return ModelSource(tuned, tuple(params.finetune.vectors), params.evaluate.genre_ft.embeddings)
    kind, path = variant.model, params.evaluate.model_paths.get(variant.model)
    if path is None and TEXT_ENCODERS[kind].NEEDS_PATH:
        return f"evaluate.model_paths.{kind} is not set: no local {kind} model to load"
    model = params.embed.text_model.model_copy(update={"kind": kind, "path": path})
    TEXT_ENCODERS[kind].check_path(model, f"evaluate.model_paths.{kind}")
    return ModelSource(model)


def vector_coverage(manifest: dict[str, Any]) -> dict[str, float]:
    """Each vector's share of the corpus (embeddings manifest): the anime that have it over every anime."""
    size = manifest["corpus_size"]
    return {name: (info.get("count", 0) / size if size else 0.0) for name, info in manifest["vectors"].items()}


def manifest_digest(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:12]


def composed_embeddings(base_dir: Path, tuned_dir: Path, cache_dir: Path) -> Path:
    """One embeddings directory holding the tuned model's vectors and the base model's others."""
    base, tuned = load_manifest(base_dir), load_manifest(tuned_dir)
    directory = cache_dir / f"embeddings-composed-{manifest_digest({'base': base, 'tuned': tuned})}"
    if not directory.exists():
        with atomic_path(directory) as staging:
            staging.mkdir()
            for name in base["vectors"]:
                source = tuned_dir if name in tuned["vectors"] else base_dir
                if (source / f"{name}.npz").is_file():
                    shutil.copyfile(source / f"{name}.npz", staging / f"{name}.npz")
            manifest = base | {"text_model": tuned["text_model"], "vectors": base["vectors"] | tuned["vectors"],
                               "composed": {"tuned": sorted(tuned["vectors"]), "base_model": base["text_model"]["name"]}}
            write_json(staging / MANIFEST, manifest)
    return directory


def encoded_queries(model: TextModelParams, split: GoldSplit, encoded: dict[TextModelParams, EncodedTexts]
                    ) -> EncodedTexts:
    """The split's queries encoded by ``model``: each model is loaded and run once per evaluation."""
    if model not in encoded:
        encoded[model] = text_encoder(model).encode_queries([q.text for q in split.queries])
    return encoded[model]


def by_query(split: GoldSplit, rows: np.ndarray) -> dict[str, list[float]]:
    return {q.id: row.tolist() for q, row in zip(split.queries, rows, strict=True)}


def prepare_model(params: Params, source: ModelSource, default_embeddings: Path, entries: list[AnimeEntry],
                  split: GoldSplit, cache_dir: Path, encoded: dict[TextModelParams, EncodedTexts]) -> ModelContext:
    """Embeddings for the model (the embed stage's for the default one) and the encoded queries."""
    model = source.model
    if source.tuned_embeddings is not None:
        embeddings_dir = composed_embeddings(default_embeddings, source.tuned_embeddings, cache_dir)
    elif model == params.embed.text_model:
        embeddings_dir = default_embeddings
    else:
        key = hashlib.sha256(model.model_dump_json().encode()).hexdigest()[:12]
        embeddings_dir = cache_dir / f"embeddings-{model.kind}-{key}"
        if not embeddings_dir.exists():
            vectors = [name for name in params.index.vectors if name in params.embed.vectors]
            embed_corpus(entries, params.embed.model_copy(update={"text_model": model, "vectors": vectors}),
                         embeddings_dir)
    manifest = load_manifest(embeddings_dir)
    own = encoded_queries(model, split, encoded)
    base = by_query(split, encoded_queries(params.embed.text_model, split, encoded).dense)
    tuned = by_query(split, own.dense)
    return ModelContext(
        name=manifest["text_model"]["name"],
        embeddings_dir=embeddings_dir,
        manifest_hash=manifest_digest(manifest),
        dims=embedding_dims(manifest),
        query_vectors={name: tuned if not source.tuned_vectors or name in source.tuned_vectors else base
                       for name in params.index.vectors},
        query_lexical=own.sparse,
        coverage=vector_coverage(manifest),
    )
