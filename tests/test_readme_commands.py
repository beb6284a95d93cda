"""Every command the README prints works as printed after the setup command: run on a git copy of the tiny
project (whose ``.venv`` is this interpreter's), servers (``mlflow ui``, ``jupyter lab``) as ``--help``."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run

pytestmark = pytest.mark.usefixtures("tiny_repro")
SERVER = re.compile(r"\b(?:mlflow ui|jupyter lab)\b")


def readme_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.S)


def runnable(block: str) -> str:
    """The block as a script: a server command gets ``--help`` (it would never return)."""
    lines = []
    for line in block.replace("\\\n", " ").splitlines():
        command = line.split("#", 1)[0].strip()
        if command:
            lines.append(f"{command} --help" if SERVER.search(command) else command)
    return "set -euo pipefail\n" + "\n".join(lines) + "\n"


def test_the_readme_gives_a_newcomer_two_commands():
    commands = [line.split("#", 1)[0].split() for line in readme_blocks()[0].splitlines() if line.strip()]
    assert commands == [["make", "repro"], ["make", "test"]]


def cached_outs(dvc_file: Path) -> list[str]:
    """Stage outputs in DVC's cache: git must ignore them (metrics with ``cache: false`` stay in git)."""
    paths = []
    for stage in yaml.safe_load(dvc_file.read_text(encoding="utf-8"))["stages"].values():
        for out in stage.get("outs", []):
            path, options = next(iter(out.items())) if isinstance(out, dict) else (out, {})
            if options.get("cache", True) or options.get("persist"):
                paths.append(path)
    return paths


@pytest.fixture(scope="module")
def git_project(tiny_project, tmp_path_factory) -> Path:
    """The built tiny project as a fresh clone would be: a git repo (dvc experiments need one), outputs ignored."""
    project = tmp_path_factory.mktemp("readme") / "project"
    shutil.copytree(tiny_project, project, symlinks=True)
    shutil.copytree(REPO / "notebooks", project / "notebooks")
    (project / ".venv").symlink_to(Path(sys.prefix))
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["tracking"]["uri"] = f"sqlite:///{project / 'mlflow.db'}"  # the sweep logs here, not in the shared one
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    config = project / ".dvc" / "config"
    config.write_text(re.sub(r"\s*no_scm = [Tt]rue", "", config.read_text()))
    ignored = ["/.venv", "/mlflow.db", "/dvc_plots/", *(f"/{path}" for path in cached_outs(project / "dvc.yaml"))]
    (project / ".gitignore").write_text("\n".join(ignored) + "\n")
    assert subprocess.run(["git", "init", "-q"], cwd=project, capture_output=True).returncode == 0
    # The lock takes the new MLflow URI (it says only where runs are logged): otherwise every queued experiment,
    # starting from this commit, would re-run each stage that logs (stages with git-tracked metrics never come
    # back from DVC's run cache).
    assert run(["dvc", "commit", "-f", "-q"], project).returncode == 0
    for args in (["git", "add", "-A"],
                 ["git", "-c", "user.name=lab", "-c", "user.email=lab@example.org", "commit", "-qm", "tiny"]):
        assert subprocess.run(args, cwd=project, capture_output=True).returncode == 0
    return project


@pytest.mark.parametrize("position", range(1, len(readme_blocks())))
def test_a_readme_block_runs_as_printed(git_project, position):
    script = runnable(readme_blocks()[position])
    result = run(["bash", "-c", script], git_project)
    assert result.returncode == 0, f"{script}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    if "dvc exp run" in script:
        shown = run([".venv/bin/dvc", "exp", "show", "--only-changed", "--csv"], git_project)
        assert shown.stdout.count("index.priorities.high.hnsw.ef_construct") == 1
        assert {"64", "128", "512"} <= set(re.findall(r",(\d+)(?:,|$)", shown.stdout, re.M))
