"""The words phrasings are made of: synonyms per shape, colour, background, size and cell,
relation phrases, background phrases and the sentence frames around a phrasing."""
from __future__ import annotations

SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "ball", "dot", "disc", "disk", "round shape"),
    "square": ("square", "box", "block", "tile"),
    "triangle": ("triangle",),
}
COLOR_WORDS: dict[str, tuple[str, ...]] = {
    "red": ("red",), "green": ("green",), "blue": ("blue",), "yellow": ("yellow",),
    "purple": ("purple", "violet"), "cyan": ("cyan", "turquoise"),
}
BACKGROUND_WORDS: dict[str, tuple[str, ...]] = {
    "white": ("white", "light"), "gray": ("gray", "grey"), "black": ("black", "dark"),
}
SIZE_WORDS: dict[str, tuple[str, ...]] = {
    "small": ("small", "tiny", "little"), "large": ("large", "big", "huge"),
}


def _corner(row: str, col: str, vertical: str) -> tuple[str, ...]:
    return (f"at the {row} {col}", f"in the {row} {col}", f"in the {row} {col} corner",
            f"in the {vertical} {col}", f"in the {vertical} {col} corner")


def _side(col: str) -> tuple[str, ...]:
    return (f"on the {col}", f"at the {col}", f"on the {col} side", f"at the {col} side",
            f"in the middle of the {col} side")


# Each of world/WORLD.md's nine cells, said several ways; every phrase names exactly that cell.
PLACE_WORDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("top", "left"): _corner("top", "left", "upper"),
    ("top", "right"): _corner("top", "right", "upper"),
    ("bottom", "left"): _corner("bottom", "left", "lower"),
    ("bottom", "right"): _corner("bottom", "right", "lower"),
    ("top", "center"): ("at the top", "near the top", "at the top center", "in the top middle"),
    ("bottom", "center"): ("at the bottom", "near the bottom", "at the bottom center",
                           "in the bottom middle"),
    ("middle", "left"): _side("left"),
    ("middle", "right"): _side("right"),
    ("middle", "center"): ("in the center", "in the middle", "at the center",
                           "in the middle of the picture"),
}

VOCAB = {"shape": SHAPE_WORDS, "color": COLOR_WORDS, "background": BACKGROUND_WORDS,
         "size": SIZE_WORDS, "place": PLACE_WORDS}

NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}
THING_WORDS = ("shapes", "objects", "things")

RELATION_PHRASES = {
    "left_of": ("left of", "to the left of", "on the left of"),
    "right_of": ("right of", "to the right of", "on the right of"),
    "above": ("above", "over"),
    "below": ("below", "beneath", "under", "underneath"),
}
# "B with A to its left": the relation of A to B, said from B.
ANCHORED_PHRASES = {
    "left_of": ("to its left", "on its left"),
    "right_of": ("to its right", "on its right"),
    "above": ("above it", "over it"),
    "below": ("below it", "beneath it", "under it"),
}
NEXT_TO_PHRASES = {"left_of": "next to it, on its left", "right_of": "next to it, on its right"}
DIAGONAL_HORIZONTAL = {"left_of": "to the left of", "right_of": "to the right of"}

BACKGROUND_SUFFIXES = (", on a {} background", " on a {} background",
                       " against a {} background", ", with a {} background",
                       " with a {} background", ", on a {} backdrop")
BACKGROUND_PREFIX = "on a {} background, "
CLAUSE_BACKGROUND_SUFFIXES = (", and the background is {}", "; the background is {}",
                              " on a {} background")

# Sentence frames around a noun phrase ("np") or a clause ("there is ..."), by name.
NP_FRAMES: dict[str, str] = {
    "bare": "{}", "draw": "Draw {}.", "please_draw": "Please draw {}.",
    "can_you": "Can you draw {}?", "could_you": "Could you make {}?", "id_like": "I'd like {}.",
    "picture_of": "I would like a picture of {}.", "please_make": "Please make {}.",
    "make": "Make {}.", "show": "Show me {}.", "generate": "Generate an image of {}.",
    "create": "Create {}.", "a_picture": "A picture of {}.", "an_image": "An image with {}.",
    "paint": "Paint {}.", "render": "Render {}.", "give_me": "Give me {}.", "i_want": "I want {}.",
    "draw_me": "Draw me {}.",
}
CLAUSE_FRAMES: dict[str, str] = {
    "bare": "{}", "sentence": "{}.", "picture_where": "Draw a picture where {}.",
    "scene_where": "Make a scene in which {}.", "image_where": "Generate an image where {}.",
}

# Literal words the family builders use, kept here so `all_words` sees them all.
LITERALS = (
    "a an and the in of a pair of a single just one one two three four",
    "there is there are is in total in order from left to right from top to bottom",
    "side by side one above the other a row of a column of above and below",
    "a {} one one {} : ; , and , plus",
)


def phrasing_frames() -> tuple[str, ...]:
    """Names of the sentence frames ("Draw ...", "Can you draw ...?"); pass a subset as
    `frames` to hold others out."""
    return tuple(dict.fromkeys([*NP_FRAMES, *CLAUSE_FRAMES]))
