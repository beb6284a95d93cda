"""reports/online.md and reports/online.html: expected online metrics per row, interleaving's agreement
with the offline verdicts, and the impressions each pair needs."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from animelab.dataquality.report import table

METRICS = (("ctr@1", "CTR@1"), ("abandonment", "abandon"), ("rr_first_click", "RR 1st click"), ("clicks", "clicks"))
# The cascade model's first click is the DCM's (both read on until it), and its clicks 1 - abandonment.
TABLED_MODELS = ("dcm", "pbm")


def share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def needed(test: dict[str, Any], ceiling: int) -> str:
    if not test["resolved"]:
        return "n/r"
    value = test["median_impressions"]
    return f"> {ceiling:,}" if value is None else f"{value:,.0f}"


def mark(delta: float, significant: bool) -> str:
    return ("▲" if delta > 0 else "▼") if significant else "="


def metrics_table(rows: dict[str, Any], offline: dict[str, float], kind: str, users: list[str]) -> list[str]:
    header = ["row", "offline NDCG@10", "ERR@page", *(f"{user} {label}" for user in users for _, label in METRICS)]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for name in sorted(rows, key=lambda n: -offline[n]):
        cells = [f"{rows[name][kind][user][metric]:.3f}" for user in users for metric, _ in METRICS]
        lines.append(f"| {name} | {offline[name]:.4f} | {rows[name]['err@page']:.4f} | " + " | ".join(cells) + " |")
    return lines


def pair_label(test: dict[str, Any]) -> str:
    return f"{test['b']} vs {test['a']}"


def unnoticed(comparisons: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    """Offline-significant pairs that no simulated user tells apart with ``method`` (not significant)."""
    by_pair: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for test in comparisons:
        if test["method"] == method:
            by_pair.setdefault((test["a"], test["b"]), []).append(test)
    return [tests[0] for tests in by_pair.values()
            if tests[0]["offline"]["significant"] and not any(t["significant"] for t in tests)]


def online_markdown(result: dict[str, Any], offline: dict[str, float], settings: dict[str, Any]) -> str:
    users = list(settings["users"])
    ceiling = settings["sensitivity"]["sizes"][-1]
    split = result["split"]
    lines = [f"# Online-evaluation proxy ({split} split)", "",
             f"Simulated users on each deployable row's top {settings['page_size']} for the {split} queries of "
             f"the ranking categories ({', '.join(result['ranking_categories'])}), weighted like the primary metric "
             "(categories equally, a query group by its phrasings). Click chances per grade 0/1/2 and stop "
             "chances after a click:", "",
             "| user | click | stop |", "|---|---|---|",
             *(f"| {u} | {v['click']} | {v['stop']} |" for u, v in settings["users"].items()), "",
             "## Expected online metrics", "",
             "Exact expectations, no sampling: CTR@1 is the chance of a click on rank 1, abandonment the chance "
             "of no click on the page, RR 1st click the expected reciprocal rank of the first click (0 without "
             "one), clicks the expected clicks per impression. The cascade model's first-click metrics are the "
             "DCM's (both read on until the first click; reports/metrics/online.json has all three). ERR@page is "
             "Chapelle et al.'s expected reciprocal rank, the cascade model with click chance (2^g - 1) / 4: the "
             "offline check of the same model. Rows by offline NDCG@10.", ""]
    for kind in TABLED_MODELS:
        lines += [f"### {kind}", "", *metrics_table(result["rows"], offline, kind, users), ""]
    lines += ["## Interleaving against the offline verdicts", "",
              f"{len(result['pairs'])} pairs: the {settings['interleaving']['top']} best deployable rows pairwise "
              f"and the baseline against every other deployable row; clicks by the "
              f"{settings['interleaving']['click_model']} model. Per query, an impression's chances of b winning, "
              "a tie and a winning are exact for team draft (every equally likely draft, the click model's exact "
              "click-difference distribution) and simulated for probabilistic interleaving "
              f"({settings['interleaving']['impressions_per_group']} impressions per query group). The online "
              "score is the macro mean expected outcome (+1 when b's results get more clicks), tested like the "
              "offline score (paired t on weighted "
              f"query-group values, {result['correction']} over the pairs, alpha {settings['alpha']}).", "",
              "Direction: share of the offline-significant pairs where interleaving prefers the same row; "
              "significant: where it does so significantly; verdict: share of all pairs whose verdict "
              "(b better, a better, no difference) is the offline one.", "",
              "| method | user | pairs | offline significant | direction | significant | verdict |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for row in result["agreement"]:
        lines.append(f"| {row['method']} | {row['user']} | {row['pairs']} | {row['offline_significant']} | "
                     f"{share(row['direction_agreement'])} | {share(row['significant_agreement'])} | "
                     f"{share(row['verdict_agreement'])} |")
    combos = list(dict.fromkeys((t["method"], t["user"]) for t in result["comparisons"]))
    lines += ["", "## Impressions to significance", "",
              f"The least traffic (of {settings['sensitivity']['sizes']} impressions) at which a two-sided sign "
              f"test of wins against losses rejects at {settings['alpha']} with chance >= 1/2 (the median seeded "
              "stream's), computed exactly from the impression's outcome chances; '> "
              f"{ceiling:,}': not within it; 'n/r': probabilistic interleaving's simulated difference is not "
              "significant, so no size is read off it. Marks: the offline (Holm-adjusted) and online verdicts of "
              "b against a. A size is for traffic over these queries; a mark is a claim over query groups, so a "
              "pair can need 2,000 impressions here and still be '=' (its gain sits in a few groups).", "",
              "| b vs a | offline Δ | " + " | ".join(f"{m} {u}" for m, u in combos) + " |",
              "|---|---:|" + "---:|" * len(combos)]
    by_pair: dict[tuple[str, str], dict[tuple[str, str], dict[str, Any]]] = {}
    for test in result["comparisons"]:
        by_pair.setdefault((test["a"], test["b"]), {})[test["method"], test["user"]] = test
    for (a, b), tests in by_pair.items():
        first = next(iter(tests.values()))
        cells = [f"{mark(t['delta'], t['significant'])} {needed(t, ceiling)}"
                 for t in (tests[c] for c in combos)]
        lines.append(f"| {b} vs {a} | {first['offline']['delta']:+.4f} "
                     f"{mark(first['offline']['delta'], first['offline']['significant'])} | " + " | ".join(cells) + " |")
    lines += ["", "## Offline differences users would not notice", ""]
    for method in dict.fromkeys(m for m, _ in combos):
        quiet = unnoticed(result["comparisons"], method)
        lines.append(f"- {method}: " + ("; ".join(f"{pair_label(t)} (offline Δ {t['offline']['delta']:+.4f})"
                                                  for t in quiet) or "none") + ".")
    return "\n".join(lines) + "\n"


def online_html(result: dict[str, Any], settings: dict[str, Any]) -> str:
    ceiling = settings["sensitivity"]["sizes"][-1]
    figure = make_subplots(rows=2, cols=1, vertical_spacing=0.12, subplot_titles=(
        "Agreement with the offline verdicts (offline-significant pairs)",
        f"Impressions until the median stream rejects (at {ceiling:,}: not within it)"))
    labels = [f"{row['method']} / {row['user']}" for row in result["agreement"]]
    for key, name in (("direction_agreement", "same direction"), ("significant_agreement", "same, significant"),
                      ("verdict_agreement", "same verdict (all pairs)")):
        figure.add_trace(go.Bar(x=labels, y=[row[key] for row in result["agreement"]], name=name), row=1, col=1)
    for method, user in dict.fromkeys((t["method"], t["user"]) for t in result["comparisons"]):
        tests = [t for t in result["comparisons"] if t["method"] == method and t["user"] == user and t["resolved"]]
        figure.add_trace(go.Scatter(
            x=[pair_label(t) for t in tests], y=[t["median_impressions"] or ceiling for t in tests], mode="markers",
            name=f"{method} / {user}",
            customdata=[[t["offline"]["delta"], t["delta"], "yes" if t["offline"]["significant"] else "no"]
                        for t in tests],
            hovertemplate="%{x}<br>impressions %{y:,}<br>offline Δ %{customdata[0]:+.4f} (significant "
                          "%{customdata[2]})<br>online Δ %{customdata[1]:+.3f}<extra>%{fullData.name}</extra>"),
            row=2, col=1)
    figure.update_yaxes(range=[0, 1.05], title_text="share", row=1, col=1)
    figure.update_yaxes(type="log", title_text="impressions", row=2, col=1)
    figure.update_xaxes(showticklabels=False, row=2, col=1)
    figure.update_layout(height=900, title="Online-evaluation proxy: interleaving vs offline", barmode="group")
    return ("<!doctype html><html><head><meta charset='utf-8'><title>Online-evaluation proxy</title></head><body>"
            + figure.to_html(full_html=False, include_plotlyjs=True)
            + table(["method", "user", "pairs", "offline significant", "direction", "significant", "verdict"],
                    [[r["method"], r["user"], r["pairs"], r["offline_significant"], share(r["direction_agreement"]),
                      share(r["significant_agreement"]), share(r["verdict_agreement"])] for r in result["agreement"]])
            + "</body></html>")
