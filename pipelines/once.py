"""Made once, by one thread: lazily loaded models and the other resources threads share.

    self._base = Once()
    pipe = self._base.get(lambda: load(...))     # the first caller loads; the rest wait for it

Two kinds of lock. Each lazy value has its own (`Once`, or `OnceMap` for values by key): the
first thread that asks makes the value, and any thread that asks meanwhile waits and gets the
same object, so a script's eight workers or a page's first requests never load a model twice.

And every model build in the process holds one lock (`building()`). diffusers' and
transformers' `from_pretrained` first build their modules on the meta device by patching
`torch.nn.Module` for the whole process (accelerate's `init_empty_weights`), so any module
that another thread builds at that moment, whatever model it belongs to, comes out with meta
tensors and fails later with "Cannot copy out of meta tensor; no data!". Builds therefore run
one at a time; using built models is not serialised here.

Lock order: a `Once` lock may be held while taking `building()`, never the reverse (nothing
asks a lazy value from inside a build), so the two cannot deadlock.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Callable, Generic, Hashable, Iterator, TypeVar

T = TypeVar("T")

# Re-entrant: a build may build its parts (a pipeline loading its text encoder).
_BUILD_LOCK = threading.RLock()


@contextmanager
def building() -> Iterator[None]:
    """Hold while building or loading any torch module (see the module docstring)."""
    with _BUILD_LOCK:
        yield


class Once(Generic[T]):
    """A value made on first use by exactly one thread. A make that raises leaves nothing
    behind: the next caller tries again (and sees the error again, if it persists)."""

    __slots__ = ("_lock", "_made", "_value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made = False
        self._value: T | None = None

    def get(self, make: Callable[[], T]) -> T:
        if self._made:  # set only after the value, so a reader never sees half of it
            return self._value  # type: ignore[return-value]
        with self._lock:
            if not self._made:
                self._value = make()
                self._made = True
        return self._value  # type: ignore[return-value]

    @property
    def made(self) -> bool:
        return self._made

    def peek(self) -> T | None:
        """The value if it has been made, else None; never makes it."""
        return self._value if self._made else None


class OnceMap(Generic[T]):
    """`Once` per key: values by key, each made once; different keys are made side by side."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[Hashable, Once[T]] = {}

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        slot = self._slots.get(key)
        if slot is None:
            with self._lock:
                slot = self._slots.setdefault(key, Once())
        return slot.get(make)

    def __contains__(self, key: Hashable) -> bool:
        slot = self._slots.get(key)
        return slot is not None and slot.made

    def values(self) -> list[T]:
        return [slot.peek() for slot in list(self._slots.values()) if slot.made]
