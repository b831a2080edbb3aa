"""Many true ways to say what a scene shows, for planners and text encoders to learn from.

Every phrasing names every object of the scene (a request that leaves an object out would ask
for a different scene), with synonyms, optional sizes and places, counts, relations and
whole sentences. Each phrasing also carries the constraints it states (see check.py), so a
phrasing doubles as a checkable request.

A phrasing is built from random choices in one pass rather than by listing every phrasing and
picking one: training loops call `random_phrasing` about 100k times.

By file: vocabulary.py (the words and sentence frames), dice.py (cheap random choices),
families.py (the ways to say a scene), sampling.py (whole phrasings of a scene) and words.py
(tokens, and every word a phrasing or an edit instruction can produce).
"""
from .dice import Dice, article, join_and, plural
from .families import (CLAUSE_FAMILIES, FAMILIES, FAMILY_WEIGHTS, applicable_families,
                       phrasing_templates)
from .sampling import Phrasing, phrasings, random_phrasing, sample_phrasing
from .vocabulary import (ANCHORED_PHRASES, BACKGROUND_PREFIX, BACKGROUND_SUFFIXES,
                         BACKGROUND_WORDS, CLAUSE_BACKGROUND_SUFFIXES, CLAUSE_FRAMES, COLOR_WORDS,
                         DIAGONAL_HORIZONTAL, LITERALS, NEXT_TO_PHRASES, NP_FRAMES, NUMBER_WORDS,
                         PLACE_WORDS, RELATION_PHRASES, SHAPE_WORDS, SIZE_WORDS, THING_WORDS,
                         VOCAB, phrasing_frames)
from .words import TOKEN, all_words, phrasing_words, tokenize


__all__ = [
    # phrasings of a scene
    "Phrasing", "phrasings", "random_phrasing", "sample_phrasing",
    "applicable_families", "phrasing_frames", "phrasing_templates",
    "CLAUSE_FAMILIES", "FAMILIES", "FAMILY_WEIGHTS",
    # the vocabulary
    "ANCHORED_PHRASES", "BACKGROUND_PREFIX", "BACKGROUND_SUFFIXES", "BACKGROUND_WORDS",
    "CLAUSE_BACKGROUND_SUFFIXES", "CLAUSE_FRAMES", "COLOR_WORDS", "DIAGONAL_HORIZONTAL",
    "LITERALS", "NEXT_TO_PHRASES", "NP_FRAMES", "NUMBER_WORDS", "PLACE_WORDS",
    "RELATION_PHRASES", "SHAPE_WORDS", "SIZE_WORDS", "THING_WORDS", "VOCAB",
    # random choices and word helpers
    "Dice", "article", "join_and", "plural",
    # words (WORDS too, built on first use below; left out here so `import *` does not build it)
    "TOKEN", "all_words", "phrasing_words", "tokenize",
]


def __getattr__(name: str):
    # WORDS needs world/edits, which imports this package: build it on first use.
    if name == "WORDS":
        words = all_words()
        globals()["WORDS"] = words
        return words
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

