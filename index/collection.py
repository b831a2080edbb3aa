"""Image files -> an index: hashing, deduplication, captions and tags, embedding in batches.

Captions for a folder come from, in order of preference, a `<image>.txt` file beside the
image (the img2dataset / webdataset convention) or a `scenes.jsonl` / `captions.jsonl` file
in the folder with `{"file": ..., "caption": ...}` lines (what `atelier world sample`
writes).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np

from .embedder import Embedder, file_sha256
from .errors import IndexInputError
from .metadata import Item, normalise_tags
from .store import Added, IndexStore

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
CAPTION_FILES = ("scenes.jsonl", "captions.jsonl")
# Files are opened, embedded and added this many at a time, so memory stays flat for any
# collection size.
CHUNK = 1024


def find_images(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise IndexInputError(f"{folder}: not a folder; give a folder of images")
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_captions(folder: Path) -> dict[Path, str]:
    """Captions named by the folder's scenes.jsonl / captions.jsonl, keyed by resolved path."""
    captions: dict[Path, str] = {}
    for name in CAPTION_FILES:
        listing = Path(folder) / name
        if not listing.is_file():
            continue
        for number, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                file, caption = record.get("file") or record["path"], record["caption"]
            except (json.JSONDecodeError, KeyError, AttributeError, TypeError):
                raise IndexInputError(f"{listing}:{number}: expected a JSON object with 'file' "
                                      "and 'caption'") from None
            captions[(listing.parent / file).resolve()] = str(caption)
    return captions


def caption_beside(path: Path) -> str | None:
    text_file = path.with_suffix(".txt")
    return text_file.read_text(encoding="utf-8").strip() if text_file.is_file() else None


class Collection:
    """An index store together with the embedder that fills and queries it."""

    def __init__(self, store: IndexStore, embedder: Embedder):
        store.check_embedder(embedder.name, embedder.dim)
        self.store = store
        self.embedder = embedder

    @classmethod
    def open(cls, root: Path, embedder: Embedder, factory: str | None = None,
             replace: bool = False) -> "Collection":
        """The index in `root` (checked against `embedder`), or a new one; with `replace`, a
        new one whose first save replaces the old."""
        if replace or not IndexStore.exists(root):
            store = IndexStore(root, embedder.name, embedder.dim, factory=factory,
                               replace=replace)
        else:
            store = IndexStore.open(root, embedder.name, embedder.dim, factory=factory)
        return cls(store, embedder)

    def add_files(self, paths: Iterable[Path], captions: dict[Path, str] | None = None,
                  tags=(), caption: str | None = None, progress: bool | None = None) -> Added:
        """Index image files. A file whose content is already indexed keeps its id and is not
        embedded again. Captions: `caption` for all, else a .txt file beside the image, else
        `captions[path]` (from `read_captions`), else none."""
        from tqdm.auto import tqdm

        tags = normalise_tags(tags)
        captions = captions or {}
        paths = [Path(p).resolve() for p in paths]
        ids: list[int] = []
        new: list[bool] = []
        with tqdm(total=len(paths), unit="images", desc="indexing", leave=False,
                  disable=(len(paths) <= CHUNK) or (None if progress is None else not progress)
                  ) as bar:
            for start in range(0, len(paths), CHUNK):
                chunk = paths[start:start + CHUNK]
                for path in chunk:
                    if not path.is_file():
                        raise IndexInputError(f"{path}: no such file; give image files")
                hashes = [file_sha256(p) for p in chunk]
                known = self.store.metadata.ids_by_sha256(hashes)
                # Only content not yet indexed is opened and embedded; repeats within the chunk
                # are embedded once.
                fresh: dict[str, int] = {}
                for row, digest in enumerate(hashes):
                    if digest not in known and digest not in fresh:
                        fresh[digest] = row
                items, images = [], []
                for digest, row in fresh.items():
                    image = self.embedder.open_image(chunk[row])
                    text = caption if caption is not None else caption_beside(chunk[row])
                    if text is None:
                        text = captions.get(chunk[row], "")
                    items.append(Item(digest, str(chunk[row]), text, image.width, image.height,
                                      tags))
                    images.append(image)
                vectors = (self.embedder.encode_images(images, progress=False) if images
                           else np.empty((0, self.embedder.dim), np.float32))
                added = self.store.add(vectors, items)
                by_hash = {**known, **{it.sha256: i for it, i in zip(items, added.ids)}}
                ids += [by_hash[h] for h in hashes]
                new += [h in fresh and fresh[h] == row for row, h in enumerate(hashes)]
                bar.update(len(chunk))
        return Added(ids, new)

    def add_folder(self, folder: Path, tags=(), progress: bool | None = None) -> Added:
        paths = find_images(folder)
        if not paths:
            raise IndexInputError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in it")
        return self.add_files(paths, read_captions(folder), tags=tags, progress=progress)

    def remove(self, ids) -> None:
        self.store.remove(ids)

    def rebuild(self, factory: str | None = None, search_params: str | None = None) -> None:
        """Rebuild the FAISS index from the vectors it holds (as another type with `factory`)."""
        self.store.rebuild(factory=factory, search_params=search_params)

    @classmethod
    def reembed(cls, root: Path, embedder: Embedder, factory: str | None = None,
                search_params: str | None = None) -> "Collection":
        """Load the index in `root` whatever embedder built it and embed every image file
        again with `embedder`: how an index moves to another model."""
        store = IndexStore.load(root)
        records = store.records(store.ids())
        # A vector must describe the content the row's sha256 names.
        changed = [r for r in records
                   if not Path(r.path).is_file() or file_sha256(Path(r.path)) != r.sha256]
        if changed:
            shown = ", ".join(f"{r.id} ({r.path})" for r in changed[:5])
            raise IndexInputError(f"{len(changed)} indexed images are gone or changed on disk, "
                                  f"e.g. {shown}; remove them from the index first")
        vectors = embedder.encode_images([Path(r.path) for r in records])
        store.rebuild(factory=factory, search_params=search_params, vectors=vectors,
                      embedder=(embedder.name, embedder.dim))
        return cls(store, embedder)

    def save(self) -> int:
        """Save a new generation if anything changed; returns the live generation."""
        return self.store.save() if self.store.dirty else self.store.generation

