"""The package's layering and the pipeline's declared code deps, read from the import statements."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

PACKAGE = REPO / "src" / "animelab"
# Lowest first: a module may import its own layer's rooms and lower ones, never a higher one.
LAYERS = [
    {"errors", "io", "stages", "processes"},
    {"corpus"},
    {"fields", "payload"},
    {"encoders"},
    {"params"},
    {"tracking", "embeddings"},
    {"dataquality"},
    {"gold"},
    {"routing"},
    {"index"},
    {"sparse"},
    {"evaluation"},
    {"finetune", "quality", "online"},
    {"cli", "__main__", "__init__"},
]
LAYER_OF = {room: position for position, rooms in enumerate(LAYERS) for room in rooms}


def is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def runtime_imports(path: Path) -> set[str]:
    """Every ``animelab`` module a file imports at run time (type-only imports under TYPE_CHECKING left out)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and is_type_checking(node):
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("animelab"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names
                         if module_path(f"{node.module}.{alias.name}"))
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("animelab"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {module for module in found if module_path(module)}


def module_path(module: str) -> Path | None:
    base = REPO / "src" / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def closure(path: Path) -> frozenset[Path]:
    """The files a script or module needs at run time: itself and every animelab module it reaches."""
    seen: set[Path] = {path}
    todo = [path]
    while todo:
        for module in runtime_imports(todo.pop()):
            parts = module.split(".")
            # Importing a.b.c runs the __init__ of a and a.b too.
            for depth in range(2, len(parts) + 1):
                found = module_path(".".join(parts[:depth]))
                if found and found not in seen:
                    seen.add(found)
                    todo.append(found)
    return frozenset(seen)


def room(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_room_has_a_layer():
    assert {room(path) for path in package_files()} <= set(LAYER_OF)


@pytest.mark.parametrize("path", package_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_down_the_layers(path):
    upward = sorted(module for module in runtime_imports(path)
                    if LAYER_OF[room(module_path(module))] > LAYER_OF[room(path)])
    assert not upward, f"{path.relative_to(PACKAGE)} imports a higher layer: {upward}"


def test_no_folder_imports_another_in_both_directions():
    arrows = {(room(path), room(module_path(module))) for path in package_files() for module in runtime_imports(path)}
    cycles = sorted((a, b) for a, b in arrows if a < b and (b, a) in arrows)
    assert not cycles


# A foreach stage (embed_set) is checked through its `do` template.
STAGES = {name: spec.get("do", spec)
          for name, spec in yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"].items()}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_a_stage_lists_the_code_its_script_runs(stage):
    spec = STAGES[stage]
    script = REPO / spec["cmd"].split()[1]
    declared = [REPO / dep for dep in spec["deps"] if isinstance(dep, str) and not dep.startswith("$")]
    needed = sorted(path for path in closure(script)
                    if path.name != "__init__.py" or path.stat().st_size > 0)
    missing = [str(path.relative_to(REPO)) for path in needed
               if not any(path == dep or dep in path.parents for dep in declared)]
    assert not missing, f"{stage}: add to deps {missing}"
