"""Cross-field consistency rules, declared as data in params (``data_quality.rules``) and checked here.

Each rule names a ``check`` from ``CHECKS`` and the dotted AnimeEntry fields it reads. A rule applies to a
record only when the fields it compares are present; a violating record is listed, never dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from animelab.corpus.schema import AnimeEntry
from animelab.dataquality.completeness import present
from animelab.params import ConsistencyRuleParams

SEASON_START_MONTH = {"winter": 1, "spring": 4, "summer": 7, "fall": 10}


class NotApplicable(Exception):
    """The record lacks what the rule compares (or holds a value the rule cannot read)."""


def value_at(entry: AnimeEntry, path: str) -> Any:
    value: Any = entry
    for step in path.split("."):
        value = getattr(value, step)
    return value


def date_of(value: Any) -> dt.date:
    """The calendar date of an ISO 8601 date or timestamp (``2006-10-04T00:00:00+00:00``)."""
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError as error:
        raise NotApplicable(f"not an ISO date: {value!r}") from error


def needed(*values: Any) -> None:
    if not all(present(value) for value in values):
        raise NotApplicable("a compared field is absent")


def same_year(rule: ConsistencyRuleParams, year: Any, date: Any) -> bool:
    needed(year, date)
    return abs(int(year) - date_of(date).year) <= rule.tolerance


def season_month(rule: ConsistencyRuleParams, season: Any, date: Any) -> bool:
    """The start month lies in the season's three months, or up to ``tolerance`` months before them."""
    needed(season, date)
    start = SEASON_START_MONTH.get(str(season).lower())
    if start is None:
        raise NotApplicable(f"unknown season {season!r}")
    months_after_start = (date_of(date).month - start) % 12
    return months_after_start < 3 or months_after_start >= 12 - rule.tolerance


def ordered(rule: ConsistencyRuleParams, first: Any, second: Any) -> bool:
    needed(first, second)
    return date_of(first) <= date_of(second)


def in_range(rule: ConsistencyRuleParams, value: Any) -> bool:
    needed(value)
    return (rule.min is None or value >= rule.min) and (rule.max is None or value <= rule.max)


def when(condition: Any, rule: ConsistencyRuleParams) -> None:
    needed(condition)
    if str(condition).casefold() not in {value.casefold() for value in rule.values}:
        raise NotApplicable("condition not met")


def absent_when(rule: ConsistencyRuleParams, target: Any, condition: Any) -> bool:
    when(condition, rule)
    return not present(target)


def present_when(rule: ConsistencyRuleParams, target: Any, condition: Any) -> bool:
    when(condition, rule)
    return present(target)


CHECKS: dict[str, Callable[..., bool]] = {"same_year": same_year, "season_month": season_month, "ordered": ordered,
                                          "in_range": in_range, "absent_when": absent_when,
                                          "present_when": present_when}


def check_rule(rule: ConsistencyRuleParams, entries: Sequence[AnimeEntry], examples: int) -> dict[str, Any]:
    """How many records the rule applies to, which of them violate it, and the first ``examples`` of those
    with the values read."""
    checked, violating, unreadable = 0, [], 0
    for entry in entries:
        values = [value_at(entry, path) for path in rule.fields]
        try:
            holds = CHECKS[rule.check](rule, *values)
        except NotApplicable as reason:
            unreadable += str(reason).startswith(("not an ISO date", "unknown season"))
            continue
        checked += 1
        if not holds:
            violating.append((entry.id, values))
    return {"check": rule.check, "fields": rule.fields, "severity": rule.severity, "checked": checked,
            "violations": len(violating), "unreadable": unreadable,
            "violation_share": len(violating) / checked if checked else 0.0,
            "violating_ids": [anime for anime, _ in violating] if rule.severity == "error" else [],
            "examples": [{"id": anime, **{path: str(value) for path, value in zip(rule.fields, values)}}
                         for anime, values in violating[:examples]]}


def check_rules(rules: Sequence[ConsistencyRuleParams], entries: Sequence[AnimeEntry],
                examples: int) -> dict[str, dict[str, Any]]:
    return {rule.name: check_rule(rule, entries, examples) for rule in rules}
