"""What the index reports when it cannot do what was asked; each message names the fix.

The command line maps `IndexInputError` (a bad argument or input) to exit code 2 and every
other `IndexStoreError` to exit code 1.
"""


class IndexStoreError(Exception):
    """Work on an index that could not be done."""


class IndexInputError(IndexStoreError, ValueError):
    """A bad argument: unknown ids, a factory string FAISS cannot parse, a wrong model."""


class IndexNotFound(IndexStoreError):
    """No saved index in the folder."""


class IndexCorrupt(IndexStoreError):
    """A saved generation whose files disagree with each other or cannot be read."""


class IndexBusy(IndexStoreError):
    """Another process saved the index after this one loaded it."""


class EmbedderMismatch(IndexInputError):
    """The index was built with another embedder (vectors from two models do not compare)."""


class UnknownIds(IndexInputError, KeyError):
    """Ids that are not in the index."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelNotFound(IndexStoreError):
    """The embedding model's folder or weights are missing."""
