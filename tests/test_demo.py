"""`atelier demo`: the whole session run as a user runs it, in a subprocess, on tiny random
models saved in the shipped models' layout (tests/tiny_diffusion.py, tests/tiny_clip.py), and
once on the real shipped models (slow)."""
from __future__ import annotations

import html
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.api import Atelier
from world.demo import TURNS, background_instead, recolour_instead
from agent.reports.report import EMPTY_TILE, TILE, sheet_grid, tile_box
from world.planning.scenes import context_for_scene

REPO = Path(__file__).resolve().parents[1]
FIVE_OPS = {"generate", "layout", "inpaint", "edit", "reference"}


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    import tiny_clip
    import tiny_diffusion
    from diffusers import StableDiffusionInstructPix2PixPipeline, StableDiffusionPipeline

    root = tmp_path_factory.mktemp("models")
    StableDiffusionPipeline(**tiny_diffusion.components(root)).save_pretrained(root / "shapes-sd")
    StableDiffusionInstructPix2PixPipeline(
        **tiny_diffusion.components(root, unet_in_channels=8)).save_pretrained(root / "shapes-ip2p")
    tiny_clip.write_models(root)
    return root


def atelier(*args: str, home: Path, models: Path | None = None, timeout: int = 600
            ) -> subprocess.CompletedProcess:
    environment = {**os.environ, "ATELIER_HOME": str(home), "PYTHONPATH": str(REPO),
                   "OMP_NUM_THREADS": "1"}
    environment.pop("ATELIER_MODELS", None)
    if models is not None:
        environment["ATELIER_MODELS"] = str(models)
    return subprocess.run([sys.executable, "-m", "agent.interfaces.cli", *args], cwd=REPO,
                          env=environment, capture_output=True, text=True, timeout=timeout)


def printed_paths(stdout: str) -> tuple[Path, Path]:
    lines = stdout.strip().splitlines()
    assert lines[-2].startswith("contact sheet: ") and lines[-1].startswith("report: "), stdout
    return Path(lines[-2].split(": ", 1)[1]), Path(lines[-1].split(": ", 1)[1])


def demo_turns(home: Path):
    """The demo session's turns from the store, with the operations each one ran."""
    with Atelier(home=home) as store:
        names = [n for n in store.sessions() if n.startswith("demo-")]
        assert len(names) == 1, names
        session = store.session(names[0], create=False)
        turns = session.history()
        ran = [[e["op"] for e in session.events(t.number) if e["type"] == "step_started"]
               for t in turns]
        images = {r.id: r.path for r in session.images()}
    return turns, ran, images


def assert_demo_outputs(result: subprocess.CompletedProcess, out: Path, home: Path) -> list:
    from PIL import Image

    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    sheet_path, report_path = printed_paths(result.stdout)
    assert sheet_path == out.resolve() / "contact_sheet.png" and sheet_path.is_file()
    assert report_path == out.resolve() / "report.html" and report_path.is_file()

    turns, ran, images = demo_turns(home)
    # Every scripted request was asked, in order; one the planner could not read against the
    # image is followed by the demo's rephrasing, which the planner routes to the same op.
    asked = iter(turns)
    for scripted in TURNS:
        turn = next(asked)
        assert turn.request == scripted.request
        if not turn.ok:
            assert turn.error_kind == "not_understood" and scripted.instead is not None
            turn = next(asked)
        assert turn.ok, (turn.request, turn.error)
        assert turn.plans[0]["plan"]["steps"][0]["op"] == scripted.op, turn.request
    assert next(asked, None) is None
    assert FIVE_OPS <= {op for ops in ran for op in ops}

    page = report_path.read_text(encoding="utf-8")
    for turn in turns:
        assert html.escape(turn.request) in page
        for plan in turn.plans:
            assert html.escape(plan["plan"]["rationale"]) in page
            for step in plan["plan"]["steps"]:
                assert f"<code>{step['op']}(" in page
    assert "src=\"data:image/png;base64," in page and "<img" in page
    assert "Exemplars</b> for step 1" in page
    assert html.escape("a purple triangle at the top right") in page  # the retrieval query

    # One tile per turn, in order: the turn's image, or a gray square when it made none.
    sheet = Image.open(sheet_path).convert("RGB")
    columns, rows = sheet_grid(len(turns))
    assert sheet.width == tile_box(columns - 1, len(turns))[2] + 8
    assert sheet.height >= tile_box(len(turns) - 1, len(turns))[3]
    for index, turn in enumerate(turns):
        tile = sheet.crop(tile_box(index, len(turns)))
        if turn.ok and turn.image_after:
            expected = Image.open(home / images[turn.image_after]).convert("RGB").resize(
                (TILE, TILE), Image.NEAREST)
            assert tile.tobytes() == expected.tobytes(), f"tile {index + 1}"
        else:
            count, colour = max(tile.getcolors(TILE * TILE))
            assert colour == EMPTY_TILE and count > 0.9 * TILE * TILE, f"tile {index + 1}"
    return turns


