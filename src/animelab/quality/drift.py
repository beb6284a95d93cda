"""Embedding drift: does set B's distribution of vectors differ from reference set A's (one embedding space)?

Three views, each a pure function of two ``(n, dim)`` arrays:

- **per dimension**: the Wasserstein distance between A's and B's values of one coordinate, divided by A's
  standard deviation of that coordinate so that one threshold fits every dimension (Evidently's normed
  Wasserstein). A dimension *drifted* when that distance exceeds ``drift.wasserstein_threshold`` *and* is
  significant at ``drift.alpha`` against ``drift.dimension_permutations`` random relabellings of the pooled
  values, after the Benjamini-Hochberg correction over the dimensions: the distance between two finite samples of one distribution is never 0 (about 0.06 at 1,000 vectors
  per side, 0.1 at 300, 0.3 at 30), so a bare threshold would call noise drift at small samples. The *drifted
  share* of dimensions gives the band: excellent <= ``bands.excellent`` < good <= ``bands.good`` < warning <=
  ``alert_share`` < critical; the design's alert is "critical" (more than 10% of dimensions drifted).
- **centroid shift**: the cosine distance between the two mean vectors.
- **whole vectors**: a kernel two-sample test. The statistic is the unbiased squared maximum mean discrepancy
  (MMD², Gaussian kernel, bandwidth = median pairwise distance of the pooled sample); its p-value comes from
  ``scipy.stats.permutation_test`` relabelling the pooled vectors (one-sided: larger MMD² = more different).

A pair of embedding sets (params ``drift.pairs``) names two embedding directories and optional corpus year ranges;
each side is sampled down to ``drift.max_samples`` with the seed. A side that is missing, too small, or of another
dimension than its counterpart is not compared: its entry says ``{"skipped": "<reason>"}``. A pair of
``kind: spaces`` (two text models) is compared by measures defined across spaces instead (``quality.spaces``).
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from scipy import stats
from scipy.spatial.distance import pdist, squareform

from animelab.embeddings import MANIFEST, VectorEmbeddings, load_manifest, load_vector
from animelab.params import DriftPairParams, DriftParams, DriftSideParams
from animelab.quality import spaces

BANDS = ("excellent", "good", "warning", "critical")


def derived_rng(seed: int, *names: str) -> np.random.Generator:
    """A generator per named task: adding a pair or a vector leaves the others' samples unchanged."""
    return np.random.default_rng([seed, *(zlib.crc32(name.encode()) for name in names)])


@dataclass(frozen=True)
class DimensionDrift:
    distance: np.ndarray  # per dimension: Wasserstein distance / the reference's std of that dimension
    p_value: np.ndarray  # per dimension: the share of relabellings at least as distant (+1 smoothed)


@numba.njit(cache=True, parallel=True)
def wasserstein_per_dimension(order: np.ndarray, gaps: np.ndarray, labellings: np.ndarray) -> np.ndarray:
    """1-D Wasserstein distances of every column at once, for each labelling of the pooled rows (scipy's
    ``wasserstein_distance`` does one column of one labelling per call). Compiled and spread over the cores:
    in numpy (a cumulative sum over every column per labelling) it took two thirds of the drift stage.

    ``order`` (dim, n) and ``gaps`` (dim, n - 1) describe the pooled sample sorted per column (argsort,
    differences of sorted values); ``labellings`` (k, n) marks the rows of the first sample, one labelling per
    row. The distance integrates |F_a - F_b| over the gaps, where n_a n_b (F_a - F_b) = n below_a - n_a below
    is an integer: below_a counts the a-values at or below a sorted value, below all values.
    """
    count, n = labellings.shape
    dims = order.shape[0]
    n_a = labellings[0].sum()
    scale = 1.0 / (n_a * (n - n_a))
    distances = np.empty((count, dims))
    for labelling in numba.prange(count):  # labellings are independent: the same result on any number of threads
        in_a = labellings[labelling]
        for dim in range(dims):
            below_a = 0
            total = 0.0
            for position in range(n - 1):
                below_a += in_a[order[dim, position]]
                total += abs(n * below_a - n_a * (position + 1)) * gaps[dim, position]
            distances[labelling, dim] = total * scale
    return distances


def dimension_drift(reference: np.ndarray, current: np.ndarray, permutations: int,
                    rng: np.random.Generator) -> DimensionDrift:
    """Normed Wasserstein distance per dimension, with a permutation p-value per dimension."""
    pooled = np.vstack([reference, current]).astype(np.float64).T
    order = np.argsort(pooled, axis=1, kind="stable")
    gaps = np.diff(np.take_along_axis(pooled, order, axis=1), axis=1)
    in_a = np.arange(pooled.shape[1]) < len(reference)
    labellings = np.vstack([in_a, *(rng.permutation(in_a) for _ in range(permutations))]).astype(np.int64)
    distances = wasserstein_per_dimension(order, gaps, labellings)
    observed = distances[0]
    as_far = 1.0 + (distances[1:] >= observed).sum(axis=0)
    scale = reference.std(axis=0)
    return DimensionDrift(observed / np.where(scale > 0, scale, 1.0), as_far / (permutations + 1))


