"""Image index: open_clip embeddings in FAISS, with metadata in SQLite.

- `embedder.Embedder`: images and texts -> L2-normalised float32 vectors (open_clip).
- `store.IndexStore`: the FAISS index, its metadata and sidecar, saved in atomic generations.
- `collection.Collection`: image files -> store, through an embedder (hashing, dedup, captions).
- `demo`: the seeded shapes-world demo collection.

Nothing here imports torch, faiss or open_clip at import time; each module imports what it
needs when it runs.
"""
