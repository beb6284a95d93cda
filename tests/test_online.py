"""Click models against their closed forms, interleaving's fairness and credit, the sign test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from animelab.online.clicks import ClickModel, err
from animelab.online.interleaving import interleavers, outcome, team_draft
from animelab.online.simulation import (impressions_to_significance, page_grades, rejection_chance,
                                        team_draft_chances)

GRADES = np.array([0, 2, 1, 0, 2])
ATTRACTION, SATISFACTION = (0.1, 0.5, 0.9), (0.2, 0.5, 0.8)


def sampled_click_rates(model: ClickModel, grades: np.ndarray, sessions: int = 40_000) -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.mean([model.sample(grades, rng) for _ in range(sessions)], axis=0)


def test_the_cascade_model_clicks_the_first_attractive_result_and_leaves():
    model = ClickModel(ATTRACTION, SATISFACTION, kind="cascade")
    a = [0.1, 0.9, 0.5, 0.1, 0.9]  # attraction of grades 0, 2, 1, 0, 2
    by_hand = [a[0], (1 - a[0]) * a[1], (1 - a[0]) * (1 - a[1]) * a[2],
               (1 - a[0]) * (1 - a[1]) * (1 - a[2]) * a[3], (1 - a[0]) * (1 - a[1]) * (1 - a[2]) * (1 - a[3]) * a[4]]
    assert model.click_chances(GRADES) == pytest.approx(by_hand)
    assert model.first_click(GRADES) == pytest.approx(by_hand)
    # Expected clicks: one unless no result attracts.
    assert model.click_chances(GRADES).sum() == pytest.approx(1 - np.prod([1 - x for x in a]))
    assert sampled_click_rates(model, GRADES) == pytest.approx(by_hand, abs=0.01)


def test_the_dependent_click_model_reads_on_unless_a_click_satisfies():
    model = ClickModel(ATTRACTION, SATISFACTION, kind="dcm")
    a, s = [0.1, 0.9, 0.5, 0.1, 0.9], [0.2, 0.8, 0.5, 0.2, 0.8]
    reached = np.cumprod([1.0] + [1 - x * y for x, y in zip(a, s)])[:-1]
    assert model.click_chances(GRADES) == pytest.approx(np.array(a) * reached)
    assert sampled_click_rates(model, GRADES) == pytest.approx(np.array(a) * reached, abs=0.01)
    # Before the first click nothing stops the user: the first click is the cascade model's.
    assert model.first_click(GRADES) == pytest.approx(ClickModel(ATTRACTION, SATISFACTION, kind="cascade")
                                                      .first_click(GRADES))


def test_the_position_based_model_examines_by_rank_alone():
    model = ClickModel(ATTRACTION, SATISFACTION, eta=1.0, kind="pbm")
    expected = np.array([0.1, 0.9, 0.5, 0.1, 0.9]) / np.arange(1, 6)
    assert model.click_chances(GRADES) == pytest.approx(expected)
    assert sampled_click_rates(model, GRADES) == pytest.approx(expected, abs=0.01)


def test_err_is_chapelles_formula():
    # Grades 2, 0, 1 over a maximum of 2: stop chances 3/4, 0, 1/4.
    assert err(np.array([2, 0, 1])) == pytest.approx(3 / 4 + 0 + (1 / 3) * (1 / 4) * (1 - 3 / 4))
    assert err(np.array([0, 0])) == 0.0


@pytest.mark.parametrize("method", ["team_draft", "probabilistic"])
def test_identical_rankings_win_half_of_the_decided_impressions(method):
    interleave = interleavers(tau=3.0)[method]
    ranking = [f"a{i}" for i in range(20)]
    user = ClickModel((0.4, 0.7, 0.9), (0.1, 0.3, 0.5), kind="dcm")  # informational: several clicks
    grades = {result: rank % 3 for rank, result in enumerate(ranking)}
    rng = np.random.default_rng(3)
    outcomes = []
    for _ in range(6000):
        page, credits = interleave(ranking, list(ranking), 10, rng)
        outcomes.append(outcome(credits, user.sample(np.array([grades[r] for r in page]), rng)))
    wins, losses = outcomes.count(1), outcomes.count(-1)
    assert stats.binomtest(wins, wins + losses).pvalue > 0.01
    assert 0.45 < wins / (wins + losses) < 0.55


def test_team_draft_shows_each_result_once_and_keeps_the_teams_even():
    rng = np.random.default_rng(0)
    a, b = ["x", "y", "z", "w"], ["z", "x", "v"]
    for _ in range(200):
        page, teams = team_draft(a, b, 10, rng)
        assert sorted(page) == sorted(set(a) | set(b)) and len(page) == len(set(page))
        # Until the shorter ranking runs out, neither team is more than one pick ahead.
        assert abs(int(np.sum(teams[:4] == 0)) - int(np.sum(teams[:4] == 1))) <= 1


@pytest.mark.parametrize("method", ["team_draft", "probabilistic"])
def test_the_ranking_with_the_relevant_results_first_wins(method):
    interleave = interleavers(tau=3.0)[method]
    relevant, other = [f"r{i}" for i in range(5)], [f"n{i}" for i in range(5)]
    perfect = ClickModel((0.0, 0.5, 1.0), (0.0, 0.0, 0.0), kind="dcm")
    rng = np.random.default_rng(1)
    outcomes = [outcome(credits, perfect.sample(np.array([2 if r.startswith("r") else 0 for r in page]), rng))
                for page, credits in (interleave(other + relevant, relevant + other, 10, rng) for _ in range(500))]
    if method == "team_draft":  # a's team picks its non-relevant results before any relevant one
        assert outcomes.count(1) > 0.9 * 500 and outcomes.count(-1) == 0
    else:  # a draws its lower-ranked relevant results now and then
        assert outcomes.count(1) > 0.85 * 500 and outcomes.count(-1) < 0.1 * 500


@pytest.mark.parametrize("kind", ["cascade", "dcm", "pbm"])
def test_exact_team_draft_outcome_chances_match_simulated_impressions(kind):
    model = ClickModel((0.4, 0.7, 0.9), (0.1, 0.3, 0.5), kind=kind)
    a, b = ["r1", "n1", "r2", "n2", "n3"], ["n1", "r2", "r3", "r1"]
    judged = {"r1": 2, "r2": 1, "r3": 2}
    (exact,) = team_draft_chances(a, b, judged, [model], size=6)
    rng = np.random.default_rng(5)
    outcomes = []
    for _ in range(30_000):
        page, teams = team_draft(a, b, 6, rng)
        outcomes.append(outcome(teams, model.sample(page_grades(page, judged), rng)))
    simulated = [outcomes.count(1) / len(outcomes), outcomes.count(0) / len(outcomes), outcomes.count(-1) / len(outcomes)]
    assert exact.sum() == pytest.approx(1.0) and exact == pytest.approx(simulated, abs=0.01)


def test_the_sign_tests_rejection_chance_is_that_of_simulated_streams():
    wins, losses, size = 0.30, 0.22, 300
    rng = np.random.default_rng(11)
    streams = rng.multinomial(size, [wins, losses, 1 - wins - losses], size=4000)
    rejected = [stats.binomtest(w, w + l).pvalue < 0.05 for w, l, _ in streams]
    assert rejection_chance(wins, losses, size, 0.05) == pytest.approx(np.mean(rejected), abs=0.025)
    # Equal chances reject at most at the test's level, at any size.
    assert rejection_chance(0.2, 0.2, 5000, 0.05) <= 0.05
    assert impressions_to_significance(0.2, 0.2, [100, 1000, 10_000], 0.05) is None
    # Normal approximation: (1.96 / (2 theta - 1))^2 / (wins + losses), theta = 0.30 / 0.52: about 311 impressions.
    assert impressions_to_significance(0.30, 0.22, [50, 100, 300, 1000], 0.05) == 1000


def test_a_probabilistic_draw_is_the_generators_choice_on_the_same_stream():
    from animelab.online.interleaving import draw

    masses = np.random.default_rng(5)
    for seed in range(3000):
        size = int(masses.integers(1, 12))
        mass = 1.0 / np.arange(1, size + 1) ** 3.0 * (masses.random(size) < 0.7)
        if not mass.any():
            continue
        ours, numpys = np.random.default_rng(seed), np.random.default_rng(seed)
        assert [draw(mass, ours) for _ in range(3)] == [int(numpys.choice(size, p=mass / mass.sum())) for _ in range(3)]
        assert ours.random() == numpys.random()
