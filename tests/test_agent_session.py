"""Sessions: the store's round trips, the image graph, undo / redo / branch, abandoned turns,
and what every saved image says about itself.

Turns run on `WorldRunner` (tests/world_runner.py): each operation's exact result drawn by the
world's renderer, so these tests are about the session, not about a model."""
from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest
from world_runner import WorldRunner

from agent.api import Atelier
from agent.errors import UsageError
from agent.sessions.pnginfo import read_chunks
from agent.sessions.store import StoreError, UnknownImage, UnknownSession
from world.render import render
from world.scene import Obj, Scene

TWO = "a red circle to the left of a blue square"


@pytest.fixture
def atelier(tmp_path):
    with Atelier(home=tmp_path / "home", models=WorldRunner()) as atelier:
        yield atelier


def test_a_turn_is_stored_and_read_back_by_another_process(tmp_path, atelier):
    result = atelier.session("s").ask(TWO, seed=5)
    assert result.ok and result.checks_passed is True and result.turn == 1
    assert result.image.id == "img_1" and result.image.path.is_file()
    # Content-addressed: the file is named by the sha256 of its bytes.
    assert result.image.path.stem == hashlib.sha256(result.image.path.read_bytes()).hexdigest()

    with Atelier(home=tmp_path / "home", models=WorldRunner()) as again:
        session = again.session("s", create=False)
        (turn,) = session.history()
        assert (turn.request, turn.ok, turn.seed, turn.image_after) == (TWO, True, 5, "img_1")
        assert turn.plan == result.plan.model_dump(mode="json")
        assert session.current.id == "img_1"
        assert [e["type"] for e in session.events(1)] == [
            "plan_made", "step_started", "image_made", "check_result", "turn_done"]
        assert session.current.open().size == (128, 128)


def test_undo_redo_and_branch_move_along_the_image_graph(atelier):
    session = atelier.session("s")
    first = session.ask(TWO, seed=1).image
    second = session.ask("make the circle green", seed=1).image
    assert second.parent_ids == (first.id,)
    assert session.undo().id == first.id
    assert session.redo().id == second.id
    with pytest.raises(UsageError, match="nothing to redo"):
        session.redo()
    session.undo()
    third = session.ask("remove the square", seed=1).image
    assert third.parent_ids == (first.id,)
    with pytest.raises(UsageError, match="nothing to redo"):
        session.redo()  # a new turn after undo replaces what could be redone
    assert session.branch(second.id).id == second.id
    assert session.current.id == second.id
    assert session.undo().id == third.id
    assert session.undo().id == first.id
    assert session.undo() is None  # the empty canvas
    with pytest.raises(UsageError, match="nothing to undo"):
        session.undo()


def test_undo_and_redo_requests_are_turns(atelier):
    session = atelier.session("s")
    session.ask(TWO, seed=1)
    session.ask("make the circle green", seed=1)
    undone = session.ask("undo")
    assert (undone.action, undone.image.id) == ("undo", "img_1")
    redone = session.ask("redo")
    assert (redone.action, redone.image.id) == ("redo", "img_2")
    nothing = session.ask("redo")
    assert nothing.ok and nothing.note == "nothing to redo" and nothing.image.id == "img_2"
    assert [t.action for t in session.history()] == ["run", "run", "undo", "redo", "redo"]
    assert [t.image_after for t in session.history()] == ["img_1", "img_2", "img_1", "img_2",
                                                          "img_2"]


def test_image_ids_are_per_session_and_unknown_ids_are_refused(atelier):
    a, b = atelier.session("a"), atelier.session("b")
    assert a.ask(TWO, seed=1).image.id == b.ask(TWO, seed=2).image.id == "img_1"
    with pytest.raises(UnknownImage, match="img_7"):
        a.branch("img_7")
    with pytest.raises(UnknownImage, match="not an image id"):
        a.branch("../../etc/passwd")
    with pytest.raises(UnknownSession, match="no session named 'c'"):
        atelier.session("c", create=False)
    with pytest.raises(UsageError, match="session name"):
        atelier.session("a/../b")


def test_an_uploaded_image_is_the_parent_of_the_edit(tmp_path, atelier):
    path = tmp_path / "input.png"
    render(Scene((Obj("circle", "red", "large", 0.3, 0.5),
                  Obj("square", "blue", "large", 0.7, 0.5)))).save(path)
    result = atelier.session("s").ask("make the circle green", image=path, seed=1)
    upload = atelier.session("s").image("img_1")
    assert upload.role == "upload" and upload.caption.startswith("a large red circle")
    assert result.image.id == "img_2" and result.image.parent_ids == ("img_1",)
    assert result.checks_passed is True


def test_an_abandoned_turn_leaves_the_session_as_it_was(atelier):
    session = atelier.session("s")
    session.ask(TWO, seed=1)
    run = session.stream("make the circle green", seed=1)
    events = iter(run)
    # Read up to the image, then walk away: as if the process were killed there.
    while next(events).type != "image_made":
        pass
    events.close()
    assert run.result is None
    assert [t.number for t in session.history()] == [1]
    assert session.current.id == "img_1"
    assert [i.id for i in session.images()] == ["img_1"]
    # The next turn is number 2; the reserved id img_2 is never reused.
    result = session.ask("make the circle green", seed=1)
    assert (result.turn, result.image.id) == (2, "img_3")


def test_every_attempt_is_recorded_with_its_check(tmp_path):
    from world.planning.rules import RulePlanner

    # Asked for red, the runner draws purple: no attempt can pass.
    with Atelier(home=tmp_path, models=WorldRunner(palette={"red": "purple"})) as atelier:
        result = atelier.session("s").ask("a red circle", seed=3)
    assert result.ok and result.checks_passed is False
    assert len(result.images) == 4
    assert [i.chosen for i in result.images].count(True) == 1
    assert all(i.checks["passed"] is False for i in result.images)
    assert "expected a red circle" in result.note
    assert isinstance(atelier.planner(), RulePlanner)


