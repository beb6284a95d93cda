"""File helpers shared by every stage: atomic writes, JSON Lines and YAML."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import itertools
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel

from animelab.errors import LabError


LOCKS = Path(tempfile.gettempdir()) / "animelab-locks"
OLD = "previous"  # where the replaced target waits inside the temporary until the new one is in place


@contextmanager
def writer_lock(target: Path) -> Iterator[None]:
    """Hold the one-writer lock of ``target``; a second writer fails at once instead of racing the first.
    The lock file lives outside the project (keyed by the absolute path) so outputs hold nothing extra."""
    LOCKS.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha1(str(Path(target).resolve()).encode("utf-8")).hexdigest()
    with (LOCKS / f"{key}.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise LabError(f"{target} is busy: another process is writing it; wait for it to finish") from error
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def recover_interrupted(target: Path) -> None:
    """Undo what a killed writer of ``target`` left: a replaced target not yet back in place is restored,
    temporaries are removed. Runs under the writer lock, so no live writer owns them."""
    for temporary in sorted(target.parent.glob(f".{target.name}.*.tmp")):
        previous = temporary / OLD / target.name
        if not target.exists() and previous.exists():
            os.replace(previous, target)
        shutil.rmtree(temporary, ignore_errors=True)


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``target``; on success it replaces ``target``.

    Works for files and directories. If the block raises, the temporary is removed and ``target`` is
    left as it was, so an interrupted stage never leaves a half-written artefact. A directory target is
    moved aside before the new one is renamed in; a writer killed between the two renames leaves the old
    one in its temporary, and the next writer puts it back. One writer per target at a time.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Inside another write's temporary the target is private already: no lock (and no lock file) needed.
    private = any(parent.name.startswith(".") and parent.name.endswith(".tmp") for parent in target.parents)
    with contextlib.nullcontext() if private else writer_lock(target):
        recover_interrupted(target)
        temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        staging = temporary / target.name
        try:
            yield staging
            if target.is_dir():
                (temporary / OLD).mkdir()
                os.replace(target, temporary / OLD / target.name)
            os.replace(staging, target)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as staging:
        staging.write_text(text, encoding="utf-8")


def write_csv(path: Path, rows: list[dict[str, Any]], header: list[str] | None = None) -> None:
    """Rows of one shape as CSV, the first row's keys as the header unless ``header`` names it (no rows)."""
    with atomic_path(path) as staging, staging.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=header or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def write_jsonl(path: Path, rows: Iterable[BaseModel | dict[str, Any]]) -> int:
    count = 0
    with atomic_path(path) as staging, staging.open("w", encoding="utf-8") as out:
        for row in rows:
            data = row.model_dump(mode="json") if isinstance(row, BaseModel) else row
            out.write(json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n")
            count += 1
    return count


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with Path(path).open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


class Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 booleans (true/false only): DVC writes params.yaml as YAML 1.2 (``dvc exp run -S`` drops the
    quotes around a stopword like "on"), and YAML 1.1 would then read it back as True."""


Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                   list("tTfF"))


def read_yaml(path: Path) -> Any:
    """The parsed file; a syntax error is a LabError naming the file and line, not a parser traceback."""
    try:
        return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=Yaml12Loader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        raise LabError(f"{where}: invalid YAML: {getattr(error, 'problem', None) or error}") from error


T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last may be shorter); itertools.batched is 3.12+."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch
