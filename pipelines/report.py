"""DVC stage `report`: evaluation and fine-tuning results -> reports/summary.md, reports/variants.html, plot data."""

from __future__ import annotations

import json

from animelab.stages import run_stage, stage_args
from animelab.evaluation.report import write_reports
from animelab.params import load_params


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, "params", "results", "finetune", "route", "gold_manifest", "reports",
                      finetune="the finetune_genre stage's metrics", route="the route stage's metrics",
                      gold_manifest="the gold stage's manifest (the paraphrase pool's rows and holes)")
    params = load_params(args.params)
    write_reports(json.loads(args.results.read_text(encoding="utf-8")), params.evaluate.headline, args.reports,
                  json.loads(args.finetune.read_text(encoding="utf-8")),
                  json.loads(args.route.read_text(encoding="utf-8")),
                  json.loads(args.gold_manifest.read_text(encoding="utf-8")).get("pool", {}))


if __name__ == "__main__":
    run_stage(main)
