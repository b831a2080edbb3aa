"""Reading a description of a picture in any vocabulary: which things, how many, where.

    read_description("two red cars at the top left and a dog below a tree, on a snowy background")
    -> Description(things=[Thing("red car", 2, ("top", "left")), Thing("dog", 1, None),
                           Thing("tree", 1, None)],
                   relations=[(1, "below", 2)], background="snowy")

The words it knows are the language of counting and placing (numbers, "left of", "at the top
left", "on a ... background"); every other word belongs to a thing's phrase, whatever it names;
after the first, only parts that open with an article or a number are things ("oil painting" in
"a lighthouse, oil painting" is a style). Places are the cells of a 3 x 3 grid (rows top,
middle, bottom; columns left, center, right), as the planners' boxes use them. A description it
cannot split into things is read as one thing.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

ROWS = ("top", "middle", "bottom")
COLUMNS = ("left", "center", "right")
NUMBERS = {"a": 1, "an": 1, "one": 1, "single": 1, "two": 2, "pair": 2, "couple": 2, "three": 3,
           "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}
DETERMINERS = frozenset({"the", "some", "of", "with", "and"})
# Longest first, so "to the left of" is not read as "left of" with "to the" left over.
# "below and to the right of" is one relation of two parts, kept whole through the split
# at "and" as one word.
COMPOUND = re.compile(r"\b(above|below) and to the (left|right) of\b")
RELATIONS = (
    ("below-left-of", ("below", "left_of")), ("above-left-of", ("above", "left_of")),
    ("below-right-of", ("below", "right_of")), ("above-right-of", ("above", "right_of")),
    ("to the left of", ("left_of",)), ("on the left of", ("left_of",)), ("left of", ("left_of",)),
    ("to the right of", ("right_of",)), ("on the right of", ("right_of",)),
    ("right of", ("right_of",)), ("on top of", ("above",)), ("above", ("above",)),
    ("over", ("above",)), ("underneath", ("below",)), ("beneath", ("below",)),
    ("below", ("below",)), ("under", ("below",)),
)
# "a dress in red": a trailing "in <word>" is said before the noun.
TRAILING_IN = re.compile(r"^(?P<head>.+?) in (?P<word>[\w-]+)$")
PLACE = re.compile(
    r"\b(?:at|in|on|near) the (?:very )?(?P<vertical>top|upper|bottom|lower|middle|center|"
    r"centre)?(?:\s*(?P<horizontal>left|right|middle|center|centre))?"
    r"(?: (?:corner|side|edge|part))?"
    r"(?: of the (?:(?P<side>left|right) side|picture|image|canvas|frame))?\b")
BACKGROUND = re.compile(r"\b(?:on|against|over|with|in front of) (?:a |an |the )?"
                        r"(?P<what>[\w\s-]*?)\s*(?:background|backdrop)\b")
# How a request opens before it says what is in the picture: "please draw", "give me", "make
# a scene in which", "i'd like a picture of", "there is".
FRAME = re.compile(
    r"^(?:(?:please|now|ok|okay|hi|hey|so)[,\s]+)*"
    r"(?:(?:can|could|would|will) you (?:please )?)?"
    r"(?:(?:i(?:'d| would)? (?:like|want|need)(?: to (?:see|have))?|let me see|let's (?:see|have)|"
    r"give me|show me|make me|draw me|paint me|draw|paint|make|create|generate|render|show|"
    r"produce|sketch|depict|imagine|picture)\s+)?"
    r"(?:(?:a|an|the|one)\s+)?(?:(?:new\s+)?(?:scene|picture|image|drawing|painting|photo|canvas|"
    r"composition|frame)\s+(?:in which|where|with|of|showing|that shows|that has|containing)\s+)?"
    r"(?:there (?:is|are|should be)\s+)?")
# "...; the background is white": a background said as a sentence of its own.
BACKGROUND_SENTENCE = re.compile(r"\b(?:the )?(?:background|backdrop) (?:is|should be) "
                                 r"(?:a |an )?(?P<what>[\w\s-]+?)\s*(?:[,;.]|$)")
# Words around a thing that are not part of it: "there is", "is", "just", "only".
COPULA = re.compile(r"^(?:(?:there|here) (?:is|are|should be)|is|are|should be|just|only|exactly)"
                    r"\s+|\s+(?:is|are|sits|stands|lies|should be)$")
# "two things: a box and a dot": the count before the colon is said again after it.
LIST_HEAD = re.compile(r"^[^:]*\b(?:objects?|things?|shapes?|items?|one|two|three|four|five|"
                       r"six|seven|eight|\d+)\b[^:]*:\s*")
TOTAL = re.compile(r"\b(?:in total|in all|altogether)\b")
# "..., in order from top to bottom": each thing above (or left of) the next.
ORDER = re.compile(r",?\s*\b(?:(?:in (?:that |this )?order|ordered|arranged),? )?from (?P<first>top|"
                   r"left|bottom|right) to (?:the )?(?:bottom|right|top|left)\b(?:,? in (?:that|this) "
                   r"order)?")
ORDERS = {"top": "above", "left": "left_of", "bottom": "below", "right": "right_of"}
# "a blue box, and under it, a yellow box": the thing after is related to the one before.
RELATIVE_TO_IT = re.compile(r"(?:,\s*)?\b(?:and\s+)?(?P<words>" + "|".join(
    words for words, _ in RELATIONS if "-" not in words) + r") (?:it|that|that one|them)\b,?\s*")
IT_MARK = "it-related-"
SPLIT = re.compile(r"\s*(?:,|;|\band\b|\bwith\b|\bnext to\b|\bbeside\b|\bplus\b)\s*")


@dataclass(frozen=True)
class Thing:
    phrase: str                         # what a detector is asked for: "red car"
    count: int = 1
    place: tuple[str | None, str | None] | None = None     # (row, column), either may be None


@dataclass
class Description:
    things: list[Thing] = field(default_factory=list)
    relations: list[tuple[int, str, int]] = field(default_factory=list)   # (a, relation, b)
    background: str | None = None


def place_of(match: re.Match) -> tuple[str | None, str | None]:
    vertical, horizontal, side = match["vertical"], match["horizontal"], match["side"]
    row = {"top": "top", "upper": "top", "bottom": "bottom", "lower": "bottom", "middle": "middle",
           "center": "middle", "centre": "middle"}.get(vertical or "")
    column = {"left": "left", "right": "right", "middle": "center", "center": "center",
              "centre": "center"}.get(horizontal or "")
    if side:
        column, row = side, row or "middle"
    if row is None and column is None:
        return None, None
    # A grid's edge words name a cell: "at the top" is the top middle, "on the left" the
    # middle left, "in the middle" the centre.
    if row is None:
        row = "middle"
    if column is None:
        column = "center"
    return row, column


def cell_of(point) -> tuple[str, str]:
    """The (row, column) of the grid cell a point (x, y in 0..1) falls in."""
    return ROWS[min(int(point[1] * 3), 2)], COLUMNS[min(int(point[0] * 3), 2)]


def singular(word: str) -> str:
    for plural, single in (("ies", "y"), ("ches", "ch"), ("shes", "sh"), ("xes", "x"),
                           ("sses", "ss")):
        if word.endswith(plural) and len(word) > len(plural) + 1:
            return word[: -len(plural)] + single
    if word.endswith("s") and not word.endswith(("ss", "us")) and len(word) > 3:
        return word[:-1]
    return word


def _thing(text: str) -> Thing | None:
    place = None
    match = PLACE.search(text)
    if match:
        place = place_of(match)
        if place == (None, None):
            place = None
        text = (text[:match.start()] + " " + text[match.end():])
    words = [w for w in re.findall(r"[\w'-]+", _clean(" ".join(text.split())).lower())]
    count, said = 1, []
    while words and (words[0] in NUMBERS or words[0] in DETERMINERS or words[0].isdigit()):
        word = words.pop(0)
        said.append(word)
        if word.isdigit():
            count = max(int(word), 1)
        elif word in NUMBERS and word not in ("a", "an"):
            count = NUMBERS[word]
    if not words:
        # "one at the top": a "one" standing for a thing said before.
        return Thing("one", 1, place) if "one" in said else None
    if count > 1:
        words[-1] = singular(words[-1])
    phrase = " ".join(words)
    trailing = TRAILING_IN.match(phrase)
    if trailing:
        phrase = f"{trailing['word']} {trailing['head']}"
    return Thing(phrase, count, place)


def _split_ones(things: list[Thing]) -> list[Thing]:
    """"three blue cars, a small one, a red one and one at the top": each "one" is one of the
    plural before it, with its own words in front and its own place."""
    out: list[Thing] = []
    plural = None                      # index in `out` of the plural the "one"s come from
    for thing in things:
        words = thing.phrase.split()
        if words[-1] == "one" and plural is not None:
            base = out[plural]
            out[plural] = Thing(base.phrase, base.count - 1, base.place)
            out.append(Thing(" ".join(words[:-1] + [base.phrase]), thing.count,
                             thing.place or base.place))
            continue
        out.append(thing)
        plural = len(out) - 1 if thing.count > 1 else None
    return [t for t in out if t.count > 0]


def _clean(part: str) -> str:
    part = part.strip()
    while True:
        cleaned = COPULA.sub("", part).strip()
        if cleaned == part:
            return part
        part = cleaned


def _opens_a_thing(part: str) -> bool:
    words = _clean(PLACE.sub(" ", part)).split()
    return bool(words) and (words[0] in NUMBERS or words[0] in ("the", "some")
                            or words[0].isdigit())


def read_description(text: str) -> Description:
    text = " ".join(text.lower().split()).strip(" .!?")
    text = FRAME.sub("", text, count=1)
    description = Description()
    said = BACKGROUND_SENTENCE.search(text)
    if said:
        description.background = said["what"].strip() or None
        text = (text[:said.start()] + "," + text[said.end():]).strip(" ,;")
    match = BACKGROUND.search(text)
    if match:
        description.background = match["what"].strip() or None
        text = (text[:match.start()] + "," + text[match.end():]).strip(" ,")
    order = ORDER.search(text)
    if order:
        text = (text[:order.start()] + text[order.end():]).strip(" ,")
    text = COMPOUND.sub(r"\1-\2-of", text)
    text = RELATIVE_TO_IT.sub(lambda m: f", {IT_MARK}{m['words'].replace(' ', '_')} ", text)
    text = LIST_HEAD.sub("", text, count=1)
    parts = [_clean(p) for p in SPLIT.split(text) if p and p.strip() and not TOTAL.search(p)]
    parts = [p for p in parts if p]
    # After the first, a part that opens with no article or number once its place is said
    # ("oil painting", "4k") says how the picture looks, not what is in it.
    parts = parts[:1] + [p for p in parts[1:] if _opens_a_thing(p) or p.startswith(IT_MARK)]
    for part in parts:
        if part.startswith(IT_MARK):
            words, _, rest = part[len(IT_MARK):].partition(" ")
            thing = _thing(rest)
            if thing is not None:
                description.things.append(thing)
                n = len(description.things)
                if n > 1:
                    relation = dict(RELATIONS)[words.replace("_", " ")]
                    description.relations += [(n - 1, r, n - 2) for r in relation]
            continue
        # "A left of B": split at the relation, A and B each a thing.
        for words, relation in RELATIONS:
            pattern = re.search(rf"\b{words}\b", part)
            if pattern:
                first, second = _thing(part[:pattern.start()]), _thing(part[pattern.end():])
                if first and second:
                    description.things += [first, second]
                    n = len(description.things)
                    description.relations += [(n - 2, r, n - 1) for r in relation]
                    break
        else:
            thing = _thing(part)
            if thing is not None:
                description.things.append(thing)
    if order and not description.relations:
        relation = ORDERS[order["first"]]
        description.relations = [(i, relation, i + 1) for i in range(len(description.things) - 1)]
    if not description.relations:
        description.things = _split_ones(description.things)
    return description
