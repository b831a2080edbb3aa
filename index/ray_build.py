"""`atelier index build DIR --engine ray`: image files embedded by a Ray Data pipeline, then
indexed. The clip-retrieval and autofaiss pattern:

1. The driver lists the files and the captions their folder's scenes.jsonl gives, as the local
   build does (index/collection.py), and makes a Ray dataset with one row per file, numbered
   in the local build's order.
2. `map_batches` runs `EmbedBatch` on an actor pool: each actor loads the embedder once, then
   a batch at a time reads, hashes and opens the files, reads a caption file beside each, and
   embeds them.
3. The driver takes the batches back in row order and writes the content not indexed yet
   into embedding shards (vectors .npy, items .json) in a scratch folder inside the index
   root; so the driver never holds every vector at once before the index does.
4. An index type that needs training (IVF) is trained on a seeded sample drawn from the
   shards, then filled shard by shard; its search parameters are tuned on held-out rows as
   `vectors.build` tunes them. An exact index is filled shard by shard. The metadata goes into
   the store, which is saved atomically as the local build saves it.

Ids follow the file order and skip content already indexed, exactly as in the local build,
and the sample, held-out rows and tuning are the ones `vectors.build` would pick for the same
vectors: the two engines give the same ids, captions and hashes, vectors equal to float
rounding (another batch composition, another thread count), and so the same search results.
The workers read the image files and the model folder at the paths the driver gives, so on a
cluster both must be at the same path on every node; the index itself is written only by the
driver.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from . import vectors as vx
from .collection import caption_beside
from .embedder import Embedder, file_sha256
from .errors import EmbedderMismatch, IndexInputError
from .metadata import Item, normalise_tags
from .store import Added, IndexStore

# Files per map_batches call: large enough to keep a GPU busy, small enough that every worker
# gets work on a small folder.
BATCH_ROWS = 256
# Rows per embedding shard on disk.
SHARD_ROWS = 16_384
SCRATCH_PREFIX = ".ray-shards-"


@dataclass(frozen=True)
class Pool:
    """The actor pool: how many actors, the Ray resources and torch threads of each."""

    size: int
    cpus: float
    gpus: float
    threads: int


class EmbedBatch:
    """The map_batches actor: one embedder, loaded once, for every batch it is given."""

    def __init__(self, model: str, pretrained: str | None, threads: int, open_image: Callable,
                 batch_size: int):
        import torch

        torch.set_num_threads(threads)
        self.embedder = Embedder(model, pretrained, open_image=open_image,
                                 batch_size=batch_size, progress=False)
        self.embedder.load()

    def __call__(self, batch: dict) -> dict:
        n = len(batch["row"])
        sha = np.full(n, "", dtype=object)
        captions = np.full(n, "", dtype=object)
        errors = np.full(n, "", dtype=object)
        sizes = np.zeros((n, 2), dtype=np.int64)
        vectors = np.zeros((n, self.embedder.dim), dtype=np.float32)
        images, good = [], []
        for i, (path, listed) in enumerate(zip(batch["path"], batch["caption"])):
            path = Path(path)
            try:
                sha[i] = file_sha256(path)
                image = self.embedder.open_image(path)
                beside = caption_beside(path)
            except OSError as error:
                errors[i] = f"{path}: cannot read it ({error.strerror or error})"
                continue
            except Exception as error:  # the image opener's own error, which names the file
                errors[i] = str(error) or f"{path}: {type(error).__name__}"
                continue
            captions[i] = beside if beside is not None else str(listed)
            sizes[i] = image.width, image.height
            images.append(image)
            good.append(i)
        if images:
            vectors[good] = self.embedder.encode_images(images, progress=False)
        return {"row": np.asarray(batch["row"], dtype=np.int64), "sha256": sha,
                "caption": captions, "width": sizes[:, 0], "height": sizes[:, 1],
                "vector": vectors, "error": errors,
                "embedder": np.full(n, self.embedder.name, dtype=object)}


def add_files(ray, collection, paths: list[Path], captions: dict[Path, str] | None,
              pool: Pool, tags=()) -> Added:
    """Index image files on Ray; what `Collection.add_files` does locally (same ids, items
    and result)."""
    store, embedder = collection.store, collection.embedder
    tags = normalise_tags(tags)
    captions = captions or {}
    paths = [Path(p).resolve() for p in paths]
    for path in paths:
        if not path.is_file():
            raise IndexInputError(f"{path}: no such file; give image files")
    if not paths:
        return Added([], [])
    scratch = store.root / f"{SCRATCH_PREFIX}{socket.gethostname()}-{os.getpid()}"
    sweep_scratch(store.root)
    scratch.mkdir(parents=True)
    try:
        shards = ShardWriter(scratch, store, tags)
        for batch in embedded_batches(ray, paths, captions, embedder, pool):
            if (batch["embedder"] != embedder.name).any():
                raise EmbedderMismatch(
                    f"a Ray worker loaded another model than {embedder.name!r} from "
                    f"{embedder.model_name}; put the same model files at that path on "
                    "every node")
            shards.add(batch, paths)
        shards.flush()
        fill(store, shards.written, tags)
        return Added(shards.ids, shards.new)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def embedded_batches(ray, paths: list[Path], captions: dict[Path, str], embedder: Embedder,
                     pool: Pool) -> Iterator[dict]:
    """The dataset of files through the embedding actors, batches back in row order."""
    from ray.data import ActorPoolStrategy, DataContext

    context = DataContext.get_current()
    saved = (context.execution_options.preserve_order, context.enable_progress_bars)
    # Ids are handed out in row order, as the local build hands them out.
    context.execution_options.preserve_order = True
    context.enable_progress_bars = sys.stderr.isatty()
    # Ray Data reports each execution's plan and timing on stderr; the command reports its
    # own result.
    logger = logging.getLogger("ray.data")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        rows = [{"row": i, "path": str(p), "caption": captions.get(p, "")}
                for i, p in enumerate(paths)]
        batch = min(BATCH_ROWS, max(1, -(-len(rows) // (2 * pool.size))))
        dataset = ray.data.from_items(rows).map_batches(
            EmbedBatch, batch_size=batch, batch_format="numpy",
            compute=ActorPoolStrategy(size=pool.size), num_cpus=pool.cpus, num_gpus=pool.gpus,
            fn_constructor_kwargs={"model": embedder.model_name,
                                   "pretrained": embedder.pretrained, "threads": pool.threads,
                                   "open_image": embedder.open_image,
                                   "batch_size": embedder.batch_size})
        expected = 0
        for part in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            rows_here = part["row"]
            if not np.array_equal(rows_here, np.arange(expected, expected + len(rows_here))):
                raise RuntimeError("Ray Data returned the files out of order")
            expected += len(rows_here)
            yield part
        if expected != len(rows):
            raise RuntimeError(f"Ray Data returned {expected} of {len(rows)} files")
    finally:
        context.execution_options.preserve_order, context.enable_progress_bars = saved
        logger.setLevel(level)


@dataclass(frozen=True)
class Shard:
    vectors: Path       # (n, dim) float32, L2-normalised
    items: Path         # JSON list of [id, sha256, path, caption, width, height]
    count: int

    def load(self, tags: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, list[Item]]:
        rows = json.loads(self.items.read_text(encoding="utf-8"))
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        items = [Item(sha, path, caption, width, height, tags)
                 for _, sha, path, caption, width, height in rows]
        return np.load(self.vectors), ids, items


class ShardWriter:
    """Takes embedded batches in row order; keeps the content not indexed yet (in the store or
    earlier in this build), gives it the next ids and writes it out in shards."""

    def __init__(self, folder: Path, store: IndexStore, tags: tuple[str, ...]):
        self.folder, self.store, self.tags = folder, store, tags
        self.next_id = store.next_id
        self.seen: dict[str, int] = {}          # sha256 -> id, for content new in this build
        self.ids: list[int] = []                # per file, as Added reports them
        self.new: list[bool] = []
        self.written: list[Shard] = []
        self._vectors: list[np.ndarray] = []
        self._rows: list[list] = []

    def add(self, batch: dict, paths: list[Path]) -> None:
        bad = np.flatnonzero(batch["error"] != "")
        if len(bad):
            # The first bad file in row order: the one the local build would stop at.
            raise IndexInputError(str(batch["error"][bad[0]]))
        known = self.store.metadata.ids_by_sha256(list(batch["sha256"]))
        keep = []
        for k, (row, sha) in enumerate(zip(batch["row"], batch["sha256"])):
            if sha in known or sha in self.seen:
                self.ids.append(known.get(sha, self.seen.get(sha)))
                self.new.append(False)
                continue
            self.seen[sha] = self.next_id
            self.ids.append(self.next_id)
            self.new.append(True)
            self._rows.append([self.next_id, sha, str(paths[row]), batch["caption"][k],
                               int(batch["width"][k]), int(batch["height"][k])])
            self.next_id += 1
            keep.append(k)
        if keep:
            self._vectors.append(vx.as_vectors(batch["vector"][keep], self.store.dim))
        if len(self._rows) >= SHARD_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        name = f"shard-{len(self.written):06d}"
        vectors = self.folder / f"{name}.npy"
        items = self.folder / f"{name}.json"
        np.save(vectors, np.concatenate(self._vectors))
        items.write_text(json.dumps(self._rows, ensure_ascii=False), encoding="utf-8")
        self.written.append(Shard(vectors, items, len(self._rows)))
        self._vectors, self._rows = [], []


def fill(store: IndexStore, shards: list[Shard], tags: tuple[str, ...]) -> None:
    """Put the shards' vectors and items into the store. A trained index (an exact one, or an
    approximate one that already holds vectors) takes them shard by shard, as the local build
    adds chunk by chunk, and its save decides on a rebuild as the local one does. An index
    that needs training gets it from a sample of the shards first."""
    n = sum(s.count for s in shards)
    if n == 0:
        return
    target = store.factory
    if len(store) == 0 and not store.factory_pinned:
        target = vx.choose_factory(n, store.dim)
    if store.index.is_trained and target == store.factory:
        for shard in shards:
            vectors, ids, items = shard.load(tags)
            added = store.add(vectors, items)
            assert added.ids == list(ids) and all(added.new), "ids differ from the shards'"
        return
    train_and_fill(store, shards, target, n, tags)


def train_and_fill(store: IndexStore, shards: list[Shard], factory: str, n: int,
                   tags: tuple[str, ...], seed: int = 0, k: int = 10) -> None:
    """What `vectors.build` does over all n vectors (the same training sample, held-out rows
    and tuning), reading the shards one at a time. The store is empty."""
    index, factory = vx.new_index(factory, store.dim)
    cap = vx.training_cap(index)
    sample = (np.sort(np.random.default_rng(seed).choice(n, cap, replace=False)) if n > cap
              else np.arange(n))
    vx.train(index, gather(shards, sample), seed)
    count = min(vx.TUNE_QUERIES, n // 4)
    held = np.sort(np.random.default_rng(seed).choice(n, count, replace=False))
    out = np.zeros(n, dtype=bool)
    out[held] = True
    queries = gather(shards, held)
    held_ids = np.empty(len(held), dtype=np.int64)
    best_scores = np.full((len(held), 0), -np.inf, dtype=np.float32)
    best_ids = np.empty((len(held), 0), dtype=np.int64)
    start = 0
    for shard in shards:
        vectors, ids, items = shard.load(tags)
        here = ~out[start:start + shard.count]
        index.add_with_ids(np.ascontiguousarray(vectors[here]), ids[here])
        store.metadata.insert(ids, items)
        held_ids[np.searchsorted(held, np.flatnonzero(~here) + start)] = ids[~here]
        if len(held) and here.any():
            # The exact neighbours of the held-out rows among the stored ones, merged shard
            # by shard: the truth `vectors.tune` measures recall against.
            scores, rows = vx.exact_knn(vectors[here], queries, k)
            best_scores = np.concatenate([best_scores, scores], axis=1)
            best_ids = np.concatenate([best_ids, ids[here][rows]], axis=1)
            order = np.argsort(-best_scores, axis=1, kind="stable")[:, :k]
            best_scores = np.take_along_axis(best_scores, order, axis=1)
            best_ids = np.take_along_axis(best_ids, order, axis=1)
        start += shard.count
    truth = list(best_ids) if len(held) >= 10 and n - len(held) >= k else None
    params = vx.tune_against(index, queries, truth, k=k)
    vx.set_search_params(index, params)
    if len(held):
        index.add_with_ids(np.ascontiguousarray(queries), held_ids)
    store.index, store.factory, store.search_params = index, factory, params
    store.trained_count, store.next_id, store.dirty = n, store.next_id + n, True


def gather(shards: list[Shard], rows: np.ndarray) -> np.ndarray:
    """The vectors at sorted global row positions, read shard by shard."""
    parts, start = [], 0
    for shard in shards:
        lo, hi = np.searchsorted(rows, [start, start + shard.count])
        if hi > lo:
            vectors = np.load(shard.vectors, mmap_mode="r")
            parts.append(np.asarray(vectors[rows[lo:hi] - start]))
        start += shard.count
    return np.ascontiguousarray(np.concatenate(parts)) if parts else np.empty((0, 0), np.float32)


def sweep_scratch(root: Path) -> None:
    """Remove scratch folders of builds on this machine whose process is gone (killed)."""
    prefix = f"{SCRATCH_PREFIX}{socket.gethostname()}-"
    for folder in root.glob(f"{prefix}*") if root.is_dir() else ():
        pid = folder.name[len(prefix):]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def process_alive(pid: int) -> bool:
    """Whether a process of this machine still runs (scratch of a live one is not swept)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
