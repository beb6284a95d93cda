"""What every worker process starts from (``animelab.processes``): imported once per stage by its fork server.

It imports the evaluation stack and compiles ranx's numba containers for the types the lab uses (qrels of int
grades, runs of float scores: built, read back, made comparable). Nothing here starts a thread: numba's parallel
metrics are first called in the workers themselves (a forked thread pool is unsafe).
"""

from __future__ import annotations

from ranx import Qrels

import animelab.evaluation.runner  # noqa: F401  (imported for the workers)
from animelab.gold.splits import ranked_run


def compile_containers() -> None:
    qrels = Qrels({"query": {"relevant": 1}})
    run = ranked_run({"query": ["relevant", "other"]}, "warm-up")
    qrels.to_dict()
    run.to_dict()
    run.make_comparable(qrels)


compile_containers()
