"""reports/data_quality.html: completeness, vector coverage, record scores, rules, links and samples."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return ("<table><thead><tr>" + "".join(f"<th>{html.escape(name)}</th>" for name in header)
            + f"</tr></thead><tbody>{cells}</tbody></table>")


def completeness_figure(fields: dict[str, Any]) -> go.Figure:
    names = sorted({name for part in fields.values() for name in part["completeness"]})
    sources = list(fields)
    values = [[fields[source]["completeness"].get(name) for source in sources] for name in names]
    figure = go.Figure(go.Heatmap(z=values, x=[f"{s} ({fields[s]['records']})" for s in sources], y=names,
                                  zmin=0, zmax=1, colorscale="Viridis", texttemplate="%{z:.2f}",
                                  hovertemplate="%{y} in %{x}: %{z:.3f}<extra></extra>"))
    return figure.update_layout(title="Field completeness per source (share of records holding a value)",
                                height=24 * len(names) + 160, yaxis={"autorange": "reversed"})


def coverage_figure(vectors: dict[str, Any]) -> go.Figure:
    names = list(vectors)
    figure = go.Figure(go.Bar(x=[vectors[n]["share"] for n in names], y=names, orientation="h",
                              text=[vectors[n]["anime"] for n in names],
                              customdata=[", ".join(vectors[n]["fields"]) for n in names],
                              hovertemplate="%{y}: %{x:.3f} (%{text} anime)<br>fed by %{customdata}<extra></extra>"))
    return figure.update_layout(title="Named vectors: share of anime with any input", xaxis={"range": [0, 1]},
                                yaxis={"autorange": "reversed"}, height=520)


def score_figure(record_score: dict[str, Any]) -> go.Figure:
    figure = go.Figure()
    for origin, part in record_score["per_origin"].items():
        edges = part["histogram"]["edges"]
        figure.add_bar(x=[(a + b) / 2 for a, b in zip(edges[:-1], edges[1:])], y=part["histogram"]["counts"],
                       name=origin, width=0.09)
    return figure.update_layout(title="Record completeness score per origin", barmode="stack",
                                xaxis={"title": "score", "range": [0, 1]}, yaxis={"title": "records"})


def threshold_figure(threshold: dict[str, Any]) -> go.Figure:
    curve = threshold["curve"]
    figure = go.Figure()
    for key in ("precision", "recall"):
        figure.add_scatter(x=[c["threshold"] for c in curve], y=[c[key] for c in curve], name=key, mode="lines")
    if threshold["threshold"] is not None:
        figure.add_vline(x=threshold["threshold"], line_dash="dot", annotation_text="chosen")
    return figure.update_layout(title="Fuzzy MAL-bangumi links: estimated precision and recall by title similarity",
                                xaxis={"title": "similarity threshold"}, yaxis={"range": [0, 1.02]})


def data_quality_html(report: dict[str, Any], alerts: list[dict[str, Any]]) -> str:
    completeness, rules, links = report["completeness"], report["rules"], report["links"]
    figures = [completeness_figure(completeness["fields"]), coverage_figure(completeness["vectors"]),
               score_figure(completeness["record_score"]), threshold_figure(links["mal_bangumi"]["threshold"])]
    rendered = [figure.to_html(full_html=False, include_plotlyjs=position == 0) for position, figure in enumerate(figures)]
    score = completeness["record_score"]["corpus"]
    mal_bangumi = links["mal_bangumi"]
    sections = [
        "<h1>Data quality</h1>",
        "<h2>Regression alerts</h2>",
        table(["metric", "before", "now", "drop"], [[a["metric"], a["before"], a["now"], a["drop"]] for a in alerts])
        if alerts else "<p>None against the previous tracked run.</p>",
        "<h2>Completeness</h2>", rendered[0], rendered[1],
        f"<p>Record score: mean {score['mean']:.3f}, median {score['quantiles']['p50']:.3f} "
        f"(required fields weigh more: {', '.join(completeness['record_score']['required_fields'])}).</p>",
        rendered[2],
        "<h2>Consistency rules</h2>",
        table(["rule", "severity", "check", "fields", "checked", "violations", "share", "examples"],
              [[name, r["severity"], r["check"], " / ".join(r["fields"]), r["checked"], r["violations"],
                f"{r['violation_share']:.2%}", "; ".join(e["id"] for e in r["examples"])] for name, r in rules.items()]),
        "<h2>Cross-source links</h2>",
        table(["link", "count"], [[key, value] for key, value in mal_bangumi.items()
                                  if isinstance(value, int | float) and not isinstance(value, bool)]),
        rendered[3],
        table(["enriched to MAL", "count"], [[key, value] for key, value in links["enriched_mal"].items()
                                              if isinstance(value, int)]),
        table(["source", "likely duplicate groups"], [[s, len(groups)] for s, groups in links["duplicates"].items()]),
        "<h2>Stratified samples</h2>",
        table(["fraction", "anime", "variable", "TVD stratified", "TVD simple random", "chi-square p stratified"],
              [[fraction, part["anime"], variable, f"{part['stratified'][variable]['total_variation']:.4f}",
                f"{part['simple_random'][variable]['total_variation']:.4f}",
                f"{part['stratified'][variable]['p_value']:.3f}"]
               for fraction, part in report["sampling"].items() for variable in part["stratified"]]),
    ]
    style = "<style>table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px}</style>"
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Data quality</title>{style}</head><body>"
            + "".join(sections) + "</body></html>\n")
