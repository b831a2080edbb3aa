"""`atelier run` and `atelier chat`: what they print, how they fail, and a chat killed in the
middle of a turn.

Chat commands are exercised in-process on `WorldRunner` (exact results drawn by the world's
renderer); the subprocess tests run the real command on tiny random diffusers models saved in
the shipped models' layout (tests/tiny_diffusion.py)."""
from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from world_runner import WorldRunner

from agent.api import Atelier
from agent.interfaces.commands.chat import Chat

REPO = Path(__file__).resolve().parents[1]



def env(home: Path, models: Path | None = None) -> dict:
    environment = {**os.environ, "ATELIER_HOME": str(home), "PYTHONPATH": str(REPO),
                   "OMP_NUM_THREADS": "1"}
    if models is not None:
        environment["ATELIER_MODELS"] = str(models)
    return environment


def atelier(*args: str, home: Path, models: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.interfaces.cli", *args], cwd=REPO,
                          env=env(home, models), capture_output=True, text=True, timeout=300)


def test_run_prints_rationale_steps_and_the_saved_image(tmp_path, tiny_models):
    result = atelier("run", "a red circle at the top left", "--seed", "3", "--session", "s",
                     home=tmp_path, models=tiny_models)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "You asked for 1 object(s)" in out           # the rationale
    assert "1. layout(objects=" in out                  # the steps
    assert "seed 3" in out and "made img_1 (seed 3)" in out
    path = Path(out.strip().splitlines()[-1].split(": ", 1)[1])
    assert out.strip().splitlines()[-1].startswith("image img_") and path.is_file()
    assert path.is_relative_to(tmp_path / "images")
    with Atelier(home=tmp_path) as again:
        assert [t.seed for t in again.session("s", create=False).history()] == [3]


@pytest.mark.parametrize("args, code, message", [
    (["run", "a flibbertigibbet", "--session", "s"], 1, "not understood"),
    (["run", "make it blue", "--session", "s"], 1, "no image to change yet"),
    (["run", "   "], 2, "the request is empty"),
    (["run", "a red circle", "--seed", "-4"], 2, "outside 0.."),
    (["run", "a red circle", "--image", "missing.png"], 2, "missing.png: no such file"),
    (["run", "a red circle", "--session", "a/b"], 2, "session name 'a/b' is not allowed"),
    (["run", "a red circle", "--llm", "nope"], 2, "is not PROVIDER:MODEL"),
])
def test_run_failures_are_one_line(tmp_path, args, code, message):
    result = atelier(*args, home=tmp_path)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    # One line naming the problem, argparse's errors included.
    assert result.stderr.count("\n") == 1 and message in result.stderr


def chat_lines(session) -> tuple[Chat, list[str]]:
    printed: list[str] = []
    return Chat(session, seed=1, out=printed.append), printed


def test_chat_commands(tmp_path):
    session = Atelier(home=tmp_path, models=WorldRunner()).session("c")
    chat, printed = chat_lines(session)
    assert chat.handle("a red circle to the left of a blue square")
    assert printed[-1].startswith("current image: img_1 ")
    chat.handle("make the square yellow")
    assert printed[-1].startswith("current image: img_2 ")
    chat.handle("undo")
    assert printed[-1].startswith("undone: current image img_1")
    chat.handle("/redo")
    assert printed[-1].startswith("redone: current image img_2")
    chat.handle("/branch img_1")
    assert printed[-1].startswith("branched: current image img_1")
    chat.handle("/branch img_9")
    assert printed[-1].startswith("error: session 'c' has no image img_9")
    chat.handle("/branch")
    assert printed[-1].startswith("usage: /branch ID")
    printed.clear()
    chat.handle("/history")
    assert printed[0].startswith("  1. 'a red circle to the left of a blue square' -> img_1")
    assert any(line.strip().startswith("img_2: inpaint from img_1") for line in printed)
    assert printed[-1] == "current image: img_1"
    chat.handle("/open")
    assert printed[-1].startswith("img_1: ")
    chat.handle("/frobnicate")
    assert "unknown command" in printed[-1]
    chat.handle("a flibbertigibbet")
    assert printed[-1].startswith("not understood: I did not understand 'flibbertigibbet'")
    assert chat.handle("/quit") is False
    # Seeds: 1 for the first turn, one more for each later turn.
    assert [t.seed for t in session.history()] == [1, 2, 3]


class Lines:
    """A process's stdout, read line by line in the background."""

    def __init__(self, stream):
        self.queue: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for line in stream:
            self.queue.put(line)

    def wait_for(self, text: str, timeout: float = 240) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                line = self.queue.get(timeout=0.5)
            except queue.Empty:
                continue
            self.seen.append(line)
            if text in line:
                return
        raise AssertionError(f"no {text!r} in: {''.join(self.seen)[-2000:]}")


def test_sigkill_during_a_chat_turn_keeps_every_completed_turn(tmp_path, tiny_models):
    process = subprocess.Popen(
        [sys.executable, "-m", "agent.interfaces.cli", "chat", "--session", "c", "--seed", "1"], cwd=REPO,
        env=env(tmp_path, tiny_models), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True, bufsize=1)
    lines = Lines(process.stdout)
    try:
        process.stdin.write("a red circle at the top left\n")
        process.stdin.flush()
        lines.wait_for("current image: img_")
        process.stdin.write("a blue square at the bottom right\n")
        process.stdin.flush()
        lines.wait_for("made img_")   # the second turn is under way
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()

    db = sqlite3.connect(tmp_path / "atelier.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    with Atelier(home=tmp_path) as reopened:
        session = reopened.session("c", create=False)
        turns = session.history()
        assert [t.request for t in turns][:1] == ["a red circle at the top left"]
        # The killed turn is either wholly there or wholly absent; the first one always is.
        assert len(turns) in (1, 2)
        for image in session.images():
            assert image.open().size == (64, 64)
        assert session.current.id == turns[-1].image_after
    # And the session carries on.
    result = atelier("run", "undo", "--session", "c", home=tmp_path, models=tiny_models)
    assert result.returncode == 0, result.stderr
