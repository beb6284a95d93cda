"""DVC stage `timings`: every stage's wall and CPU seconds (reports/metrics/timings/*.json, written by the
stages themselves) -> reports/metrics/timings.json, with their sums."""

from __future__ import annotations

import logging

from animelab.io import write_json
from animelab.stages import gather_timings, run_stage, stage_args


def main(argv: list[str] | None = None) -> None:
    args = stage_args(__doc__, argv, "stages", "out", stages="the folder of per-stage timing files")
    timings = gather_timings(sorted(args.stages.glob("*.json")))
    write_json(args.out, timings)
    logging.info("%d stages: %.0f s wall, %.0f s CPU", len(timings["stages"]), timings["total"]["wall_s"],
                 timings["total"]["cpu_s"])


if __name__ == "__main__":
    run_stage(main)
