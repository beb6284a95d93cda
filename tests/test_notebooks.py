"""The analysis notebooks run top to bottom (papermill, the running interpreter's kernel) on the tiny project's
outputs, and show what those outputs hold; the committed copies carry no outputs."""

from __future__ import annotations

import json
from collections import Counter
from io import StringIO
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest
import yaml

from animelab.embeddings import load_vector
from animelab.evaluation.analysis import corpus_titles
from animelab.io import read_jsonl
from animelab.params import load_params
from tests.conftest import REPO, TINY_VECTORS

NOTEBOOKS = REPO / "notebooks"
PLOTLY = "application/vnd.plotly.v1+json"


def execute(name: str, project: Path, out_dir: Path, **parameters) -> nbformat.NotebookNode:
    output = out_dir / name
    # kernel "python3" launches sys.executable (jupyter_client swaps a bare "python" for it): this venv.
    papermill.execute_notebook(NOTEBOOKS / name, output, parameters={"project_dir": str(project)} | parameters,
                               kernel_name="python3", cwd=NOTEBOOKS, progress_bar=False)
    return nbformat.read(output, as_version=4)


def displayed_tables(notebook: nbformat.NotebookNode, tag: str) -> list[pd.DataFrame]:
    """The DataFrames a tagged cell displayed, parsed back from their HTML (first column as the index)."""
    cell = next(cell for cell in notebook.cells if tag in cell.metadata.get("tags", []))
    tables = []
    for output in cell.outputs:
        if "text/html" in output.get("data", {}):
            table = pd.read_html(StringIO(output["data"]["text/html"]), index_col=0)[0]
            # A named index adds a second header row; keep the column names.
            table.columns = table.columns.get_level_values(0) if table.columns.nlevels > 1 else table.columns
            tables.append(table)
    return tables


def figures(notebook: nbformat.NotebookNode, tag: str | None = None) -> list[dict]:
    """The plotly figures the notebook (or its tagged cell) drew."""
    cells = [cell for cell in notebook.cells if tag is None or tag in cell.metadata.get("tags", [])]
    return [output["data"][PLOTLY] for cell in cells for output in cell.get("outputs", [])
            if PLOTLY in output.get("data", {})]


def test_committed_notebooks_carry_no_outputs():
    notebooks = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert [path.name for path in notebooks] == [
        "01_variant_comparison.ipynb", "02_embedding_space.ipynb", "03_gold_and_failures.ipynb"]
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert "parameters" in code[0].metadata.get("tags", []), path.name
        assert all(cell.outputs == [] and cell.execution_count is None for cell in code), path.name


def test_variant_comparison_shows_every_evaluated_variant(tiny_repro, tmp_path):
    notebook = execute("01_variant_comparison.ipynb", tiny_repro, tmp_path)
    [table] = displayed_tables(notebook, "headline-table")
    experiments = yaml.safe_load((tiny_repro / "experiments/tiny.yaml").read_text())
    skipped = json.loads((tiny_repro / "data/evaluate/results.json").read_text())["skipped"]
    evaluated = ["baseline"] + [v["name"] for v in experiments["variants"] if v["name"] not in skipped]
    assert sorted(table.index) == sorted(evaluated) and "model-bge-m3" in skipped
    # Read from MLflow by the notebook; the evaluate stage's DVC metrics file holds the same numbers.
    metrics = json.loads((tiny_repro / "reports/metrics/evaluate.json").read_text())
    for variant in evaluated:
        for column, key in (("ndcg@10", "ndcg@10"), ("recall vs exact@10", "recall_vs_exact@10"),
                            ("p95 ms", "p95_ms")):
            assert table.loc[variant, column] == pytest.approx(metrics[variant][key], abs=1e-4)
    assert len(figures(notebook)) == 5


def test_embedding_space_covers_the_embedded_vectors(tiny_repro, tmp_path):
    notebook = execute("02_embedding_space.ipynb", tiny_repro, tmp_path)
    embeddings = tiny_repro / "data/embeddings"
    [coverage] = displayed_tables(notebook, "coverage")
    for name in TINY_VECTORS:
        expected = len(load_vector(embeddings, name).ids) if (embeddings / f"{name}.npz").exists() else 0
        assert coverage.loc[name, "count"] == expected
    coherence = json.loads((tiny_repro / "reports/coherence.json").read_text())
    [summary] = displayed_tables(notebook, "coherence")
    assert set(summary.index) == {name for name, aspects in coherence["vectors"].items() if "skipped" not in aspects}

    space = load_params(tiny_repro / "params.yaml").drift.space
    titles = corpus_titles(tiny_repro / "data/corpus/anime.jsonl")
    projected = load_vector(embeddings, space.vectors[0]).ids
    [umap] = figures(notebook, "umap")
    shown = [title for trace in umap["data"] for title in trace["hovertext"]]
    assert len(shown) == min(len(projected), space.max_points)
    assert set(shown) <= {titles[anime_id] for anime_id in projected}


def test_gold_and_failures_lists_the_worst_queries_with_their_results(tiny_repro, tmp_path):
    inspected = ["baseline", "vectors-hint"]
    notebook = execute("03_gold_and_failures.ipynb", tiny_repro, tmp_path, inspect=inspected, worst_per_category=2,
                       top_k=3)
    queries = list(read_jsonl(tiny_repro / "gold/queries.jsonl"))
    [splits] = displayed_tables(notebook, "split-table")
    counts = Counter((q["category"], q["split"]) for q in queries)
    for (category, split), count in counts.items():
        assert splits.loc[category, split] == count
    assert splits.loc["All", "All"] == len(queries)

    titles = corpus_titles(tiny_repro / "data/corpus/anime.jsonl")
    test_queries = {q["id"]: q for q in queries if q["split"] == "test"}
    tables = displayed_tables(notebook, "failures")
    assert len(tables) == len(inspected)
    for variant, table in zip(inspected, tables, strict=True):
        assert set(table["query_id"]) <= set(test_queries) and len(table) > 0
        assert max(Counter(table["category"]).values()) <= 2
        first = {}
        for line in (tiny_repro / f"data/evaluate/runs/{variant}.trec").read_text().splitlines():
            query_id, _, anime_id, rank, *_ = line.split()
            if rank == "1":
                first[query_id] = anime_id
        for _, row in table.iterrows():
            assert row["text"] == test_queries[row["query_id"]]["text"]
            assert row["top results"].startswith(f"1. {titles[first[row['query_id']]]}")
