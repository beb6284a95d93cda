"""What evaluation workers receive (ranx qrels and runs cross a process boundary unchanged), that their cost
counts in the stage's, and what the stage times alone (one seeded sample of requests per row)."""

import os
import pickle
import resource
import time

import numpy as np
from ranx import Qrels, Run, evaluate

import animelab.evaluation.workers  # noqa: F401  (registers the picklers)
from animelab.processes import in_processes


def test_qrels_and_runs_pickle_with_their_order_values_and_names():
    qrels = Qrels({"q2": {"b": 1, "a": 2}, "q1": {"c": 1}, "q3": {"d": 2}}, name="gold")
    run = Run({"q2": {"a": 0.9, "b": 0.5, "x": 0.4}, "q1": {"x": 1.0, "c": 0.2}, "q3": {"d": 0.3}}, name="row")
    qrels_back, run_back = pickle.loads(pickle.dumps((qrels, run)))
    assert list(qrels_back.keys()) == list(qrels.keys()) and qrels_back.to_dict() == qrels.to_dict()
    assert run_back.to_dict() == run.to_dict() and (qrels_back.name, run_back.name) == ("gold", "row")
    metrics = ["ndcg@10", "mrr", "recall@2"]
    before = evaluate(qrels, run, metrics, return_mean=False, make_comparable=True)
    after = evaluate(qrels_back, run_back, metrics, return_mean=False, make_comparable=True)
    for metric in metrics:
        assert np.array_equal(before[metric], after[metric])


def test_latency_is_timed_on_one_seeded_sample_of_requests_for_every_row():
    from animelab.evaluation.runner import latency_positions

    sample = latency_positions(1000, 300, seed=7)
    assert sample == latency_positions(1000, 300, seed=7) == sorted(set(sample))
    assert len(sample) == 300 and 0 <= sample[0] and sample[-1] < 1000
    assert latency_positions(1000, 300, seed=8) != sample
    assert latency_positions(120, 300, seed=7) == latency_positions(120, None, seed=7) == list(range(120))


def busy_pid(seconds: float) -> int:
    """Spin on the CPU for ``seconds`` of this process's CPU time; its pid."""
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass
    return os.getpid()


def test_workers_cpu_counts_in_the_stage_once_the_pool_is_done():
    """Workers are the stage's own children: their CPU time is in what ``run_stage`` writes as the stage's cost."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    pids = in_processes(busy_pid, [(1.0,), (1.0,)], workers=2)
    assert os.getpid() not in pids
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime) >= 2.0
