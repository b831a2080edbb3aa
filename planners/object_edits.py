"""Reading a change to the objects of the current image, in any vocabulary.

The objects are the ones the checker's eyes read in the current image (the planning context's
scene: a phrase and a box each). A request names one by its words ("the triangle", "the large
one", "the block on the right", "it" when there is one), and says what happens to it:

    remove / delete / erase / get rid of X       -> X goes
    move / put / place X at the <place>          -> X in the cell's box
    make X bigger / smaller, X should be small   -> X's box grown or shrunk about its centre
    make / turn / color / paint X (into) Y,      -> X redrawn in its box as Y: a word ("red")
    X should be (a) Y                               takes the place of X's word of that kind,
                                                    a noun ("a disk") the place of X's noun
    add a Y (at the <place>)                     -> Y in a free cell
    change the background to Y, use a Y background -> every object again, on a Y background

Each becomes what `edit_objects` makes (planners/phrase_edits.py): an inpaint of the object's
box with the new object drawn in it, so the rest of the image stays as it was; a new
background is a `layout` of the same objects. What it cannot read (no object matches, or
several do) is left to the instruction editor.
"""
from __future__ import annotations

import re

from .boxes import cell_box, side_of
from .context import PlanningContext, SceneObject
from .descriptions import COLUMNS, PLACE, ROWS, cell_of, place_of
from .phrase_edits import PhraseChange, step_for

# Words that name any object: "the shape", "the object", "it".
ANY = frozenset({"it", "shape", "object", "thing", "one", "item"})
ARTICLES = frozenset({"a", "an", "the"})
SIZE_WORDS = frozenset({"small", "little", "tiny", "large", "big", "huge"})
# A bigger object's side is 1.75 times its old one, a smaller one's 0.57: a change anyone sees.
GROW, SHRINK = 1.75, 0.57
REMOVE = re.compile(r"^(?:remove|delete|erase|get rid of|take away|take out|drop) (?P<x>.+)$")
MOVE = re.compile(r"^(?:move|put|place|shift|drag) (?P<x>.+?) (?:to |in |at |into |on |near )"
                  r"(?P<where>the .+)$")
ADD = re.compile(r"^(?:add|put|place|draw|insert|include) (?P<y>(?:a|an|one|another) .+)$")
BIGGER = re.compile(r"\b(?:bigger|larger|enlarge|grow|increase the size|scale up|large|big|huge)\b")
SMALLER = re.compile(r"\b(?:smaller|shrink|decrease the size|reduce the size|scale down|small|"
                     r"tiny|little)\b")
RESIZE = re.compile(r"^(?:make|scale|resize|enlarge|shrink|increase the size of|decrease the size "
                    r"of|reduce the size of) (?P<x>.+?)(?: (?:bigger|larger|smaller|up|down))?$|"
                    r"^(?P<x2>.+?) (?:should|to|must|needs to) be (?:bigger|larger|smaller|small|"
                    r"large|big|tiny|huge|little)$")
# What X becomes is its last word or two ("red", "a disk", "light blue"): each split is tried.
CHANGE = (re.compile(r"^(?:make|turn|color|colour|paint|change|recolou?r|convert|transform) "
                     r"(?P<x>.+?) (?:into |to |in )?(?P<y>(?:a |an )?[\w-]+)$"),
          re.compile(r"^(?:make|turn|color|colour|paint|change|recolou?r|convert|transform) "
                     r"(?P<x>.+?) (?:into |to |in )?(?P<y>(?:a |an )?[\w-]+ [\w-]+)$"),
          re.compile(r"^(?P<x>.+?) (?:should|to|must|needs to) (?:be|become) "
                     r"(?P<y>(?:a |an )?[\w-]+(?: [\w-]+)?)(?: instead| now)?$"))
BACKGROUND = re.compile(r"background|backdrop")
# The new background's words, said three ways, tried in this order.
NEW_BACKGROUND = (
    re.compile(r"(?:background|backdrop) (?:to |should be |is |into |be |to be )?(?:a |an )?"
               r"(?P<value>[\w-]+)(?: instead| now)?$"),
    re.compile(r"(?:make|turn|paint|color|colour) the (?:background|backdrop) (?P<value>[\w-]+)"),
    re.compile(r"(?:a|an|the) (?P<value>[\w-]+) (?:background|backdrop)"),
)
POLITE = re.compile(r"^(?:please |now |ok |okay |then |and |could you |can you |would you |"
                    r"i want |i'd like |let's )+|(?:,? please)$")


