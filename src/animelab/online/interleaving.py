"""Interleaved comparisons of two rankings: the page shown, which ranking each result is credited to,
and one impression's outcome from the clicks on it.

- Team draft (Radlinski et al. 2008): the team with fewer picks (a coin on a tie) adds its best result
  not yet shown; a click counts for the team that placed the result.
- Probabilistic (Hofmann et al. 2011): each ranking is a distribution, rank ``r`` weighing ``1 / r**tau``;
  per slot a coin picks a ranking, which draws among its results not yet shown; a click counts for the
  ranking that drew it (the unmarginalised credit).

An outcome is +1 when ``b``'s results got more clicks, -1 when ``a``'s did, 0 on a tie (no click included).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

Interleaver = Callable[[list[str], list[str], int, Any], tuple[list[str], np.ndarray]]


def team_draft(a: list[str], b: list[str], size: int, rng: Any) -> tuple[list[str], np.ndarray]:
    """The page and, per result, its team (0: ``a``, 1: ``b``); ``rng.random()`` flips the coins."""
    rankings, picks = (a, b), [0, 0]
    positions = [0, 0]  # each ranking's next unread rank
    page: list[str] = []
    teams: list[int] = []
    shown: set[str] = set()
    while len(page) < size:
        team = 0 if picks[0] < picks[1] or (picks[0] == picks[1] and rng.random() < 0.5) else 1
        for side in (team, 1 - team):  # a ranking with nothing left yields its turn
            ranking = rankings[side]
            while positions[side] < len(ranking) and ranking[positions[side]] in shown:
                positions[side] += 1
            if positions[side] < len(ranking):
                break
        else:
            break
        result = rankings[side][positions[side]]
        page.append(result)
        teams.append(side)
        shown.add(result)
        picks[side] += 1
    return page, np.asarray(teams, dtype=int)


class Coins:
    """Coin flips read from a fixed sequence (True: ``a`` picks first), for enumerating team drafts."""

    def __init__(self, flips: tuple[bool, ...]):
        self.flips = iter(flips)

    def random(self) -> float:
        return 0.0 if next(self.flips, True) else 1.0


def team_drafts(a: list[str], b: list[str], size: int) -> list[tuple[list[str], np.ndarray]]:
    """Every team draft of the two rankings, equally likely: one per sequence of coin flips (a flip
    starts each round of two picks, so ceil(size / 2) of them; the unused ones repeat a draft)."""
    rounds = (size + 1) // 2
    return [team_draft(a, b, size, Coins(flips)) for flips in itertools.product((True, False), repeat=rounds)]


def draw(mass: np.ndarray, rng: np.random.Generator) -> int:
    """``rng.choice(len(mass), p=mass / mass.sum())`` without its checks of ``p`` (most of its time here): the
    same cumulative distribution and the same one uniform draw, so a seeded stream draws the same ranks."""
    cdf = np.cumsum(mass / mass.sum())
    cdf /= cdf[-1]
    return int(cdf.searchsorted(rng.random(), side="right"))


def probabilistic(tau: float) -> Interleaver:
    @functools.lru_cache(maxsize=None)
    def rank_weights(length: int) -> np.ndarray:
        return 1.0 / np.arange(1, length + 1, dtype=float) ** tau

    def interleave(a: list[str], b: list[str], size: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
        """The page and, per result, the ranking (0: ``a``, 1: ``b``) that drew it."""
        rankings = (a, b)
        weights = [rank_weights(len(ranking)) for ranking in rankings]
        available = [np.ones(len(ranking), dtype=bool) for ranking in rankings]
        index = [{result: rank for rank, result in enumerate(ranking)} for ranking in rankings]
        page: list[str] = []
        sources: list[int] = []
        while len(page) < size:
            side = int(rng.random() < 0.5)
            if not available[side].any():
                side = 1 - side
                if not available[side].any():
                    break
            mass = weights[side] * available[side]
            rank = draw(mass, rng)
            result = rankings[side][rank]
            page.append(result)
            sources.append(side)
            for other in (0, 1):  # shown once: neither ranking may draw it again
                if result in index[other]:
                    available[other][index[other][result]] = False
        return page, np.asarray(sources, dtype=int)

    return interleave


def interleavers(tau: float) -> dict[str, Interleaver]:
    return {"team_draft": team_draft, "probabilistic": probabilistic(tau)}


def outcome(credits: np.ndarray, clicks: np.ndarray) -> int:
    """+1: ``b`` won the impression, -1: ``a`` did, 0: a tie."""
    for_b = int(np.sum(clicks & (credits == 1)))
    for_a = int(np.sum(clicks & (credits == 0)))
    return int(np.sign(for_b - for_a))
