"""DVC stage `online`: simulated users on the evaluated rows -> online metrics, interleaved comparisons,
reports/online.md, reports/online.html, MLflow."""

from __future__ import annotations

import json
import logging

from animelab.stages import run_stage, stage_args
from animelab.evaluation.scoring import Design
from animelab.gold.splits import gold_split, read_gold, read_trec_rankings
from animelab.io import write_json, write_text
from animelab.online.report import online_html, online_markdown
from animelab.online.simulation import deployable_rows, evaluate_online
from animelab.online.tracking import log_online
from animelab.params import load_params


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, "params", "gold", "evaluate", "report", "html", "metrics",
                      evaluate="the evaluate stage's outputs (results.json, runs/)")
    params = load_params(args.params)
    results = json.loads((args.evaluate / "results.json").read_text(encoding="utf-8"))
    split = gold_split(read_gold(args.gold), results["split"])
    rankings = {name: read_trec_rankings(args.evaluate / "runs" / f"{name}.trec")
                for name in deployable_rows(results["variants"])}
    qrels = split.judged  # in the design's query order
    result = evaluate_online(params.online, results, rankings, qrels, Design.of_split(split, params.evaluate),
                             params.seed, params.evaluate.workers)
    settings = params.online.model_dump(mode="json")
    offline = {name: results["variants"][name]["scores"]["macro"][results["primary"]] for name in rankings}
    write_json(args.metrics, {"agreement": result["agreement"], "rows": result["rows"],
                              "comparisons": result["comparisons"]})
    write_text(args.report, online_markdown(result, offline, settings))
    write_text(args.html, online_html(result, settings))
    run_id = log_online(params.tracking, result, {"online": settings, "seed": params.seed})
    logging.info("online: %d rows, %d pairs; MLflow run %s", len(rankings), len(result["pairs"]), run_id)


if __name__ == "__main__":
    run_stage(main)
