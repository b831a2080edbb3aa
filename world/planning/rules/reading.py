"""Reading a request into an intent. `interpret` answers undo, redo, repairs, references to
earlier images and pastes itself, and hands the rest to reading_composition.py (a new picture)
or reading_edits.py (a change to the current one)."""
from __future__ import annotations

from planners.context import PlanningContext

from .. import language as lang
from ..scenes import scene_of
from .intents import NotRead, Special
from .reading_composition import read_compose
from .reading_edits import read_edit
from .references import Reference
from .words import (PASTE_WORDS, REDO_WORDS, REFERENCE_WORDS, REMOVE_WORDS, RESIZE_VERBS,
                    RESTORE_WORDS, SWAP_WORDS, UNDO_PHRASES, UNDO_WORDS, has_phrase)


def interpret(request: str, context: PlanningContext, found: list[Reference] | None = None):
    """Request -> (intent, reading notes). Raises NotRead when it cannot tell. `found`, when
    given, receives a Reference for each object an edit refers to (see `resolve`)."""
    tokens = lang.tokenize(request)
    words = [t for t in tokens if t[0].isalnum()]
    if not words:
        raise NotRead("the request is empty; say what to draw or change")
    unknown = lang.unknown_words(tokens)
    if unknown:
        quoted = ", ".join(repr(w) for w in unknown)
        raise NotRead(f"I did not understand {quoted}. I know shapes (circle, square, "
                      "triangle), colours (red, green, blue, yellow, purple, cyan), sizes "
                      "(small, large), places (top left ... bottom right), relations (left of, "
                      "above ...) and edits (recolour, move, resize, remove, add, swap colours, "
                      "background).", unknown)
    scene = scene_of(context)
    word_set = set(words)
    # undo / redo
    if word_set & REDO_WORDS:
        return Special("redo"), ["you asked to redo the last undone change"]
    if word_set & UNDO_WORDS or any(has_phrase(words, p) for p in UNDO_PHRASES):
        return Special("undo"), ["you asked to undo the last change"]
    items = lang.chunk(tokens)
    ids = [t for t in tokens if t.startswith(("img_", "ref_"))]
    if word_set & RESTORE_WORDS or "clean" in word_set or (
            "fix" in word_set and not any(i.kind == "mention" for i in items)):
        if scene is None and context.current_image is None:
            raise NotRead("there is no image to restore yet; make one first")
        # "restore this picture of a red circle at the top left": what the person says the
        # image shows guides the repair better than what the detector reads in the damage.
        told = None
        if any(i.kind == "mention" and i.value.has_head and not i.value.pronoun for i in items):
            try:
                told = read_compose([i for i in items if not (i.kind == "mention" and i.value.pronoun)],
                                     words, allow_empty=True)
            except NotRead:
                told = None  # a description it cannot read: the detector's reading guides
        return Special("restore", compose=told), ["you asked to repair the current image"]
    if ids or _mentions_exemplars(words):
        return _read_reference(words, items, ids, context)
    if scene is None:
        editing = word_set & (REMOVE_WORDS | SWAP_WORDS | set(RESIZE_VERBS) | set(lang.COMPARATIVES)
                              | {"move", "shift", "drag", "recolor", "recolour", "reshape"}
                              - {"without"})
        refers = [i.value for i in items if i.kind == "mention" and (i.value.definite or i.value.other)]
        if editing or refers:
            raise NotRead("there is no image to change yet; describe a new picture first, e.g. "
                          "'a red circle at the top left'")
        return read_compose(items, words), []
    return read_edit(items, words, context, scene, found)


def _mentions_exemplars(words: list[str]) -> bool:
    return bool({"examples", "exemplars", "exemplar", "example"} & set(words)) and bool(
        set(words) & REFERENCE_WORDS)


def _read_reference(words, items, ids, context):
    known = set(context.image_ids()) | set(context.exemplar_ids())
    for image_id in ids:
        if image_id not in known:
            raise NotRead(f"there is no image {image_id} in this session; known ids: "
                          f"{', '.join(sorted(known)) or 'none yet'}")
    mentions = [i for i in items if i.kind == "mention" and i.value.has_head
                and not i.value.pronoun]
    places = [i.value for i in items if i.kind == "place"]
    if ids and set(words) & PASTE_WORDS and places and context.current_image is not None:
        return Special("paste", reference=ids[0], place=places[-1]), [
            f"you asked to paste {ids[0]} into the current image"]
    compose = None
    if mentions or any(i.kind == "background" and i.value for i in items):
        compose = read_compose([i for i in items], words, allow_empty=True)
    if not ids:
        return Special("reference", compose=compose, exemplars=True), [
            "you asked for an image like the retrieved examples"]
    if not set(words) & (REFERENCE_WORDS | {"but", "same", "as", "from", "using", "use"}):
        raise NotRead(f"I see {ids[0]} but not what to do with it; say for example "
                      f"'like {ids[0]} but with a blue square' or 'paste {ids[0]} at the top left'")
    return Special("reference", reference=ids[0], compose=compose), [
        f"you asked for a new image following {ids[0]}"]
