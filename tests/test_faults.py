"""Faults injected into the lab: bad model paths and variants refused before any work, orphaned MLflow runs,
an index searched with another model, searches that must not dirty DVC outputs, concurrent writers, killed
writers and the stale temporaries they leave."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from animelab.corpus.schema import AnimeEntry
from animelab.embeddings import embed_corpus
from animelab.encoders.text import ModelPathError
from animelab.errors import LabError
from animelab.evaluation.experiments import load_experiments
from animelab.evaluation.runner import check_variants
from animelab.index.edge import EdgeIndex
from animelab.io import atomic_path
from animelab.params import TrackingParams
from animelab.tracking import tracked_run
from tests.conftest import REPO, run


def variants_file(tmp_path, *lines: str):
    path = tmp_path / "variants.yaml"
    path.write_text("search_defaults: {vectors: all, exact: true}\nbaseline: {class: deployable}\nvariants:\n" + "".join(f"  - {line}\n" for line in lines))
    return path


def test_an_image_checkpoint_that_does_not_exist_is_refused_before_any_work(repo_params, tmp_path):
    embed = repo_params.embed.model_copy(update={
        "vectors": ["title_vector", "image_vector"],
        "image_model": repo_params.embed.image_model.model_copy(update={"checkpoint": tmp_path / "missing.bin"})})
    entry = AnimeEntry(id="mal:1", origin="mal_seasons", title="A title")
    with pytest.raises(ModelPathError, match=r"embed\.image_model\.checkpoint: .*missing\.bin does not exist"):
        embed_corpus([entry], embed, tmp_path / "embeddings")
    assert not (tmp_path / "embeddings").exists()


def test_a_variant_searching_an_unindexed_vector_is_refused(repo_params, tmp_path):
    params = repo_params.model_copy(update={"index": repo_params.index.model_copy(update={"vectors": ["title_vector"]})})
    experiments = load_experiments(variants_file(tmp_path, "{name: staff-only, class: deployable, axis: vectors, search: {vectors: [staff_vector]}}"))
    with pytest.raises(LabError, match=r"variant staff-only searches \['staff_vector'\], which index.vectors does not"):
        check_variants(params, experiments)


def test_a_model_path_pointing_nowhere_is_refused_before_any_work_naming_its_key(repo_params, tmp_path):
    evaluate = repo_params.evaluate.model_copy(update={"model_paths": {"bge-m3": tmp_path / "nowhere"}})
    params = repo_params.model_copy(update={"evaluate": evaluate})
    experiments = load_experiments(variants_file(tmp_path, "{name: model-bge-m3, class: deployable, axis: model, model: bge-m3}"))
    with pytest.raises(ModelPathError, match=r"^evaluate\.model_paths\.bge-m3: model directory .*nowhere does not exist"):
        check_variants(params, experiments)
    unset = repo_params.model_copy(update={"evaluate": repo_params.evaluate.model_copy(update={"model_paths": {}})})
    assert check_variants(unset, experiments)["model-bge-m3"].startswith("evaluate.model_paths.bge-m3 is not set")


def test_an_orphaned_run_is_marked_failed_and_never_read_as_the_latest(tmp_path):
    from mlflow import MlflowClient

    from animelab.evaluation import analysis

    tracking = TrackingParams(uri=f"sqlite:///{tmp_path / 'mlflow.db'}", experiment="lab")
    with tracked_run(tracking, "evaluate-test", {}) as finished:
        pass
    # A killed evaluation: its parent and a nested run stay RUNNING.
    client = MlflowClient(tracking_uri=tracking.uri)
    experiment = client.get_experiment_by_name("lab").experiment_id
    orphan = client.create_run(experiment, run_name="evaluate-test").info.run_id
    child = client.create_run(experiment, run_name="baseline", tags={"mlflow.parentRunId": orphan}).info.run_id
    assert analysis.latest_evaluation(tracking, tmp_path).run_id == finished.info.run_id
    with tracked_run(tracking, "evaluate-test", {}) as rerun:
        pass
    assert {client.get_run(run_id).info.status for run_id in (orphan, child)} == {"FAILED"}
    assert analysis.latest_evaluation(tracking, tmp_path).run_id == rerun.info.run_id


def test_search_refuses_an_index_built_with_another_text_model(tmp_path):
    from animelab.cli import build_parser, search

    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "spec.json").write_text(json.dumps({"text_model": "BAAI/bge-m3"}))
    args = build_parser().parse_args(["search", "robots", "--params", str(REPO / "params.yaml"),
                                      "--index", str(tmp_path / "index")])
    with pytest.raises(LabError, match="built with BAAI/bge-m3, but embed.text_model is sentence-transformers/all-MiniLM"):
        search(args)


@pytest.mark.parametrize(("options", "message"), [
    (["--limit", "-1"], "argument --limit: -1 is not a positive whole number"),
    (["--rrf-k", "0"], "argument --rrf-k: 0 is not a positive whole number"),
    (["--weights", "1,abc"], "argument --weights: '1,abc' is not a comma-separated list of numbers"),
    (["--weights", "1,inf"], "every weight must be a positive finite number"),
])
def test_bad_search_options_are_one_line_errors(options, message):
    result = run([sys.executable, "-m", "animelab", "search", "robots", "--vectors", "title,genre", *options], REPO)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_a_second_writer_of_the_same_output_fails_at_once(tmp_path):
    target = tmp_path / "out"
    with atomic_path(target) as staging:
        staging.write_text("first")
        with pytest.raises(LabError, match="is busy: another process is writing it"):
            with atomic_path(target):
                pass
    assert target.read_text() == "first"


def test_stale_temporaries_are_removed_and_a_replaced_output_restored(tmp_path):
    target = tmp_path / "out"
    # A writer killed after moving the old output aside, before renaming the new one in.
    (tmp_path / ".out.abc.tmp" / "previous" / "out").mkdir(parents=True)
    (tmp_path / ".out.abc.tmp" / "previous" / "out" / "old.txt").write_text("old")
    (tmp_path / ".out.def.tmp" / "out").mkdir(parents=True)
    with pytest.raises(RuntimeError):
        with atomic_path(target):
            raise RuntimeError("fails before replacing")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and (target / "old.txt").read_text() == "old"


WRITER = """
import sys, time
from pathlib import Path
from animelab.io import atomic_path
target, files = Path(sys.argv[1]), int(sys.argv[2])
with atomic_path(target) as staging:
    staging.mkdir()
    for i in range(files):
        (staging / f"{i}.txt").write_text(sys.argv[3])
        time.sleep(0.002)
