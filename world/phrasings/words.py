"""Tokens: how phrasings split into words, and every word a phrasing or an edit instruction can
produce."""
from __future__ import annotations

import re

from .dice import plural
from .vocabulary import (ANCHORED_PHRASES, BACKGROUND_PREFIX, BACKGROUND_SUFFIXES,
                         BACKGROUND_WORDS, CLAUSE_BACKGROUND_SUFFIXES, CLAUSE_FRAMES, COLOR_WORDS,
                         DIAGONAL_HORIZONTAL, LITERALS, NEXT_TO_PHRASES, NP_FRAMES, NUMBER_WORDS,
                         PLACE_WORDS, RELATION_PHRASES, SHAPE_WORDS, SIZE_WORDS, THING_WORDS)

TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?|[^\sa-z]")


def tokenize(text: str) -> list[str]:
    """Lower-case words (with their apostrophe: "i'd", "don't") and punctuation marks."""
    return TOKEN.findall(text.lower())


def phrasing_words() -> set[str]:
    texts: list[str] = [*LITERALS, *NUMBER_WORDS.values(), *THING_WORDS,
                        "shape object thing", *NP_FRAMES.values(), *CLAUSE_FRAMES.values(),
                        *BACKGROUND_SUFFIXES, BACKGROUND_PREFIX, *CLAUSE_BACKGROUND_SUFFIXES,
                        *NEXT_TO_PHRASES.values(), *DIAGONAL_HORIZONTAL.values()]
    for table in (SHAPE_WORDS, COLOR_WORDS, BACKGROUND_WORDS, SIZE_WORDS, PLACE_WORDS,
                  RELATION_PHRASES, ANCHORED_PHRASES):
        for words in table.values():
            texts.extend(words)
    texts.extend(plural(w) for words in SHAPE_WORDS.values() for w in words)
    words: set[str] = set()
    for text in texts:
        words.update(tokenize(text.replace("{}", " ")))
    return words


def all_words() -> list[str]:
    """Every token any phrasing or edit instruction can produce, sorted (a tokenizer's
    vocabulary): lower-case words and the punctuation marks , . : ; ?"""
    from ..edits import edit_words  # edits builds on this package; imported when asked
    return sorted(phrasing_words() | edit_words())
