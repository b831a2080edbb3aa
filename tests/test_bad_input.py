"""Bad input, as one table over the command line and the Python API.

Every case is refused with one line that names the problem and the fix (on stderr for the
command line, as the exception's message for the API), exit code 2 for a usage error and 1
for work that failed, and no traceback. Around every case sits a home that already holds a
session with an image and an image index: after the case, everything in it is still there,
byte for byte (a refused input writes nothing at all; failed work only adds its failed turn).

Command-line cases run `agent.interfaces.cli.main` in this process (argparse's exits included), plus a
few real subprocesses for what only a process shows (undecodable argv bytes, the exit status
itself). Turns run on `WorldRunner` (tests/world_runner.py) and the index uses the tiny
shapes-clip (tests/tiny_clip.py): nothing here loads a diffusion model.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import numpy as np
import pytest
import tiny_clip
from PIL import Image
from world_runner import WorldRunner

from agent.interfaces import cli
from agent.api import Atelier
from agent.errors import AtelierError
from agent.sessions.image_files import open_rgb
from index.store import IndexStore, index_root
from planners.plan import Plan, Step
from world.render import render
from world.scene import Obj, Scene

REPO = Path(__file__).resolve().parents[1]
KEEP = "keep"
SCENE = Scene((Obj("circle", "red", "large", 0.3, 0.5), Obj("square", "blue", "small", 0.75, 0.5)))
GOOD_LINE = '{"session": "s", "request": "a red circle"}'


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width` x `height`: a decompression bomb's first bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def write_files(folder: Path) -> None:
    folder.mkdir()
    image = render(SCENE)
    image.save(folder / "ok.png")
    good = (folder / "ok.png").read_bytes()
    (folder / "corrupt.png").write_bytes(good[:48] + bytes(range(256)) * 4)
    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.png").write_bytes(good[:len(good) // 2])
    image.save(folder / "full.jpg", quality=95)
    (folder / "truncated.jpg").write_bytes((folder / "full.jpg").read_bytes()[:400])
    (folder / "notes.png").write_text("these are my notes, not a picture\n")
    (folder / "report.jpg").write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n")
    (folder / "folder.png").mkdir()
    (folder / "bomb.png").write_bytes(png_header_only(100_000, 100_000))
    Image.new("RGB", (4100, 4), "white").save(folder / "wide.png")
    Image.new("L", (64, 64), 255).save(folder / "mask-small.png")
    # Scripts
    (folder / "bad-line.jsonl").write_text(f"{GOOD_LINE}\n{GOOD_LINE}\n{{\"session\": \"s\"\n")
    lines = [json.dumps({"session": f"s{i % 7}", "request": "a red circle", "seed": i})
             for i in range(9_999)]
    (folder / "long.jsonl").write_text("\n".join(lines) + '\n{"session": "s", "request": 5}\n')
    (folder / "missing-image.jsonl").write_text(
        '{"session": "s", "request": "make it blue", "image": "nowhere.png"}\n')
    (folder / "folder-image.jsonl").write_text(
        '{"session": "s", "request": "make it blue", "image": "folder.png"}\n')
    (folder / "latin1.jsonl").write_bytes(b'{"session": "s", "request": "un caf\xe9"}\n')
    (folder / "blank.jsonl").write_text("\n  \n")
    (folder / "corrupt-image.jsonl").write_text(
        '{"session": "a", "request": "make the circle green", "image": "corrupt.png"}\n'
        '{"session": "b", "request": "undo"}\n')
    (folder / "taken").write_text("a file where a folder should be\n")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A home with a saved session (one image) and a saved index, the tiny clip model as the
    models folder, and a folder of bad files."""
    from index.collection import Collection, read_captions
    from world.demo_collection import write_demo_collection
    from index.embedder import Embedder

    root = tmp_path_factory.mktemp("bad-input")
    models = tiny_clip.shared_models(tmp_path_factory)
    home = root / "home"
    with Atelier(home=home, models=WorldRunner(), retriever=None) as atelier:
        result = atelier.session(KEEP).ask("a red circle to the left of a blue square", seed=1)
        assert result.ok and result.image.id == "img_1"
    scenes = root / "scenes"
    paths = write_demo_collection(scenes, 6, seed=2)
    collection = Collection.open(index_root(home), Embedder.shipped(models, progress=False))
    collection.add_files(paths, read_captions(scenes))
    collection.save()
    files = root / "files"
    write_files(files)
    return SimpleNamespace(home=home, models=models, files=files)


