"""Measurement helpers for benchmarks: wall time and peak resident memory of a block of work."""

from __future__ import annotations

import os
import platform
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psutil


@dataclass
class Measurement:
    seconds: float = 0.0
    peak_rss_mib: float = 0.0


@contextmanager
def measure(interval: float = 0.05) -> Iterator[Measurement]:
    """Time the block and sample this process's RSS every ``interval`` seconds, keeping the peak."""
    process = psutil.Process()
    result = Measurement(peak_rss_mib=process.memory_info().rss / 2**20)
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


def machine() -> dict[str, str | int]:
    import torch

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count() or 0,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
