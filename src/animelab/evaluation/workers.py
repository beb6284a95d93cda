"""Untimed evaluation work (index builds, runs, fidelity, scores) spread over worker processes.

Each worker is a spawned process holding one copy of the ``Evaluation`` (its prepared models and encoded
queries travel with it, so no worker loads an encoder that the parent already ran). The engine locks an
open shard's write-ahead log, so a worker searches its own copy of each index it opens. Nothing timed
runs here: latency and memory are measured in the parent with no worker alive.
"""

from __future__ import annotations

import copyreg
import dataclasses
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ranx import Qrels, Run

if TYPE_CHECKING:
    from animelab.evaluation.runner import Evaluation

Result = TypeVar("Result")


# ranx keeps qrels and runs in numba dicts, which do not pickle: they travel as plain dicts.
copyreg.pickle(Qrels, lambda qrels: (Qrels, (qrels.to_dict(), qrels.name)))
copyreg.pickle(Run, lambda run: (Run, (run.to_dict(), run.name)))

# The worker process's copy of the evaluation, set once by the pool's initializer.
_held: Evaluation | None = None


def _hold(evaluation: Evaluation, scratch: Path) -> None:
    global _held
    private = Path(scratch) / f"worker-{os.getpid()}"
    private.mkdir()
    _held = dataclasses.replace(evaluation, private_indexes=private)


def _call(function: Callable[..., Result], arguments: tuple[Any, ...]) -> Result:
    return function(_held, *arguments)


@contextmanager
def scratch_folder(evaluation: Evaluation) -> Iterator[Path]:
    """A folder for the workers' index copies, removed when the pool is done."""
    evaluation.cache_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".workers.", dir=evaluation.cache_dir))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def map_in_workers(evaluation: Evaluation, function: Callable[..., Result], tasks: Sequence[tuple[Any, ...]],
                   workers: int) -> list[Result]:
    """``[function(evaluation, *task) for task in tasks]``, in order, over ``workers`` processes (here, in
    this process, when one is enough). ``function`` must be a module-level function (it is pickled)."""
    if workers <= 1 or len(tasks) <= 1:
        return [function(evaluation, *task) for task in tasks]
    with scratch_folder(evaluation) as scratch, ProcessPoolExecutor(
            min(workers, len(tasks)), mp_context=multiprocessing.get_context("spawn"), initializer=_hold,
            initargs=(evaluation, scratch)) as pool:
        return list(pool.map(_call, [function] * len(tasks), tasks))


def private_copy(directory: Path, private: Path) -> Path:
    """``directory`` (a built index) copied once into this worker's ``private`` folder."""
    copy = private / directory.name
    if not copy.exists():
        shutil.copytree(directory, copy)
    return copy