# --- what "nothing saved is lost" means -----------------------------------------------------

def snapshot(home: Path) -> dict:
    state = {}
    with Atelier(home=home) as atelier:
        for name in atelier.sessions():
            session = atelier.session(name, create=False)
            images = {}
            for image in session.images():
                image.open()  # checks the file against its recorded sha256
                images[image.id] = image.sha256
            state[name] = {"turns": [(t.number, t.request, t.ok, t.image_after)
                                     for t in session.history()],
                           "images": images,
                           "current": session.current.id if session.current else None}
    index = IndexStore.load(index_root(home))
    state["index"] = (index.generation, [int(i) for i in index.ids()],
                      [r.caption for r in index.records(index.ids())])
    return state


def assert_nothing_lost(before: dict, after: dict, code: int) -> None:
    assert after["index"] == before["index"]
    if code == 2:
        assert after == before  # a refused input leaves no trace at all
        return
    for name, old in before.items():
        if name == "index":
            continue
        new = after[name]
        assert new["turns"][:len(old["turns"])] == old["turns"]
        assert all(new["images"].get(i) == sha for i, sha in old["images"].items())
        # Failed work adds at most a failed turn; the canvas stays where it was.
        assert all(not t[2] for t in new["turns"][len(old["turns"]):])
        assert new["current"] == old["current"]


# --- the table ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...] | None = None       # the command line; {tmp} is a fresh folder
    api: Callable | None = None               # or a call of the Python API
    code: int = 2
    words: tuple[str, ...] = ()               # each must be in the error line
    home: Callable | None = None              # a home of its own, built in tmp_path


def case(name: str, *argv: str, code: int = 2, words=(), home=None, api=None):
    return pytest.param(Case(argv or None, api, code, tuple(words), home), id=name)


def keep(atelier: Atelier):
    return atelier.session(KEEP, create=False)


def plan_of(*steps: Step) -> Plan:
    return Plan(rationale="scripted", steps=list(steps))


def unvalidated_plan(op: str) -> Plan:
    """A plan as a careless planner might build it, skipping validation."""
    step = Step.model_construct(op=op, args=Step(op="generate", args={"prompt": "x"}).args,
                                reason="", inputs=[], exemplars=None)
    return Plan.model_construct(rationale="unchecked", action="run", steps=[step])


def home_is_a_file(tmp_path: Path) -> Path:
    home = tmp_path / "home-file"
    home.write_text("not a folder\n")
    return home


def home_with_damaged_store(tmp_path: Path) -> Path:
    home = tmp_path / "damaged"
    home.mkdir()
    (home / "atelier.db").write_bytes(b"this is not sqlite" * 200)
    return home


NUL_REQUEST = "a red\x00circle"
UNDECODABLE = b"a red \xe9 circle".decode("utf-8", "surrogateescape")
LONG = "a red circle " * 400

