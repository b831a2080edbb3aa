"""Sessions on disk: one SQLite database plus content-addressed image files.

    HOME/atelier.db                 sessions, turns, plans, images, events, states
    HOME/images/ab/abcdef....png    each image file named by the sha256 of its bytes

Crash safety comes from two rules. An image file is written whole under a temporary name and
renamed into place before any row names it, so a row never points at half a file (a file no
row names, left by a killed turn, is harmless). And everything a turn records (its images,
plans, events, the new current image) goes into the database in one transaction at the end
of the turn: a process killed in the middle of a turn leaves the database exactly as it was
after the last completed turn. The database runs in WAL mode, so readers (a second chat, the
web page) never block on a turn being written and never see half of one.

Image ids are per session (img_1, img_2, ...). A number is reserved the moment an image is
made, so two processes working on one session never hand out the same id; a reservation
whose turn never completes leaves a gap, never a duplicate.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from agent.sessions.records import (DB_NAME, IMAGES_DIR, SCHEMA, SCHEMA_VERSION,
                                    ImageRecord, PendingTurn, StoreError,
                                    TurnRecord, UnknownImage, UnknownSession, _fsync_dir,
                                    check_session_name, image_number, read_file)


class Store:
    """The sessions kept under one home folder. Safe to share between threads; several
    processes may open the same home at once."""

    def __init__(self, home: str | Path):
        self.home = Path(home).expanduser()
        try:
            (self.home / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"{self.home}: cannot create the store folder ({error.strerror}); "
                             "set ATELIER_HOME to a writable folder") from None
        self.path = self.home / DB_NAME
        self._lock = threading.RLock()
        try:
            # Autocommit mode: every transaction below is opened and closed explicitly.
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                                       check_same_thread=False)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed turn survives power loss too, not only a killed process.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as error:
            raise StoreError(f"{self.path}: not a readable Atelier store ({error}); move it "
                             "aside or set ATELIER_HOME to another folder") from None

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path} was written by a newer Atelier (schema {version}); "
                             "upgrade Atelier to open it")
        if version < SCHEMA_VERSION:
            # Statement by statement: executescript would commit the open transaction.
            with self.transaction() as db:
                if version == 1:  # schema 1 stores lack turns.error_class
                    db.execute("ALTER TABLE turns ADD COLUMN error_class TEXT")
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE takes the write lock up front, so two writers
        queue instead of failing half-way."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # --- sessions -------------------------------------------------------------------------

    def session_id(self, name: str, create: bool = False) -> int:
        check_session_name(name)
        rows = self._query("SELECT id FROM sessions WHERE name = ?", (name,))
        if rows:
            return rows[0]["id"]
        if not create:
            known = ", ".join(self.session_names()[:10]) or "none yet"
            raise UnknownSession(f"no session named {name!r} (sessions: {known}); check the "
                                 "name, or start it by asking something in it")
        with self.transaction() as db:
            row = db.execute("SELECT id FROM sessions WHERE name = ?", (name,)).fetchone()
            if row:
                return row["id"]
            cursor = db.execute("INSERT INTO sessions (name, created) VALUES (?, ?)",
                                (name, time.time()))
            db.execute("INSERT INTO states (session_id, position, image, reason) "
                       "VALUES (?, 0, NULL, 'start')", (cursor.lastrowid,))
            return cursor.lastrowid

    def session_names(self) -> list[str]:
        return [r["name"] for r in self._query("SELECT name FROM sessions ORDER BY id")]

    # --- image files ----------------------------------------------------------------------

    def write_image_file(self, data: bytes) -> tuple[str, str]:
        """Store PNG bytes under their sha256; returns (sha256, path relative to home)."""
        sha = hashlib.sha256(data).hexdigest()
        relative = f"{IMAGES_DIR}/{sha[:2]}/{sha}.png"
        target = self.home / relative
        if target.is_file() and target.stat().st_size == len(data):
            return sha, relative  # same content, same name: already stored
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{sha}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        _fsync_dir(target.parent)
        return sha, relative

    def reserve_image_number(self, session_id: int) -> int:
        with self.transaction() as db:
            row = db.execute("UPDATE sessions SET next_image = next_image + 1 WHERE id = ? "
                             "RETURNING next_image - 1 AS number", (session_id,)).fetchone()
        return row["number"]

    # --- reading --------------------------------------------------------------------------

    def _image(self, row: sqlite3.Row, session: str, turn_numbers: dict[int, int]) -> ImageRecord:
        path = (self.home / row["path"]).resolve()
        # Rows are written only by this module, but a store folder can be copied around:
        # never let one point outside its own images folder.
        if not path.is_relative_to((self.home / IMAGES_DIR).resolve()):
            raise StoreError(f"image img_{row['number']} of {session!r} names a file outside "
                             "the store; the database was tampered with")
        return ImageRecord(
            id=f"img_{row['number']}", session=session, sha256=row["sha256"], path=path,
            width=row["width"], height=row["height"], parent_ids=tuple(json.loads(row["parents"])),
            turn=turn_numbers.get(row["turn_id"], 0), role=row["role"], op=row["op"],
            step=row["step"], attempt=row["attempt"], round=row["round"], seed=row["seed"],
            params=json.loads(row["params"]), chosen=bool(row["chosen"]),
            checks=json.loads(row["checks"]) if row["checks"] else None,
            scene=json.loads(row["scene"]) if row["scene"] else None, caption=row["caption"])

    def _session_name(self, session_id: int) -> str:
        return self._query("SELECT name FROM sessions WHERE id = ?", (session_id,))[0]["name"]

    def _turn_numbers(self, session_id: int) -> dict[int, int]:
        return {r["id"]: r["number"] for r in
                self._query("SELECT id, number FROM turns WHERE session_id = ?", (session_id,))}

    def images(self, session_id: int) -> list[ImageRecord]:
        name, numbers = self._session_name(session_id), self._turn_numbers(session_id)
        rows = self._query("SELECT * FROM images WHERE session_id = ? ORDER BY number",
                           (session_id,))
        return [self._image(r, name, numbers) for r in rows]

    def image(self, session_id: int, image_id: str) -> ImageRecord:
        number = image_number(image_id)
        rows = self._query("SELECT * FROM images WHERE session_id = ? AND number = ?",
                           (session_id, number))
        if not rows:
            name = self._session_name(session_id)
            raise UnknownImage(f"session {name!r} has no image {image_id}; see its images with "
                               "/history (chat) or Session.history()")
        return self._image(rows[0], self._session_name(session_id), self._turn_numbers(session_id))

    def position(self, session_id: int) -> tuple[int, int]:
        """(where the session stands on its undo/redo line, the line's last position)."""
        rows = self._query(
            "SELECT s.position AS here, (SELECT MAX(position) FROM states WHERE session_id = s.id)"
            " AS last FROM sessions s WHERE s.id = ?", (session_id,))
        return rows[0]["here"], rows[0]["last"]

    def current_number(self, session_id: int, position: int | None = None) -> int | None:
        if position is None:
            position = self.position(session_id)[0]
        rows = self._query("SELECT image FROM states WHERE session_id = ? AND position = ?",
                           (session_id, position))
        return rows[0]["image"] if rows else None

    def current(self, session_id: int) -> ImageRecord | None:
        number = self.current_number(session_id)
        return None if number is None else self.image(session_id, f"img_{number}")

    def turns(self, session_id: int) -> list[TurnRecord]:
        name = self._session_name(session_id)
        turns = self._query("SELECT * FROM turns WHERE session_id = ? ORDER BY number",
                            (session_id,))
        plans: dict[int, list[dict]] = {}
        for row in self._query("SELECT p.* FROM plans p JOIN turns t ON p.turn_id = t.id "
                               "WHERE t.session_id = ? ORDER BY p.id", (session_id,)):
            plans.setdefault(row["turn_id"], []).append(
                {"round": row["round"], "planner": row["planner"],
                 "plan": json.loads(row["plan"]), "observation": row["observation"]})
        made: dict[int, list[str]] = {}
        for row in self._query("SELECT turn_id, number FROM images WHERE session_id = ? "
                               "ORDER BY number", (session_id,)):
            made.setdefault(row["turn_id"], []).append(f"img_{row['number']}")
        return [self._turn(r, name, plans.get(r["id"], []), made.get(r["id"], [])) for r in turns]

    @staticmethod
    def _turn(row: sqlite3.Row, session: str, plans: list[dict], images: list[str]) -> TurnRecord:
        def image(number):
            return None if number is None else f"img_{number}"

        return TurnRecord(
            number=row["number"], session=session, request=row["request"], action=row["action"],
            ok=bool(row["ok"]), error=row["error"], error_kind=row["error_kind"],
            note=row["note"], seed=row["seed"], image_before=image(row["image_before"]),
            image_after=image(row["image_after"]),
            checks_passed=None if row["checks_passed"] is None else bool(row["checks_passed"]),
            started=row["started"], seconds=row["seconds"], source=row["source"],
            source_digest=row["source_digest"], plans=tuple(plans), image_ids=tuple(images),
            error_class=row["error_class"])

    def turn_events(self, session_id: int, number: int) -> list[dict]:
        rows = self._query("SELECT e.data FROM events e JOIN turns t ON e.turn_id = t.id "
                           "WHERE t.session_id = ? AND t.number = ? ORDER BY e.seq",
                           (session_id, number))
        return [json.loads(r["data"]) for r in rows]

    def turns_with_source(self, prefix: str) -> dict[str, TurnRecord]:
        """Turns recorded under a source key starting with `prefix`, by key."""
        rows = self._query("SELECT t.*, s.name AS session_name FROM turns t JOIN sessions s "
                           "ON t.session_id = s.id WHERE t.source LIKE ? ESCAPE '\\'",
                           (prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                            + "%",))
        return {r["source"]: self._turn(r, r["session_name"], [], []) for r in rows}

    # --- writing --------------------------------------------------------------------------

    def commit_turn(self, pending: PendingTurn, *, ok: bool, action: str | None,
                    image_after: int | None, move: str | None, error: str | None = None,
                    error_kind: str | None = None, note: str | None = None,
                    checks_passed: bool | None = None, error_class: str | None = None) -> int:
        """Record a finished turn in one transaction; returns its number. `image_after` is the
        session's current image once the turn is done; `move` is how the undo/redo line
        changes: "push" (`image_after` becomes current), "undo", "redo" or None."""
        with self.transaction() as db:
            number = db.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM turns "
                                "WHERE session_id = ?", (pending.session_id,)).fetchone()[0]
            turn_id = db.execute(
                "INSERT INTO turns (session_id, number, request, action, ok, error, error_kind,"
                " error_class, note, seed, image_before, image_after, checks_passed, started,"
                " seconds, source, source_digest) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (pending.session_id, number, pending.request, action, int(ok), error, error_kind,
                 error_class, note, pending.seed, pending.image_before, image_after,
                 None if checks_passed is None else int(checks_passed), pending.started,
                 round(time.time() - pending.started, 4), pending.source,
                 pending.source_digest)).lastrowid
            for row in pending.images:
                db.execute(
                    "INSERT INTO images (session_id, number, sha256, path, width, height, parents,"
                    " turn_id, role, op, round, step, attempt, seed, params, chosen, checks, scene,"
                    " caption, created) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (pending.session_id, row["number"], row["sha256"], row["path"], row["width"],
                     row["height"], json.dumps(row["parents"]), turn_id, row["role"], row["op"],
                     row.get("round"), row.get("step"), row.get("attempt"), row.get("seed"),
                     json.dumps(row.get("params", {}), default=str), int(row.get("chosen", False)),
                     json.dumps(row["checks"]) if row.get("checks") is not None else None,
                     json.dumps(row["scene"]) if row.get("scene") is not None else None,
                     row.get("caption", ""), row["created"]))
            for plan in pending.plans:
                db.execute("INSERT INTO plans (turn_id, round, planner, plan, observation) "
                           "VALUES (?,?,?,?,?)",
                           (turn_id, plan["round"], plan["planner"], json.dumps(plan["plan"]),
                            plan.get("observation")))
            for seq, event in enumerate(pending.events):
                db.execute("INSERT INTO events (turn_id, seq, type, data) VALUES (?,?,?,?)",
                           (turn_id, seq, event["type"], json.dumps(event, default=str)))
            if move == "push":
                self._push(db, pending.session_id, image_after, "turn")
            elif move in ("undo", "redo"):
                self._step(db, pending.session_id, -1 if move == "undo" else 1)
        return number

    def _push(self, db: sqlite3.Connection, session_id: int, image: int | None, reason: str):
        """Make `image` current: it replaces whatever could still be redone, like an editor."""
        here = db.execute("SELECT position FROM sessions WHERE id = ?", (session_id,)).fetchone()[0]
        db.execute("DELETE FROM states WHERE session_id = ? AND position > ?", (session_id, here))
        db.execute("INSERT INTO states (session_id, position, image, reason) VALUES (?,?,?,?)",
                   (session_id, here + 1, image, reason))
        db.execute("UPDATE sessions SET position = ? WHERE id = ?", (here + 1, session_id))

    def _step(self, db: sqlite3.Connection, session_id: int, delta: int) -> bool:
        here = db.execute("SELECT position FROM sessions WHERE id = ?", (session_id,)).fetchone()[0]
        last = db.execute("SELECT MAX(position) FROM states WHERE session_id = ?",
                          (session_id,)).fetchone()[0]
        target = here + delta
        if not 0 <= target <= last:
            return False
        db.execute("UPDATE sessions SET position = ? WHERE id = ?", (target, session_id))
        return True

    def step(self, session_id: int, delta: int) -> bool:
        """Undo (-1) or redo (+1); False when there is nothing to move to."""
        with self.transaction() as db:
            return self._step(db, session_id, delta)

    def branch(self, session_id: int, number: int) -> None:
        """Make an earlier image current; later turns build on it."""
        with self.transaction() as db:
            self._push(db, session_id, number, "branch")

    # --- copying turns between stores -----------------------------------------------------

    def export_turns(self, name: str, after: int = 0) -> dict | None:
        """The turns of session `name` numbered above `after`: their rows, images (rows and
        PNG bytes), plans and events, with the session's undo line and image counter. What
        `import_turns` needs to bring another store's copy of the session level with this
        one (agent/engines/ray_script.py: a worker runs turns in a store of its own and the driver
        commits them into the run's store). None when the store has no such session."""
        with self._lock:
            # One read transaction, so the rows come from one moment even if a writer is busy.
            self._db.execute("BEGIN")
            try:
                return self._export(name, after)
            finally:
                self._db.execute("COMMIT")

    def _export(self, name: str, after: int) -> dict | None:
        session = self._db.execute("SELECT * FROM sessions WHERE name = ?", (name,)).fetchone()
        if session is None:
            return None

        def rows(sql: str, *args) -> list[dict]:
            return [dict(r) for r in self._db.execute(sql, args).fetchall()]

        turns = rows("SELECT * FROM turns WHERE session_id = ? AND number > ? ORDER BY number",
                     session["id"], after)
        of_turns = ("SELECT x.* FROM {} x JOIN turns t ON x.turn_id = t.id WHERE "
                    "t.session_id = ? AND t.number > ? ORDER BY x.id")
        images = rows(of_turns.format("images"), session["id"], after)
        return {
            "session": name, "after": after, "created": session["created"],
            "position": session["position"],
            "next_image": session["next_image"], "turns": turns, "images": images,
            "plans": rows(of_turns.format("plans"), session["id"], after),
            "events": rows(of_turns.format("events"), session["id"], after),
            "states": rows("SELECT position, image, reason FROM states WHERE session_id = ? "
                           "ORDER BY position", session["id"]),
            "files": {image["sha256"]: read_file(self.home / image["path"], image["sha256"])
                      for image in images},
        }

    def import_turns(self, export: dict) -> None:
        """Add the turns of an `export_turns` result, in one transaction, and take over its
        undo line and image counter. Image files are written first, as a turn's are. Refused
        unless this store's copy of the session ends where the export starts (turn `after`):
        the copies would diverge."""
        for sha, data in export["files"].items():
            written, _ = self.write_image_file(data)
            if written != sha:
                raise StoreError(f"an image of session {export['session']!r} arrived damaged "
                                 "(its bytes do not match its sha256)")
        try:
            with self.transaction() as db:
                self._import(db, export)
        except sqlite3.IntegrityError as error:
            raise StoreError(f"session {export['session']!r} already has some of the turns "
                             f"being copied into {self.path} ({error}); the two copies of the "
                             "session have diverged") from None

    @staticmethod
    def _import(db: sqlite3.Connection, export: dict) -> None:
        def insert(table: str, row: dict) -> int:
            # Column names come from this module's own SELECT * of the same schema.
            columns = [c for c in row if c != "id"]
            return db.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                              f"({', '.join('?' * len(columns))})",
                              [row[c] for c in columns]).lastrowid

        found = db.execute("SELECT id FROM sessions WHERE name = ?",
                           (export["session"],)).fetchone()
        if found is None:
            session_id = insert("sessions", {"name": export["session"],
                                             "created": export["created"]})
        else:
            session_id = found["id"]
        last = db.execute("SELECT COALESCE(MAX(number), 0) FROM turns WHERE session_id = ?",
                          (session_id,)).fetchone()[0]
        if last != export["after"]:
            raise StoreError(f"session {export['session']!r} has {last} turn(s) here, but the "
                             f"turns being copied follow turn {export['after']}; the two copies "
                             "of the session have diverged")
        turn_ids = {}
        for turn in export["turns"]:
            turn_ids[turn["id"]] = insert("turns", {**turn, "session_id": session_id})
        for image in export["images"]:
            insert("images", {**image, "session_id": session_id,
                              "turn_id": turn_ids[image["turn_id"]]})
        for table in ("plans", "events"):
            for row in export[table]:
                insert(table, {**row, "turn_id": turn_ids[row["turn_id"]]})
        db.execute("DELETE FROM states WHERE session_id = ?", (session_id,))
        for state in export["states"]:
            insert("states", {**state, "session_id": session_id})
        db.execute("UPDATE sessions SET position = ?, next_image = MAX(next_image, ?) "
                   "WHERE id = ?", (export["position"], export["next_image"], session_id))
