"""The ingest and embed stages as DVC runs them, on a tiny slice of the real data."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from animelab.embeddings import StaleEmbeddingsError, load_manifest, load_vector
from tests.conftest import REPO

TINY_VECTORS = ["title_vector", "genre_vector", "episode_vector", "review_vector", "image_vector"]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory, repo_params) -> Path:
    """A copy of the project whose params point at 40 MAL + 28 enriched + 20 bangumi records."""
    project = tmp_path_factory.mktemp("project")
    for name in ("pipelines", "src", "dvc.yaml", ".dvcignore", "gold/curated.yaml"):
        source = REPO / name
        copy = shutil.copytree if source.is_dir() else shutil.copy
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        copy(source, project / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if source.is_dir() else {}))
    data = project / "slices"
    data.mkdir()
    for key, count in (("mal_seasons", 40), ("bangumi", 20)):
        lines = getattr(repo_params.data, key).read_text(encoding="utf-8").splitlines()[:count]
        (data / f"{key}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["data"] = {"mal_seasons": "slices/mal_seasons.jsonl", "bangumi": "slices/bangumi.jsonl",
                      "enriched": str(repo_params.data.enriched)}
    params["embed"]["vectors"] = TINY_VECTORS
    params["embed"]["text_model"]["max_length"] = 128
    params["index"]["vectors"] = ["title_vector", "genre_vector", "episode_vector"]
    (project / "experiments").mkdir()
    (project / "experiments" / "tiny.yaml").write_text(
        "baseline: {search: {vectors: all, fusion: rrf, rrf_k: 60, exact: true}}\n"
        "variants:\n"
        "  - {name: hnsw-m8, axis: hnsw, index: {hnsw: {m: 8}}, search: {exact: false, hnsw_ef: 32}}\n"
        "  - {name: vectors-hint, axis: vectors, search: {vectors: hint}}\n"
        "  - {name: model-bge-m3, axis: model, model: bge-m3}\n"
    )
    params["evaluate"]["experiments"] = "experiments/tiny.yaml"
    params["evaluate"]["tracking"]["uri"] = f"sqlite:///{project / 'mlflow.db'}"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    assert run(["dvc", "init", "--no-scm", "-q"], project).returncode == 0
    return project


def test_dvc_repro_runs_every_stage_then_does_nothing(tiny_project):
    first = run(["dvc", "repro"], tiny_project)
    assert first.returncode == 0, first.stderr[-3000:]
    ingest_metrics = json.loads((tiny_project / "reports/metrics/ingest.json").read_text())
    assert ingest_metrics["anime"]["read"] == 68 and ingest_metrics["anime"]["ingested"] == 68
    assert ingest_metrics["bangumi"]["ingested"] == 20

    embeddings = tiny_project / "data/embeddings"
    manifest = load_manifest(embeddings, expected_text_model="sentence-transformers/all-MiniLM-L6-v2")
    assert set(manifest["vectors"]) == set(TINY_VECTORS)
    title = load_vector(embeddings, "title_vector")
    assert len(title.ids) == 68 and title.dense.shape == (68, 384)
    episode = load_vector(embeddings, "episode_vector")
    corpus = [json.loads(line) for line in (tiny_project / "data/corpus/anime.jsonl").read_text().splitlines()]
    assert episode.ids == [entry["id"] for entry in corpus if entry["episode_details"]]
    # No awards and no cached images anywhere: those vectors are absent, not zero or placeholder vectors.
    assert manifest["vectors"]["review_vector"]["count"] == 0
    assert manifest["vectors"]["image_vector"] == {
        "count": 0, "anime_with_image_urls": 68, "image_urls": manifest["vectors"]["image_vector"]["image_urls"],
        "images_found": 0,
    }
    assert not (embeddings / "review_vector.npz").exists() and not (embeddings / "image_vector.npz").exists()
    assert json.loads((tiny_project / "reports/metrics/embed.json").read_text())["title_vector"] == 68
    gold_manifest = json.loads((tiny_project / "gold/manifest.json").read_text())
    assert gold_manifest["totals"]["test"] > 0
    queries = [json.loads(line) for line in (tiny_project / "gold/queries.jsonl").read_text().splitlines()]
    assert {q["id"] for q in queries} == {line.split()[0] for line in (tiny_project / "gold/qrels.trec").read_text().splitlines()}
    index_metrics = json.loads((tiny_project / "reports/metrics/index.json").read_text())
    assert index_metrics["points"] == 68
    assert index_metrics["indexed_vectors"] == 68 + 68 + len(episode.ids)

    evaluation = json.loads((tiny_project / "reports/metrics/evaluate.json").read_text())
    assert set(evaluation) == {"baseline", "hnsw-m8", "vectors-hint"}
    assert evaluation["baseline"]["recall_vs_exact@10"] == 1.0
    results = json.loads((tiny_project / "data/evaluate/results.json").read_text())
    assert results["skipped"] == {"model-bge-m3": "evaluate.bge_m3_path is not set: no local BGE-M3 model to load"}
    assert "vs_baseline" in results["variants"]["hnsw-m8"] and "vs_baseline" not in results["variants"]["baseline"]
    run_lines = (tiny_project / "data/evaluate/runs/vectors-hint.trec").read_text().splitlines()
    assert {line.split()[0] for line in run_lines} <= {q["id"] for q in queries if q["split"] == "test"}
    summary = (tiny_project / "reports/summary.md").read_text()
    assert "| hnsw-m8 | hnsw |" in summary and "Skipped: model-bge-m3" in summary
    assert (tiny_project / "reports/variants.html").stat().st_size > 0

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tiny_project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("anime-search-lab")
    mlflow_runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in mlflow_runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in mlflow_runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and {r.info.run_name for r in children} == {"baseline", "hnsw-m8", "vectors-hint"}
    child = next(r for r in children if r.info.run_name == "vectors-hint")
    assert "ndcg_at_10.all" in child.data.metrics and "p_adjusted.ndcg_at_10.all" in child.data.metrics
    assert child.data.params["search.vectors"] == "hint"

    second = run(["dvc", "repro"], tiny_project)
    assert second.returncode == 0
    assert "Running stage" not in second.stdout + second.stderr


def test_embedding_is_deterministic(tiny_project, tmp_path):
    again = tmp_path / "embeddings"
    result = run([sys.executable, "pipelines/embed.py", "--out", str(again), "--metrics", str(tmp_path / "m.json")],
                 tiny_project)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in ("title_vector", "genre_vector", "episode_vector"):
        before, after = load_vector(tiny_project / "data/embeddings", name), load_vector(again, name)
        assert before.ids == after.ids and np.array_equal(before.dense, after.dense)


def test_stale_embeddings_are_refused(tiny_project):
    with pytest.raises(StaleEmbeddingsError, match="expected BAAI/bge-m3"):
        load_manifest(tiny_project / "data/embeddings", expected_text_model="BAAI/bge-m3")


def test_an_embed_that_fails_midway_leaves_no_artefact(tiny_project, tmp_path):
    """Text vectors are written, then the image vector finds a cached image but no image model."""
    corpus = [json.loads(line) for line in (tiny_project / "data/corpus/anime.jsonl").read_text().splitlines()]
    images = tmp_path / "images"
    images.mkdir()
    (images / hashlib.sha1(corpus[0]["images"]["covers"][0].encode()).hexdigest()).write_bytes(b"not read")
    params = yaml.safe_load((tiny_project / "params.yaml").read_text())
    params["embed"]["image_model"]["image_dir"] = str(images)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "embeddings"
    out.mkdir()
    (out / "previous.txt").write_text("an earlier complete run")
    result = run([sys.executable, "pipelines/embed.py", "--params", str(tmp_path / "params.yaml"), "--out", str(out)],
                 tiny_project)
    assert result.returncode != 0
    assert result.stderr.strip().endswith("error: embed.image_model.checkpoint is required to embed images "
                                          "(a local open_clip checkpoint)")
    assert [p.name for p in out.iterdir()] == ["previous.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["embeddings", "images", "params.yaml"]


def test_a_missing_model_path_names_the_path_and_the_param(tiny_project, tmp_path):
    params = yaml.safe_load((tiny_project / "params.yaml").read_text())
    params["embed"]["text_model"] |= {"kind": "bge-m3", "path": str(tmp_path / "no-model")}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = run([sys.executable, "pipelines/embed.py", "--params", str(tmp_path / "params.yaml"),
                  "--out", str(tmp_path / "embeddings")], tiny_project)
    assert result.returncode != 0
    assert f"error: embed.text_model.path: model directory {tmp_path / 'no-model'} does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_params_errors_name_the_bad_key(tiny_project, tmp_path):
    params = yaml.safe_load((tiny_project / "params.yaml").read_text())
    params["embed"]["text_model"]["max_lenght"] = 64
    params["embed"]["vectors"] = ["title_vector", "plot_vector"]
    params["ingest"]["max_quarantined_share"] = 2
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = run([sys.executable, "pipelines/ingest.py", "--params", str(tmp_path / "params.yaml")], tiny_project)
    assert result.returncode != 0
    assert "embed.text_model.max_lenght: Extra inputs are not permitted" in result.stderr
    assert "embed.vectors: Value error, unknown vectors ['plot_vector']" in result.stderr
    assert "ingest.max_quarantined_share: Input should be less than or equal to 1" in result.stderr


def test_search_cli_over_the_built_index(tiny_project):
    result = run([sys.executable, "-m", "animelab", "search", "a detective chases a killer with a notebook of death",
                  "--vectors", "title,genre", "--fusion", "rrf", "--filter", "genre=Supernatural", "--limit", "3"],
                 tiny_project)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3 and "Death Note" in lines[0]
    refused = run([sys.executable, "-m", "animelab", "search", "x", "--vectors", "staff"], tiny_project)
    assert refused.returncode != 0 and "['staff_vector'] are not in the index" in refused.stderr
