"""The edit kinds and their instruction templates, with the words that fill them; every word
an instruction can hold (`edit_words`)."""
from __future__ import annotations

import re

from ..phrasings import (BACKGROUND_WORDS, COLOR_WORDS, PLACE_WORDS, RELATION_PHRASES,
                         SHAPE_WORDS, SIZE_WORDS, tokenize)

EDIT_KINDS = ("recolor", "reshape", "move", "resize", "remove", "add", "swap_colors",
              "background")
STYLES = ("plain", "please", "question", "wish", "should")

# Templates per kind: (name, style, text, condition). Conditions: "pair" needs a scene of
# exactly two objects ("swap their colors"); "level" needs a left/right relation.
_T = tuple[str, str, str, str | None]
TEMPLATES: dict[str, tuple[_T, ...]] = {
    "recolor": (
        ("make", "plain", "make {ref} {color}", None),
        ("turn", "plain", "turn {ref} {color}", None),
        ("color", "plain", "color {ref} {color}", None),
        ("paint", "plain", "paint {ref} {color}", None),
        ("change_to", "plain", "change {ref} to {color}", None),
        ("change_color", "plain", "change the color of {ref} to {color}", None),
        ("recolor", "plain", "recolor {ref} {color}", None),
        ("please_make", "please", "please make {ref} {color}", None),
        ("please_paint", "please", "please paint {ref} {color}", None),
        ("can_you", "question", "can you make {ref} {color}?", None),
        ("could_you", "question", "could you color {ref} {color}?", None),
        ("want", "wish", "I want {ref} to be {color}", None),
        ("like", "wish", "I'd like {ref} in {color}", None),
        ("should", "should", "{ref} should be {color}", None),
        ("instead", "should", "{ref} should be {color} instead", None),
    ),
    "reshape": (
        ("turn_into", "plain", "turn {ref} into {shape}", None),
        ("make", "plain", "make {ref} {shape}", None),
        ("change_into", "plain", "change {ref} into {shape}", None),
        ("change_to", "plain", "change {ref} to {shape}", None),
        ("reshape", "plain", "reshape {ref} into {shape}", None),
        ("replace", "plain", "replace {ref} with {shape} of the same color", None),
        ("please_turn", "please", "please turn {ref} into {shape}", None),
        ("please_make", "please", "please make {ref} {shape}", None),
        ("can_you", "question", "can you turn {ref} into {shape}?", None),
        ("could_you", "question", "could you change {ref} to {shape}?", None),
        ("want", "wish", "I want {ref} to be {shape}", None),
        ("like", "wish", "I'd like {ref} to be {shape}", None),
        ("should", "should", "{ref} should be {shape}", None),
        ("instead", "should", "{ref} should be {shape} instead", None),
    ),
    "move_place": (
        ("move", "plain", "move {ref} {dest}", None),
        ("put", "plain", "put {ref} {loc}", None),
        ("place", "plain", "place {ref} {loc}", None),
        ("shift", "plain", "shift {ref} {dest}", None),
        ("drag", "plain", "drag {ref} {dest}", None),
        ("move_over", "plain", "move {ref} over {dest}", None),
        ("please_move", "please", "please move {ref} {dest}", None),
        ("please_put", "please", "please put {ref} {loc}", None),
        ("can_you", "question", "can you move {ref} {dest}?", None),
        ("could_you", "question", "could you put {ref} {loc}?", None),
        ("want", "wish", "I want {ref} {loc}", None),
        ("like", "wish", "I'd like {ref} moved {dest}", None),
        ("should", "should", "{ref} should be {loc}", None),
        ("should_go", "should", "{ref} should go {dest}", None),
    ),
    "move_relative": (
        ("move", "plain", "move {ref} {rel} {anchor}", None),
        ("put", "plain", "put {ref} {rel} {anchor}", None),
        ("place", "plain", "place {ref} {rel} {anchor}", None),
        ("shift", "plain", "shift {ref} so it is {rel} {anchor}", None),
        ("next_to", "plain", "put {ref} next to {anchor}, on its {side}", "level"),
        ("please_move", "please", "please move {ref} {rel} {anchor}", None),
        ("please_put", "please", "please put {ref} {rel} {anchor}", None),
        ("can_you", "question", "can you move {ref} {rel} {anchor}?", None),
        ("could_you", "question", "could you put {ref} {rel} {anchor}?", None),
        ("want", "wish", "I want {ref} {rel} {anchor}", None),
        ("like", "wish", "I'd like {ref} moved {rel} {anchor}", None),
        ("should", "should", "{ref} should be {rel} {anchor}", None),
        ("should_go", "should", "{ref} should go {rel} {anchor}", None),
    ),
    "resize": (
        ("make_comparative", "plain", "make {ref} {comparative}", None),
        ("make_size", "plain", "make {ref} {size}", None),
        ("verb", "plain", "{verb} {ref}", None),
        ("scale", "plain", "scale {ref} {updown}", None),
        ("change_size", "plain", "{change} the size of {ref}", None),
        ("size_to", "plain", "change the size of {ref} to {size}", None),
        ("too", "plain", "{ref} is too {opposite}, make it {comparative}", None),
        ("please_make", "please", "please make {ref} {comparative}", None),
        ("please_verb", "please", "please {verb} {ref}", None),
        ("can_you", "question", "can you make {ref} {comparative}?", None),
        ("could_you", "question", "could you {verb} {ref}?", None),
        ("want", "wish", "I want {ref} to be {comparative}", None),
        ("like", "wish", "I'd like {ref} {comparative}", None),
        ("should", "should", "{ref} should be {comparative}", None),
        ("should_size", "should", "{ref} should be {size}", None),
    ),
    "remove": (
        ("remove", "plain", "remove {ref}", None),
        ("delete", "plain", "delete {ref}", None),
        ("get_rid", "plain", "get rid of {ref}", None),
        ("erase", "plain", "erase {ref}", None),
        ("take_out", "plain", "take out {ref}", None),
        ("take_away", "plain", "take away {ref}", None),
        ("please_remove", "please", "please remove {ref}", None),
        ("please_delete", "please", "please delete {ref}", None),
        ("can_you", "question", "can you remove {ref}?", None),
        ("could_you", "question", "could you get rid of {ref}?", None),
        ("dont_want", "wish", "I don't want {ref}", None),
        ("like_gone", "wish", "I'd like {ref} gone", None),
        ("should_go", "should", "{ref} should go", None),
        ("has_to_go", "should", "{ref} has to go", None),
    ),
    "add": (
        ("add", "plain", "add {new}", None),
        ("also_draw", "plain", "also draw {new}", None),
        ("draw_too", "plain", "draw {new} too", None),
        ("include", "plain", "include {new}", None),
        ("insert", "plain", "insert {new}", None),
        ("now_add", "plain", "now add {new}", None),
        ("please_add", "please", "please add {new}", None),
        ("please_draw", "please", "please also draw {new}", None),
        ("can_you", "question", "can you add {new}?", None),
        ("could_you", "question", "could you also draw {new}?", None),
        ("like", "wish", "I'd like {new} as well", None),
        ("want", "wish", "I want {new} too", None),
        ("should", "should", "there should also be {new}", None),
        ("should_add", "should", "{new} should be added", None),
    ),
    "swap_colors": (
        ("swap", "plain", "swap the colors of {a} and {b}", None),
        ("switch", "plain", "switch the colors of {a} and {b}", None),
        ("exchange", "plain", "exchange the colors of {a} and {b}", None),
        ("explicit", "plain", "make {a} {color_b} and {b} {color_a}", None),
        ("vice_versa", "plain", "give {a} the color of {b} and vice versa", None),
        ("trade", "plain", "trade colors between {a} and {b}", None),
        ("their", "plain", "swap their colors", "pair"),
        ("switch_their", "plain", "switch their colors", "pair"),
        ("please_swap", "please", "please swap the colors of {a} and {b}", None),
        ("please_their", "please", "please swap their colors", "pair"),
        ("can_you", "question", "can you swap the colors of {a} and {b}?", None),
        ("could_you", "question", "could you swap their colors?", "pair"),
        ("want", "wish", "I want {a} and {b} to trade colors", None),
        ("like", "wish", "I'd like their colors swapped", "pair"),
        ("should", "should", "{a} and {b} should swap colors", None),
        ("should_their", "should", "their colors should be swapped", "pair"),
    ),
    "background": (
        ("make", "plain", "make the background {bg}", None),
        ("change", "plain", "change the background to {bg}", None),
        ("turn", "plain", "turn the background {bg}", None),
        ("use", "plain", "use a {bg} background", None),
        ("set", "plain", "set the background to {bg}", None),
        ("paint", "plain", "paint the background {bg}", None),
        ("switch", "plain", "switch to a {bg} background", None),
        ("please_make", "please", "please make the background {bg}", None),
        ("please_use", "please", "please use a {bg} background", None),
        ("can_you", "question", "can you make the background {bg}?", None),
        ("could_you", "question", "could you change the background to {bg}?", None),
        ("want", "wish", "I want a {bg} background", None),
        ("like", "wish", "I'd like the background {bg}", None),
        ("should", "should", "the background should be {bg}", None),
        ("instead", "should", "the background should be {bg} instead", None),
    ),
}
TEMPLATE_GROUPS = {"move": ("move_place", "move_relative")}

