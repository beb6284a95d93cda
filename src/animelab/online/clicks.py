"""Click models over one page of judged results (grades 0, 1, 2; an unjudged result is grade 0).

Each model gives, per rank, the exact chance of a click and of the *first* click, and samples clicks
with a seeded generator; the online metrics use the exact chances, the interleaving simulation the
samples.

- ``CascadeModel`` (Craswell et al. 2008): the user reads down the page and clicks the first result that
  attracts them (chance ``click[grade]``), then leaves: at most one click.
- ``DependentClickModel`` (Guo et al. 2009): the same reading, but after a click the user is satisfied and
  stops with chance ``stop[grade]``, else reads on; a result not clicked never stops them.
- ``PositionBasedModel`` (Richardson et al. 2007): rank ``r`` is examined with chance ``1 / r**eta``,
  independently of the others, and an examined result is clicked with chance ``click[grade]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from animelab.params import UserModelParams

CLICK_MODELS = ("cascade", "dcm", "pbm")


def first_click_chances(click: np.ndarray) -> np.ndarray:
    """Per rank, the chance that the first click lands there, given each rank's click chance when
    reached and clicks independent until the first."""
    not_before = np.concatenate([[1.0], np.cumprod(1 - click)[:-1]])
    return click * not_before


@dataclass(frozen=True)
class ClickModel:
    attraction: tuple[float, ...]  # per grade: the chance an examined result is clicked
    satisfaction: tuple[float, ...]  # per grade: the chance a click ends the session (dcm)
    eta: float = 1.0  # pbm: rank r is examined with chance 1 / r**eta
    kind: str = "dcm"

    def __post_init__(self) -> None:
        if self.kind not in CLICK_MODELS:
            raise ValueError(f"unknown click model {self.kind!r}; known: {list(CLICK_MODELS)}")

    def attractions(self, grades: np.ndarray) -> np.ndarray:
        return np.asarray(self.attraction, dtype=float)[grades]

    def examination(self, size: int) -> np.ndarray:
        return 1.0 / np.arange(1, size + 1, dtype=float) ** self.eta

    def click_chances(self, grades: np.ndarray) -> np.ndarray:
        """Per rank, the chance of a click there (the expected clicks per rank)."""
        attract = self.attractions(grades)
        if self.kind == "pbm":
            return self.examination(len(grades)) * attract
        if self.kind == "cascade":
            return first_click_chances(attract)
        # DCM: reading on past rank r unless a click there satisfied the user.
        stop = np.asarray(self.satisfaction, dtype=float)[grades]
        reached = np.concatenate([[1.0], np.cumprod(1 - attract * stop)[:-1]])
        return attract * reached

    def first_click(self, grades: np.ndarray) -> np.ndarray:
        """Per rank, the chance that the session's first click is there."""
        attract = self.attractions(grades)
        return first_click_chances(self.examination(len(grades)) * attract if self.kind == "pbm" else attract)

    def sample(self, grades: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One session's clicks (a boolean per rank)."""
        attract = self.attractions(grades)
        draws = rng.random((2, len(grades)))
        if self.kind == "pbm":
            return draws[0] < self.examination(len(grades)) * attract
        clicks = np.zeros(len(grades), dtype=bool)
        stop = np.ones(len(grades)) if self.kind == "cascade" else np.asarray(self.satisfaction, dtype=float)[grades]
        for rank in range(len(grades)):
            if draws[0, rank] < attract[rank]:
                clicks[rank] = True
                if draws[1, rank] < stop[rank]:
                    break
        return clicks


    def outcome_chances(self, grades: np.ndarray, credits: np.ndarray) -> np.ndarray:
        """Per page (rows of ``grades`` and ``credits``, +1 for a result credited to ``b``, -1 to ``a``),
        the exact chances that ``b``'s results get more clicks, as many, fewer: a walk down the page over
        the click difference (and, for the cascade model and DCM, whether the user still reads). A credit
        of 0 is an empty slot, never clicked."""
        pages, size = grades.shape
        attract = np.where(credits == 0, 0.0, self.attractions(grades))
        if self.kind == "pbm":
            attract = attract * self.examination(size)
            stop = np.zeros_like(attract)
        else:
            stop = np.ones_like(attract) if self.kind == "cascade" else np.asarray(self.satisfaction)[grades]
        reading = np.zeros((pages, 2 * size + 1))
        reading[:, size] = 1.0  # difference 0
        stopped = np.zeros_like(reading)
        for rank in range(size):
            clicked = reading * attract[:, rank, None]
            shifted = np.zeros_like(clicked)
            up, down = credits[:, rank] > 0, credits[:, rank] < 0
            shifted[up, 1:], shifted[down, :-1] = clicked[up, :-1], clicked[down, 1:]
            reading = reading - clicked + shifted * (1 - stop[:, rank, None])
            stopped += shifted * stop[:, rank, None]
        final = reading + stopped
        return np.stack([final[:, size + 1:].sum(axis=1), final[:, size], final[:, :size].sum(axis=1)], axis=1)


def click_model(kind: str, user: UserModelParams, eta: float) -> ClickModel:
    return ClickModel(tuple(user.click), tuple(user.stop), eta, kind)


def err(grades: np.ndarray, max_grade: int = 2) -> float:
    """Expected reciprocal rank (Chapelle et al. 2009): the cascade model whose click chance is the
    grade's satisfaction ``(2^g - 1) / 2^max_grade``, read as the expected 1 / rank of its click."""
    satisfaction = (2.0 ** np.arange(max_grade + 1) - 1) / 2.0 ** max_grade
    model = ClickModel(tuple(satisfaction), (1.0,) * (max_grade + 1), kind="cascade")
    return float(np.sum(model.first_click(grades) / np.arange(1, len(grades) + 1)))
