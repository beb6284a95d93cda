"""Calibration of the drift tests on controls whose answer is known by construction.

Each repetition draws two disjoint random halves of one embedding set (``drift.calibration.sample`` vectors each):

- **null control**: the halves as drawn. Nothing drifted, so the two-sample test should reject at rate ~alpha
  (its false-alarm rate) and the drifted-share alert should stay quiet.
- **shift control**: the second half with a known shift injected: ``shift_share`` of the dimensions, chosen at
  random, each moved by ``shift_std`` of that dimension's standard deviation (random sign). A pure translation
  moves a dimension's Wasserstein distance by exactly that amount, so with ``shift_std`` above the threshold
  about ``shift_share`` of the dimensions drift and the test should detect it (detection rate ~1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from tqdm import tqdm

from animelab.params import DriftParams
from animelab.quality.drift import drift


def inject_shift(vectors: np.ndarray, share: float, size_in_std: float, rng: np.random.Generator) -> np.ndarray:
    """``vectors`` with ``round(share * dim)`` random dimensions translated by ``size_in_std`` of their std."""
    dims = vectors.shape[1]
    moved = rng.choice(dims, max(1, round(share * dims)), replace=False)
    shifted = vectors.astype(np.float64, copy=True)
    shifted[:, moved] += rng.choice([-1.0, 1.0], len(moved)) * size_in_std * vectors[:, moved].std(axis=0)
    return shifted


def calibrate(vectors: np.ndarray, params: DriftParams, rng: np.random.Generator) -> dict[str, Any]:
    """Detection rate under the injected shift and false-alarm rate on random splits, over the repetitions."""
    settings = params.calibration
    size = min(settings.sample, len(vectors) // 2)
    null, shifted = [], []
    for _ in tqdm(range(settings.repetitions), desc="drift calibration", unit="repetition"):
        order = rng.permutation(len(vectors))
        first, second = vectors[order[:size]], vectors[order[size:2 * size]]
        null.append(drift(first, second, params, rng))
        shifted.append(drift(first, inject_shift(second, settings.shift_share, settings.shift_std, rng), params, rng))
    return {
        "repetitions": settings.repetitions, "sample_per_side": size, "alpha": params.alpha,
        "injected": {"share_of_dimensions": settings.shift_share, "std": settings.shift_std},
        "detection_rate": float(np.mean([r["significant"] for r in shifted])),
        "shift_alert_rate": float(np.mean([r["alert"] for r in shifted])),
        "shift_drifted_share_mean": float(np.mean([r["drifted_share"] for r in shifted])),
        "false_alarm_rate": float(np.mean([r["significant"] for r in null])),
        "null_alert_rate": float(np.mean([r["alert"] for r in null])),
        "null_drifted_share_mean": float(np.mean([r["drifted_share"] for r in null])),
    }
