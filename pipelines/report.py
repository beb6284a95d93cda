"""DVC stage `report`: evaluation and fine-tuning results -> reports/summary.md, reports/variants.html, plot data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from animelab.errors import run_stage
from animelab.evaluation.report import write_reports
from animelab.params import load_params


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--finetune", type=Path, required=True,
                        help="the finetune_genre stage's metrics")
    parser.add_argument("--reports", type=Path, required=True)
    args = parser.parse_args(argv)
    params = load_params(args.params)
    write_reports(json.loads(args.results.read_text(encoding="utf-8")), params.evaluate.headline, args.reports,
                  json.loads(args.finetune.read_text(encoding="utf-8")))


if __name__ == "__main__":
    run_stage(main)
