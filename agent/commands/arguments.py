"""Argument types shared by the command groups: each names the bad value and what is wanted."""
from __future__ import annotations

import argparse

MAX_SEED = 2**32 - 1
# Upper bounds keep a typo (an extra zero or three) from starting hours of work or
# allocating gigabytes; each is far above any real use.
MAX_COUNT = 1_000_000
MAX_HITS = 1_000


def whole_number(text: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{value} is not at least {low}")
    if value > high:
        raise argparse.ArgumentTypeError(f"{value} is more than {high}")
    return value


def positive_int(text: str) -> int:
    """A count of things to make: 1..MAX_COUNT."""
    return whole_number(text, 1, MAX_COUNT)


def hit_count(text: str) -> int:
    """A number of search hits: 1..MAX_HITS."""
    return whole_number(text, 1, MAX_HITS)


def seed_value(text: str) -> int:
    """A seed: 0..MAX_SEED, the range every generator in Atelier takes."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value} is outside 0..{MAX_SEED}")
    return value
