"""Where a variant's vectors come from: the text model it names, its corpus embeddings (the embed stage's,
an extra embedding set's, another model's built here, or a tuned model's composed with the base ones), the
other sets' vectors a multi-model hybrid adds, and the queries each model encodes."""

from __future__ import annotations

import dataclasses
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
from animelab.errors import LabError
from animelab.evaluation.experiments import Variant
from animelab.fields import base_vector, vector_set
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
class ExtraVector:
    """A vector of another embedding set searched beside the variant's own (``use:title_vector``)."""

    name: str
    model: TextModelParams
    embeddings: Path


@dataclass(frozen=True)
class ModelSource:
    """Where a variant's vectors come from: ``model`` for every vector (from ``embeddings``, an embedding
    set's directory, when the embed stage built them), or, for a tuned model, for ``tuned_vectors`` only
    (embedded by its stage into ``tuned_embeddings``; the rest stay the base model's); plus ``extra``
    vectors of other sets."""

    model: TextModelParams
    tuned_vectors: tuple[str, ...] = ()
    tuned_embeddings: Path | None = None
    embeddings: Path | None = None
    extra: tuple[ExtraVector, ...] = ()


def extra_vectors(params: Params, variant: Variant) -> tuple[ExtraVector, ...]:
    extra = []
    for name in variant.search.extra_vectors:
        chosen = params.embed.sets.get(vector_set(name))
        if chosen is None:
            raise LabError(f"{params.evaluate.experiments}: variant {variant.name} searches {name}, but embed.sets "
                           f"has no set {vector_set(name)!r} (it has {sorted(params.embed.sets)})")
        if base_vector(name) not in chosen.vectors:
            raise LabError(f"{params.evaluate.experiments}: variant {variant.name} searches {name}, which "
                           f"embed.sets.{vector_set(name)}.vectors does not embed")
        extra.append(ExtraVector(name, chosen.text_model, chosen.dir))
    return tuple(extra)


def model_source(params: Params, variant: Variant) -> ModelSource | str:
    """The variant's model, or why it cannot run here."""
    source = own_model_source(params, variant)
    if isinstance(source, str):
        return source
    return dataclasses.replace(source, extra=extra_vectors(params, variant))


def own_model_source(params: Params, variant: Variant) -> ModelSource | str:
    """The model of the variant's own lists (``variant.model``), or why it cannot run here."""
    if variant.model == "default":
        return ModelSource(params.embed.text_model)
    if variant.model == "genre_ft":
        if params.evaluate.genre_ft is None:
            return "evaluate.genre_ft is not set: no fine-tuned adapter to load"
        tuned = params.embed.text_model.model_copy(update={"adapter": params.evaluate.genre_ft.adapter})
        return ModelSource(tuned, tuple(params.finetune.vectors), params.evaluate.genre_ft.embeddings)
    built = {chosen.text_model.kind: chosen for chosen in params.embed.sets.values()}
    if variant.model in built:  # an embedding set of the embed stage
        return ModelSource(built[variant.model].text_model, embeddings=built[variant.model].dir)
    kind, path = variant.model, params.evaluate.model_paths.get(variant.model)
    if path is None and TEXT_ENCODERS[kind].NEEDS_PATH:
        return f"evaluate.model_paths.{kind} is not set: no local {kind} model to load"
    model = params.embed.text_model.model_copy(update={"kind": kind, "path": path})
    # The default model's bfloat16 autocast does not carry over to a kind it cannot apply to (BGE-M3).
    model = TextModelParams.model_validate(model.model_dump() | ({} if model.autocast_applies() else
                                                                 {"bf16_autocast": False}))
    TEXT_ENCODERS[kind].check_path(model, f"evaluate.model_paths.{kind}")
    return ModelSource(model)


def vector_coverage(manifest: dict[str, Any]) -> dict[str, float]:
    """Each vector's share of the corpus (embeddings manifest): the anime that have it over every anime."""
    size = manifest["corpus_size"]
    return {name: (info.get("count", 0) / size if size else 0.0) for name, info in manifest["vectors"].items()}


