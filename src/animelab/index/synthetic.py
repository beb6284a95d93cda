"""Synthetic collections for scale tests: real embeddings resampled with Gaussian noise.

Resampling keeps the real data's anisotropy (clusters, popular directions) that random
vectors lack, so HNSW and quantization behave as they would on a larger real corpus.
"""

from __future__ import annotations

import numpy as np


def resample_with_noise(base: np.ndarray, count: int, noise: float, seed: int) -> np.ndarray:
    """``count`` unit vectors: random rows of ``base`` plus N(0, noise^2 / dim) per dimension."""
    rng = np.random.default_rng(seed)
    rows = base[rng.integers(0, len(base), size=count)]
    jitter = rng.normal(0.0, noise / np.sqrt(base.shape[1]), size=rows.shape)
    points = (rows + jitter).astype(np.float32)
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    return points
