"""`atelier script`: parsing with errors that name the line, the manifest, independent
sessions, and exactly-once resume, including after a SIGKILL in the middle of a turn.

In-process runs use `WorldRunner` (tests/world_runner.py: exact results drawn by the world's
renderer). The crash test runs the real command in a subprocess on tiny random diffusers
models (tests/tiny_diffusion.py) saved in the shipped models' layout, so it exercises the real
loading and sampling path, and compares the resumed run with an uninterrupted one."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from killing import kill_after_first_turn
from PIL import Image
from world_runner import WorldRunner

from agent.api import Atelier
from agent.errors import UsageError
from agent.engines.script import MANIFEST, ScriptRun, parse_script

REPO = Path(__file__).resolve().parents[1]
GOOD = '{"session": "s", "request": "a red circle"}'


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("line, problem", [
    ("not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"session": "s"}', "missing 'request'"),
    ('{"request": "a red circle"}', "missing 'session'"),
    ('{"session": "s", "request": "x", "sesion": "t"}', "unknown field 'sesion'"),
    ('{"session": "s", "request": "x", "seed": -1}', "'seed' must be a whole number"),
    ('{"session": "s", "request": "x", "seed": "7"}', "'seed' must be a whole number"),
    ('{"session": "s", "request": "x", "seed": 1.5}', "'seed' must be a whole number"),
    ('{"session": "s", "request": "x", "seed": true}', "'seed' must be a whole number"),
    ('{"session": "s", "request": "x", "seed": NaN}', "'seed' must be a whole number"),
    ('{"session": "s", "request": "x", "seed": 4294967296}', "'seed' must be a whole number"),
    ('{"session": "", "request": "x"}', "session name '' is not allowed"),
    ('{"session": "../etc", "request": "x"}', "is not allowed"),
    ('{"session": "s", "request": ""}', "'request' is empty"),
    ('{"session": "s", "request": 12}', "'request' must be a string"),
    ('{"session": "s", "request": "x", "image": "missing.png"}', "no such file"),
    ('{"session": "s", "request": "x", "image": "."}', "is a folder"),
    ('{"session": "s", "request": "x", "image": 3}', "'image' must be the path"),
])
def test_malformed_lines_are_named(tmp_path, line, problem):
    script = write(tmp_path / "turns.jsonl", GOOD, line, GOOD)
    with pytest.raises(UsageError, match=problem) as error:
        parse_script(script)
    assert "turns.jsonl:2:" in str(error.value) and "\n" not in str(error.value)


def test_files_that_are_not_scripts(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        parse_script(tmp_path / "missing.jsonl")
    with pytest.raises(UsageError, match="is a folder"):
        parse_script(tmp_path)
    with pytest.raises(UsageError, match="no turns in the file"):
        parse_script(write(tmp_path / "empty.jsonl", "", "  "))
    (tmp_path / "latin1.jsonl").write_bytes(GOOD.encode() + b'\n{"session": "s", '
                                            b'"request": "caf\xe9"}\n')
    with pytest.raises(UsageError, match=r"latin1.jsonl:2: not valid UTF-8"):
        parse_script(tmp_path / "latin1.jsonl")


def test_a_long_script_parses_quickly(tmp_path):
    script = write(tmp_path / "long.jsonl", *[
        json.dumps({"session": f"s{i % 50}", "request": "a red circle", "seed": i})
        for i in range(10_000)])
    started = time.perf_counter()
    lines = parse_script(script)
    assert len(lines) == 10_000 and time.perf_counter() - started < 5
    assert lines[-1].line == 10_000 and lines[-1].seed == 9_999


def script_lines(tmp_path: Path) -> Path:
    return write(
        tmp_path / "turns.jsonl",
        '{"session": "a", "request": "a red circle to the left of a blue square", "seed": 1}',
        '{"session": "b", "request": "a green triangle at the bottom"}',
        '{"session": "a", "request": "make the circle green"}',
        '{"session": "b", "request": "a flibbertigibbet"}',
        "",
        '{"session": "a", "request": "undo"}',
        '{"session": "b", "request": "make the triangle red"}')


def run_script(script: Path, out: Path, runner: WorldRunner, resume: bool = False) -> list[dict]:
    ScriptRun.check_folder(out, resume)
    out.mkdir(parents=True, exist_ok=True)
    with Atelier(home=out, models=runner, retriever=None) as atelier:
        return ScriptRun(atelier, parse_script(script), out).run()


def read_manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / MANIFEST).read_text().splitlines()]


def test_manifest_has_one_entry_per_turn_in_file_order(tmp_path):
    out = tmp_path / "out"
    entries = run_script(script_lines(tmp_path), out, WorldRunner())
    assert entries == read_manifest(out)
    assert [(e["line"], e["session"], e["turn"]) for e in entries] == [
        (1, "a", 1), (2, "b", 1), (3, "a", 2), (4, "b", 2), (6, "a", 3), (7, "b", 3)]
    assert [e["ok"] for e in entries] == [True, True, True, False, True, True]
    failed = entries[3]
    assert "flibbertigibbet" in failed["error"] and failed["image"] == entries[1]["image"]
    for entry in entries:
        assert {"session", "turn", "request", "image", "ok", "error", "plan", "seed",
                "seconds"} <= set(entry)
        assert (out / entry["image"]).is_file() and not Path(entry["image"]).is_absolute()
    assert entries[0]["seed"] == 1 and entries[0]["plan"]["steps"][0]["op"] == "layout"
    # Session a's undo goes back to its first image; b's edit works on b's own image.
    assert entries[4]["image"] == entries[0]["image"]
    assert entries[5]["plan"]["steps"][0]["inputs"] == ["img_1"]


def test_resume_runs_only_what_is_missing_and_repairs_the_manifest(tmp_path):
    script = script_lines(tmp_path)
    out = tmp_path / "out"
    complete = run_script(script, out, WorldRunner())
    with pytest.raises(UsageError, match="already holds a scripted run"):
        ScriptRun.check_folder(out, resume=False)
    # As if killed after the last turn's commit but before its manifest line was written.
    manifest = (out / MANIFEST).read_text().splitlines(keepends=True)
    (out / MANIFEST).write_text("".join(manifest[:-1]) + manifest[-1][:10])
    runner = WorldRunner()
    assert run_script(script, out, runner, resume=True) == complete
    assert runner.calls == [] and read_manifest(out) == complete

    # Lines added to the script run on resume; changed lines are refused.
    with open(script, "a") as handle:
        handle.write('{"session": "a", "request": "redo"}\n')
    entries = run_script(script, out, WorldRunner(), resume=True)
    assert [(e["line"], e["turn"], e["ok"]) for e in entries][-1] == (8, 4, True)
    script.write_text(script.read_text().replace("green triangle", "blue triangle"))
    with pytest.raises(UsageError, match="line 2 changed since it ran"):
        run_script(script, out, WorldRunner(), resume=True)


def test_resume_needs_a_started_run(tmp_path):
    with pytest.raises(UsageError, match="holds no scripted run"):
        ScriptRun.check_folder(tmp_path / "nothing", resume=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        ScriptRun.check_folder(tmp_path / "file", resume=False)


def test_the_same_script_makes_the_same_images(tmp_path):
    script = script_lines(tmp_path)
    first = run_script(script, tmp_path / "one", WorldRunner())
    second = run_script(script, tmp_path / "two", WorldRunner())
    assert [(e["seed"], e["image"]) for e in first] == [(e["seed"], e["image"]) for e in second]


def test_an_unreadable_input_image_fails_only_its_turn(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    script = write(tmp_path / "turns.jsonl",
                   '{"session": "a", "request": "make the circle green", "image": "broken.png"}',
                   '{"session": "b", "request": "a red circle at the top"}')
    entries = run_script(script, tmp_path / "out", WorldRunner())
    assert [e["ok"] for e in entries] == [False, True]
    assert "broken.png" in entries[0]["error"] and entries[0]["image"] is None


# --- the real command, killed ---------------------------------------------------------------


def atelier_env(home: Path, models: Path) -> dict:
    # One thread: tiny models on a shared machine run many times faster than with two.
    return {**os.environ, "ATELIER_HOME": str(home), "ATELIER_MODELS": str(models),
            "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


CRASH_SCRIPT = [
    '{"session": "a", "request": "a red circle", "seed": 5}',
    '{"session": "b", "request": "a blue square at the top left"}',
    '{"session": "a", "request": "undo"}',
    '{"session": "b", "request": "a wibble"}',
    '{"session": "a", "request": "redo"}',
    '{"session": "b", "request": "a green triangle"}',
]


def test_sigkill_mid_script_then_resume_loses_and_repeats_nothing(tmp_path, tiny_models):
    script = write(tmp_path / "turns.jsonl", *CRASH_SCRIPT)
    out = tmp_path / "out"
    env = atelier_env(tmp_path / "home", tiny_models)
    command = [sys.executable, "-m", "agent.interfaces.cli", "script", str(script), "--out", str(out)]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    kill_after_first_turn(process, out / MANIFEST, timeout=240)

    db = sqlite3.connect(out / "atelier.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    committed = db.execute("SELECT COUNT(*) FROM turns").fetchone()[0]
    db.close()
    written = len(read_manifest(out))
    assert 1 <= written <= committed < len(CRASH_SCRIPT)

    resumed = subprocess.run(command + ["--resume"], cwd=REPO, env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 1, resumed.stderr  # line 4 is not understood
    assert "Traceback" not in resumed.stderr
    entries = read_manifest(out)
    assert [(e["line"], e["session"], e["turn"]) for e in entries] == [
        (1, "a", 1), (2, "b", 1), (3, "a", 2), (4, "b", 2), (5, "a", 3), (6, "b", 3)]
    assert [e["ok"] for e in entries] == [True, True, True, False, True, True]

    # Exactly what an uninterrupted run makes, image for image.
    import torch

    from pipelines.models import ModelConfig

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        config = ModelConfig.shipped(tiny_models, device="cpu")
        reference = tmp_path / "reference"
        reference.mkdir()
        with Atelier(home=reference, models=config, retriever=None) as atelier:
            expected = ScriptRun(atelier, parse_script(script), reference).run()
    finally:
        torch.set_num_threads(threads)

    def key(e):
        return (e["line"], e["session"], e["turn"], e["ok"], e["seed"], e["plan"])

    assert [key(e) for e in entries] == [key(e) for e in expected]
    # Batched turns match one-at-a-time ones to 1/255, not bit for bit (a batched matrix
    # product adds in another order), and where the kill lands decides which turns the resumed
    # run batches together.
    for resumed_entry, expected_entry in zip(entries, expected):
        if expected_entry["image"] is None:
            assert resumed_entry["image"] is None
            continue
        with Image.open(out / resumed_entry["image"]) as a, \
                Image.open(reference / expected_entry["image"]) as b:
            difference = np.abs(np.asarray(a.convert("RGB"), np.int16)
                                - np.asarray(b.convert("RGB"), np.int16))
        assert difference.max() <= 1, (resumed_entry["line"], int(difference.max()))


def test_script_errors_exit_2_with_one_line(tmp_path):
    script = write(tmp_path / "turns.jsonl", GOOD, '{"session": "s"}')
    result = subprocess.run(
        [sys.executable, "-m", "agent.interfaces.cli", "script", str(script), "--out", str(tmp_path / "o")],
        cwd=REPO, env={**os.environ, "ATELIER_HOME": str(tmp_path / "home"),
                       "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "turns.jsonl:2: missing 'request'" in result.stderr
    assert not (tmp_path / "o").exists()


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(
    st.text(max_size=80),
    st.dictionaries(st.sampled_from(["session", "request", "seed", "image", "other"]),
                    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                              st.text(max_size=20)), max_size=5).map(json.dumps)),
    min_size=1, max_size=5))
def test_any_script_text_parses_or_is_refused_with_a_line(tmp_path, lines):
    script = tmp_path / "fuzz.jsonl"
    script.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    try:
        parsed = parse_script(script)
    except UsageError as error:
        assert str(error).startswith(str(script)) and "\n" not in str(error)
    else:
        assert all(p.request and p.session for p in parsed)


class FaultyRunner(WorldRunner):
    """Draws as WorldRunner does, except that one operation's code has a bug."""

    def __init__(self, broken_op: str):
        super().__init__()
        self.broken_op = broken_op

    def run(self, op, args, inputs, seed):
        if op == self.broken_op:
            return {}["a key the code forgot"]
        return super().run(op, args, inputs, seed)