def centroid_shift(reference: np.ndarray, current: np.ndarray) -> float:
    """Cosine distance between the mean vectors (0: same direction)."""
    a, b = reference.mean(axis=0), current.mean(axis=0)
    return float(1.0 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@dataclass(frozen=True)
class TwoSampleTest:
    mmd2: float
    p_value: float
    bandwidth: float


def mmd_test(reference: np.ndarray, current: np.ndarray, permutations: int, rng: np.random.Generator) -> TwoSampleTest:
    """Unbiased MMD² with a Gaussian kernel and its permutation p-value."""
    pooled = np.vstack([reference, current]).astype(np.float64)
    distances = pdist(pooled)
    bandwidth = float(np.median(distances)) or 1.0
    kernel = squareform(np.exp(-(distances**2) / (2 * bandwidth**2)))  # zero diagonal: the unbiased estimator
    n_a, n_b = len(reference), len(current)

    def statistic(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        # x, y hold indices into the pooled sample, permutations along the leading axes.
        in_a = np.zeros(x.shape[:-1] + (len(pooled),))
        np.put_along_axis(in_a, x, 1.0, axis=-1)
        in_b = 1.0 - in_a
        k_a = in_a @ kernel
        within_a = np.einsum("...i,...i->...", k_a, in_a) / (n_a * (n_a - 1))
        between = np.einsum("...i,...i->...", k_a, in_b) / (n_a * n_b)
        within_b = np.einsum("...i,...i->...", in_b @ kernel, in_b) / (n_b * (n_b - 1))
        return within_a + within_b - 2 * between

    result = stats.permutation_test((np.arange(n_a), np.arange(n_a, n_a + n_b)), statistic, vectorized=True,
                                    n_resamples=permutations, alternative="greater", rng=rng)
    return TwoSampleTest(float(result.statistic), float(result.pvalue), bandwidth)


def band(drifted_share: float, params: DriftParams) -> str:
    edges = (params.bands.excellent, params.bands.good, params.alert_share)
    return next((name for name, edge in zip(BANDS, edges) if drifted_share <= edge), BANDS[-1])


def drift(reference: np.ndarray, current: np.ndarray, params: DriftParams, rng: np.random.Generator) -> dict[str, Any]:
    """The headline numbers for one pair of sets."""
    dimensions = dimension_drift(reference, current, params.dimension_permutations, rng)
    # Benjamini-Hochberg over the dimensions: uncorrected, alpha of a no-drift set's dimensions would "drift".
    significant = stats.false_discovery_control(dimensions.p_value) < params.alpha
    drifted = (dimensions.distance > params.wasserstein_threshold) & significant
    share = float(drifted.mean())
    test = mmd_test(reference, current, params.permutations, rng)
    return {
        "n_a": len(reference), "n_b": len(current), "dim": reference.shape[1],
        "drifted_share": share, "drifted_dims": int(drifted.sum()),
        "wasserstein_mean": float(dimensions.distance.mean()), "wasserstein_max": float(dimensions.distance.max()),
        "dims_over_threshold": int(np.sum(dimensions.distance > params.wasserstein_threshold)),
        "dims_significant": int(significant.sum()),
        "centroid_shift": centroid_shift(reference, current),
        "mmd2": test.mmd2, "p_value": test.p_value, "bandwidth": test.bandwidth,
        "significant": test.p_value < params.alpha,
        "band": band(share, params), "alert": share > params.alert_share,
    }


class SkippedSide(Exception):
    """A side that cannot be compared; the message is the reason recorded in the output."""


class EmbeddingReader:
    """Reads each embeddings manifest and vector file once per stage run (pairs share directories)."""

    def __init__(self) -> None:
        self.model_name = functools.cache(lambda directory: load_manifest(directory)["text_model"]["name"])
        self.vector = functools.cache(load_vector)


def side_vectors(side: DriftSideParams, vector: str, reader: EmbeddingReader) -> tuple[VectorEmbeddings, str]:
    """The side's embeddings of ``vector`` and the text model that made them."""
    if not (side.embeddings / MANIFEST).exists():
        raise SkippedSide(f"no embeddings at {side.embeddings}")
    if not (side.embeddings / f"{vector}.npz").exists():
        raise SkippedSide(f"{side.embeddings} has no {vector}")
    return reader.vector(side.embeddings, vector), reader.model_name(side.embeddings)


def load_side(side: DriftSideParams, vector: str, years: dict[str, int | None],
              reader: EmbeddingReader) -> tuple[np.ndarray, str]:
    """The side's vectors (restricted to its year range) and the text model that made them."""
    vectors, model = side_vectors(side, vector, reader)
    if side.years is None:
        return vectors.dense, model
    low, high = side.years
    keep = [i for i, anime_id in enumerate(vectors.ids) if (year := years.get(anime_id)) is not None
            and low <= year <= high]
    return vectors.dense[keep], model


def subsample(vectors: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    if len(vectors) <= size:
        return vectors
    return vectors[np.sort(rng.choice(len(vectors), size, replace=False))]


def compare_space_vector(pair: DriftPairParams, vector: str, params: DriftParams, seed: int,
                         reader: EmbeddingReader) -> dict[str, Any]:
    """Two models' spaces of ``vector`` on the anime both sides have (see ``quality.spaces``)."""
    try:
        (a, model_a), (b, model_b) = side_vectors(pair.a, vector, reader), side_vectors(pair.b, vector, reader)
    except SkippedSide as reason:
        return {"skipped": str(reason)}
    rows_b = {anime_id: row for row, anime_id in enumerate(b.ids)}
    shared = [(row, rows_b[anime_id]) for row, anime_id in enumerate(a.ids) if anime_id in rows_b]
    if len(shared) < params.min_samples:
        return {"skipped": f"{len(shared)} anime on both sides: fewer than drift.min_samples={params.min_samples}"}
    rng = derived_rng(seed, pair.name, vector)
    chosen = np.sort(rng.choice(len(shared), min(params.max_samples, len(shared)), replace=False))
    rows = np.asarray(shared)[chosen]
    result = spaces.compare_spaces(a.dense[rows[:, 0]], b.dense[rows[:, 1]], params.spaces.knn_k,
                                   params.spaces.max_pairs, params.permutations, rng)
    return result | {"shared_anime": len(shared), "model_a": model_a, "model_b": model_b}


def compare_vector(pair: DriftPairParams, vector: str, years: dict[str, int | None], params: DriftParams,
                   seed: int, reader: EmbeddingReader) -> dict[str, Any]:
    if pair.kind == "spaces":
        return compare_space_vector(pair, vector, params, seed, reader)
    try:
        (a, model_a), (b, model_b) = load_side(pair.a, vector, years, reader), load_side(pair.b, vector, years, reader)
    except SkippedSide as reason:
        return {"skipped": str(reason)}
    if a.shape[1] != b.shape[1]:
        return {"skipped": f"dimensions differ ({model_a}: {a.shape[1]}, {model_b}: {b.shape[1]}): "
                           "per-dimension drift needs one embedding space"}
    if min(len(a), len(b)) < params.min_samples:
        return {"skipped": f"{len(a)} vs {len(b)} vectors: fewer than drift.min_samples={params.min_samples}"}
    rng = derived_rng(seed, pair.name, vector)
    result = drift(subsample(a, params.max_samples, rng), subsample(b, params.max_samples, rng), params, rng)
    return result | {"available_a": len(a), "available_b": len(b), "model_a": model_a, "model_b": model_b}


def compare_pairs(params: DriftParams, years: dict[str, int | None], seed: int) -> dict[str, dict[str, Any]]:
    """pair name -> vector -> headline numbers or ``{"skipped": reason}``."""
    reader = EmbeddingReader()
    return {pair.name: {vector: compare_vector(pair, vector, years, params, seed, reader) for vector in pair.vectors}
            for pair in params.pairs}


HEADLINE = ("drifted_share", "centroid_shift", "p_value")
SPACE_HEADLINE = ("linear_cka", "similarity_spearman")


def vector_headline(result: dict[str, Any]) -> dict[str, Any]:
    if "skipped" in result:
        return result
    if "band" not in result:  # two models' spaces
        measures = [name for name in result if name.startswith("knn_overlap_at_")] + list(SPACE_HEADLINE)
        return {f"{name}{part}": round(result[name][key], 4) for name in measures
                for part, key in (("", "value"), (".null_mean", "null_mean"), (".p_value", "p_value"))}
    return {number: round(result[number], 4) for number in HEADLINE} | {"band": result["band"]}


def headline(pairs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The DVC metrics view: per pair and vector the drifted share, centroid shift, p-value and band, or for
    two models' spaces the kNN overlap, CKA and similarity rank correlation with their baselines."""
    return {pair: {vector: vector_headline(result) for vector, result in vectors.items()}
            for pair, vectors in pairs.items()}
