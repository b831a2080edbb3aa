"""Index: CLIP embeddings, a FAISS index and the metadata beside it."""
