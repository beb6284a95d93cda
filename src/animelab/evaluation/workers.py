"""Untimed evaluation work (index builds, runs, fidelity, scores) spread over worker processes.

Each worker is a spawned process (``animelab.processes``) holding one copy of the ``Evaluation`` (its prepared
models and encoded queries travel with it, so no worker loads an encoder that the parent already ran). The engine
locks an open shard's write-ahead log, so a worker searches its own (hard-linked) copy of each index it opens.
Nothing timed runs here: latency and memory are measured in the parent with no worker alive.
"""

from __future__ import annotations

import copyreg
import dataclasses
import itertools
import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ranx import Qrels, Run

from animelab.index.edge import linked_copy
from animelab.processes import in_processes

if TYPE_CHECKING:
    from animelab.evaluation.runner import Evaluation

Result = TypeVar("Result")


# ranx keeps qrels and runs in numba dicts, which do not pickle: they travel as plain dicts.
copyreg.pickle(Run, lambda run: (Run, (run.to_dict(), run.name)))

# A split's qrels travel with every task on it, and reading a numba dict out or building one takes seconds
# for a split (3.3 CPU-min of the evaluate stage): each qrels object is read out once where it is sent and
# built once per process that receives it (qrels are not changed once built).
_sent_qrels: weakref.WeakKeyDictionary[Qrels, tuple[str, dict[str, dict[str, int]], str | None]] = \
    weakref.WeakKeyDictionary()
_received_qrels: dict[str, Qrels] = {}
_qrels_tokens = itertools.count()


def _reduce_qrels(qrels: Qrels) -> tuple[Callable[..., Qrels], tuple[Any, ...]]:
    if qrels not in _sent_qrels:
        _sent_qrels[qrels] = (f"{os.getpid()}:{next(_qrels_tokens)}", qrels.to_dict(), qrels.name)
    return _received_qrels_of, _sent_qrels[qrels]


def _received_qrels_of(token: str, plain: dict[str, dict[str, int]], name: str | None) -> Qrels:
    if token not in _received_qrels:
        _received_qrels[token] = Qrels(plain, name)
    return _received_qrels[token]


copyreg.pickle(Qrels, _reduce_qrels)

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
    with scratch_folder(evaluation) as scratch:
        return in_processes(_call, [(function, task) for task in tasks], workers, _hold, (evaluation, scratch))


def private_copy(directory: Path, private: Path) -> Path:
    """``directory`` (a built index) as this worker's own, made once in its ``private`` folder."""
    copy = private / directory.name
    if not copy.exists():
        linked_copy(directory, copy)
    return copy