def _words(text: str) -> list[str]:
    return re.findall(r"[\w'-]+", text.lower())


def find_object(reference: str, scene: list[SceneObject]) -> SceneObject | None:
    """The one object `reference` names, by its words, its size and its place; None when no
    object or more than one fits."""
    words = [w for w in _words(reference) if w not in ARTICLES]
    where = PLACE.search(reference.lower())
    if where:
        words = [w for w in _words(PLACE.sub(" ", reference.lower())) if w not in ARTICLES]
    named = [w for w in words if w not in ANY and w not in SIZE_WORDS and not w.endswith("most")]
    fits = [o for o in scene if all(w in _words(o.name) for w in named)] if named else list(scene)
    if not fits and named:   # a word the reading does not use: the noun alone may still fit
        fits = [o for o in scene if named[-1] in _words(o.name)]
    if len(fits) > 1 and where:
        row, column = place_of(where)
        fits = [o for o in fits if cell_of(centre(o.box)) == (row, column)] or [
            o for o in fits if cell_of(centre(o.box))[1] == column] or fits
    extreme = next((w for w in words if w.endswith("most")), None)
    if len(fits) > 1 and extreme:
        key = {"leftmost": lambda o: o.box[0], "rightmost": lambda o: -o.box[2],
               "topmost": lambda o: o.box[1], "bottommost": lambda o: -o.box[3]}.get(extreme)
        if key:
            fits = [min(fits, key=key)]
    sizes = [w for w in words if w in SIZE_WORDS]
    if len(fits) > 1 and sizes:
        area = lambda o: (o.box[2] - o.box[0]) * (o.box[3] - o.box[1])  # noqa: E731
        pick = max if sizes[0] in ("large", "big", "huge") else min
        fits = [pick(fits, key=area)]
    return fits[0] if len(fits) == 1 else None