def manifest_digest(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()[:12]


def embeddings_of(directory: Path, param: str) -> dict[str, Any]:
    if not (directory / MANIFEST).is_file():
        raise LabError(f"{param}: no embeddings at {directory} (run its stage: dvc repro)")
    return load_manifest(directory)


def composed_embeddings(base_dir: Path, cache_dir: Path, tuned_dir: Path | None = None,
                        extra: tuple[ExtraVector, ...] = ()) -> Path:
    """One embeddings directory: the base model's vectors, a tuned model's in their place, and other sets'
    vectors under their qualified names (``use:title_vector``)."""
    base = load_manifest(base_dir)
    tuned = embeddings_of(tuned_dir, "evaluate.genre_ft.embeddings") if tuned_dir else {"vectors": {}}
    sets = {vector.name: embeddings_of(vector.embeddings, f"embed.sets.{vector_set(vector.name)}.dir")
            for vector in extra}
    digest = manifest_digest({"base": base, "tuned": tuned, "extra": sets})
    directory = cache_dir / f"embeddings-composed-{digest}"
    if not directory.exists():
        files = {name: (tuned_dir if name in tuned["vectors"] else base_dir) / f"{name}.npz" for name in base["vectors"]}
        files |= {vector.name: vector.embeddings / f"{base_vector(vector.name)}.npz" for vector in extra}
        with atomic_path(directory) as staging:
            staging.mkdir()
            for name, source in files.items():
                if source.is_file():
                    shutil.copyfile(source, staging / f"{name}.npz")
            stats = base["vectors"] | tuned["vectors"] | {
                vector.name: sets[vector.name]["vectors"][base_vector(vector.name)] for vector in extra}
            composed = {"base_model": base["text_model"]["name"], "tuned": sorted(tuned["vectors"]),
                        "extra": {vector.name: sets[vector.name]["text_model"]["name"] for vector in extra}}
            write_json(staging / MANIFEST, base | {"text_model": tuned.get("text_model", base["text_model"]),
                                                   "vectors": stats, "composed": composed})
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
    if source.embeddings is not None:
        embeddings_dir = source.embeddings
        embeddings_of(embeddings_dir, f"embed.sets ({model.kind})")  # a clear error before any query is encoded
    elif model == params.embed.text_model or source.tuned_embeddings is not None:
        embeddings_dir = default_embeddings
    else:
        key = hashlib.sha256(model.model_dump_json().encode()).hexdigest()[:12]
        embeddings_dir = cache_dir / f"embeddings-{model.kind}-{key}"
        if not embeddings_dir.exists():
            vectors = [name for name in params.index.vectors if name in params.embed.vectors]
            embed_corpus(entries, params.embed.model_copy(update={"text_model": model, "vectors": vectors}),
                         embeddings_dir)
    if source.tuned_embeddings is not None or source.extra:
        embeddings_dir = composed_embeddings(embeddings_dir, cache_dir, source.tuned_embeddings, source.extra)
    manifest = load_manifest(embeddings_dir)
    own = encoded_queries(model, split, encoded)
    base = by_query(split, encoded_queries(params.embed.text_model, split, encoded).dense)
    tuned = by_query(split, own.dense)
    extra = {vector.name: by_query(split, encoded_queries(vector.model, split, encoded).dense) for vector in source.extra}
    return ModelContext(
        name=" + ".join([manifest["text_model"]["name"],
                         *(f"{name} ({model})" for name, model in manifest.get("composed", {}).get("extra", {}).items())]),
        embeddings_dir=embeddings_dir,
        manifest_hash=manifest_digest(manifest),
        dims=embedding_dims(manifest),
        query_vectors={name: tuned if not source.tuned_vectors or name in source.tuned_vectors else base
                       for name in params.index.vectors} | extra,
        query_lexical=own.sparse,
        coverage=vector_coverage(manifest),
    )
