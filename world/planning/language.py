"""Reading the shapes world's words: tokens, noun phrases ("two big red balls at the top
left"), places, relations, sequences and backgrounds.

The vocabulary is the world's own (world/phrasings/ and world/edits/ say everything the
captioner and the edit phrasings produce), plus a few plain synonyms. A word that is neither
vocabulary nor one of the known function words is reported as not understood: the rule
planner says what it could not read rather than guess around it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from world.edits import RESIZE_WORDS
from world.phrasings import BACKGROUND_WORDS, COLOR_WORDS, SHAPE_WORDS, SIZE_WORDS, plural

from .colours import named_colors

# --- vocabulary ---------------------------------------------------------------------------

EXTRA_SHAPES = {"circle": ("round", "sphere", "orb"), "square": ("cube",),
                "triangle": ("pyramid",)}
EXTRA_COLORS = {"purple": ("lilac", "magenta", "mauve"), "cyan": ("teal", "aqua"),
                "yellow": ("gold", "golden"), "green": ("lime",), "blue": ("navy",),
                "red": ("crimson", "scarlet")}
EXTRA_SIZES = {"small": ("smallish", "mini", "miniature"),
               "large": ("giant", "bigger-sized", "massive", "enormous")}
GENERIC_HEADS = {"shape", "shapes", "object", "objects", "thing", "things", "item", "items",
                 "figure", "figures", "one", "ones"}
PRONOUNS = {"it": "it", "them": "them", "they": "them", "both": "them", "those": "them",
            "these": "them", "this": "it", "that": "it", "everything": "all",
            "all": "all"}
COUNT_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "1": 1, "2": 2, "3": 3, "4": 4,
               "single": 1}
MULTI_COUNTS = {("a", "pair", "of"): 2, ("a", "couple", "of"): 2, ("just", "one"): 1,
                ("a", "single"): 1, ("only", "one"): 1, ("pair", "of"): 2}

COMPARATIVES = {w: size for size, words in RESIZE_WORDS.items() for w in words["comparative"]}
COMPARATIVES.update({"tinier": "small", "smallest": "small", "biggest": "large",
                     "largest": "large", "huger": "large"})

SHAPE_OF: dict[str, str] = {}
for _shape, _words in list(SHAPE_WORDS.items()) + list(EXTRA_SHAPES.items()):
    for _w in _words:
        if " " not in _w:
            SHAPE_OF[_w] = _shape
PLURAL_SHAPE_OF = {plural(w): s for w, s in SHAPE_OF.items()}
PLURAL_SHAPE_OF.update({"discs": "circle", "disks": "circle", "boxes": "square"})
MULTIWORD_SHAPES = {("round", "shape"): "circle", ("round", "shapes"): "circle"}
COLOR_OF = {w: c for table in (COLOR_WORDS, EXTRA_COLORS) for c, ws in table.items() for w in ws}
SIZE_OF = {w: s for table in (SIZE_WORDS, EXTRA_SIZES) for s, ws in table.items() for w in ws}
BACKGROUND_OF = {w: b for b, ws in BACKGROUND_WORDS.items() for w in ws}
NAMED_COLORS = named_colors(COLOR_OF, BACKGROUND_OF)
COLOR_OF.update(NAMED_COLORS)


def color_notes(tokens: list[str]) -> list[str]:
    """How each colour name the world has no word for was read: "teal: read as cyan"."""
    return list(dict.fromkeys(f"{t}: read as {NAMED_COLORS[t]}" for t in tokens
                              if t in NAMED_COLORS))
BACKGROUND_NOUNS = {"background", "backdrop", "backgrounds", "canvas"}

# Place words: vertical and horizontal parts of world/WORLD.md's nine cells.
VERTICAL = {"top": "top", "upper": "top", "bottom": "bottom", "lower": "bottom",
            "middle": "middle", "center": "middle", "centre": "middle"}
HORIZONTAL = {"left": "left", "right": "right", "center": "center", "centre": "center",
              "middle": "center"}
PLACE_PREPOSITIONS = {"at", "in", "on", "near", "to", "toward", "towards", "into", "onto"}
PLACE_TAILS = {"corner", "side", "edge", "part", "half", "area", "region"}
PICTURE_NOUNS = {"picture", "image", "canvas", "frame", "scene", "drawing"}
# Position words used as modifiers of a reference: "the left one", "the upper red circle".
EXTREMES = {"left": "left_of", "leftmost": "left_of", "right": "right_of",
            "rightmost": "right_of", "top": "above", "upper": "above", "topmost": "above",
            "uppermost": "above", "highest": "above", "bottom": "below", "lower": "below",
            "lowest": "below", "bottommost": "below"}

RELATION_PHRASES: dict[tuple[str, ...], tuple[str, ...]] = {}


def _relation(words: str, *relations: str) -> None:
    RELATION_PHRASES[tuple(words.split())] = relations


for _side, _rel in (("left", "left_of"), ("right", "right_of")):
    for _prefix in ("", "to the ", "on the ", "at the ", "just to the ", "directly to the "):
        _relation(f"{_prefix}{_side} of", _rel)
    _relation(f"next to, on the {_side} of", _rel)
for _words, _rel in (("above", "above"), ("over", "above"), ("on top of", "above"),
                     ("higher than", "above"), ("directly above", "above"),
                     ("below", "below"), ("beneath", "below"), ("under", "below"),
                     ("underneath", "below"), ("lower than", "below"),
                     ("directly below", "below"), ("next to", "beside"), ("beside", "beside"),
                     ("by", "beside"), ("alongside", "beside")):
    _relation(_words, _rel)

# "B with A to its left": the relation of A to B, said from B.
ANCHORED_PHRASES: dict[tuple[str, ...], str] = {}
for _side, _rel in (("left", "left_of"), ("right", "right_of")):
    for _words in (f"to its {_side}", f"on its {_side}", f"next to it , on its {_side}",
                   f"next to it on its {_side}", f"to the {_side} of it",
                   f"on the {_side} of it", f"{_side} of it", f"at its {_side}"):
        ANCHORED_PHRASES[tuple(_words.split())] = _rel
for _words, _rel in (("above it", "above"), ("over it", "above"), ("on top of it", "above"),
                     ("below it", "below"), ("beneath it", "below"), ("under it", "below"),
                     ("underneath it", "below"), ("next to it", "beside"),
                     ("beside it", "beside")):
    ANCHORED_PHRASES[tuple(_words.split())] = _rel

SEQUENCE_PHRASES: dict[tuple[str, ...], tuple[str, str]] = {}
for _words, _axis, _kind in (
        ("from left to right", "x", "list"), ("left to right", "x", "list"),
        ("in order from left to right", "x", "list"), ("in order from top to bottom", "y", "list"),
        ("in order from right to left", "-x", "list"), ("in order from bottom to top", "-y", "list"),
        ("from right to left", "-x", "list"), ("from top to bottom", "y", "list"),
        ("top to bottom", "y", "list"), ("from bottom to top", "-y", "list"),
        ("side by side", "x", "group"), ("next to each other", "x", "group"),
        ("one above the other", "y", "group"), ("one on top of the other", "y", "group"),
        ("one below the other", "y", "group"), ("stacked vertically", "y", "group"),
        ("in a row", "x", "group"), ("in a line", "x", "group"),
        ("in a column", "y", "group"), ("a row of", "x", "lead"), ("a column of", "y", "lead"),
        ("a line of", "x", "lead"), ("a stack of", "y", "lead")):
    SEQUENCE_PHRASES[tuple(_words.split())] = (_axis, _kind)

TOTAL_PHRASES = {("in", "total"), ("in", "all"), ("altogether",), ("all", "together")}

# Words that carry no content of their own here: frames ("please draw ... for me"), verbs the
# planner reads through keyword tables, articles and conjunctions.
FUNCTION_WORDS = set("""
a an the and or but with plus of in on at to from by for as is are be been being was were
there here it its it's their them they this that these those there's here's
please can could would will you me my i i'd i'm im we let's lets us our your just also too
now then so ok okay hey hi some any each every all both other another same else instead
draw drawing make making made create creating render rendering paint painting show showing
generate generating give giving want wanted like liked need see get got have has had do
does picture image scene drawing photo one ones new again more another where which what
should shall must might may go goes going gone put place placed placing move moved moving
shift shifted drag dragged turn turned turning change changed changing into color colour
colored coloured recolor recolour reshape replace replaced swap swapped switch switched
exchange exchanged trade traded vice versa remove removed delete deleted erase erased rid
take out away add added adding include included insert inserted scale size sized increase
reduce decrease enlarge enlarged grow shrink shrunk up down very too bit little lot much
use using set background backdrop colors colours shapes' color's colour's same keep kept leave left right top bottom middle center
centre upper lower corner side edge total altogether together row column line pair couple
single only like style looks look based similar following version copy paste pasted drop
reference exemplar exemplars example examples undo redo back restore repair fix fixed clean
denoise sharpen deblur sharper clearer blurry noisy noise blur upscale enhance
first second last previous earlier latest current own thanks thank nice great good
spot position location area region part half canvas frame don't do not no isn't
rather instead bigger larger smaller than bit slightly much way yes sure actually something
never mind really kind maybe perhaps between order
""".split())


def tokenize(text: str) -> list[str]:
    """Lower-case words, image ids (img_3, ref_1) and the punctuation marks , ; : ? ! .
    Hyphens split ("top-left" -> "top left"); curly quotes are straightened."""
    text = text.lower().replace("\u2019", "'").replace("-", " ")
    return re.findall(r"(?:img|ref)_[0-9]+|[a-z0-9]+(?:'[a-z]+)?|[,;:?!.]", text)


# --- items --------------------------------------------------------------------------------

@dataclass
class Mention:
    """A noun phrase: what it says about one object or a group of them."""

    start: int
    end: int
    det: str = ""            # "a", "the", "" ...
    count: int | None = None
    size: str | None = None
    color: str | None = None
    shape: str | None = None
    generic: bool = False     # head is "shape", "object", "one" ...
    plural: bool = False
    pronoun: str | None = None  # "it", "them", "all"
    place: tuple[str, str] | None = None
    extremes: list[str] = field(default_factory=list)  # "the left one" -> ["left_of"]
    other: bool = False       # "the other one"
    anaphoric: bool = False   # head "one": takes its shape from an earlier mention

    @property
    def has_head(self) -> bool:
        return self.shape is not None or self.generic or self.pronoun is not None

    @property
    def definite(self) -> bool:
        return self.det in ("the", "this", "that", "these", "those") or self.pronoun is not None

    @property
    def is_group(self) -> bool:
        return (self.count or 1) > 1 or (self.plural and self.count is None)

    def attrs(self) -> dict:
        return {k: v for k, v in (("shape", self.shape), ("color", self.color),
                                  ("size", self.size)) if v is not None}


@dataclass
class Item:
    kind: str    # mention, relation, anchored, sequence, total, background, sep, word, place
    start: int
    end: int
    value: object = None


def _match_table(tokens: list[str], i: int, table: dict) -> tuple[int, object] | None:
    best = None
    for key, value in table.items():
        n = len(key)
        if tuple(tokens[i:i + n]) == key and (best is None or n > best[0]):
            best = (n, value)
    return best


def match_place(tokens: list[str], i: int) -> tuple[int, tuple[str, str]] | None:
    """A place phrase at i: "at the top left", "in the upper right corner", "to the bottom",
    "in the middle of the left side", "on the left side of the picture". Returns (tokens
    used, (row, column))."""
    j = i
    if j < len(tokens) and tokens[j] in PLACE_PREPOSITIONS:
        j += 1
    else:
        return None
    if j < len(tokens) and tokens[j] == "the":
        j += 1
    else:
        return None
    if tokens[j:j + 3] == ["middle", "of", "the"] and j + 3 < len(tokens):
        side = tokens[j + 3]
        if side in ("left", "right") and j + 4 < len(tokens) and tokens[j + 4] in PLACE_TAILS:
            return j + 5 - i, ("middle", side)
        if side in PICTURE_NOUNS:
            return j + 4 - i, ("middle", "center")
    if j < len(tokens) and tokens[j] == "very":
        j += 1
    row = column = None
    start = j
    while j < len(tokens) and j - start < 2:
        word = tokens[j]
        if row is None and column is None and word in VERTICAL and word not in ("left", "right"):
            # "middle"/"center" alone is the centre cell; before a side word it is a row.
            row = VERTICAL[word]
        elif word in HORIZONTAL and column is None and (row is not None or word in ("left", "right")):
            column = HORIZONTAL[word]
        elif word in HORIZONTAL and column is None and row is None:
            column = HORIZONTAL[word]
        else:
            break
        j += 1
    if row is None and column is None:
        return None
    if j < len(tokens) and tokens[j] in PLACE_TAILS:
        j += 1
    if tokens[j:j + 2] == ["of", "the"] and j + 2 < len(tokens) and tokens[j + 2] in PICTURE_NOUNS:
        j += 3
    # A relation ("to the left of X") is not a place; the caller tries relations first.
    if j < len(tokens) and tokens[j] == "of":
        return None
    if row == "middle" and column is None:
        column = "center"
    return j - i, (row or "middle", column or "center")


def chunk(tokens: list[str]) -> list[Item]:
    """Tokens -> items: mentions, relation / anchored / sequence phrases, places,
    backgrounds, separators and other words."""
    items: list[Item] = []
    i = 0
    n = len(tokens)
    while i < n:
        word = tokens[i]
        for table, kind in ((ANCHORED_PHRASES, "anchored"), (SEQUENCE_PHRASES, "sequence")):
            found = _match_table(tokens, i, table)
            if found:
                items.append(Item(kind, i, i + found[0], found[1]))
                i += found[0]
                break
        else:
            found = _match_table(tokens, i, RELATION_PHRASES)
            place = match_place(tokens, i)
            if place and (not found or place[0] >= found[0]):
                items.append(Item("place", i, i + place[0], place[1]))
                i += place[0]
                continue
            if found and match_place(tokens, i + found[0]):
                found = None  # "move it over to the corner": "over" says nothing here
            if found and not (word == "by" and i + 1 < n and tokens[i + 1] not in ("a", "an", "the")):
                items.append(Item("relation", i, i + found[0], found[1]))
                i += found[0]
                continue
            total = _match_table(tokens, i, {k: True for k in TOTAL_PHRASES})
            if total:
                items.append(Item("total", i, i + total[0]))
                i += total[0]
                continue
            background = _background_at(tokens, i)
            if background:
                items.append(Item("background", i, i + background[0], background[1]))
                i += background[0]
                continue
            mention = _mention_at(tokens, i)
            if mention:
                items.append(Item("mention", mention.start, mention.end, mention))
                i = mention.end
                continue
            if word in (",", ";", ":", "and", "plus", "with", "."):
                items.append(Item("sep", i, i + 1, word))
            else:
                items.append(Item("word", i, i + 1, word))
            i += 1
    return items


def _background_at(tokens: list[str], i: int) -> tuple[int, str] | None:
    """"a gray background", "dark backdrop", "background gray", "the background is black",
    "the background should be black", "background to black"."""
    word = tokens[i]
    if word in BACKGROUND_OF and i + 1 < len(tokens) and tokens[i + 1] in BACKGROUND_NOUNS:
        return 2, BACKGROUND_OF[word]
    if word in BACKGROUND_NOUNS:
        j = i + 1
        while j < len(tokens) and j - i <= 4 and tokens[j] in (
                "is", "be", "should", "to", "color", "colour", "in", "a", "an", "must",
                "needs", "made", "of", "turned", "changed", "into", "please"):
            j += 1
        if j < len(tokens) and tokens[j] in BACKGROUND_OF:
            return j + 1 - i, BACKGROUND_OF[tokens[j]]
        return 1, None  # "the background" alone: the thing an edit is about
    return None


def _mention_at(tokens: list[str], i: int) -> Mention | None:
    """A noun phrase starting at i, or None. Grammar, loosely:
    [quantifier] [det | count] [other] [position | size | colour]* [head] ["in" colour] [place]
    or a pronoun ("it", "them", "both of them")."""
    n = len(tokens)
    m = Mention(i, i)
    j = i
    word = tokens[j]
    # Pronouns, unless they start a noun phrase ("that circle", "both circles").
    determiner = word in ("this", "that", "these", "those", "both", "all")
    if word in PRONOUNS and not (determiner and _phrase_follows(tokens, j + 1)):
        m.pronoun = PRONOUNS[word]
        j += 1
        if tokens[j:j + 2] in (["of", "them"], ["of", "these"], ["of", "those"]):
            j += 2
            m.pronoun = "them"
        elif m.pronoun == "them" and j < n and tokens[j] in ("all", "both"):
            m.count = 2 if tokens[j] == "both" else None
            j += 1
        if word == "both":
            m.count = 2
        m.end = j
        return m
    # Quantifiers over a set: "all the circles", "both red ones", "every square".
    if word in ("all", "both", "every", "each"):
        m.det, m.plural = "the", True
        if word == "both":
            m.count = 2
        j += 1
        if tokens[j:j + 1] == ["of"]:
            j += 1
        if tokens[j:j + 1] == ["the"]:
            j += 1
    else:
        counted = _match_table(tokens, j, MULTI_COUNTS)
        if counted:
            m.count, j = counted[1], j + counted[0]
        elif word in ("a", "an", "the", "this", "that", "these", "those", "another"):
            m.det = "a" if word == "another" else word
            j += 1
    # "one" after an article is the head ("the one on the left", "a red one"), else a count.
    if (j < n and tokens[j] in COUNT_WORDS
            and not (tokens[j] == "one" and m.det in ("the", "a", "an", "this", "that"))):
        m.count = COUNT_WORDS[tokens[j]]
        j += 1
    if j < n and tokens[j] == "other":
        m.other = True
        j += 1
    attributes = False
    definite = m.det in ("the", "this", "that", "these", "those")
    while j < n:
        word = tokens[j]
        if word in SIZE_OF and m.size is None:
            m.size = SIZE_OF[word]
        elif word in COLOR_OF and m.color is None:
            m.color = COLOR_OF[word]
        elif word in EXTREMES and definite and _head_next(tokens, j + 1):
            m.extremes.append(EXTREMES[word])
        elif word in ("very", "light", "dark", "bright", "pale") and j + 1 < n and tokens[j + 1] in COLOR_OF:
            pass  # a shade reads as the colour itself
        else:
            break
        attributes = True
        j += 1
    head = _match_table(tokens, j, MULTIWORD_SHAPES)
    if head:
        m.shape = head[1]
        m.plural = m.plural or tokens[j + head[0] - 1].endswith("s")
        j += head[0]
    elif j < n and tokens[j] in SHAPE_OF:
        m.shape = SHAPE_OF[tokens[j]]
        j += 1
    elif j < n and tokens[j] in PLURAL_SHAPE_OF:
        m.shape, m.plural = PLURAL_SHAPE_OF[tokens[j]], True
        j += 1
    elif j < n and tokens[j] in GENERIC_HEADS and (m.det or m.count or attributes or m.other):
        m.generic = True
        m.plural = m.plural or tokens[j].endswith("s")
        m.anaphoric = tokens[j] in ("one", "ones")
        j += 1
    if j == i or not (m.has_head or attributes or m.count is not None):
        return None
    if not m.has_head and not attributes and m.det and m.count is None:
        return None  # a bare article
    # "a ball in red"
    if (j + 1 < n and tokens[j] == "in" and tokens[j + 1] in COLOR_OF and m.color is None
            and m.has_head and not (j + 2 < n and tokens[j + 2] in BACKGROUND_NOUNS)):
        m.color = COLOR_OF[tokens[j + 1]]
        j += 2
    if m.count is None and m.det in ("a", "an"):
        m.count = 1
    if m.det in ("these", "those"):
        m.plural = True
    m.end = j
    return m


def _phrase_follows(tokens: list[str], j: int) -> bool:
    """Does a noun phrase (adjectives and/or a head) start at j?"""
    return j < len(tokens) and (tokens[j] in SIZE_OF or tokens[j] in COLOR_OF
                                or tokens[j] in SHAPE_OF or tokens[j] in PLURAL_SHAPE_OF
                                or tokens[j] in ("the", "other", "ones")
                                or (tokens[j] in GENERIC_HEADS and tokens[j] != "one"))


def _head_next(tokens: list[str], j: int) -> bool:
    """Is there a head at j, perhaps after adjectives ("the left red one")?"""
    while j < len(tokens) and (tokens[j] in SIZE_OF or tokens[j] in COLOR_OF
                               or tokens[j] in EXTREMES):
        j += 1
    return j < len(tokens) and (tokens[j] in SHAPE_OF or tokens[j] in PLURAL_SHAPE_OF
                                or tokens[j] in GENERIC_HEADS
                                or tuple(tokens[j:j + 2]) in MULTIWORD_SHAPES)


def _world_words() -> set[str]:
    from world.phrasings import all_words
    return set(all_words())


def unknown_words(tokens: list[str]) -> list[str]:
    """Words the planner has no reading for, in order, once each."""
    known = _KNOWN or _known()
    found = []
    for word in tokens:
        if re.fullmatch(r"(?:img|ref)_[0-9]+", word) or not re.match(r"[a-z0-9]", word):
            continue
        if word not in known and word not in found:
            found.append(word)
    return found


_KNOWN: set[str] = set()


def _known() -> set[str]:
    known = (set(SHAPE_OF) | set(PLURAL_SHAPE_OF) | set(COLOR_OF) | set(SIZE_OF)
             | set(BACKGROUND_OF) | BACKGROUND_NOUNS | set(COUNT_WORDS) | GENERIC_HEADS
             | set(PRONOUNS) | set(VERTICAL) | set(HORIZONTAL) | PLACE_PREPOSITIONS
             | PLACE_TAILS | PICTURE_NOUNS | set(EXTREMES) | set(COMPARATIVES)
             | FUNCTION_WORDS | {w for k in RELATION_PHRASES for w in k}
             | {w for k in ANCHORED_PHRASES for w in k} | {w for k in SEQUENCE_PHRASES for w in k}
             | {w for k in MULTI_COUNTS for w in k} | {"round", "shade", "tone", "hue", "sized",
                                                      "bright", "pale", "light", "dark", "very"})
    _KNOWN.update(known | _world_words())
    return _KNOWN
