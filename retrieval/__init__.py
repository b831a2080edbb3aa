"""Retrieval: find exemplar images for a text or image query."""
