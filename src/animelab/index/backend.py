"""What every search backend offers, so evaluation code never knows which engine runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from animelab.index.query import Hit, SearchRequest


@dataclass
class BuildReport:
    points: int
    segments: int
    indexed_vectors: int
    payload_indexes: dict[str, int]
    disk_bytes: int = 0
    seconds: float = 0.0


@dataclass
class CollectionDescription:
    """A built collection as its engine reports it, in one backend-neutral shape."""

    vectors: dict[str, dict[str, Any]]
    sparse_vectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    payload_indexes: dict[str, str] = field(default_factory=dict)


class SearchIndex(Protocol):
    def search(self, request: SearchRequest) -> list[Hit]: ...

    def describe(self) -> CollectionDescription: ...

    def count(self) -> int: ...

    def close(self) -> None: ...


def directory_bytes(path: Path) -> int:
    """Bytes allocated on disk (not apparent sizes: the engine preallocates sparse files)."""
    return sum(file.stat().st_blocks * 512 for file in Path(path).rglob("*") if file.is_file())
