"""Ingest: read every source, validate into entries, quarantine what fails, never drop silently."""

from __future__ import annotations

import base64
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from animelab.corpus.readers import FORMATS, FieldError, SourceError, SourceRecord
from animelab.corpus.schema import AnimeEntry
from animelab.errors import LabError

log = logging.getLogger(__name__)


class QuarantineExceeded(LabError):
    pass


class NothingIngested(LabError):
    pass


def encodes_as_utf8(raw: str | dict[str, Any]) -> bool:
    try:
        json.dumps(raw, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass(frozen=True)
class QuarantinedRecord:
    source: str
    location: str
    reason: str
    raw: str | bytes | dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        row = {"source": self.source, "location": self.location, "reason": self.reason, "raw": self.raw}
        if isinstance(self.raw, bytes):  # undecodable: base64 keeps every byte
            row |= {"raw": base64.b64encode(self.raw).decode("ascii"), "raw_encoding": "base64"}
        elif not encodes_as_utf8(self.raw):  # a lone surrogate from a JSON escape: kept as escaped JSON text
            row |= {"raw": json.dumps(self.raw, ensure_ascii=True, sort_keys=True), "raw_encoding": "json"}
        return row


@dataclass
class IngestResult:
    entries: list[BaseModel] = field(default_factory=list)
    quarantined: list[QuarantinedRecord] = field(default_factory=list)
    read_per_source: Counter[str] = field(default_factory=Counter)

    @property
    def read(self) -> int:
        return sum(self.read_per_source.values())

    @property
    def quarantined_share(self) -> float:
        return len(self.quarantined) / self.read if self.read else 0.0

    def metrics(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "ingested": len(self.entries),
            "quarantined": len(self.quarantined),
            "quarantined_share": round(self.quarantined_share, 6),
            "read_per_source": dict(sorted(self.read_per_source.items())),
            "quarantined_per_reason": dict(sorted(Counter(reason_kind(q.reason) for q in self.quarantined).items())),
        }


def reason_kind(reason: str) -> str:
    """The part of a reason before its first colon: 'invalid JSON', 'duplicate id', a field name..."""
    return reason.split(":", 1)[0]


def describe_validation_error(error: ValidationError) -> str:
    problems = []
    for detail in error.errors():
        location = ".".join(str(part) for part in detail["loc"]) or "record"
        problems.append(f"{location}: {detail['msg']} (got {detail.get('input')!r:.60})")
    return "; ".join(problems)


def parse_record(record: SourceRecord, parse: Callable[[Any], BaseModel]) -> tuple[BaseModel | None, str]:
    """Return the parsed entry, or None and the reason it cannot be ingested."""
    if record.unreadable:
        return None, record.unreadable
    try:
        return parse(record.raw), ""
    except json.JSONDecodeError as error:
        return None, f"invalid JSON: {error.msg} at column {error.colno}"
    except RecursionError:
        return None, "invalid JSON: nested too deeply"
    except ValidationError as error:
        return None, describe_validation_error(error)
    except FieldError as error:
        return None, str(error)
    # Last resort for wrong types a parser does not check by name: AttributeError (a list where it expects an
    # object), OverflowError (a 400-digit score made a float).
    except (ValueError, KeyError, TypeError, AttributeError, OverflowError) as error:
        return None, f"{type(error).__name__}: {error}"


def entry_key(entry: BaseModel) -> str:
    return entry.id if isinstance(entry, AnimeEntry) else f"bangumi:{entry.bangumi_id}"


def param_key(name: str) -> str:
    """Source names are the keys of params' ``data`` section, so errors name the param to fix."""
    return f"data.{name}"


def check_sources_exist(sources: list[tuple[str, str, Path]]) -> None:
    missing = [f"{param_key(name)}: {path} does not exist" for name, _, path in sources if not Path(path).exists()]
    if missing:
        raise SourceError("; ".join(missing))


def ingest(sources: list[tuple[str, str, Path]]) -> IngestResult:
    """Read ``(name, format, path)`` sources in order; of records sharing an id the first wins.
    Every path is checked before any is read, so one run names every missing file."""
    check_sources_exist(sources)
    result = IngestResult()
    first_seen: dict[str, str] = {}
    for name, format_name, path in sources:
        source_format = FORMATS[format_name]
        for record in source_format.read(path):
            result.read_per_source[name] += 1
            entry, reason = parse_record(record, source_format.parse)
            if entry is not None and (key := entry_key(entry)) in first_seen:
                entry, reason = None, f"duplicate id: {key} already ingested from {first_seen[key]}"
            if entry is None:
                result.quarantined.append(QuarantinedRecord(name, record.location, reason, record.raw))
            else:
                first_seen[key] = record.location
                result.entries.append(entry)
        log.info("%s: read %d records from %s", name, result.read_per_source[name], path)
    return result


def anime_sources(enriched: Path, mal_seasons: Path) -> list[tuple[str, str, Path]]:
    """(name, format, path) of the anime sources. Enriched first: where it and the season file describe
    the same anime, the richer record wins."""
    return [("enriched", "enriched", enriched), ("mal_seasons", "jikan", mal_seasons)]


def check_ingested(result: IngestResult, sources: list[tuple[str, str, Path]], what: str) -> None:
    if not result.entries:
        keys = ", ".join(param_key(name) for name, _, _ in sources)
        raise NothingIngested(
            f"{what}: no record ingested from {keys} ({result.read} read, {len(result.quarantined)} quarantined)"
        )


def check_quarantine(result: IngestResult, max_share: float, what: str) -> None:
    if result.quarantined_share > max_share:
        reasons = Counter(reason_kind(q.reason) for q in result.quarantined).most_common(5)
        raise QuarantineExceeded(
            f"{what}: {len(result.quarantined)} of {result.read} records quarantined "
            f"({result.quarantined_share:.1%}), above ingest.max_quarantined_share={max_share:.1%}; "
            f"most common reasons: {reasons}"
        )