@pytest.mark.parametrize("debug", [False, True])
def test_a_turn_a_bug_ends_names_its_class_and_debug_prints_its_traceback(
        tmp_path, capsys, monkeypatch, debug):
    if debug:
        monkeypatch.setenv("ATELIER_DEBUG", "1")
    else:
        monkeypatch.delenv("ATELIER_DEBUG", raising=False)
    script = write(tmp_path / "turns.jsonl",
                   '{"session": "a", "request": "a red circle at the top left"}',
                   '{"session": "a", "request": "undo"}',
                   '{"session": "b", "request": "a wibble"}')
    entries = run_script(script, tmp_path / "out", FaultyRunner("layout"))
    bug, undo, refused = entries
    assert not bug["ok"] and bug["error_kind"] == "bug" and bug["error_class"] == "KeyError"
    assert bug["error"].startswith("KeyError: ")
    assert undo["ok"] and undo["error_class"] is None
    assert refused["error_kind"] == "not_understood" and refused["error_class"] is None
    assert read_manifest(tmp_path / "out") == entries
    stderr = capsys.readouterr().err
    if debug:
        assert "line 1 (session 'a') failed on a bug" in stderr
        assert "Traceback (most recent call last)" in stderr
        # It reaches the frame where the bug is.
        assert 'return {}["a key the code forgot"]' in stderr
        assert "KeyError: 'a key the code forgot'" in stderr
    else:
        assert "Traceback" not in stderr