CASES = [
    # Image files that are not what their names say
    case("corrupt-png", "world", "detect", "corrupt.png",
         words=["corrupt.png", "damaged or incomplete"]),
    case("empty-file", "world", "detect", "empty.png", words=["empty.png", "not an image"]),
    case("truncated-png", "world", "detect", "truncated.png",
         words=["truncated.png", "damaged or incomplete", "truncated"]),
    case("truncated-jpeg", "world", "detect", "truncated.jpg",
         words=["truncated.jpg", "truncated"]),
    case("text-named-png", "world", "detect", "notes.png", words=["notes.png", "PNG or JPEG"]),
    case("pdf-named-jpg", "world", "detect", "report.jpg", words=["report.jpg", "PNG or JPEG"]),
    case("folder-named-png", "world", "detect", "folder.png", words=["folder.png", "is a folder"]),
    case("missing-image", "world", "detect", "gone.png", words=["gone.png", "no such file"]),
    case("decompression-bomb", "world", "detect", "bomb.png",
         words=["bomb.png", "too large", "4096x4096"]),
    case("too-wide-upload", "run", "make it green", "--session", KEEP, "--image", "wide.png",
         words=["wide.png", "4100x4", "scale it down"]),
    case("corrupt-upload", "run", "make it green", "--session", KEEP, "--image", "corrupt.png",
         words=["corrupt.png", "damaged"]),
    case("truncated-plan-image", "plan", "make it green", "--image", "truncated.png",
         words=["truncated.png"]),
    case("corrupt-index-add", "index", "add", "ok.png", "corrupt.png", words=["corrupt.png"]),
    case("text-index-query", "index", "search", "--image", "notes.png", words=["notes.png"]),
    case("empty-op-image", "op", "edit", "--image", "empty.png", "--set", "instruction=x",
         "--out", "{tmp}/o.png", words=["empty.png"]),
    case("bomb-op-reference", "op", "reference", "--reference", "bomb.png", "--set", "prompt=x",
         "--out", "{tmp}/o.png", words=["bomb.png", "too large"]),
    # A mask that does not fit its image
    case("mask-wrong-size", "op", "inpaint", "--image", "ok.png", "--mask", "mask-small.png",
         "--set", "prompt=a green circle", "--out", "{tmp}/o.png",
         words=["--mask mask-small.png is 64x64", "128x128", "same size"]),
    case("mask-corrupt", "op", "inpaint", "--image", "ok.png", "--mask", "corrupt.png",
         "--set", "prompt=a green circle", "--out", "{tmp}/o.png", words=["corrupt.png"]),
    # Prompts
    case("empty-prompt", "run", "", words=["request is empty", "say what to draw"]),
    case("blank-prompt", "run", " \t ", "--session", KEEP, words=["request is empty"]),
    case("very-long-prompt", "run", LONG, "--session", KEEP, words=["characters long", "2000"]),
    case("undecodable-prompt", "run", UNDECODABLE, words=["not valid UTF-8"]),
    case("nul-in-prompt", "run", NUL_REQUEST, words=["NUL character"]),
    case("plan-very-long-prompt", "plan", LONG, words=["characters long"]),
    case("plan-undecodable-prompt", "plan", UNDECODABLE, words=["not valid UTF-8"]),
    case("op-prompt-too-long", "op", "generate", "--set", "prompt=" + "x" * 600,
         "--out", "{tmp}/o.png", words=["prompt", "at most 500"]),
    # Operations and their arguments
    case("unknown-operation", "op", "paint", "--set", "prompt=x", "--out", "{tmp}/o.png",
         words=["unknown operation 'paint'", "generate"]),
    case("unknown-command", "paint", "a red circle", words=["invalid choice: 'paint'", "--help"]),
    case("missing-argument", "op", "generate", "--set", "prompt=x",
         words=["--out", "atelier op --help"]),
    case("negative-steps", "op", "generate", "--set", "prompt=x", "--set", "steps=-5",
         "--out", "{tmp}/o.png", words=["steps", "greater than or equal to 1"]),
    case("nan-guidance", "op", "generate", "--set", "prompt=x", "--set", "guidance=NaN",
         "--out", "{tmp}/o.png", words=["guidance", "finite number"]),
    case("infinite-guidance", "op", "generate", "--set", "prompt=x", "--set",
         "guidance=-Infinity", "--out", "{tmp}/o.png", words=["guidance", "finite number"]),
    case("enormous-width", "op", "generate", "--set", "prompt=x", "--set", "width=100000",
         "--out", "{tmp}/o.png", words=["width", "2048"]),
    case("enormous-batch", "op", "generate", "--set", "prompt=x", "--set", "num_images=1000",
         "--out", "{tmp}/o.png", words=["num_images"]),
    case("negative-seed", "op", "generate", "--set", "prompt=x", "--seed", "-1",
         "--out", "{tmp}/o.png", words=["seed"]),
    case("seed-too-big", "run", "a red circle", "--seed", str(2**32), words=["--seed", "outside"]),
    case("seed-not-a-number", "run", "a red circle", "--seed", "nan",
         words=["--seed", "'nan' is not a whole number"]),
    case("hits-zero", "index", "search", "x", "--k", "0", words=["--k", "not at least 1"]),
    case("hits-enormous", "index", "search", "x", "--k", "1000000000",
         words=["--k", "more than 1000"]),
    case("diversity-nan", "index", "search", "x", "--diversity", "nan", words=["--diversity"]),
    case("negative-count", "world", "sample", "--n", "-3", "--seed", "0", "--out", "{tmp}/w",
         words=["--n", "not at least 1"]),
    case("negative-world-seed", "world", "sample", "--n", "2", "--seed", "-1",
         "--out", "{tmp}/w", words=["--seed", "outside"]),
    case("output-folder-missing", "op", "generate", "--set", "prompt=x",
         "--out", "{tmp}/no/such/dir/o.png", words=["does not exist", "create it first"]),
    case("output-under-a-file", "world", "sample", "--n", "1", "--seed", "0",
         "--out", "taken/samples", code=1,
         words=["taken/samples", "Not a directory", "check the path"]),
    # Sessions and image ids
    case("bad-session-name", "run", "a red circle", "--session", "../../etc",
         words=["session name '../../etc' is not allowed"]),
    case("missing-session", "plan", "make it blue", "--session", "nope",
         words=["no session named 'nope'", KEEP]),
    case("unknown-image-id", "run", "make img_9 blue", "--session", KEEP, code=1,
         words=["img_9", "known ids: img_1"]),
    case("api-missing-session", api=lambda a: a.session("nope", create=False),
         words=["no session named 'nope'"]),
    case("api-unknown-image", api=lambda a: keep(a).branch("img_99"),
         words=["has no image img_99", "/history"]),
    case("api-path-as-image-id", api=lambda a: keep(a).branch("../atelier.db"),
         words=["not an image id"]),
    case("api-empty-request", api=lambda a: keep(a).ask("   "), words=["request is empty"]),
    case("api-huge-request", api=lambda a: keep(a).ask("x" * 100_000),
         words=["100000 characters long"]),
    case("api-bytes-request", api=lambda a: keep(a).ask(b"a red circle"), words=["must be text"]),
    case("api-undecodable-request", api=lambda a: keep(a).ask(UNDECODABLE),
         words=["not valid UTF-8"]),
    case("api-nan-seed", api=lambda a: keep(a).ask("a red circle", seed=float("nan")),
         words=["seed nan"]),
    case("api-image-of-wrong-type", api=lambda a: keep(a).ask("x", image=b"\x89PNG"),
         words=["file path or a PIL image"]),
    case("api-huge-pil-image", api=lambda a: keep(a).ask("x", image=Image.new("L", (9000, 2))),
         words=["9000x2", "limit"]),
    case("api-unknown-operation", api=lambda a: keep(a).run_plan(unvalidated_plan("paint")),
         code=1, words=["unknown operation 'paint'"]),
    case("api-too-many-steps", code=1, words=["9 steps", "at most 8"],
         api=lambda a: keep(a).run_plan(plan_of(*[Step(op="generate", args={
             "prompt": "a red circle"})] * 9))),
    case("api-huge-size", code=1, words=["width=2048", "pixel limit"],
         api=lambda a: keep(a).run_plan(plan_of(Step(op="generate", args={
             "prompt": "a red circle", "width": 2048, "height": 2048})))),
    case("api-bad-llm", api=lambda a: Atelier(home=a.home, llm="nope:x").session(KEEP).ask("x"),
         words=["is not PROVIDER:MODEL"]),
    case("api-bad-models", api=lambda a: Atelier(home=a.home, models=42).session(KEEP).ask(
        "a red circle"), words=["models must be", "int"]),
    # Scripts
    case("script-malformed-line", "script", "bad-line.jsonl", "--out", "{tmp}/out",
         words=["bad-line.jsonl:3", "not valid JSON"]),
    case("script-10000-lines", "script", "long.jsonl", "--out", "{tmp}/out",
         words=["long.jsonl:10000", "'request' must be a string"]),
    case("script-image-missing", "script", "missing-image.jsonl", "--out", "{tmp}/out",
         words=["missing-image.jsonl:1", "nowhere.png", "no such file"]),
    case("script-image-folder", "script", "folder-image.jsonl", "--out", "{tmp}/out",
         words=["folder-image.jsonl:1", "is a folder"]),
    case("script-not-utf8", "script", "latin1.jsonl", "--out", "{tmp}/out",
         words=["latin1.jsonl:1", "UTF-8"]),
    case("script-without-turns", "script", "blank.jsonl", "--out", "{tmp}/out",
         words=["no turns"]),
    case("script-missing", "script", "nowhere.jsonl", "--out", "{tmp}/out",
         words=["nowhere.jsonl", "no such file"]),
    case("script-out-is-a-file", "script", "corrupt-image.jsonl", "--out", "taken",
         words=["--out taken is a file"]),
    case("script-resume-nothing", "script", "corrupt-image.jsonl", "--out", "{tmp}/new",
         "--resume", words=["holds no scripted run", "without --resume"]),
    case("script-image-corrupt", "script", "corrupt-image.jsonl", "--out", "{tmp}/out", code=1,
         words=["1 turn(s) failed", "manifest.jsonl"]),
    # Homes that cannot be used
    case("home-is-a-file", "run", "a red circle", code=1, home=home_is_a_file,
         words=["ATELIER_HOME", "it is a file"]),
    case("damaged-store", "run", "a red circle", "--session", KEEP, code=1,
         home=home_with_damaged_store, words=["not a readable Atelier store", "ATELIER_HOME"]),
]


