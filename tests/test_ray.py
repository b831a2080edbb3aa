"""The Ray engine of `atelier script` and `atelier index build`, on a local Ray with two
workers (this machine's two CPU slots), against the local engine.

Scripted runs use the tiny random diffusers models in the shipped layout (tests/
tiny_diffusion.py), so the actors load and sample real pipelines; the local reference runs
with `--batch 1` and one torch thread, as each of the two actors does, and the images must
be the same bytes. The index runs on the tiny shapes-clip (tests/tiny_clip.py). One test
kills a Ray run's driver (a subprocess that joins this module's Ray through --address) in
the middle and resumes it.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import ray
import tiny_clip
from killing import kill_after_first_turn
from PIL import Image, ImageDraw

from agent.api import Atelier
from agent.interfaces.cli import main
from agent.engines.script import MANIFEST, ScriptRun, parse_script

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")

SCRIPT = [
    '{"session": "a", "request": "a red circle to the left of a blue square", "seed": 1}',
    '{"session": "b", "request": "a green triangle at the bottom"}',
    '{"session": "a", "request": "make the circle green"}',
    '{"session": "b", "request": "a flibbertigibbet"}',
    '{"session": "c", "request": "make the circle blue", "image": "circle.png"}',
    '{"session": "a", "request": "undo"}',
    '{"session": "b", "request": "make the triangle red"}',
    '{"session": "c", "request": "undo"}',
]
NOT_UNDERSTOOD = 4   # fails on any model; edits of the tiny random models' images fail too


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def script(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("script")
    image = Image.new("RGB", (64, 64), "black")
    ImageDraw.Draw(image).ellipse((16, 16, 48, 48), fill="red")
    image.save(folder / "circle.png")
    path = folder / "turns.jsonl"
    path.write_text("".join(line + "\n" for line in SCRIPT), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reference(script, tiny_models, tmp_path_factory, one_thread) -> Path:
    """The local engine, one line at a time (`--batch 1`), with one torch thread."""
    from pipelines.models import ModelConfig

    out = tmp_path_factory.mktemp("local") / "out"
    out.mkdir()
    config = ModelConfig.shipped(tiny_models, device="cpu")
    with Atelier(home=out, models=config, retriever=None) as atelier:
        ScriptRun(atelier, parse_script(script), out, batch=1).run()
    return out


def cli(monkeypatch, capsys, home: Path, models: Path, *args: str) -> tuple[int, str, str]:
    monkeypatch.setenv("ATELIER_HOME", str(home))
    monkeypatch.setenv("ATELIER_MODELS", str(models))
    try:
        code = main([str(a) for a in args])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def manifest(out: Path) -> list[dict]:
    entries = [json.loads(line) for line in (out / MANIFEST).read_text().splitlines()]
    for entry in entries:
        entry.pop("seconds")
    return entries


def sessions(out: Path) -> dict:
    """Every session's turns and images as the store records them, minus times (of turns
    and of pipeline stages) and the absolute paths of the image files."""
    found = {}
    with Atelier(home=out, retriever=None) as atelier:
        for name in atelier.sessions():
            session = atelier.session(name, create=False)
            found[name] = {
                "turns": [dataclasses.replace(t, started=0.0, seconds=0.0)
                          for t in session.history()],
                "images": [dataclasses.replace(
                    i, path=i.path.relative_to(out.resolve()),
                    params={k: v for k, v in i.params.items() if k != "timings"})
                    for i in session.images()],
                "current": session.current.id if session.current else None,
            }
    return found


def assert_same_run(out: Path, reference: Path) -> None:
    entries = manifest(out)
    assert entries == manifest(reference)
    assert [e["line"] for e in entries] == list(range(1, len(SCRIPT) + 1))
    assert not entries[NOT_UNDERSTOOD - 1]["ok"]
    for entry in entries:
        if entry["image"] is not None:
            assert (out / entry["image"]).read_bytes() == (reference / entry["image"]).read_bytes()
    assert sessions(out) == sessions(reference)


# --- copying turns between stores (what actors send the driver) --------------------------

def test_turns_copied_between_stores_are_the_same_turns(tmp_path):
    from world_runner import WorldRunner

    from agent.sessions.store import StoreError

    image = Image.new("RGB", (64, 64), "black")
    ImageDraw.Draw(image).rectangle((8, 8, 30, 30), fill="blue")
    with Atelier(home=tmp_path / "a", models=WorldRunner(), retriever=None) as a, \
            Atelier(home=tmp_path / "b", retriever=None) as b:
        session = a.session("s")
        session.ask("a red circle at the top left", seed=1)
        session.ask("make the circle green", seed=2)
        session.ask("a wibble", seed=3)
        b.store.import_turns(a.store.export_turns("s"))
        session.ask("undo", seed=4)
        session.ask("make the square red", seed=5, image=image)
        b.store.import_turns(a.store.export_turns("s", after=3))
        assert sessions(tmp_path / "a") == sessions(tmp_path / "b")
        # Copying the same turns again, or turns that do not follow on, is refused.
        for after in (3, 4):
            with pytest.raises(StoreError, match="diverged"):
                b.store.import_turns(a.store.export_turns("s", after=after))
        assert a.store.export_turns("nobody") is None


# --- atelier script --engine ray --------------------------------------------------------

def test_script_on_ray_makes_what_the_local_engine_makes(local_ray, script, reference,
                                                         tiny_models, tmp_path, monkeypatch,
                                                         capsys):
    out = tmp_path / "out"
    code, stdout, err = cli(monkeypatch, capsys, tmp_path / "home", tiny_models, "script",
                            script, "--out", out, "--engine", "ray", "--workers", "2")
    assert code == 1, err  # line 4 is not understood; the other sessions went on
    assert "8 turn(s)" in stdout and "line 4 [b #2] FAILED" in stdout
    assert_same_run(out, reference)


def test_a_killed_ray_run_resumes_with_every_line_once(local_ray, script, reference,
                                                       tiny_models, tmp_path, monkeypatch,
                                                       capsys):
    out = tmp_path / "out"
    env = {**os.environ, "ATELIER_HOME": str(tmp_path / "home"),
           "ATELIER_MODELS": str(tiny_models), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "agent.interfaces.cli", "script", str(script), "--out", str(out),
               "--engine", "ray", "--address", local_ray, "--workers", "2", "--threads", "1"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    kill_after_first_turn(process, out / MANIFEST, timeout=180)
    db = sqlite3.connect(out / "atelier.db")
    committed = db.execute("SELECT COUNT(*) FROM turns").fetchone()[0]
    db.close()
    assert 1 <= committed < len(SCRIPT)

    code, stdout, err = cli(monkeypatch, capsys, tmp_path / "home", tiny_models, "script",
                            script, "--out", out, "--resume", "--engine", "ray",
                            "--threads", "1")  # the reference's count, whatever is left to run
    assert code == 1 and "Traceback" not in err, err
    # Only the lines the killed run had not committed ran.
    assert sum(line.startswith("line ") for line in stdout.splitlines()) == (
        len(SCRIPT) - committed)
    db = sqlite3.connect(out / "atelier.db")
    sources = [r[0] for r in db.execute("SELECT source FROM turns ORDER BY source")]
    db.close()
    assert sorted(sources) == sorted(f"line:{n}" for n in range(1, len(SCRIPT) + 1))
    assert_same_run(out, reference)


def test_script_engine_options_are_checked(local_ray, script, tiny_models, tmp_path,
                                           monkeypatch, capsys):
    home = tmp_path / "home"
    for args, code, expected in [
        (("--engine", "ray", "--batch", "4"), 2, "--batch is for the local engine"),
        (("--workers", "2"), 2, "--workers goes with --engine ray"),
        (("--address", "127.0.0.1:6379"), 2, "--address goes with --engine ray"),
        (("--threads", "1"), 2, "--threads goes with --engine ray"),
        (("--engine", "ray", "--workers", "0"), 2, "0 is not at least 1"),
        (("--engine", "spark"), 2, "invalid choice: 'spark'"),
    ]:
        out = tmp_path / "out"
        got, _, err = cli(monkeypatch, capsys, home, tiny_models, "script", script, "--out",
                          out, *args)
        assert got == code and expected in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()

    # Without Ray installed, the one line says how to install it.
    monkeypatch.setitem(sys.modules, "ray", None)
    got, _, err = cli(monkeypatch, capsys, home, tiny_models, "script", script, "--out",
                      tmp_path / "out", "--engine", "ray")
    assert got == 2 and "pip install 'atelier-agent[scale]'" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_an_unreachable_address_is_one_line(script, tmp_path):
    # A process of its own: this module's Ray connection would be reused otherwise.
    env = {**os.environ, "ATELIER_HOME": str(tmp_path / "home")}
    for args in (["script", str(script), "--out", str(tmp_path / "out")],
                 ["index", "build", str(script.parent)]):
        result = subprocess.run([sys.executable, "-m", "agent.interfaces.cli", *args, "--engine", "ray",
                                 "--address", "127.0.0.1:9"], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 1, result.stderr
        assert "--address 127.0.0.1:9: no Ray cluster answers there" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "out").exists()


# --- atelier index build --engine ray ---------------------------------------------------

@pytest.fixture(scope="module")
def clip_models(tmp_path_factory) -> Path:
    return tiny_clip.shared_models(tmp_path_factory)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """Demo scenes with their scenes.jsonl captions, a caption file beside one image (it wins
    over the listing) and one image twice (indexed once)."""
    from world.demo_collection import write_demo_collection

    folder = tmp_path_factory.mktemp("images")
    write_demo_collection(folder, 18, seed=4)
    (folder / "000003.txt").write_text("a caption of its own\n", encoding="utf-8")
    shutil.copy(folder / "000005.png", folder / "zz-copy-of-5.png")
    return folder


def index_of(home: Path):
    from index.store import IndexStore

    return IndexStore.load(home / "index")


def assert_same_index(ray_home: Path, local_home: Path, clip_models: Path) -> None:
    from index.embedder import Embedder

    a, b = index_of(ray_home), index_of(local_home)
    assert list(a.ids()) == list(b.ids())
    assert (a.factory, a.search_params, a.next_id) == (b.factory, b.search_params, b.next_id)

    def fields(record):
        return dataclasses.replace(record, added="")

    assert [fields(r) for r in a.records(a.ids())] == [fields(r) for r in b.records(b.ids())]
    np.testing.assert_allclose(a.vectors(a.ids()), b.vectors(b.ids()), atol=1e-5)
    queries = Embedder.shipped(clip_models).encode_texts(
        ["a red circle", "two blue squares at the top", "a green triangle"])
    queries = np.concatenate([queries, b.vectors(b.ids()[:5])])
    for hits_a, hits_b in zip(a.search(queries, 5), b.search(queries, 5)):
        assert [i for i, _ in hits_a] == [i for i, _ in hits_b]
        np.testing.assert_allclose([s for _, s in hits_a], [s for _, s in hits_b], atol=1e-5)


# IVF: the trained path with Ray (test_training_on_shards... covers it at scale, fast).
@pytest.mark.parametrize("factory", [None, pytest.param("IVF4,Flat", marks=pytest.mark.slow)])
def test_index_build_on_ray_equals_the_local_build(local_ray, clip_models, images, factory,
                                                   tmp_path, monkeypatch, capsys):
    options = ["--tags", "shapes,demo"] + (["--factory", factory] if factory else [])
    code, out, err = cli(monkeypatch, capsys, tmp_path / "local", clip_models, "index",
                         "build", images, *options)
    assert code == 0, err
    code, out_ray, err = cli(monkeypatch, capsys, tmp_path / "ray", clip_models, "index",
                             "build", images, *options, "--engine", "ray", "--workers", "2")
    assert code == 0, err
    assert out_ray.replace(str(tmp_path / "ray"), "") == out.replace(str(tmp_path / "local"), "")
    assert "indexed 18 new images (1 already there); 18 in" in out_ray
    assert_same_index(tmp_path / "ray", tmp_path / "local", clip_models)
    assert not list((tmp_path / "ray" / "index").glob(".ray-shards-*"))
    records = index_of(tmp_path / "ray").records([3])
    assert records[0].caption == "a caption of its own"

    # Adding to it: what is indexed keeps its id, the rest gets the next ones.
    more = tmp_path / "more"
    more.mkdir()
    shutil.copy(images / "000001.png", more / "again.png")
    Image.new("RGB", (32, 32), "blue").save(more / "blue.png")
    for home, engine in ((tmp_path / "local", []), (tmp_path / "ray", ["--engine", "ray"])):
        code, out, err = cli(monkeypatch, capsys, home, clip_models, "index", "build", more,
                             *engine)
        assert code == 0 and "indexed 1 new images (1 already there); 19 in" in out, err
    assert_same_index(tmp_path / "ray", tmp_path / "local", clip_models)


def test_a_damaged_image_stops_a_ray_build_as_it_stops_a_local_one(
        local_ray, clip_models, images, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "images"
    shutil.copytree(images, folder)
    (folder / "000002.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    results = []
    for home, engine in ((tmp_path / "local", []), (tmp_path / "ray", ["--engine", "ray"])):
        code, _, err = cli(monkeypatch, capsys, home, clip_models, "index", "build", folder,
                           *engine)
        results.append((code, err))
        assert not (home / "index" / "CURRENT").exists()
    assert results[0] == results[1]
    code, err = results[0]
    assert code == 2 and "000002.png" in err and len(err.strip().splitlines()) == 1


def test_training_on_shards_is_what_a_build_over_all_vectors_does(tmp_path, monkeypatch):
    """The train-and-fill path on thousands of vectors in several shards, without Ray: the
    same training sample, held-out rows, tuned nprobe and search results as
    `vectors.build` over the whole array."""
    from index import ray_build
    from index import vectors as vx
    from index.store import IndexStore

    rng = np.random.default_rng(3)
    centres = rng.normal(size=(40, 32))
    x = vx.as_vectors(centres[rng.integers(0, 40, 3000)] + 0.3 * rng.normal(size=(3000, 32)),
                      32)
    monkeypatch.setattr(ray_build, "SHARD_ROWS", 700)
    store = IndexStore(tmp_path / "index", "test-model", 32, factory="IVF64,SQ8")
    writer = ray_build.ShardWriter(tmp_path / "shards", store, ())
    (tmp_path / "shards").mkdir()
    for start in range(0, 3000, 250):
        rows = np.arange(start, min(start + 250, 3000))
        writer.add({"row": rows - start, "sha256": np.array([f"{r:064x}" for r in rows]),
                    "caption": np.array([f"item {r}" for r in rows]),
                    "width": np.full(len(rows), 8), "height": np.full(len(rows), 8),
                    "vector": x[rows], "error": np.full(len(rows), "")},
                   [Path(f"/images/{r}.png") for r in rows])
    writer.flush()
    assert [s.count for s in writer.written] == [750] * 4 and writer.ids == list(range(3000))
    ray_build.fill(store, writer.written, ())

    index, factory, params = vx.build("IVF64,SQ8", 32, x, np.arange(3000))
    assert (store.factory, store.search_params) == (factory, params)
    assert store.search_params.startswith("nprobe=") and store.trained_count == 3000
    assert len(store) == 3000 and list(store.ids()) == list(range(3000))
    vx.set_search_params(index, params)
    queries = x[rng.choice(3000, 50, replace=False)]
    _, expected = index.search(queries, 10)
    assert [[i for i, _ in hits] for hits in store.search(queries, 10)] == expected.tolist()
    record = store.records([7])[0]
    assert (record.caption, record.path, record.sha256) == ("item 7", "/images/7.png",
                                                            f"{7:064x}")


# --- the benchmark suite ------------------------------------------------------------------

@pytest.mark.slow  # two more Ray runs; the default set stays under two minutes
def test_the_ray_bench_suite_reports_both_runs(local_ray, tiny_models, tmp_path):
    from bench.harness import Context, run_suites

    context = Context(models=tiny_models, quick=True, device="cpu",
                      sizes={"ray": 2, "ray_spin": 1_000_000})
    results = run_suites(["ray"], context, tmp_path, log=lambda *a: None)
    entry = results["suites"]["ray"]
    assert "error" not in entry, entry.get("error")
    figures = entry["figures"]
    assert set(figures["runs"]) == {"1", "2"} and figures["threads_per_worker"] == 1
    one, two = (figures["runs"][w]["turns_per_second"] for w in ("1", "2"))
    headline = figures["summary"][0]
    assert (headline["value"], headline["baseline"]) == (round(two, 3), round(one, 3))
    assert headline["ratio"] == round(two / one, 3)
    assert figures["parallel_capacity"] > 0  # a timing: too noisy at this size to bound
    # Same seeds and one thread per worker in both runs: the same images.
    assert figures["images"]["turns_compared"] == 2
    assert figures["images"]["max_pixel_difference"] == 0
    assert (tmp_path / "plots" / "ray.png").is_file()
