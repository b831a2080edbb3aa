"""Exemplar search: text -> images, image -> images, or both at once, with tag filters and
optional diversity (maximal marginal relevance)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.embedder import Embedder
from index.errors import IndexInputError
from index.store import IndexStore

# MMR re-ranks a pool this many times larger than k (at least MMR_MIN_POOL): enough near
# duplicates to skip over, few enough to score pairwise.
MMR_POOL_FACTOR = 4
MMR_MIN_POOL = 32


@dataclass(frozen=True)
class Hit:
    """One retrieved image: its index id, cosine similarity to the query, caption and file."""

    id: int
    score: float
    caption: str
    path: str
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"id": self.id, "score": round(self.score, 6), "path": self.path,
                "caption": self.caption, "tags": list(self.tags)}


class Retriever:
    """Queries an index store with vectors from the embedder that built it."""

    def __init__(self, store: IndexStore, embedder: Embedder):
        store.check_embedder(embedder.name, embedder.dim)
        self.store = store
        self.embedder = embedder

    def query_vector(self, text: str | None = None, image=None, text_weight: float = 0.5
                     ) -> np.ndarray:
        """The query as one unit vector. With both a text and an image, their weighted sum,
        renormalised: a mix of the two directions, as clip-retrieval combines queries."""
        if text is None and image is None:
            raise IndexInputError("give a text, an image, or both to search with")
        if text is not None and not text.strip():
            raise IndexInputError("the search text is empty; give words to search for")
        if not 0.0 <= text_weight <= 1.0:
            raise IndexInputError(f"text_weight={text_weight} is outside 0..1")
        parts = []
        if text is not None:
            parts.append((text_weight if image is not None else 1.0,
                          self.embedder.encode_text(text)))
        if image is not None:
            if isinstance(image, (str, Path)):
                image = self.embedder.open_image(image)
            parts.append((1.0 - text_weight if text is not None else 1.0,
                          self.embedder.encode_image(image)))
        vector = sum(w * v for w, v in parts)
        norm = np.linalg.norm(vector)
        if norm == 0:
            raise IndexInputError("the text and image queries cancel out; change text_weight")
        return (vector / norm).astype(np.float32)

    def search(self, text: str | None = None, image=None, *, k: int = 5, tags=(),
               diversity: float = 0.0, text_weight: float = 0.5) -> list[Hit]:
        """The top-k images for a text, an image (PIL image or path) or both. `diversity` in
        0..1 trades relevance for variety among the hits (0: plain top-k)."""
        return self.search_vector(self.query_vector(text, image, text_weight), k=k, tags=tags,
                                  diversity=diversity)

    def search_vector(self, query: np.ndarray, *, k: int = 5, tags=(),
                      diversity: float = 0.0) -> list[Hit]:
        if not 0.0 <= diversity <= 1.0:
            raise IndexInputError(f"diversity={diversity} is outside 0..1")
        pool = k if diversity == 0 else max(k * MMR_POOL_FACTOR, MMR_MIN_POOL)
        found = self.store.search(query[None, :], k=pool, tags=tags)[0]
        if diversity > 0 and len(found) > k:
            ids = np.array([i for i, _ in found], dtype=np.int64)
            scores = np.array([s for _, s in found], dtype=np.float32)
            order = mmr(scores, self.store.vectors(ids), k, 1.0 - diversity)
            found = [found[i] for i in order]
        found = found[:k]
        records = self.store.records([i for i, _ in found])
        return [Hit(r.id, score, r.caption, r.path, r.tags)
                for r, (_, score) in zip(records, found)]


def mmr(relevance: np.ndarray, vectors: np.ndarray, k: int, weight: float) -> list[int]:
    """Maximal marginal relevance (Carbonell & Goldstein, 1998): greedily pick the candidate
    maximising weight * relevance - (1 - weight) * its highest similarity to those picked.
    Returns positions into the candidates, in pick order."""
    k = min(k, len(relevance))
    if k == 0:
        return []
    similarity = vectors @ vectors.T
    chosen = [int(np.argmax(relevance))]
    redundancy = similarity[chosen[0]].copy()
    available = np.ones(len(relevance), dtype=bool)
    available[chosen[0]] = False
    while len(chosen) < k:
        value = weight * relevance - (1.0 - weight) * redundancy
        value[~available] = -np.inf
        pick = int(np.argmax(value))
        chosen.append(pick)
        available[pick] = False
        redundancy = np.maximum(redundancy, similarity[pick])
    return chosen