def run_case(the: Case, world, home: Path, tmp_path: Path, monkeypatch, capsys
             ) -> tuple[int, list[str]]:
    """(exit code, error lines) of one case."""
    if the.api is not None:
        with Atelier(home=home, models=WorldRunner(), retriever=None) as atelier:
            try:
                result = the.api(atelier)
            except AtelierError as error:
                return error.exit_code, str(error).splitlines()
        assert not result.ok, "the call was expected to fail"
        return 1, result.error.splitlines()
    monkeypatch.setenv("ATELIER_HOME", str(home))
    monkeypatch.setenv("ATELIER_MODELS", str(world.models))
    monkeypatch.chdir(world.files)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in the.argv]
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse's errors exit from inside parse_args
        code = exit_.code
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err.splitlines()


@pytest.mark.parametrize("the", CASES)
def test_bad_input_is_one_line_and_loses_nothing(the, world, tmp_path, monkeypatch, capsys):
    home = the.home(tmp_path) if the.home else world.home
    before = snapshot(world.home)
    own = {p: p.read_bytes() for p in [home, *home.rglob("*")] if p.is_file()} if the.home \
        else None
    started = time.perf_counter()
    code, lines = run_case(the, world, home, tmp_path, monkeypatch, capsys)
    assert time.perf_counter() - started < 30
    assert code == the.code, lines
    assert len(lines) == 1, lines
    line = lines[0]
    if the.argv is not None:
        assert line.startswith("atelier: ")
    for word in the.words:
        assert word in line, (word, line)
    assert_nothing_lost(before, snapshot(world.home), code)
    if own is not None:  # the case's own home: its files untouched
        assert {p: p.read_bytes() for p in own} == own


