"""The index store: a FAISS index, its SQLite metadata and a sidecar, saved in generations.

On disk an index is a folder:

    CURRENT             name of the live generation, e.g. "gen-000007"
    gen-000006/         the previous generation, kept for readers still opening it
    gen-000007/         index.faiss, metadata.sqlite, sidecar.json
    .lock               held by a writer while it saves

A save writes a whole new generation into `gen-N.tmp`, flushes it to disk, renames it to
`gen-N` and only then replaces CURRENT with `os.replace`, which is atomic on POSIX. A writer
killed at any point leaves CURRENT naming a complete generation whose three files agree; its
half-written folder is swept by the next save.

The sidecar names the embedder and the vector dimension: vectors of two models do not compare,
so loading or adding with another embedder is refused.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from . import vectors as vx
from .errors import (EmbedderMismatch, IndexBusy, IndexCorrupt, IndexInputError, IndexNotFound,
                     UnknownIds)
from .metadata import Item, Metadata, Record, normalise_tags

FORMAT = 1
POINTER = "CURRENT"
INDEX_FILE, METADATA_FILE, SIDECAR_FILE = "index.faiss", "metadata.sqlite", "sidecar.json"
SIDECAR_KEYS = ("format", "embedder", "dim", "factory", "count", "next_id", "generation")
GENERATION = re.compile(r"gen-(\d{6,})(\.tmp)?")
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
LOCK_TIMEOUT_S = 60.0


def index_root(home: Path, name: str | None = None) -> Path:
    """Where an index lives under ATELIER_HOME: `index/` for the default one,
    `indexes/NAME/` for a named one."""
    if name in (None, "", "default"):
        return Path(home) / "index"
    if not NAME_PATTERN.fullmatch(name):
        raise IndexInputError(f"index name {name!r} is not allowed; use up to 64 lower-case "
                              "letters, digits, '-' and '_'")
    return Path(home) / "indexes" / name


@dataclass(frozen=True)
class Added:
    """The id of each item given to `add`, and whether it was new or already indexed."""

    ids: list[int]
    new: list[bool]

    @property
    def new_ids(self) -> list[int]:
        return [i for i, n in zip(self.ids, self.new) if n]

    @property
    def duplicate_ids(self) -> list[int]:
        return [i for i, n in zip(self.ids, self.new) if not n]


class IndexStore:
    """Vectors, metadata and sidecar of one index, loaded whole into memory."""

    def __init__(self, root: Path, embedder: str, dim: int, *, factory: str | None = None,
                 search_params: str = "", replace: bool = False):
        """A new, empty index for `root`; with `replace`, its first save replaces the one
        saved there (the old generation stays loadable until then)."""
        self.root = Path(root)
        live = read_pointer(self.root)
        if live is not None and not replace:
            raise IndexInputError(f"an index already exists in {self.root}; load it to add to "
                                  "it, or replace it")
        self.embedder = embedder
        self.dim = int(dim)
        if self.dim < 1:
            raise IndexInputError(f"dimension {dim} is not at least 1")
        self.factory_pinned = factory is not None
        self.index, self.factory = vx.new_index(factory or vx.EXACT_FACTORY, self.dim)
        self.search_params = ""
        self.set_search_params(search_params)
        self.metadata = Metadata.empty()
        self.next_id = 0
        self.trained_count = 0
        self.generation = 0  # the generation this copy was loaded from; 0: none yet
        self.loaded_from = live
        self.dirty = True  # changed since loaded: a new store always needs its first save

    # --- opening ------------------------------------------------------------------------

    @classmethod
    def exists(cls, root: Path) -> bool:
        return (Path(root) / POINTER).is_file()

    @classmethod
    def load(cls, root: Path, embedder: str | None = None, dim: int | None = None
             ) -> "IndexStore":
        """The live generation; with `embedder` and `dim`, refused if they differ."""
        root = Path(root)
        for attempt in range(3):
            name = read_pointer(root)
            if name is None:
                raise IndexNotFound(f"no index in {root}; build one first "
                                    "(atelier index build DIR, or --demo)")
            try:
                store = cls._load_generation(root, name)
                break
            except FileNotFoundError:
                # A concurrent save swept this generation after we read CURRENT: read it again.
                if attempt == 2 or read_pointer(root) == name:
                    raise IndexCorrupt(f"{root / name}: generation files are missing; CURRENT "
                                       "names a generation that is not complete") from None
        if embedder is not None:
            store.check_embedder(embedder, dim)
        return store

    @classmethod
    def _load_generation(cls, root: Path, name: str) -> "IndexStore":
        folder = root / name
        try:
            sidecar = json.loads((folder / SIDECAR_FILE).read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise IndexCorrupt(f"{folder / SIDECAR_FILE}: not valid JSON ({error})") from None
        missing = set(SIDECAR_KEYS) - set(sidecar if isinstance(sidecar, dict) else ())
        if missing:
            raise IndexCorrupt(f"{folder / SIDECAR_FILE}: missing {', '.join(sorted(missing))}")
        if sidecar.get("format") != FORMAT:
            raise IndexCorrupt(f"{folder / SIDECAR_FILE}: format {sidecar.get('format')!r} is "
                               f"not {FORMAT}; rebuild the index with this version of Atelier")
        for name_ in (INDEX_FILE, METADATA_FILE):
            if not (folder / name_).is_file():
                raise FileNotFoundError(folder / name_)
        store = cls.__new__(cls)
        store.root = root
        store.embedder = sidecar["embedder"]
        store.dim = int(sidecar["dim"])
        store.factory = sidecar["factory"]
        store.factory_pinned = bool(sidecar.get("factory_pinned", False))
        store.next_id = int(sidecar["next_id"])
        store.trained_count = int(sidecar.get("trained_count", 0))
        store.generation = int(sidecar["generation"])
        store.loaded_from = name
        store.dirty = False
        try:
            store.index = vx.read(folder / INDEX_FILE)
        except RuntimeError as error:
            raise IndexCorrupt(f"{folder / INDEX_FILE}: FAISS cannot read it ({error})") from None
        try:
            store.metadata = Metadata.load(folder / METADATA_FILE)
        except sqlite3.DatabaseError as error:
            raise IndexCorrupt(f"{folder / METADATA_FILE}: not readable ({error})") from None
        store.search_params = ""
        store.set_search_params(sidecar.get("search_params", ""))
        count = int(sidecar["count"])
        if not (store.index.ntotal == len(store.metadata) == count) or store.index.d != store.dim:
            raise IndexCorrupt(
                f"{folder}: the index holds {store.index.ntotal} {store.index.d}-d vectors and "
                f"the metadata {len(store.metadata)} rows, but the sidecar says {count} "
                f"{store.dim}-d; rebuild the index from its images")
        return store

    @classmethod
    def open(cls, root: Path, embedder: str, dim: int, factory: str | None = None
             ) -> "IndexStore":
        """The saved index checked against `embedder`, or a new empty one."""
        if cls.exists(root):
            store = cls.load(root, embedder, dim)
            if factory is not None and factory != store.factory:
                store.rebuild(factory=factory)
            return store
        return cls(root, embedder, dim, factory=factory)

    def check_embedder(self, embedder: str, dim: int | None) -> None:
        if embedder != self.embedder or (dim is not None and int(dim) != self.dim):
            raise EmbedderMismatch(
                f"the index in {self.root} holds {self.dim}-d vectors from embedder "
                f"{self.embedder!r}, but this run embeds with {embedder!r} ({dim}-d), and "
                "vectors of two models do not compare; use the model the index was built "
                "with, or rebuild the index with the new one (rebuild --reembed)")

    # --- contents -----------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def add(self, vectors, items: list[Item]) -> Added:
        """Add one vector per item; an item whose sha256 is already indexed (or repeated in
        `items`) keeps its existing id and adds nothing."""
        x = vx.as_vectors(vectors, self.dim) if len(items) else np.empty((0, self.dim))
        if len(x) != len(items):
            raise IndexInputError(f"{len(x)} vectors for {len(items)} items; give one each")
        known = self.metadata.ids_by_sha256(item.sha256 for item in items)
        ids, new, rows = [], [], []
        next_id = self.next_id
        for row, item in enumerate(items):
            if item.sha256 in known:
                ids.append(known[item.sha256])
                new.append(False)
                continue
            known[item.sha256] = next_id
            ids.append(next_id)
            new.append(True)
            rows.append(row)
            next_id += 1
        if rows:
            new_ids = vx.as_ids([ids[r] for r in rows])
            if self.index.is_trained:
                self.index.add_with_ids(x[rows], new_ids)
            else:
                # A type that needs training (IVF, PQ) learns from the first vectors it gets.
                self.index, _, self.search_params = vx.build(
                    self.factory, self.dim, x[rows], new_ids, self.search_params or None)
                self.trained_count = len(rows)
            self.metadata.insert(new_ids, [items[r] for r in rows])
            self.next_id, self.dirty = next_id, True
        return Added(ids, new)

    def remove(self, ids) -> None:
        """Remove items by id; unknown ids are refused before anything changes. Ids are
        never reused."""
        ids = vx.as_ids(ids)
        missing = self.metadata.missing(ids)
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            raise UnknownIds(f"no item with id {shown} in {self.root}; "
                             "`atelier index search` shows the ids")
        ids = np.unique(ids)
        if not vx.remove(self.index, ids):
            self._rebuild_without(ids)
        self.metadata.delete(ids)
        self.dirty = True

    def _rebuild_without(self, ids: np.ndarray) -> None:
        keep = np.setdiff1d(self.metadata.ids(), ids)
        self.index, _, _ = vx.build(self.factory, self.dim, vx.reconstruct(self.index, keep),
                                    keep, self.search_params)

    def records(self, ids) -> list[Record]:
        """Metadata rows in the order of `ids`."""
        found = self.metadata.records(ids)
        missing = [int(i) for i in ids if int(i) not in found]
        if missing:
            raise UnknownIds(f"no item with id {', '.join(map(str, missing[:10]))} in {self.root}")
        return [found[int(i)] for i in ids]

    def vectors(self, ids) -> np.ndarray:
        return vx.reconstruct(self.index, vx.as_ids(ids))

    def ids(self) -> np.ndarray:
        return self.metadata.ids()

    def ids_with_tags(self, tags) -> np.ndarray:
        return self.metadata.ids_with_tags(tags)

    # --- search -------------------------------------------------------------------------

    def search(self, queries, k: int = 10, tags=()) -> list[list[tuple[int, float]]]:
        """Per query, up to k (id, cosine similarity) pairs, best first; with `tags`, only
        items carrying every tag."""
        if k < 1:
            raise IndexInputError(f"k={k}: ask for at least one result")
        q = vx.as_vectors(queries, self.dim)
        tags = normalise_tags(tags)
        if len(self) == 0:
            return [[] for _ in q]
        allowed = self.metadata.ids_with_tags(tags) if tags else None
        scores, ids = vx.search(self.index, q, k, allowed)
        # Decoded SQ/PQ codes and float rounding can stray past 1; cosine cannot.
        scores = np.clip(scores, -1.0, 1.0)
        return [[(int(i), float(s)) for s, i in zip(srow, irow) if i >= 0]
                for srow, irow in zip(scores, ids)]

    def set_search_params(self, params: str) -> None:
        """FAISS search parameters such as 'nprobe=32'; saved with the next generation."""
        params = vx.parse_search_params(params)
        vx.set_search_params(self.index, params)
        self.search_params = params

    # --- maintenance --------------------------------------------------------------------

    def rebuild(self, factory: str | None = None, search_params: str | None = None,
                vectors=None, embedder: tuple[str, int] | None = None) -> None:
        """Build the FAISS index afresh: with `factory`, as that type from now on; otherwise
        the pinned type, or the one `choose_factory` gives for the current size. Vectors are
        read back from the index unless given (one per id, in `ids()` order), with the
        `(name, dim)` of the embedder that made them when it changed."""
        ids = self.metadata.ids()
        name, dim = embedder or (self.embedder, self.dim)
        if vectors is None:
            if embedder is not None:
                raise IndexInputError("a new embedder needs new vectors for every item")
            x = vx.reconstruct(self.index, ids)
        else:
            x = vx.as_vectors(vectors, dim) if len(ids) else np.empty((0, dim), np.float32)
            if len(x) != len(ids):
                raise IndexInputError(f"{len(x)} vectors for {len(ids)} items; give one each")
        if factory is None and not self.factory_pinned:
            factory = vx.choose_factory(len(ids), dim)
        pinned = self.factory_pinned or factory is not None
        index, factory, params = vx.build(factory or self.factory, dim, x, ids, search_params)
        self.index, self.factory, self.factory_pinned = index, factory, pinned
        self.embedder, self.dim, self.search_params = name, dim, params
        self.trained_count = len(ids)
        self.dirty = True

    def fit_to_size(self) -> bool:
        """Rebuild when the size calls for another index type: past EXACT_LIMIT from exact to
        IVF, below half of it back (the gap keeps an index near the limit from flapping), or
        an IVF index 4x larger or smaller than it was trained at. A pinned factory stays."""
        if self.factory_pinned:
            return False
        n = len(self)
        exact = self.factory == vx.EXACT_FACTORY
        if exact:
            due = n > vx.EXACT_LIMIT
        else:
            due = (n < vx.EXACT_LIMIT // 2
                   or not 0.25 <= n / max(self.trained_count, 1) <= 4)
        if due:
            self.rebuild()
        return due

    def stats(self) -> dict:
        folder = self.root / self.loaded_from if self.loaded_from else None
        on_disk = (sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
                   if folder and folder.is_dir() else 0)
        return {
            "root": str(self.root), "generation": self.generation, "count": len(self),
            "embedder": self.embedder, "dim": self.dim, "metric": "cosine",
            "factory": self.factory, "factory_pinned": self.factory_pinned,
            "search_params": self.search_params, "faiss": vx.describe(self.index),
            "next_id": self.next_id, "bytes_on_disk": on_disk,
            "bytes_per_vector": round(on_disk / len(self), 1) if len(self) else None,
            "recommended_factory": vx.choose_factory(len(self), self.dim),
            "tags": self.metadata.tag_counts(),
        }

    # --- saving -------------------------------------------------------------------------

    def save(self, fit: bool = True) -> int:
        """Write the next generation and switch CURRENT to it; returns its number. Refused
        when another process saved since this copy was loaded (its changes would be lost)."""
        if fit:
            self.fit_to_size()
        self.root.mkdir(parents=True, exist_ok=True)
        with writer_lock(self.root):
            live = read_pointer(self.root)
            if live != self.loaded_from:
                raise IndexBusy(f"the index in {self.root} was saved by another process since "
                                "this one loaded it; run the command again")
            number = max([n for n, _ in generations(self.root)] + [0]) + 1
            final = self.root / f"gen-{number:06d}"
            partial = self.root / f"gen-{number:06d}.tmp"
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir()
            self._write_generation(partial, number)
            os.rename(partial, final)
            fsync(self.root)
            self._switch_pointer(final.name)
            self.generation, self.loaded_from, self.dirty = number, final.name, False
            sweep(self.root, keep={final.name, live})
        return number

    def _write_generation(self, folder: Path, number: int) -> None:
        vx.write(self.index, folder / INDEX_FILE)
        fsync(folder / INDEX_FILE)
        self.metadata.save(folder / METADATA_FILE)
        fsync(folder / METADATA_FILE)
        sidecar = {
            "format": FORMAT, "embedder": self.embedder, "dim": self.dim, "metric": "cosine",
            "normalized": True, "factory": self.factory, "factory_pinned": self.factory_pinned,
            "search_params": self.search_params, "count": len(self), "next_id": self.next_id,
            "trained_count": self.trained_count, "generation": number,
            "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        write_durably(folder / SIDECAR_FILE, json.dumps(sidecar, indent=2) + "\n")
        fsync(folder)

    def _switch_pointer(self, name: str) -> None:
        write_durably(self.root / f"{POINTER}.tmp", name + "\n")
        os.replace(self.root / f"{POINTER}.tmp", self.root / POINTER)
        fsync(self.root)


def read_pointer(root: Path) -> str | None:
    try:
        name = (Path(root) / POINTER).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not GENERATION.fullmatch(name) or name.endswith(".tmp"):
        raise IndexCorrupt(f"{Path(root) / POINTER}: {name!r} does not name a generation")
    return name


def generations(root: Path) -> list[tuple[int, str]]:
    """(number, folder name) of every generation folder, finished or not."""
    found = []
    for entry in Path(root).iterdir() if Path(root).is_dir() else ():
        match = GENERATION.fullmatch(entry.name)
        if match and entry.is_dir():
            found.append((int(match.group(1)), entry.name))
    return sorted(found)


def sweep(root: Path, keep: set) -> None:
    """Remove generations other than `keep` (the live one and the one before it) and
    folders left by writers that died; only ever called with the writer lock held."""
    for _, name in generations(root):
        if name not in keep:
            shutil.rmtree(root / name, ignore_errors=True)


@contextmanager
def writer_lock(root: Path, timeout: float = LOCK_TIMEOUT_S):
    """One writer at a time per index. flock is released by the kernel when its holder dies,
    so a killed writer never leaves the index locked."""
    import fcntl

    fd = os.open(Path(root) / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise IndexBusy(f"another process has been saving the index in {root} for "
                                    f"over {timeout:.0f} s; try again when it is done") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def write_durably(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def fsync(path: Path) -> None:
    """Flush a file, or a folder: a rename is durable only once its folder is flushed."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
