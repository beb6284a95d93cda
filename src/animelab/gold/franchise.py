"""Franchise membership from a normalised base title (the rule gold/README.md documents).

The base title is the romaji title, NFKC-normalised and lower-cased, cut before the first
``:``, `` - `` or `` ~`` (unless what precedes is under 4 letters/digits, like "Re:"), with
sequel markers removed (``Season 3``, ``2nd Season``, ``Part 2``, ``Final Season``, ``(TV)``,
``(2018)``, and trailing numbers or roman numerals), then reduced to letters and digits (so
``★``/``△``/``!!`` decorations vanish). Anime sharing a base title form a franchise.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict

from animelab.corpus.schema import AnimeEntry

_SEQUEL_MARKERS = re.compile(
    r"\b(?:\d+(?:st|nd|rd|th)\s+season|season\s*\d+|part\s*\d+|cour\s*\d+|(?:the\s+)?final\s+season|"
    r"(?:second|third|fourth|fifth)\s+season)\b",
    re.IGNORECASE,
)
_TRAILING_NUMBER = re.compile(r"(?:\s+(?:ii|iii|iv|v|vi|vii|viii|ix|x|\d+))+\s*$", re.IGNORECASE)
_DECORATION = re.compile(r"\((?:tv|\d{4})\)", re.IGNORECASE)
_NON_WORD = re.compile(r"[^0-9a-z]+")
# A head shorter than this ("Re", "K") names no franchise on its own: keep the full title.
MIN_HEAD_CHARS = 4


def base_title(title: str) -> str:
    text = unicodedata.normalize("NFKC", title).lower()
    head = re.split(r":| - | ~", text, maxsplit=1)[0]
    if len(_NON_WORD.sub("", head)) >= MIN_HEAD_CHARS:
        text = head
    text = _SEQUEL_MARKERS.sub(" ", _DECORATION.sub(" ", text))
    return _NON_WORD.sub("", _TRAILING_NUMBER.sub("", text.strip()))


def franchise_groups(entries: list[AnimeEntry]) -> dict[str, list[str]]:
    """base title -> ids of the anime sharing it, in corpus order (anime with an empty base title have none)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for entry in entries:
        if key := base_title(entry.title):
            groups[key].append(entry.id)
    return dict(groups)


def franchises(entries: list[AnimeEntry]) -> dict[str, list[str]]:
    """anime id -> ids of the *other* anime in its franchise (empty list when it stands alone)."""
    groups = franchise_groups(entries)
    return {entry.id: [other for other in groups.get(base_title(entry.title), []) if other != entry.id]
            for entry in entries}
