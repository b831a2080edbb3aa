"""What the store keeps: its schema, the records it reads back (images and turns), a turn in
progress, and the errors it raises. agent/sessions/store.py reads and writes them."""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import AtelierError, UsageError

DB_NAME = "atelier.db"
IMAGES_DIR = "images"
SCHEMA_VERSION = 2
SESSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.:@-]{0,63}$")
IMAGE_ID = re.compile(r"^img_([0-9]{1,9})$")

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    position INTEGER NOT NULL DEFAULT 0,      -- index into states: where undo/redo stand
    next_image INTEGER NOT NULL DEFAULT 1     -- the next img_N number to hand out
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    number INTEGER NOT NULL,                  -- 1-based within the session
    request TEXT NOT NULL,
    action TEXT,                              -- run, undo, redo, upload, or NULL: failed
    ok INTEGER NOT NULL,
    error TEXT,
    error_kind TEXT,
    error_class TEXT,                         -- the exception's class, for a turn a bug ended
    note TEXT,
    seed INTEGER,
    image_before INTEGER,
    image_after INTEGER,
    checks_passed INTEGER,
    started REAL NOT NULL,
    seconds REAL NOT NULL,
    source TEXT UNIQUE,                       -- e.g. a script line's key, for exactly-once resume
    source_digest TEXT,
    UNIQUE (session_id, number)
);
CREATE TABLE IF NOT EXISTS plans (
    id INTEGER PRIMARY KEY,
    turn_id INTEGER NOT NULL REFERENCES turns(id),
    round INTEGER NOT NULL,
    planner TEXT NOT NULL,
    plan TEXT NOT NULL,                       -- JSON
    observation TEXT
);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    number INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    path TEXT NOT NULL,                       -- relative to HOME
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    parents TEXT NOT NULL,                    -- JSON list of img ids
    turn_id INTEGER NOT NULL REFERENCES turns(id),
    role TEXT NOT NULL,                       -- upload, attempt
    op TEXT,
    round INTEGER,
    step INTEGER,
    attempt INTEGER,
    seed INTEGER,
    params TEXT NOT NULL,                     -- JSON
    chosen INTEGER NOT NULL DEFAULT 0,        -- kept as its step's result
    checks TEXT,                              -- JSON verdict
    scene TEXT,                               -- JSON scene read from it, where a reader exists
    caption TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    UNIQUE (session_id, number)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    turn_id INTEGER NOT NULL REFERENCES turns(id),
    seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    UNIQUE (turn_id, seq)
);
CREATE TABLE IF NOT EXISTS states (           -- the undo/redo line of each session
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    position INTEGER NOT NULL,
    image INTEGER,                            -- img number, or NULL: the empty canvas
    reason TEXT NOT NULL,                     -- start, turn, branch
    PRIMARY KEY (session_id, position)
);
"""


class StoreError(AtelierError):
    """The store cannot be opened or read; the message says which file and what to do."""


class UnknownImage(UsageError):
    """An image id the session does not have."""


class UnknownSession(UsageError):
    """A session name the store does not have."""


def check_session_name(name: str) -> str:
    if not isinstance(name, str) or not SESSION_NAME.match(name):
        raise UsageError(f"session name {name!r} is not allowed; use 1-64 letters, digits, "
                         "spaces and _ . : @ -, starting with a letter or digit")
    return name


def image_number(image_id: str) -> int:
    match = IMAGE_ID.match(image_id) if isinstance(image_id, str) else None
    if not match:
        raise UnknownImage(f"{image_id!r} is not an image id; ids look like img_3")
    return int(match.group(1))


@dataclass(frozen=True)
class ImageRecord:
    """One image of a session's graph."""

    id: str
    session: str
    sha256: str
    path: Path
    width: int
    height: int
    parent_ids: tuple[str, ...]
    turn: int
    role: str
    op: str | None
    step: int | None
    attempt: int | None
    round: int | None
    seed: int | None
    params: dict
    chosen: bool
    checks: dict | None
    scene: dict | None
    caption: str

    @property
    def number(self) -> int:
        return image_number(self.id)

    def open(self):
        """The image as RGB, after checking the file is the one the store wrote."""
        from PIL import Image

        data = read_file(self.path, self.sha256)
        import io
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")


@dataclass(frozen=True)
class TurnRecord:
    number: int
    session: str
    request: str
    action: str | None
    ok: bool
    error: str | None
    error_kind: str | None
    note: str | None
    seed: int | None
    image_before: str | None
    image_after: str | None
    checks_passed: bool | None
    started: float
    seconds: float
    source: str | None
    source_digest: str | None
    plans: tuple[dict, ...] = ()
    image_ids: tuple[str, ...] = ()
    error_class: str | None = None     # set when a bug, not the input, ended the turn

    @property
    def plan(self) -> dict | None:
        """The plan that ran last (the re-plan, when there was one)."""
        return self.plans[-1]["plan"] if self.plans else None


@dataclass
class PendingTurn:
    """What one turn will record, held in memory until the turn completes."""

    session_id: int
    session: str
    request: str
    started: float
    image_before: int | None
    seed: int | None = None
    source: str | None = None
    source_digest: str | None = None
    images: list[dict[str, Any]] = field(default_factory=list)
    plans: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def image_row(self, number: int) -> dict[str, Any]:
        for row in self.images:
            if row["number"] == number:
                return row
        raise KeyError(number)


def read_file(path: Path, sha256: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise StoreError(f"{path}: cannot read a stored image ({error.strerror}); the store's "
                         "images folder is damaged or was moved") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise StoreError(f"{path}: the file does not match its recorded sha256; it was changed "
                         "after it was saved")
    return data


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return  # not every platform can open a folder; the rename is still atomic there
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
