"""`atelier index add` killed with SIGKILL: the index loads afterwards, consistent with its
metadata, holding either everything it held before or everything plus the new images, and
the next `index add` finishes the job without duplicates.

The command runs for real in a subprocess on the tiny shapes-clip (tests/tiny_clip.py). The
kill lands at a moment read from outside the process, not from hooks inside it: while it has
an image file open (hashing and embedding), while its new generation folder is still
`gen-N.tmp` (writing), and once the finished generation is in place (switching CURRENT).

SIGKILL during `atelier script` (then --resume) is in tests/test_agent_script.py and during a
chat turn in tests/test_agent_cli.py.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tiny_clip

from index.store import IndexStore, index_root, read_pointer

REPO = tiny_clip.REPO
FIRST, MORE = 40, 120

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(),
                                reason="reads the child's open files from /proc")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """An index of FIRST demo scenes in a home, and MORE scenes to add to it."""
    from index.collection import Collection, read_captions
    from world.demo_collection import write_demo_collection
    from index.embedder import Embedder

    models = tiny_clip.shared_models(tmp_path_factory)
    root = tmp_path_factory.mktemp("crash")
    scenes = root / "scenes"
    paths = write_demo_collection(scenes, FIRST + MORE, seed=11)
    home = root / "home"
    collection = Collection.open(index_root(home), Embedder.shipped(models, progress=False))
    collection.add_files(paths[:FIRST], read_captions(scenes))
    collection.save()
    return {"models": models, "home": home, "scenes": scenes, "paths": paths}


def open_files(pid: int) -> list[Path]:
    found = []
    try:
        entries = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return found
    for entry in entries:
        try:
            found.append(Path(os.readlink(f"/proc/{pid}/fd/{entry}")))
        except OSError:
            continue  # closed between the listing and the read
    return found


def reading_images(pid: int, root: Path, scenes: Path, old: str) -> bool:
    return any(p.is_relative_to(scenes) and p.suffix == ".png" for p in open_files(pid))


def writing_generation(pid: int, root: Path, scenes: Path, old: str) -> bool:
    return any(p.name.endswith(".tmp") and p.name.startswith("gen-") for p in root.iterdir())


def generation_in_place(pid: int, root: Path, scenes: Path, old: str) -> bool:
    return any(p.name.startswith("gen-") and not p.name.endswith(".tmp") and p.name > old
               for p in root.iterdir())


MOMENTS = {"reading": reading_images, "writing": writing_generation,
           "switching": generation_in_place}


def assert_consistent(store: IndexStore) -> None:
    ids = store.ids()
    assert len(ids) == len(store) == len(store.metadata)
    assert len(store.vectors(ids)) == len(ids)
    records = store.records(ids)
    assert len({r.sha256 for r in records}) == len(records)  # no image twice
    assert all(Path(r.path).is_file() for r in records)
    sidecar = json.loads((store.root / read_pointer(store.root) / "sidecar.json").read_text())
    assert sidecar["count"] == len(ids) and sidecar["generation"] == store.generation


def run_and_kill(command: list[str], env: dict, root: Path, scenes: Path, moment: str) -> int:
    """Start the command, SIGKILL it at `moment`, and return its exit status."""
    reached = MOMENTS[moment]
    old = read_pointer(root)
    child = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while child.poll() is None and time.time() < deadline:
            if reached(child.pid, root, scenes, old):
                os.kill(child.pid, signal.SIGKILL)
                break
            time.sleep(0.0005)
        child.wait(timeout=60)
        stderr = child.stderr.read().decode()
    finally:
        if child.poll() is None:
            child.kill()
        child.stderr.close()
    assert "Traceback" not in stderr
    return child.returncode


@pytest.mark.parametrize("moment", [
    "reading", "writing",
    # Its window is the shortest and costs a full run like "writing"; opt-in.
    pytest.param("switching", marks=pytest.mark.slow),
])
def test_sigkill_during_index_add_leaves_a_loadable_consistent_index(setup, moment, tmp_path,
                                                                     monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(setup["home"], home)
    scenes, paths = setup["scenes"], setup["paths"]
    root = index_root(home)
    env = {**os.environ, "ATELIER_HOME": str(home), "ATELIER_MODELS": str(setup["models"]),
           "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "agent.interfaces.cli", "index", "add", *map(str, paths[FIRST:])]
    before = IndexStore.load(root)

    code = run_and_kill(command, env, root, scenes, moment)
    if moment != "switching":  # these moments come before the save can finish
        assert code == -signal.SIGKILL

    after = IndexStore.load(root)
    assert_consistent(after)
    if after.generation == before.generation:
        assert list(after.ids()) == list(before.ids())  # nothing half-added
        np.testing.assert_array_equal(after.vectors(after.ids()), before.vectors(before.ids()))
    else:  # the new generation was complete when the kill came: all of it is there
        assert after.generation == before.generation + 1 and len(after) == FIRST + MORE

    # The next run finishes the job: every image once, none lost, and it searches.
    from agent.interfaces.cli import main

    monkeypatch.setenv("ATELIER_HOME", str(home))
    monkeypatch.setenv("ATELIER_MODELS", str(setup["models"]))
    assert main(["index", "add", *map(str, paths[FIRST:])]) == 0
    assert main(["index", "search", "a red circle", "--k", "3"]) == 0
    final = IndexStore.load(root)
    assert_consistent(final)
    assert len(final) == FIRST + MORE
    assert sorted(r.path for r in final.records(final.ids())) == sorted(
        str(p.resolve()) for p in paths)
    assert not [p for p in root.iterdir() if p.name.endswith(".tmp")]
