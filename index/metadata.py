"""Item metadata in SQLite: one row per indexed image, keyed by the same int64 id as FAISS.

The working copy lives in memory and a save copies it whole into the new generation's file
with SQLite's backup API, so a generation's metadata is one closed file that is never
written again.
"""
from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .errors import IndexInputError

SCHEMA = """
CREATE TABLE items (
    id      INTEGER PRIMARY KEY,
    path    TEXT    NOT NULL,
    caption TEXT    NOT NULL DEFAULT '',
    sha256  TEXT    NOT NULL UNIQUE,
    width   INTEGER NOT NULL,
    height  INTEGER NOT NULL,
    added   TEXT    NOT NULL
);
CREATE TABLE tags (
    id  INTEGER NOT NULL,
    tag TEXT    NOT NULL,
    PRIMARY KEY (id, tag)
);
CREATE INDEX tags_by_tag ON tags (tag, id);
"""
TAG_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.:-]{0,63}")
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")


def normalise_tags(tags) -> tuple[str, ...]:
    """Lower-case tags, split on commas, each checked against TAG_PATTERN; sorted and unique."""
    result = set()
    for tag in tags or ():
        for part in str(tag).split(","):
            part = part.strip().lower()
            if not part:
                continue
            if not TAG_PATTERN.fullmatch(part):
                raise IndexInputError(
                    f"tag {part!r} is not allowed; tags are up to 64 letters, digits and "
                    "'_.:-', starting with a letter or digit")
            result.add(part)
    return tuple(sorted(result))


@dataclass(frozen=True)
class Item:
    """What is known about an image before it gets an id."""

    sha256: str
    path: str = ""
    caption: str = ""
    width: int = 0
    height: int = 0
    tags: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self):
        if not SHA256_PATTERN.fullmatch(self.sha256):
            raise IndexInputError(f"sha256 {self.sha256!r} is not 64 lower-case hex digits")
        object.__setattr__(self, "tags", normalise_tags(self.tags))


@dataclass(frozen=True)
class Record:
    """An indexed image's metadata row."""

    id: int
    path: str
    caption: str
    sha256: str
    width: int
    height: int
    added: str
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"id": self.id, "path": self.path, "caption": self.caption,
                "sha256": self.sha256, "width": self.width, "height": self.height,
                "added": self.added, "tags": list(self.tags)}


class Metadata:
    """The items and tags tables of one index, held in an in-memory SQLite database."""

    def __init__(self, connection: sqlite3.Connection):
        self.db = connection

    @classmethod
    def empty(cls) -> "Metadata":
        db = sqlite3.connect(":memory:")
        db.executescript(SCHEMA)
        return cls(db)

    @classmethod
    def load(cls, path: Path) -> "Metadata":
        # Read-only URI: loading must never create or change a generation's file.
        source = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            db = sqlite3.connect(":memory:")
            source.backup(db)
        finally:
            source.close()
        return cls(db)

    def save(self, path: Path) -> None:
        target = sqlite3.connect(str(path))
        try:
            self.db.backup(target)
        finally:
            target.close()

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM items").fetchone()[0]

    def insert(self, ids, items: list[Item]) -> None:
        added = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self.db:
            self.db.executemany(
                "INSERT INTO items (id, path, caption, sha256, width, height, added) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(int(i), it.path, it.caption, it.sha256, int(it.width), int(it.height), added)
                 for i, it in zip(ids, items)])
            self.db.executemany("INSERT INTO tags (id, tag) VALUES (?, ?)",
                                [(int(i), t) for i, it in zip(ids, items) for t in it.tags])

    def delete(self, ids) -> None:
        rows = [(int(i),) for i in ids]
        with self.db:
            self.db.executemany("DELETE FROM items WHERE id = ?", rows)
            self.db.executemany("DELETE FROM tags WHERE id = ?", rows)

    def ids(self) -> np.ndarray:
        rows = self.db.execute("SELECT id FROM items ORDER BY id").fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def missing(self, ids) -> list[int]:
        """The ids among `ids` that have no row."""
        wanted = sorted({int(i) for i in ids})
        found = set()
        for chunk in _chunks(wanted):
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self.db.execute(
                f"SELECT id FROM items WHERE id IN ({marks})", chunk))
        return [i for i in wanted if i not in found]

    def ids_by_sha256(self, hashes) -> dict[str, int]:
        result: dict[str, int] = {}
        for chunk in _chunks(sorted(set(hashes))):
            marks = ",".join("?" * len(chunk))
            result.update(self.db.execute(
                f"SELECT sha256, id FROM items WHERE sha256 IN ({marks})", chunk).fetchall())
        return result

    def records(self, ids) -> dict[int, Record]:
        wanted = sorted({int(i) for i in ids})
        tags: dict[int, list[str]] = {}
        rows = []
        for chunk in _chunks(wanted):
            marks = ",".join("?" * len(chunk))
            rows += self.db.execute(
                "SELECT id, path, caption, sha256, width, height, added FROM items "
                f"WHERE id IN ({marks})", chunk).fetchall()
            for i, tag in self.db.execute(
                    f"SELECT id, tag FROM tags WHERE id IN ({marks}) ORDER BY tag", chunk):
                tags.setdefault(i, []).append(tag)
        return {r[0]: Record(*r, tags=tuple(tags.get(r[0], ()))) for r in rows}

    def ids_with_tags(self, tags) -> np.ndarray:
        """Ids of the items that carry every one of `tags`."""
        tags = normalise_tags(tags)
        marks = ",".join("?" * len(tags))
        rows = self.db.execute(
            f"SELECT id FROM tags WHERE tag IN ({marks}) GROUP BY id "
            "HAVING COUNT(DISTINCT tag) = ? ORDER BY id", (*tags, len(tags))).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def tag_counts(self) -> dict[str, int]:
        return dict(self.db.execute(
            "SELECT tag, COUNT(*) FROM tags GROUP BY tag ORDER BY COUNT(*) DESC, tag"))

    def max_id(self) -> int:
        value = self.db.execute("SELECT MAX(id) FROM items").fetchone()[0]
        return -1 if value is None else int(value)


def _chunks(values: list, size: int = 500):
    # SQLite caps the number of bound parameters per statement.
    for start in range(0, len(values), size):
        yield values[start:start + size]
