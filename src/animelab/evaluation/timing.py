"""Measurement helpers for benchmarks: wall time and peak resident memory of a block of work."""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import psutil

from animelab.index.backend import SearchIndex
from animelab.index.query import Hit, SearchRequest


@dataclass
class Measurement:
    seconds: float = 0.0
    start_rss_mib: float = 0.0
    peak_rss_mib: float = 0.0


@contextmanager
def measure(interval: float = 0.05) -> Iterator[Measurement]:
    """Time the block and sample this process's RSS every ``interval`` seconds, keeping the peak."""
    process = psutil.Process()
    rss = process.memory_info().rss / 2**20
    result = Measurement(start_rss_mib=rss, peak_rss_mib=rss)
    done = threading.Event()

    def sample() -> None:
        while not done.wait(interval):
            result.peak_rss_mib = max(result.peak_rss_mib, process.memory_info().rss / 2**20)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - start
        done.set()
        sampler.join()
        result.peak_rss_mib = max(result.peak_rss_mib, process.memory_info().rss / 2**20)


def timed_search(index: SearchIndex, requests: list[SearchRequest]) -> tuple[list[list[Hit]], list[float]]:
    """Every request's hits, and the seconds around each engine call alone."""
    found, seconds = [], []
    for request in requests:
        start = time.perf_counter()
        found.append(index.search(request))
        seconds.append(time.perf_counter() - start)
    return found, seconds


def latency_summary(seconds: list[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds and sequential queries per second."""
    values = np.asarray(seconds) * 1000
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50_ms": round(float(p50), 3), "p95_ms": round(float(p95), 3), "p99_ms": round(float(p99), 3),
            "qps": round(1000 / float(values.mean()), 1)}


def machine() -> dict[str, str | int]:
    import torch

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count() or 0,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
