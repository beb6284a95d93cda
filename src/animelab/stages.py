"""The stage entry point: a stage's path options, the errors a user sees, and what the stage cost.

Every DVC stage is run as ``python pipelines/<stage>.py ... --timings reports/metrics/timings/<stage>.json``:
``run_stage`` takes ``--timings`` off the command line, runs the stage and, when it succeeds, writes its
wall and CPU seconds there. The ``timings`` stage gathers those files into ``reports/metrics/timings.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from animelab.errors import run_for_user
from animelab.io import write_json


def stage_args(description: str, argv: list[str] | None, *paths: str, names: tuple[str, ...] = (),
               **helps: str) -> argparse.Namespace:
    """A stage's inputs and outputs: every one a required path option (``--corpus``), named in dvc.yaml's cmd,
    so the stage file is the one place that says where data lives. ``names``: optional string options
    (which part of a section a foreach stage runs)."""
    parser = argparse.ArgumentParser(description=description)
    for name in paths:
        parser.add_argument(f"--{name}", type=Path, required=True, help=helps.get(name))
    for name in names:
        parser.add_argument(f"--{name}", default=None, help=helps.get(name))
    return parser.parse_args(argv)


def run_stage(main: Callable[[list[str]], None], argv: list[str] | None = None) -> None:
    timing = argparse.ArgumentParser(add_help=False)
    timing.add_argument("--timings", type=Path, default=None)
    known, rest = timing.parse_known_args(sys.argv[1:] if argv is None else argv)
    run_for_user(lambda: main(rest))
    if known.timings is not None:
        write_json(known.timings, stage_cost())


def stage_cost() -> dict[str, Any]:
    """This process's cost so far, from its start (interpreter and imports included, as a user waits for them):
    wall seconds, CPU seconds of it and of the processes it waited for, and peak resident memory."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    user, system = own.ru_utime + children.ru_utime, own.ru_stime + children.ru_stime
    wall = time.time() - psutil.Process().create_time()
    return {"wall_s": round(wall, 1), "cpu_s": round(user + system, 1), "user_s": round(user, 1),
            "system_s": round(system, 1),
            # ru_maxrss is in KiB on Linux.
            "peak_rss_mib": round(max(own.ru_maxrss, children.ru_maxrss) / 1024, 1),
            "cores": os.cpu_count(), "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}


def gather_timings(paths: list[Path]) -> dict[str, Any]:
    """Each stage's last run, by stage file name, and their sums: what one full ``dvc repro`` costs."""
    stages = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in sorted(paths)}
    return {"total": {key: round(sum(cost[key] for cost in stages.values()), 1) for key in ("wall_s", "cpu_s")},
            "stages": stages}