RESIZE_WORDS = {
    # To the size named by the key.
    "large": {"comparative": ("bigger", "larger"), "verb": ("enlarge", "grow"),
              "updown": ("up",), "change": ("increase",)},
    "small": {"comparative": ("smaller",), "verb": ("shrink",), "updown": ("down",),
              "change": ("reduce", "decrease")},
}
# Destination phrases: each place phrase with "to" ("at the top left" -> "to the top left").
DESTINATION_WORDS = {cell: tuple(dict.fromkeys("to " + p.split(" ", 1)[1] for p in phrases))
                     for cell, phrases in PLACE_WORDS.items()}
EXTREME_WORDS = {
    "left_of": ("the {} on the left", "the leftmost {}", "the left {}"),
    "right_of": ("the {} on the right", "the rightmost {}", "the right {}"),
    "above": ("the top {}", "the upper {}", "the topmost {}"),
    "below": ("the bottom {}", "the lower {}", "the lowest {}"),
}
GENERIC_NOUNS = ("one", "shape", "object")
SIDE_WORDS = {"left_of": "left", "right_of": "right"}


def edit_templates() -> tuple[str, ...]:
    """Instruction template families (styles); pass a subset as `families` to hold the rest
    out. `edit_template_ids` names single templates."""
    return STYLES


def edit_template_ids(kind: str | None = None) -> tuple[str, ...]:
    groups = TEMPLATE_GROUPS.get(kind, (kind,)) if kind else tuple(TEMPLATES)
    return tuple(f"{g}.{t[0]}" for g in groups for t in TEMPLATES[g])


def edit_words() -> set[str]:
    texts = [t[2] for group in TEMPLATES.values() for t in group]
    texts += [w for words in RESIZE_WORDS.values() for v in words.values() for w in v]
    texts += [w for phrases in DESTINATION_WORDS.values() for w in phrases]
    texts += [w for forms in EXTREME_WORDS.values() for w in forms]
    texts += [*GENERIC_NOUNS, *SIDE_WORDS.values(), "it the a an", "the shape the object"]
    for table in (SHAPE_WORDS, COLOR_WORDS, BACKGROUND_WORDS, SIZE_WORDS, PLACE_WORDS,
                  RELATION_PHRASES):
        for words in table.values():
            texts.extend(words)
    words: set[str] = set()
    for text in texts:
        words.update(tokenize(re.sub(r"\{\w*\}", " ", text)))
    return words