def test_png_metadata_names_request_step_seed_and_models(atelier):
    result = atelier.session("s").ask(TWO, seed=11)
    chunks = read_chunks(result.image.path)
    assert chunks["atelier:request"] == TWO
    assert chunks["atelier:seed"] == "11"
    assert json.loads(chunks["atelier:models"]) == {"base": "world-renderer"}
    step = json.loads(chunks["atelier:step"])
    assert (step["op"], step["index"], step["attempt"]) == ("layout", 1, 1)
    assert step["args"]["seed"] == 11
    assert chunks["atelier:image_id"] == "img_1" and chunks["atelier:session"] == "s"
    prompt, settings = chunks["parameters"].split("\n")
    assert prompt == "a large red circle; a large blue square"
    pairs = dict(p.split(": ", 1) for p in settings.split(", "))
    assert pairs["Seed"] == "11" and pairs["Steps"] == "20" and pairs["Size"] == "128x128"
    assert pairs["Model"] == "world-renderer" and pairs["Operation"] == "layout"


def test_bad_requests_and_seeds_are_refused_before_anything_runs(atelier):
    session = atelier.session("s")
    for request, problem in (("", "empty"), ("   ", "empty"), ("x" * 5000, "characters long"),
                             ("a\x00b", "NUL"), (b"a red circle", "must be text"),
                             ("a red \udce9 circle", "not valid UTF-8")):
        with pytest.raises(UsageError, match=problem):
            session.ask(request)
    for seed in (-1, 2**32, 1.5, True):
        with pytest.raises(UsageError, match="seed"):
            session.ask("a red circle", seed=seed)
    assert session.history() == [] and session.images() == []


def test_a_changed_image_file_is_detected(atelier):
    result = atelier.session("s").ask(TWO, seed=1)
    result.image.path.write_bytes(result.image.path.read_bytes() + b"x")
    with pytest.raises(StoreError, match="does not match its recorded sha256"):
        atelier.session("s").current.open()


def test_the_database_is_in_wal_mode_and_consistent(atelier):
    atelier.session("s").ask(TWO, seed=1)
    db = sqlite3.connect(atelier.store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_a_file_that_is_not_a_store_gets_a_clear_error(tmp_path):
    (tmp_path / "atelier.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a readable Atelier store"):
        Atelier(home=tmp_path)


def test_a_drawn_mask_is_kept_and_only_its_region_is_repainted(atelier):
    from PIL import Image

    session = atelier.session("s")
    before = session.ask("a red circle at the left", seed=1).image
    mask = Image.new("L", (before.width, before.height), 0)
    mask.paste(255, (64, 0, 128, 128))                     # the right half
    result = session.ask("a blue square at the right", mask=mask, seed=2)
    assert result.ok, result.error
    drawn = session.image("img_2")
    assert drawn.role == "mask" and drawn.parent_ids == (before.id,)
    (step,) = result.plan.steps
    assert (step.op, step.args.target, step.args.prompt) == ("inpaint", "img_2",
                                                             "a blue square at the right")
    assert result.image.parent_ids == (before.id, "img_2")
    old, new = before.open(), result.image.open()
    assert old.crop((0, 0, 64, 128)).tobytes() == new.crop((0, 0, 64, 128)).tobytes()
    assert old.crop((64, 0, 128, 128)).tobytes() != new.crop((64, 0, 128, 128)).tobytes()


def test_a_mask_needs_an_image_of_its_size_and_some_white(atelier):
    from PIL import Image

    session = atelier.session("s")
    with pytest.raises(UsageError, match="no image yet"):
        session.ask("a red circle", mask=Image.new("L", (128, 128), 255))
    session.ask(TWO, seed=1)
    with pytest.raises(UsageError, match="the mask is 64x64 but the image is 128x128"):
        session.ask("a red circle", mask=Image.new("L", (64, 64), 255))
    with pytest.raises(UsageError, match="the mask is empty"):
        session.ask("a red circle", mask=Image.new("L", (128, 128), 0))
    assert len(session.history()) == 1


def test_a_store_of_the_first_schema_opens_and_keeps_its_turns(tmp_path):
    """Schema 1 had no turns.error_class; opening such a store adds it and keeps every turn."""
    from agent.sessions.store import SCHEMA, Store

    home = tmp_path / "old"
    (home / "images").mkdir(parents=True)
    db = sqlite3.connect(home / "atelier.db")
    first_schema = "\n".join(line for line in SCHEMA.splitlines() if "error_class" not in line)
    db.executescript(first_schema + "PRAGMA user_version = 1;")
    db.execute("INSERT INTO sessions (name, created) VALUES ('s', 0)")
    db.execute("INSERT INTO turns (session_id, number, request, ok, error, error_kind, started,"
               " seconds) VALUES (1, 1, 'a wibble', 0, 'not understood', 'not_understood', 0, 0)")
    db.commit()
    db.close()

    with Atelier(home=home, models=WorldRunner()) as atelier:
        session = atelier.session("s", create=False)
        failed = session.record_failure("x", "TypeError: boom", kind="bug", error_class="TypeError")
        old, new = session.history()
        assert (old.request, old.error_kind, old.error_class) == ("a wibble", "not_understood",
                                                                   None)
        assert (new.error_kind, new.error_class) == ("bug", "TypeError") and failed.turn == 2
    version = sqlite3.connect(home / "atelier.db").execute("PRAGMA user_version").fetchone()[0]
    assert version == 2
    Store(home).close()  # opening it again migrates nothing
