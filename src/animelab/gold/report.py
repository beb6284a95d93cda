"""reports/gold.html: the gold set's anatomy (counts, relevant-set sizes, examples), with plotly."""

from __future__ import annotations

import html
from pathlib import Path

import plotly.graph_objects as go

from animelab.corpus.schema import AnimeEntry
from animelab.gold.splits import SPLITS, GoldQuery
from animelab.io import write_text
from animelab.params import GOLD_CATEGORIES


def counts_figure(queries: list[GoldQuery]) -> go.Figure:
    figure = go.Figure()
    for split in SPLITS:
        figure.add_bar(name=split, x=list(GOLD_CATEGORIES),
                       y=[sum(q.category == c and q.split == split for q in queries) for c in GOLD_CATEGORIES])
    figure.update_layout(barmode="stack", title="Queries per category and split", yaxis_title="queries")
    return figure


def sizes_figure(queries: list[GoldQuery]) -> go.Figure:
    figure = go.Figure()
    for category in GOLD_CATEGORIES:
        figure.add_box(name=category, y=[sum(g == 2 for g in q.qrels.values()) for q in queries if q.category == category],
                       boxpoints="outliers")
    figure.update_layout(title="Relevant (grade 2) anime per query", yaxis_type="log", yaxis_title="grade-2 anime")
    return figure


def examples_table(queries: list[GoldQuery], titles: dict[str, str], per_category: int = 5) -> str:
    rows = []
    for category in GOLD_CATEGORIES:
        for query in [q for q in queries if q.category == category][:per_category]:
            top = [titles[a] for a, g in sorted(query.qrels.items(), key=lambda i: (-i[1], i[0])) if g == 2][:3]
            rows.append(f"<tr><td>{category}</td><td>{query.split}</td><td>{html.escape(query.text[:160])}</td>"
                        f"<td>{sum(g == 2 for g in query.qrels.values())}</td>"
                        f"<td>{html.escape('; '.join(top))}</td></tr>")
    return ("<table border=1 cellpadding=4><tr><th>category</th><th>split</th><th>query</th><th>grade 2</th>"
            "<th>first relevant titles</th></tr>" + "".join(rows) + "</table>")


def write_gold_report(path: Path, queries: list[GoldQuery], entries: list[AnimeEntry]) -> None:
    titles = {entry.id: entry.title for entry in entries}
    parts = [counts_figure(queries).to_html(full_html=False, include_plotlyjs=True),
             sizes_figure(queries).to_html(full_html=False, include_plotlyjs=False),
             "<h2>Examples</h2>", examples_table(queries, titles)]
    write_text(path, "<html><head><meta charset='utf-8'><title>Gold set</title></head><body><h1>Gold set</h1>"
               + "".join(parts) + "</body></html>\n")
