"""Drift, its calibration, coherence and the embedding-space page, on data whose answers are known by construction."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import yaml
from scipy import stats
from scipy.spatial.distance import cdist

from animelab.embeddings import VectorEmbeddings, embed_text_vector
from animelab.params import CoherenceParams, DriftParams, ParamsError, SpaceParams, TrackingParams, load_params
from animelab.quality import coherence, drift
from animelab.quality.calibration import calibrate, inject_shift
from animelab.quality.space import project_vector, space_html
from animelab.tracking import numeric_metrics
from animelab.quality.tracking import log_drift_run, trend
from tests.conftest import REPO


def drift_params(**overrides) -> DriftParams:
    """The committed drift params with small, fast settings."""
    values = load_params(REPO / "params.yaml").drift.model_dump()
    values |= {"permutations": 199, "dimension_permutations": 99, "min_samples": 10}
    values["calibration"] |= {"repetitions": 100, "sample": 100, "shift_share": 0.25, "shift_std": 1.0}
    return DriftParams.model_validate(values | overrides)


def gaussian(n: int, dim: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim))


def test_per_dimension_wasserstein_equals_scipy():
    a, b = gaussian(70, 6, 0), 1.5 * gaussian(45, 6, 1) + 0.3
    result = drift.dimension_drift(a, b, permutations=19, rng=np.random.default_rng(0))
    expected = [stats.wasserstein_distance(a[:, d], b[:, d]) / a[:, d].std() for d in range(6)]
    np.testing.assert_allclose(result.distance, expected, rtol=1e-12)
    assert result.p_value.min() >= 1 / 20  # +1 smoothed over 19 relabellings


def test_relabelled_distances_are_scipys_and_the_same_on_one_thread_or_many():
    import numba

    a, b = gaussian(40, 5, 2), gaussian(30, 5, 3) + 0.2
    pooled = np.vstack([a, b])
    labellings = np.vstack([np.arange(70) < 40, *(np.random.default_rng(4).permutation(np.arange(70) < 40)
                                                   for _ in range(6))])
    order = np.argsort(pooled.T, axis=1, kind="stable")
    gaps = np.diff(np.take_along_axis(pooled.T, order, axis=1), axis=1)
    many = drift.wasserstein_per_dimension(order, gaps, labellings.astype(np.int64))
    expected = [[stats.wasserstein_distance(pooled[in_a, d], pooled[~in_a, d]) for d in range(5)]
                for in_a in labellings]
    np.testing.assert_allclose(many, expected, rtol=1e-12)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        one = drift.wasserstein_per_dimension(order, gaps, labellings.astype(np.int64))
    finally:
        numba.set_num_threads(threads)
    assert np.array_equal(one, many)


def test_calibration_detects_an_injected_shift_and_rarely_false_alarms():
    params = drift_params()
    result = calibrate(gaussian(400, 32, 0), params, np.random.default_rng(1))
    assert result["repetitions"] == 100 and result["sample_per_side"] == 100
    assert result["detection_rate"] == 1.0 and result["shift_alert_rate"] == 1.0
    # 8 of 32 dimensions moved by one std: those drift; the others only at the per-dimension alpha.
    assert 0.25 <= result["shift_drifted_share_mean"] <= 0.25 + 0.75 * 2 * params.alpha
    assert result["false_alarm_rate"] <= 2 * params.alpha + 0.05
    assert result["null_drifted_share_mean"] <= 2 * params.alpha


def test_injected_shift_moves_the_chosen_share_of_dimensions_by_the_chosen_std():
    vectors = gaussian(500, 40, 2)
    shifted = inject_shift(vectors, share=0.25, size_in_std=0.5, rng=np.random.default_rng(3))
    moved = np.abs(shifted - vectors).max(axis=0) > 0
    assert moved.sum() == 10
    np.testing.assert_allclose(np.abs((shifted - vectors).mean(axis=0))[moved], 0.5 * vectors[:, moved].std(axis=0))


def test_mmd_statistic_matches_its_kernel_definition_and_separates_shifted_samples():
    a, b = gaussian(60, 5, 4), gaussian(50, 5, 5)
    same = drift.mmd_test(a, b, permutations=199, rng=np.random.default_rng(6))
    pooled = np.vstack([a, b])
    assert same.bandwidth == pytest.approx(np.median(cdist(pooled, pooled)[np.triu_indices(110, 1)]))
    aa, bb, ab = (np.exp(-cdist(x, y, "sqeuclidean") / (2 * same.bandwidth**2)) for x, y in ((a, a), (b, b), (a, b)))
    unbiased = (aa.sum() - 60) / (60 * 59) + (bb.sum() - 50) / (50 * 49) - 2 * ab.mean()
    assert same.mmd2 == pytest.approx(unbiased, rel=1e-9)
    assert same.p_value > 0.05
    shifted = drift.mmd_test(a, b + 0.8, permutations=199, rng=np.random.default_rng(6))
    assert shifted.p_value == pytest.approx(1 / 200)


@pytest.mark.parametrize("share, expected", [(0.0, "excellent"), (0.025, "excellent"), (0.03, "good"),
                                             (0.05, "good"), (0.07, "warning"), (0.10, "warning"),
                                             (0.11, "critical"), (1.0, "critical")])
def test_band_edges(share, expected):
    assert drift.band(share, drift_params()) == expected


def test_drift_params_errors_name_the_key(tmp_path):
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["drift"]["bands"] = {"excellent": 0.2, "good": 0.05}
    raw["drift"]["pairs"][0]["a"]["years"] = [2015, 2006]
    raw["drift"]["calibration"]["vector"] = "plot_vector"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError) as error:
        load_params(tmp_path / "params.yaml")
    message = str(error.value)
    assert "drift.pairs.0.a.years: Value error, year range [2015, 2006] runs backwards" in message
    assert "drift.calibration.vector: Input should be 'title_vector'" in message


def test_a_pair_is_skipped_with_its_reason(tmp_path):
    params = drift_params(pairs=[{"name": "missing", "vectors": ["title_vector"],
                                  "a": {"embeddings": str(tmp_path)}, "b": {"embeddings": str(tmp_path / "none")}}])
    assert drift.compare_pairs(params, {}, seed=0) == {
        "missing": {"title_vector": {"skipped": f"no embeddings at {tmp_path}"}}}


def clustered(clusters: int, per_cluster: int, dim: int, noise: float, seed: int) -> tuple[np.ndarray, list[str]]:
    """Points around orthogonal centres: labels are recoverable exactly when noise is small."""
    rng = np.random.default_rng(seed)
    centres = np.eye(dim)[:clusters]
    points = np.repeat(centres, per_cluster, axis=0) + noise * rng.normal(size=(clusters * per_cluster, dim))
    return points, [f"c{i}" for i in range(clusters) for _ in range(per_cluster)]


def test_genre_purity_is_perfect_on_separated_clusters_and_chance_on_shuffled_labels():
    points, labels = clustered(clusters=4, per_cluster=30, dim=16, noise=0.05, seed=0)
    # Exact chance for 4 equal single-label groups: ordered pairs within a group / all ordered pairs.
    chance = 4 * 30 * 29 / (120 * 119)
    separated = coherence.neighbour_agreement(points, [{label} for label in labels], k=5)
    assert separated["neighbour_agreement"] == 1.0 and separated["neighbour_jaccard"] == 1.0
    assert separated["random_agreement"] == pytest.approx(chance)
    purity = coherence.label_purity(points, labels, k=5, folds=3, seed=0)
    assert purity["knn_accuracy"] == 1.0 and purity["majority_baseline"] == 0.25 and purity["silhouette"] > 0.8

    shuffled = list(np.random.default_rng(1).permutation(labels))
    noise = coherence.neighbour_agreement(points, [{label} for label in shuffled], k=5)
    assert noise["lift"] == pytest.approx(1.0, abs=0.35)
    assert coherence.label_purity(points, shuffled, k=5, folds=3, seed=0)["silhouette"] < 0.05


def test_neighbour_agreement_counts_any_shared_label():
    # Two tight pairs: the first pair shares one of two labels, the second shares none.
    points = np.array([[1.0, 0, 0], [0.99, 0.01, 0], [0, 0, 1.0], [0, 0.01, 0.99]])
    labels = [{"a", "b"}, {"b"}, {"c"}, {"d"}]
    result = coherence.neighbour_agreement(points, labels, k=1)
    assert result["neighbour_agreement"] == 0.5
    assert result["neighbour_jaccard"] == pytest.approx((0.5 + 0.5 + 0 + 0) / 4)
    assert result["random_agreement"] == pytest.approx(2 / 12)


def test_primary_label_is_the_rarest_frequent_label():
    sets = [{"Comedy", "Sports"}, {"Comedy"}, {"Comedy", "Sports"}, {"Comedy", "Frogs"}, set()]
    assert coherence.primary_labels(sets, min_count=2) == ["Sports", "Comedy", "Sports", "Comedy", None]


def probability_closer_by_counting(near: list[float], far: list[float]) -> float:
    wins = sum(1.0 if x > y else 0.5 if x == y else 0.0 for x, y in itertools.product(near, far))
    return wins / (len(near) * len(far))


def test_related_pairs_closer_than_unrelated_by_mann_whitney():
    points, labels = clustered(clusters=3, per_cluster=10, dim=8, noise=0.3, seed=2)
    groups = coherence.index_groups([[label] for label in labels])
    related = coherence.unique_pairs(coherence.group_pairs(groups))
    unrelated = coherence.random_pairs(len(points), 60, related, np.random.default_rng(0))
    assert not {tuple(p) for p in unrelated} & {tuple(p) for p in related}
    assert len({tuple(p) for p in unrelated}) == 60 and all(i < j for i, j in unrelated)
    result = coherence.closer_pairs(points, related, unrelated)
    unit = points / np.linalg.norm(points, axis=1, keepdims=True)
    near, far = ([unit[i] @ unit[j] for i, j in pairs] for pairs in (related, unrelated))
    assert result["probability_closer"] == pytest.approx(probability_closer_by_counting(near, far))
    assert result["probability_closer"] > 0.9 and result["p_value"] < 1e-6
    reversed_ = coherence.closer_pairs(points, unrelated, related)
    assert reversed_["p_value"] > 0.99  # one-sided: unrelated pairs are not closer


def test_release_order_pairs():
    consecutive, distant = coherence.release_order_pairs([[5, 2, 9], [1, 4]])
    assert consecutive == [(5, 2), (2, 9), (1, 4)] and distant == [(5, 9)]


def coherence_params(**overrides) -> CoherenceParams:
    values = dict(vectors=["title_vector"], knn_k=3, folds=2, min_label_count=2, max_pairs=200, min_anime=5)
    return CoherenceParams(**(values | overrides))


def test_cross_modal_is_not_available_without_images(enriched_sample):
    ids = [entry.id for entry in enriched_sample]
    text = VectorEmbeddings("title_vector", ids, gaussian(len(ids), 8, 0))
    report = coherence.coherence_report({"title_vector": text}, {"image_vector": 0}, enriched_sample,
                                        coherence_params(), seed=0)
    assert report["cross_modal"]["image_vector"] == {"available": False, "reason": "not available: 0 images"}
    assert report["vectors"]["title_vector"]["anime"] == len(ids)


def test_cross_modal_finds_text_structure_in_an_image_space_of_another_dimension():
    points, _ = clustered(clusters=5, per_cluster=20, dim=12, noise=0.2, seed=3)
    ids = [f"a{i}" for i in range(len(points))]
    # The "image" space: another encoder's view of the same anime, a random projection to 20 dimensions.
    image = points @ np.random.default_rng(4).normal(size=(12, 20))
    result = coherence.cross_modal(VectorEmbeddings("title_vector", ids, points),
                                   VectorEmbeddings("image_vector", ids, image), coherence_params(),
                                   np.random.default_rng(5))
    assert result["probability_closer"] > 0.9 and result["p_value"] < 1e-6


def test_embedding_space_page_has_titles_in_hover(enriched_sample, minilm):
    """The real genre_vector of the 28 enriched anime, embedded by MiniLM."""
    vectors, _ = embed_text_vector(enriched_sample, "genre_vector", minilm)
    params = SpaceParams(vectors=["genre_vector"], n_neighbors=5, min_dist=0.1, max_points=20)
    projection = project_vector(vectors, params, seed=0)
    assert projection.xy.shape == (20, 2) and projection.available == len(vectors.ids) == 28
    page = space_html([projection], enriched_sample, params)
    # plotly writes the data as JSON with \uXXXX escapes (e.g. for "/").
    data = re.sub(r"\\u([0-9a-f]{4})", lambda match: chr(int(match.group(1), 16)), page).replace('\\"', '"')
    by_id = {entry.id: entry for entry in enriched_sample}
    assert all(by_id[anime_id].title in data for anime_id in projection.ids)
    assert page.count("genre_vector by ") == 3 and "20 of 28 anime, sampled with the seed" in page
    assert page.count("hovertemplate") >= 3
    assert np.array_equal(project_vector(vectors, params, seed=0).xy, projection.xy)


def test_trend_reads_back_the_latest_drift_runs(tmp_path):
    tracking = TrackingParams(uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="drift-test")
    for value in (1.0, 2.0, 3.0):
        log_drift_run(tracking, numeric_metrics({"drift": {"p": {"v": {"drifted_share": value, "band": "good"}}}}),
                      {}, {"seed": 0})
    history = trend(tracking, ["drift.p.v.drifted_share"], windows=[2, 30])
    assert history["runs"] == 3
    series = history["metrics"]["drift.p.v.drifted_share"]
    assert series["series"] == [3.0, 2.0, 1.0]
    assert series["last_2"] == {"runs": 2, "mean": 2.5, "min": 2.0, "max": 3.0}
    assert series["last_30"] == {"runs": 3, "mean": 2.0, "min": 1.0, "max": 3.0}


def test_spaces_of_one_geometry_agree_fully_and_unrelated_spaces_score_at_their_baseline():
    from animelab.quality.spaces import compare_spaces

    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 24))
    rotation, _ = np.linalg.qr(rng.normal(size=(24, 24)))
    # The same anime in a rotated, rescaled space of more dimensions: one geometry, other coordinates.
    b = np.hstack([3.0 * a @ rotation, np.zeros((300, 8))])
    same = compare_spaces(a, b, k=10, max_pairs=4000, permutations=99, rng=np.random.default_rng(1))
    for measure in ("knn_overlap_at_10", "linear_cka", "similarity_spearman"):
        assert same[measure]["value"] == pytest.approx(1.0, abs=1e-6)
        assert same[measure]["p_value"] == pytest.approx(1 / 100)
    unrelated = compare_spaces(a, rng.normal(size=(300, 16)), k=10, max_pairs=4000, permutations=99,
                               rng=np.random.default_rng(1))
    assert unrelated["knn_overlap_at_10"]["null_mean"] == pytest.approx(10 / 299, rel=0.2)
    for measure in ("knn_overlap_at_10", "linear_cka", "similarity_spearman"):
        assert unrelated[measure]["p_value"] > 0.01
        assert abs(unrelated[measure]["value"] - unrelated[measure]["null_mean"]) < 0.05


def test_linear_cka_and_knn_overlap_match_their_definitions():
    from animelab.quality.spaces import LinearCka, knn_overlap, knn_sets, unit

    rng = np.random.default_rng(2)
    a = unit(rng.normal(size=(60, 8)))
    b = unit(rng.normal(size=(60, 5)) + a[:, :5])
    # CKA as the normalised HSIC of the two centred Gram matrices (Kornblith et al., eq. 4).
    centring = np.eye(60) - 1 / 60
    gram_a, gram_b = centring @ a @ a.T @ centring, centring @ b @ b.T @ centring
    expected = np.sum(gram_a * gram_b) / (np.linalg.norm(gram_a) * np.linalg.norm(gram_b))
    assert LinearCka(a, b)(np.arange(60)) == pytest.approx(expected)
    # Neighbours by brute force: the k smallest cosine distances to the other points.
    distances = cdist(a, a, "cosine") + np.diag(np.full(60, np.inf))
    assert [set(row) for row in knn_sets(a, 5)] == [set(row) for row in np.argsort(distances, axis=1)[:, :5]]
    assert knn_overlap(knn_sets(a, 5), knn_sets(a, 5)) == 1.0


def test_a_spaces_pair_compares_the_anime_both_models_embedded(tmp_path):
    import json

    from animelab.embeddings import MANIFEST, save_vector
    from animelab.fields import FIELD_MAPPER_VERSION

    rng = np.random.default_rng(3)
    base = rng.normal(size=(80, 12))
    for name, ids, dense, model in (("a", [f"a{i}" for i in range(80)], base, "model-a"),
                                    ("b", [f"a{i}" for i in range(10, 90)],
                                     np.vstack([base[10:] @ np.linalg.qr(rng.normal(size=(12, 12)))[0],
                                                rng.normal(size=(10, 12))]) @ rng.normal(size=(12, 20)), "model-b")):
        (tmp_path / name).mkdir()
        save_vector(tmp_path / name, VectorEmbeddings("title_vector", ids, dense.astype(np.float32)))
        (tmp_path / name / MANIFEST).write_text(json.dumps(
            {"field_mapper_version": FIELD_MAPPER_VERSION, "text_model": {"name": model}, "vectors": {}}))
    sides = {"a": {"embeddings": str(tmp_path / "a")}, "b": {"embeddings": str(tmp_path / "b")}}
    params = drift_params(pairs=[{"name": "models", "kind": "spaces", "vectors": ["title_vector"]} | sides,
                                 {"name": "one_space", "vectors": ["title_vector"]} | sides],
                          max_samples=50)
    pairs = drift.compare_pairs(params, {}, seed=0)
    result = pairs["models"]["title_vector"]
    assert result["shared_anime"] == 70 and result["anime"] == 50 and result["dims"] == [12, 20]
    assert (result["model_a"], result["model_b"]) == ("model-a", "model-b")
    assert result["linear_cka"]["value"] > result["linear_cka"]["null_mean"] and result["linear_cka"]["p_value"] < 0.05
    assert pairs["one_space"]["title_vector"]["skipped"].startswith("dimensions differ (model-a: 12, model-b: 20)")
    headline = drift.headline(pairs)["models"]["title_vector"]
    assert set(headline) == {f"{m}{s}" for m in ("knn_overlap_at_10", "linear_cka", "similarity_spearman")
                             for s in ("", ".null_mean", ".p_value")}
