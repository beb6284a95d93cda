"""Worker processes for the stages' untimed work: forked from one server process per stage.

A spawned worker starts a new interpreter, imports the lab (2.9 s) and compiles ranx's numba containers on first
use (5 s); a stage that starts several pools paid that per worker and pool. Here the stage's first pool starts a
fork server that imports ``WORKER_START`` once (``start_worker_server`` starts it early, beside the stage's own
work), and every worker of every pool is forked from it, clean of the stage process's threads and state.
The workers are the server's children: ``stop_worker_server`` waits for it, so that their CPU time and peak
memory count in the stage's own (``resource.RUSAGE_CHILDREN``).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext
from typing import Any, TypeVar

WORKER_START = "animelab.evaluation.worker_start"
Result = TypeVar("Result")


def worker_context() -> BaseContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([WORKER_START])
    return context


def start_worker_server(workers: int) -> None:
    """Start the fork server now, when the stage will use ``workers`` > 1 (it imports in the background); the
    first pool would otherwise wait for it."""
    if workers > 1:
        worker_context()
        multiprocessing.forkserver.ensure_running()


def in_processes(function: Callable[..., Result], tasks: Sequence[tuple[Any, ...]], workers: int,
                 initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()) -> list[Result]:
    """``[function(*task) for task in tasks]``, in order, over ``workers`` forked processes, each set up by
    ``initializer(*initargs)`` (here, without it, when one process is enough). ``function`` must be a
    module-level function (it is pickled)."""
    if workers <= 1 or len(tasks) <= 1:
        return [function(*task) for task in tasks]
    with ProcessPoolExecutor(min(workers, len(tasks)), mp_context=worker_context(), initializer=initializer,
                             initargs=initargs) as pool:
        return list(pool.map(function, *zip(*tasks, strict=True)))


def stop_worker_server() -> None:
    """Stop the fork server, if one runs, and wait for it (Python's own shutdown does neither)."""
    multiprocessing.forkserver._forkserver._stop()  # noqa: SLF001  (no public call; stable since Python 3.8)
