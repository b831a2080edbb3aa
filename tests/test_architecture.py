"""The package graph: the core (agent, planners, retrieval, index, pipelines) imports no
domain, benchmark or training code, and every arrow points down (pyproject.toml's
import-linter contracts, which CI also runs as `lint-imports`)."""
from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORE = ("agent", "planners", "retrieval", "index", "pipelines")


def test_the_import_contracts_hold():
    lint = shutil.which("lint-imports")
    if lint is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    result = subprocess.run([lint], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2 kept, 0 broken" in result.stdout


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_no_core_module_imports_the_world_even_inside_a_function():
    """The same rule read straight from the source, without import-linter."""
    offenders = []
    for package in CORE:
        for path in (REPO / package).rglob("*.py"):
            for name in imported_modules(path):
                if name.split(".")[0] in ("world", "bench", "training"):
                    offenders.append(f"{path.relative_to(REPO)}: {name}")
    assert offenders == []