def centre(box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


PREPOSITIONS = frozenset({"at", "on", "in", "with", "of", "by", "near", "under", "over",
                          "behind", "beside", "from"})


def _noun_phrase(name: str) -> list[str]:
    """The name's words up to its first preposition ("lighthouse at dusk": "lighthouse")."""
    words = [w for w in _words(name) if w not in ARTICLES]
    cut = next((i for i, w in enumerate(words) if w in PREPOSITIONS and i > 0), len(words))
    return words[:cut]


def becomes(name: str, new: str) -> str:
    """The object's words after the change: a noun ("a disk") replaces its noun, keeping its
    other words; a word ("blue") replaces its words but the noun, which the box's size holds."""
    old = [w for w in _noun_phrase(name) if w not in SIZE_WORDS]
    new_words = _words(new)
    if new_words and new_words[0] in ("a", "an"):
        return " ".join(old[:-1] + new_words[1:])
    return " ".join(new_words + old[-1:])


def box_about(cx: float, cy: float, width: float, height: float) -> list[float]:
    """A box of this size (at most 0.98 of a side) about the centre, moved inside the image."""
    half_w, half_h = min(width, 0.98) / 2, min(height, 0.98) / 2
    cx, cy = min(max(cx, half_w), 1 - half_w), min(max(cy, half_h), 1 - half_h)
    return [round(cx - half_w, 4), round(cy - half_h, 4), round(cx + half_w, 4),
            round(cy + half_h, 4)]


def scaled(box, factor: float) -> list[float]:
    return box_about(*centre(box), (box[2] - box[0]) * factor, (box[3] - box[1]) * factor)


def moved(box, row: str, column: str) -> list[float]:
    side = max(box[2] - box[0], box[3] - box[1])
    target = cell_box(ROWS.index(row), COLUMNS.index(column), side)
    return box_about(*centre(target), box[2] - box[0], box[3] - box[1])


def free_cell(scene: list[SceneObject]) -> tuple[str, str]:
    taken = {cell_of(centre(o.box)) for o in scene}
    for row, column in [(1, 1), (1, 0), (1, 2), (0, 1), (2, 1), (0, 0), (0, 2), (2, 0), (2, 2)]:
        if (ROWS[row], COLUMNS[column]) not in taken:
            return ROWS[row], COLUMNS[column]
    return "middle", "center"


def read_change(request: str, scene: list[SceneObject]) -> tuple[str, PhraseChange | dict] | None:
    """("edit", a PhraseChange) or ("background", the new background's words); None when the
    request is not read."""
    text = POLITE.sub("", " ".join(request.lower().split()).strip(" .!?"))
    if BACKGROUND.search(text):
        for pattern in NEW_BACKGROUND:
            match = pattern.search(text)
            if match and match["value"] not in ARTICLES:
                return "background", match["value"]
        return None
    if (match := REMOVE.match(text)) and (o := find_object(match["x"], scene)):
        return "edit", PhraseChange(do="remove", object=o.id)
    if (match := ADD.match(text)):
        place = PLACE.search(match["y"])
        what = PLACE.sub(" ", match["y"]).strip() if place else match["y"]
        cell = place_of(place) if place else free_cell(scene)
        box = cell_box(ROWS.index(cell[0]), COLUMNS.index(cell[1]), side_of(what))
        return "edit", PhraseChange(do="add", box=box, becomes=" ".join(
            w for w in _words(what) if w not in ARTICLES and w not in ("one", "another")))
    if (match := MOVE.match(text)) and (o := find_object(match["x"], scene)):
        place = PLACE.search(match["where"]) or PLACE.search("at " + match["where"])
        if place:
            row, column = place_of(place)
            return "edit", PhraseChange(do="change", object=o.id, becomes=_bare(o.name),
                                        box=moved(o.box, row, column))
    if (match := RESIZE.match(text)):
        reference = match["x"] or match["x2"]
        o = find_object(reference, scene)
        factor = SHRINK if SMALLER.search(text) else GROW if BIGGER.search(text) else None
        if o is not None and factor is not None:
            return "edit", PhraseChange(do="change", object=o.id, becomes=_bare(o.name),
                                        box=scaled(o.box, factor))
    for pattern in CHANGE:
        match = pattern.match(text)
        o = find_object(match["x"], scene) if match else None
        if o is not None and _words(match["y"]):
            new_noun = _words(match["y"])[0] in ("a", "an")
            # A new kind of thing is as large as the old one's larger side: drawn into the old
            # box it would shrink to the old shape's outline (a circle in a triangle's box).
            return "edit", PhraseChange(do="change", object=o.id,
                                        becomes=becomes(o.name, match["y"]),
                                        box=squared(o.box) if new_noun else None)
    return None


def squared(box) -> list[float]:
    """A square box about the same centre, its side the larger side of `box`."""
    side = max(box[2] - box[0], box[3] - box[1])
    return box_about(*centre(box), side, side)


def _bare(name: str) -> str:
    return " ".join(w for w in _noun_phrase(name) if w not in SIZE_WORDS)


def plan_steps(request: str, context: PlanningContext) -> list[dict] | None:
    """The steps (as dicts) that make the change, or None when it is not read."""
    if context.scene is None or not context.scene.objects or context.current_image is None:
        return None
    scene = context.scene.objects
    read = read_change(request, scene)
    if read is None:
        return None
    kind, value = read
    names = {o.id: _bare(o.name) for o in scene}
    if kind == "background":
        return [{"op": "layout", "args": {
            "objects": [{"phrase": f"a {names[o.id]}", "box": list(o.box)} for o in scene],
            "background_prompt": f"on a {value} background"},
            "reason": "the same objects in their boxes, on the new background"}]
    change: PhraseChange = value
    after = dict(names)
    if change.do == "remove":
        after.pop(change.object)
    elif change.do == "change":
        after[change.object] = change.becomes
    else:
        after["new"] = change.becomes
    caption = " and ".join(f"a {n}" for n in after.values()) or "an empty picture"
    step = step_for(change, caption, {}, context)
    step["inputs"] = [context.current_image]
    step["reason"] = "only the named object's box is redrawn; the rest stays as it was"
    return [step]
