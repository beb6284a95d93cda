"""DVC stage `route`: gold queries -> a query router (train, chosen on dev), every query's routed vectors."""

from __future__ import annotations

import logging

from animelab.encoders.registry import text_encoder
from animelab.gold.splits import GoldQuery
from animelab.io import atomic_path, read_jsonl, write_json, write_text
from animelab.params import load_params
from animelab.routing.report import log_route, route_markdown
from animelab.routing.router import route_gold, save_router
from animelab.stages import run_stage, stage_args


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, "params", "queries", "out", "metrics", "report",
                      queries="the gold set's queries.jsonl (texts, splits and vector hints; no judgements)")

    params = load_params(args.params)
    queries = [GoldQuery.from_record(row, {}) for row in read_jsonl(args.queries)]
    dense = text_encoder(params.route_model()).encode_queries([q.text for q in queries]).dense
    routing = route_gold(queries, dense, params.route, params.seed)
    with atomic_path(args.out) as staging:
        staging.mkdir()
        save_router(routing.router, staging / "router.joblib")
        write_json(staging / "routes.json", routing.routes)
    write_json(args.metrics, routing.metrics)
    write_text(args.report, route_markdown(routing.metrics))
    run_id = log_route(params.tracking, {"route": params.route.model_dump(mode="json"), "seed": params.seed},
                       routing.metrics, args.out / "router.joblib")
    logging.info("router: test accuracy %.3f (macro %.3f); MLflow run %s", routing.metrics["accuracy"]["test"]["overall"],
                 routing.metrics["accuracy"]["test"]["macro"], run_id)


if __name__ == "__main__":
    run_stage(main)
