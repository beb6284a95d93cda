"""Measurement helpers for benchmarks: wall time, peak resident memory of a block of work, resident memory
by kind as a user pays for it, and latency under concurrent clients."""

from __future__ import annotations

import multiprocessing
import os
import platform
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from animelab.index.backend import SearchIndex
from animelab.index.edge import EdgeIndex
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


def timed_search(index: SearchIndex, requests: list[SearchRequest],
                 rerank: Callable[[list[Hit]], list[Hit]] | None = None
                 ) -> tuple[list[list[Hit]], list[float], list[list[Hit]]]:
    """Every request's hits (re-ranked by ``rerank``), the seconds around each engine call and its re-ranking,
    and the engine's own hits (the same lists when nothing re-ranks)."""
    found, seconds, engine = [], [], []
    for request in requests:
        start = time.perf_counter()
        hits = index.search(request)
        found.append(rerank(hits) if rerank else hits)
        seconds.append(time.perf_counter() - start)
        engine.append(hits)
    return found, seconds, engine


def resident_memory(root: Path | None = None) -> dict[str, Any]:
    """This process's resident bytes by kind (/proc/self/status): ``anonymous`` (heap the process owns: what
    RAM must hold) and ``file`` (pages of memory-mapped files: page cache the kernel can drop and re-read).
    With ``root``: the resident bytes of each mapped file under it (/proc/self/smaps), by path below ``root``."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    kib = {key: int(status[key].split()[0]) * 1024 for key in ("RssAnon", "RssFile", "RssShmem")}
    result: dict[str, Any] = {"anonymous": kib["RssAnon"], "file": kib["RssFile"] + kib["RssShmem"]}
    if root is not None:
        files: dict[str, int] = {}
        mapped = None
        prefix = f"{Path(root).resolve()}/"
        for line in Path("/proc/self/smaps").read_text().splitlines():
            fields = line.split()
            if fields and "-" in fields[0] and len(fields) >= 5 and not fields[0].endswith(":"):
                mapped = fields[5] if len(fields) > 5 and fields[5].startswith(prefix) else None
            elif mapped and fields[0] == "Rss:":
                files[mapped.removeprefix(prefix)] = files.get(mapped.removeprefix(prefix), 0) + int(fields[1]) * 1024
        result["files"] = dict(sorted(files.items()))
    return result


def in_fresh_process(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a newly spawned interpreter, so memory it reports is not this process's history."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def index_memory(index_dir: Path, requests: list[SearchRequest]) -> dict[str, Any]:
    """What opening the index and running ``requests`` costs in resident memory: anonymous and file-backed bytes
    grown since before the open, and each index file's resident bytes. Meant for ``in_fresh_process``."""
    before = resident_memory()
    index = EdgeIndex(index_dir)
    for request in requests:
        index.search(request)
    after = resident_memory(index_dir)
    index.close()
    return {"anonymous": after["anonymous"] - before["anonymous"], "file": after["file"] - before["file"],
            "files": after["files"], "searches": len(requests)}


def concurrent_latency(search: Callable[[Any], Any], requests: list[Any], clients: int) -> dict[str, float]:
    """``clients`` threads, each sending its share of ``requests`` one after another: throughput (requests per
    second of wall time) and the latency each request saw."""
    def client(share: list[Any]) -> list[float]:
        seconds = []
        for request in share:
            start = time.perf_counter()
            search(request)
            seconds.append(time.perf_counter() - start)
        return seconds

    shares = [requests[position::clients] for position in range(clients)]
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        seconds = [value for share in pool.map(client, shares) for value in share]
    wall = time.perf_counter() - start
    return latency_summary(seconds) | {"qps": round(len(requests) / wall, 1), "clients": clients}


def latency_summary(seconds: list[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds and sequential queries per second."""
    values = np.asarray(seconds) * 1000
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50_ms": round(float(p50), 3), "p95_ms": round(float(p95), 3), "p99_ms": round(float(p99), 3),
            "qps": round(1000 / float(values.mean()), 1)}


def machine() -> dict[str, str | int]:
    import torch

    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    flags = set(re.search(r"^flags\s*:\s*(.+)$", cpuinfo, re.MULTILINE).group(1).split()) if "flags" in cpuinfo else set()
    return {
        "cpu": platform.processor() or platform.machine(),
        # Timings differ by SIMD level (bfloat16 needs AMX/AVX512-BF16): a number is read with its machine.
        "cpu_model": model.group(1).strip() if model else "unknown",
        "simd": " ".join(sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})) or "none",
        "cores": os.cpu_count() or 0,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