def test_demo_runs_every_operation_and_writes_the_report(tmp_path, tiny_models):
    out = tmp_path / "out"
    result = atelier("demo", "--out", str(out), "--seed", "3", home=tmp_path / "home",
                     models=tiny_models)
    assert "building the demo index" in result.stderr + result.stdout
    turns = assert_demo_outputs(result, out, tmp_path / "home")
    assert [t.seed for t in turns] == list(range(3, 3 + len(turns)))


def test_demo_index_is_built_once_and_rebuilt_for_another_model(tmp_path, tiny_models):
    import tiny_clip

    from world.demo import DEMO_INDEX, demo_index
    from index.embedder import Embedder
    from index.store import IndexStore, index_root

    said: list[str] = []
    embedder = Embedder.shipped(tiny_models, progress=False)
    store = demo_index(tmp_path, embedder, size=6, say=said.append)
    assert len(store) == 6 and said[-1].startswith("building the demo index: 6")
    again = demo_index(tmp_path, embedder, size=6, say=said.append)
    assert again.generation == store.generation and said[-1].startswith("demo index: 6 images")
    hits = IndexStore.load(index_root(tmp_path, DEMO_INDEX)).records([0])
    assert hits[0].caption and "demo" in hits[0].tags

    # Vectors of another CLIP do not compare: the index is built again with it.
    other = Embedder.shipped(tiny_clip.write_models(tmp_path / "other", seed=1), progress=False)
    rebuilt = demo_index(tmp_path, other, size=6, say=said.append)
    assert said[-2].startswith("rebuilding the demo index:") and rebuilt.embedder == other.name
    assert rebuilt.generation > store.generation


@pytest.mark.parametrize("scene, recolour, background", [
    ({"background": "white", "objects": [
        {"shape": "circle", "color": "red", "size": "large", "x": 0.3, "y": 0.5},
        {"shape": "circle", "color": "red", "size": "large", "x": 0.7, "y": 0.5},
        {"shape": "triangle", "color": "green", "size": "small", "x": 0.5, "y": 0.2}]},
     "make the small green triangle yellow", "make the background gray"),
    ({"background": "gray", "objects": []}, "add a green square", "make the background black"),
])
def test_rephrasings_name_what_the_image_shows(scene, recolour, background):
    from planners.plan import Plan
    from world.planning.rules import RulePlanner
    from world.scene import Scene

    scene = Scene.from_dict(scene)
    context = context_for_scene(scene)
    assert recolour_instead(scene) == recolour
    assert background_instead(scene) == background
    for request, op in ((recolour, "inpaint"), (background, "edit")):
        plan = RulePlanner().plan(request, context)
        assert isinstance(plan, Plan), plan
        assert [s.op for s in plan.steps] == [op]


def test_an_unwritable_out_is_one_line(tmp_path, tiny_models):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    for out, words in ((blocker, "is a file"), (blocker / "sub", "cannot write there")):
        result = atelier("demo", "--out", str(out), home=tmp_path / "home", models=tiny_models)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("atelier: error: --out ")
        assert words in lines[0]


def test_missing_models_are_named(tmp_path):
    models = tmp_path / "models"
    (models / "shapes-sd").mkdir(parents=True)
    (models / "shapes-sd" / "model_index.json").write_text("{}")
    result = atelier("demo", home=tmp_path, models=models)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    line = result.stderr.strip()
    assert "shapes-ip2p" in line and "shapes-clip" in line and "shapes-sd," not in line


@pytest.mark.slow
def test_demo_on_the_shipped_models(tmp_path):
    out = tmp_path / "out"
    result = atelier("demo", "--out", str(out), home=tmp_path / "home")
    assert_demo_outputs(result, out, tmp_path / "home")