def test_the_table_covers_at_least_40_cases():
    assert len(CASES) >= 40
    names = [p.id for p in CASES]
    assert len(set(names)) == len(names)


def test_a_refused_script_runs_nothing(world, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ATELIER_HOME", str(world.home))
    monkeypatch.chdir(world.files)
    started = time.perf_counter()
    code = cli.main(["script", "long.jsonl", "--out", str(tmp_path / "out")])
    assert code == 2 and time.perf_counter() - started < 10
    assert not (tmp_path / "out").exists()
    assert "long.jsonl:10000:" in capsys.readouterr().err


def test_a_failed_scripted_turn_is_in_the_manifest_and_the_rest_run(world, tmp_path,
                                                                    monkeypatch, capsys):
    monkeypatch.setenv("ATELIER_HOME", str(world.home))
    monkeypatch.chdir(world.files)
    out = tmp_path / "out"
    assert cli.main(["script", "corrupt-image.jsonl", "--out", str(out)]) == 1
    entries = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert [(e["line"], e["ok"]) for e in entries] == [(1, False), (2, True)]
    assert "corrupt.png" in entries[0]["error"] and "damaged" in entries[0]["error"]


# --- images that are accepted and converted ---------------------------------------------------

def rgba_on_transparent() -> Image.Image:
    """The scene's shapes on a fully transparent background."""
    rgb = np.asarray(render(SCENE))
    background = (rgb == rgb[0, 0]).all(axis=2)
    alpha = np.where(background, 0, 255).astype(np.uint8)
    return Image.fromarray(np.dstack([rgb * (alpha[..., None] > 0), alpha]), "RGBA")


CONVERTED = {
    "rgba": rgba_on_transparent,
    "palette": lambda: render(SCENE).quantize(64),
    "palette-transparent": lambda: rgba_on_transparent().quantize(
        64, method=Image.Quantize.FASTOCTREE),
    "cmyk": lambda: render(SCENE).convert("CMYK"),
}


@pytest.mark.parametrize("name", sorted(CONVERTED))
def test_colour_modes_are_converted_and_read_as_the_same_scene(name, tmp_path, monkeypatch,
                                                               capsys):
    image = CONVERTED[name]()
    suffix = ".jpg" if image.mode == "CMYK" else ".png"
    path = tmp_path / f"{name}{suffix}"
    image.save(path, **({"quality": 100} if suffix == ".jpg" else {}))
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path / "home"))
    assert cli.main(["world", "detect", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    found = Scene.from_dict(json.loads(captured.out))
    assert found.background == SCENE.background == "white"
    assert [(o.shape, o.color, o.size) for o in found.objects] == \
        [(o.shape, o.color, o.size) for o in SCENE.objects]


def test_16_bit_and_grayscale_images_keep_their_tones(tmp_path):
    ramp = np.tile(np.arange(256, dtype=np.uint16), (8, 1))
    Image.fromarray(ramp.astype(np.uint8), "L").save(tmp_path / "g8.png")
    Image.fromarray(ramp * 257).save(tmp_path / "g16.png")      # 16-bit: 0..65535
    Image.fromarray(ramp.astype(np.uint8), "L").convert("1").save(tmp_path / "bw.png")
    Image.fromarray(np.dstack([ramp.astype(np.uint8), np.full_like(ramp, 255, np.uint8)]),
                    "LA").save(tmp_path / "la.png")
    # A dark 16-bit image stays dark: its depth comes from its mode, not its values.
    Image.fromarray(np.full((8, 8), 200, np.uint16)).save(tmp_path / "dark16.png")
    assert np.asarray(open_rgb(tmp_path / "dark16.png")).max() == 1
    eight = np.asarray(open_rgb(tmp_path / "g8.png"))
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    # Scaled, not clipped: a 16-bit ramp reads as the same ramp in 8 bits.
    assert np.array_equal(np.asarray(open_rgb(tmp_path / "g16.png")), eight)
    assert np.array_equal(np.asarray(open_rgb(tmp_path / "la.png")), eight)
    assert set(np.unique(np.asarray(open_rgb(tmp_path / "bw.png")))) <= {0, 255}
    for name in ("g8", "g16", "bw", "la"):
        assert open_rgb(tmp_path / f"{name}.png").mode == "RGB"


def test_an_rgba_upload_becomes_the_scene_on_white(tmp_path):
    path = tmp_path / "upload.png"
    rgba_on_transparent().save(path)
    with Atelier(home=tmp_path / "home", models=WorldRunner(), retriever=None) as atelier:
        result = atelier.session("s").ask("make the circle green", image=path, seed=1)
        upload = atelier.session("s").image("img_1")
    assert upload.role == "upload" and upload.scene["background"] == "white"
    assert result.ok and result.checks_passed is True


# --- real processes -------------------------------------------------------------------------

def atelier_process(args: list, home: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ATELIER_HOME": str(home), "PYTHONPATH": str(REPO),
           "OMP_NUM_THREADS": "1"}
    env.pop("ATELIER_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "agent.interfaces.cli", *args], cwd=cwd, env=env,
                          capture_output=True, timeout=120)


@pytest.mark.parametrize("args, code, words", [
    ([b"run", b"a red \xe9 circle", b"--session", KEEP.encode()], 2, [b"not valid UTF-8"]),
    ([b"run", b"--seed", b"-4", b"a red circle"], 2,
     [b"--seed", b"outside", b"atelier run --help"]),
    ([b"op", b"inpaint", b"--image", b"ok.png", b"--mask", b"mask-small.png", b"--set",
      b"prompt=x", b"--out", b"o.png"], 2, [b"64x64"]),
    ([b"script", b"long.jsonl", b"--out", b"never"], 2, [b"long.jsonl:10000"]),
    ([b"world", b"detect", b"bomb.png"], 2, [b"too large"]),
])
def test_real_processes_print_one_line_and_exit_with_the_code(world, args, code, words):
    before = snapshot(world.home)
    result = atelier_process(args, world.home, world.files)
    assert result.returncode == code, result.stderr
    assert b"Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(b"atelier: error: "), result.stderr
    for word in words:
        assert word in lines[0]
    assert snapshot(world.home) == before
    assert not (world.files / "never").exists() and not (world.files / "o.png").exists()


def test_a_real_process_reads_converted_images_without_a_word_on_stderr(world, tmp_path):
    # PIL warns about palette transparency; the user sees the scene and nothing else.
    CONVERTED["palette-transparent"]().save(tmp_path / "palette.png")
    rgba_on_transparent().save(tmp_path / "rgba.png")
    Image.fromarray(np.full((16, 16), 40_000, np.uint16)).save(tmp_path / "gray16.png")
    result = atelier_process([b"world", b"detect", b"palette.png", b"rgba.png", b"gray16.png"],
                             world.home, tmp_path)
    assert result.returncode == 0 and result.stderr == b"", result.stderr
    scenes = [json.loads(line) for line in result.stdout.splitlines()]
    assert [s["background"] for s in scenes[:2]] == ["white", "white"]
    assert [len(s["objects"]) for s in scenes[:2]] == [2, 2]