print("done", flush=True)
"""


def test_a_writer_killed_at_any_point_leaves_the_old_output_or_the_new_one(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    target = tmp_path / "out"
    assert subprocess.run([sys.executable, str(script), str(target), "50", "old"]).returncode == 0
    rng = np.random.default_rng(7)
    for delay in rng.uniform(0.0, 0.4, size=12):
        writer = subprocess.Popen([sys.executable, str(script), str(target), "50", "new"], stdout=subprocess.PIPE)
        time.sleep(delay)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        contents = {p.read_text() for p in target.iterdir()} if target.exists() else set()
        # Absent only between the two renames; the next writer then restores the old output first.
        assert contents in ({"old"}, {"new"}, set())
        assert len(list(target.iterdir())) == 50 if target.exists() else True
        assert subprocess.run([sys.executable, str(script), str(target), "50", "old"]).returncode == 0
        assert {p.read_text() for p in target.iterdir()} == {"old"} and len(list(target.iterdir())) == 50
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.usefixtures("tiny_repro")
def test_searching_the_built_indexes_leaves_dvc_status_clean(tiny_project):
    for args in (["search", "a notebook that kills", "--vectors", "title,genre"], ["search", "robots", "--exact"]):
        assert run([sys.executable, "-m", "animelab", *args], tiny_project).returncode == 0
    for shard in (tiny_project / "data" / "variant_cache" / "indexes").glob("*/shard"):
        EdgeIndex(shard).close()
    status = run([sys.executable, "-m", "dvc", "status", "--json"], tiny_project)
    assert status.returncode == 0 and json.loads(status.stdout) == {}


# Stages rerun after a kill (cheap on the tiny project), and those only killed early (a rerun would take minutes):
# killed before they finish, their outputs must be the old ones byte for byte.
RERUN_AFTER_KILL = ["ingest", "embed", "gold", "sparse", "index", "report"]
KILLED_EARLY = ["finetune_genre", "evaluate", "drift"]
# Outputs that differ run to run (engine files, plotly ids, timings, MLflow ids): compared by their file names.
VARYING = ("data/index", ".html", "data/evaluate/results.json", "reports/metrics/evaluate.json", "reports/drift.json",
           "reports/metrics/timings/")


@pytest.mark.usefixtures("tiny_repro")
@pytest.mark.parametrize("stage", RERUN_AFTER_KILL + KILLED_EARLY)
def test_a_stage_killed_midway_leaves_its_outputs_old_or_new_and_a_rerun_restores_them(tiny_project, tmp_path, stage):
    """The stage's own command from dvc.yaml, killed after a seeded random delay, on a copy of the tiny project."""
    import shutil

    import yaml

    project = tmp_path / "project"
    shutil.copytree(tiny_project, project, symlinks=True, ignore=shutil.ignore_patterns("variant_cache", "mlflow.db"))
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["tracking"]["uri"] = f"sqlite:///{project / 'mlflow.db'}"  # killed runs must not reach the shared one
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    spec = yaml.safe_load((project / "dvc.yaml").read_text())["stages"][stage]
    outs = [next(iter(out)) if isinstance(out, dict) else out for out in spec["outs"] + spec.get("metrics", [])]

    def snapshot() -> dict[str, bytes]:
        files = {}
        for out in outs:
            paths = [project / out] if (project / out).is_file() else sorted((project / out).rglob("*"))
            files |= {str(p.relative_to(project)): p.read_bytes() for p in paths if p.is_file()}
        return files

    def stable(files: dict[str, bytes]) -> dict[str, bytes]:
        """Varying outputs reduced to their presence (the index's segment directories are new uuids each build)."""
        kept = {name: content for name, content in files.items() if not any(part in name for part in VARYING)}
        return kept | {out: b"present" for out in outs if any(part in out for part in VARYING) and (project / out).exists()}

    command = spec["cmd"].split()
    env = os.environ | {"PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    rng = np.random.default_rng(len(stage))
    if stage in RERUN_AFTER_KILL:
        start = time.perf_counter()  # a full run: its duration spreads the kills over the stage's life
        assert run(command, project).returncode == 0
        delays = rng.uniform(0.1, 0.95, size=3) * (time.perf_counter() - start)
    else:
        delays = rng.uniform(0.5, 3.0, size=1)
    before = snapshot()
    for delay in delays:
        process = subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        if stage in KILLED_EARLY:
            assert process.returncode == -signal.SIGKILL and snapshot() == before
            continue
        killed = stable(snapshot())  # each output is the old one or the new one, never a partial set
        for out in outs:
            old = {name for name in stable(before) if name == out or name.startswith(f"{out}/")}
            now = {name for name in killed if name == out or name.startswith(f"{out}/")}
            assert now in (old, set()), f"{out} is partial after the kill"
        assert run(command, project).returncode == 0
        assert stable(snapshot()) == stable(before)
        assert not list(project.rglob(".*.tmp"))


@pytest.mark.parametrize("stage", ["embed", "index", "gold", "sparse", "evaluate", "drift"])
def test_a_stage_without_its_inputs_says_which_file_is_missing(tmp_path, stage):
    """Each stage's own command from dvc.yaml, run where no earlier stage has written anything."""
    import yaml

    command = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["cmd"].split()
    for name in ("params.yaml", "gold/curated.yaml", "experiments/variants.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text((REPO / name).read_text())
    result = run([sys.executable, str(REPO / command[1]), *command[2:]], tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "does not exist" in result.stderr.strip().splitlines()[-1]
