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
    change the background to Y, use a Y background -> an instruction edit of the background

Each object change becomes what `edit_objects` makes (planners/phrase_edits.py): an inpaint
of the object's box with the new object drawn in it, so the rest of the image stays as it was.
What it cannot read (no object matches, or several do) is left to the instruction editor.
"""
from __future__ import annotations

import functools
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
REMOVE = (re.compile(r"^(?:remove|delete|erase|get rid of|take away|take out|drop|lose) "
                     r"(?P<x>.+)$"),
          re.compile(r"^(?:i )?(?:don't|do not|no longer) (?:want|need) (?P<x>.+?)(?: anymore)?$"),
          re.compile(r"^(?P<x>.+?) (?:should|must|has to|needs to|can) (?:go|disappear|vanish|"
                     r"be removed|be deleted|be erased|be taken out)(?: away| now)?$"))
MOVE = (re.compile(r"^(?:move|put|place|shift|drag) (?P<x>.+?) (?:to |in |at |into |on |near )"
                   r"(?P<where>the .+)$"),
        re.compile(r"^(?P<x>.+?) (?:moved|placed|put|shifted|dragged) (?:to |in |at |into |on |"
                   r"near )(?P<where>the .+)$"))
# "move X right of Y": X's box beside Y's, on the side the words say.
BESIDE = re.compile(r"^(?:move|put|place|shift|drag) (?P<x>.+?) (?:to the |so (?:that )?it is |"
                    r"so it's )?(?P<relation>left of|right of|above|below|under|underneath|over|"
                    r"beneath|on top of) (?P<anchor>.+)$")
ADD = (re.compile(r"^(?:add|put|place|draw|insert|include) (?P<y>(?:a|an|one|another) .+)$"),
       re.compile(r"^(?P<y>(?:a|an|one|another) .+?) (?:should|must|needs to|could|can) be "
                  r"(?:added|included|drawn|inserted|put in|placed)(?P<where> .+)?$"),
       re.compile(r"^(?:also )?(?P<y>(?:a|an|another) .+?) (?:too|as well|also)$"))
# "swap the colours of X and Y", "X and Y should trade colours".
SWAP = (re.compile(r"^(?:swap|switch|exchange|trade) (?:the )?colou?rs (?:of |between )?"
                   r"(?P<a>.+?) and (?P<b>.+)$"),
        re.compile(r"^(?P<a>.+?) and (?P<b>.+?) (?:to |should |must )?(?:swap|switch|exchange|"
                   r"trade) (?:their )?colou?rs$"))
BIGGER = re.compile(r"\b(?:bigger|larger|enlarge|grow|increase the size|scale up|large|big|huge)\b")
SMALLER = re.compile(r"\b(?:smaller|shrink|decrease the size|reduce the size|scale down|small|"
                     r"tiny|little)\b")
RESIZE = re.compile(r"^(?:make|scale|resize|enlarge|shrink|increase the size of|decrease the size "
                    r"of|reduce the size of) (?P<x>.+?)(?: (?:bigger|larger|smaller|up|down))?$|"
                    r"^(?P<x2>.+?) (?:should|to|must|needs to) be (?:bigger|larger|smaller|small|"
                    r"large|big|tiny|huge|little)$|^(?P<x3>.+?) (?:bigger|larger|smaller)$")
# Two words that are one new look: "a red disk", "light blue".
TWO_WORDS = (r"(?:a |an )[\w-]+ (?!instead$|now$)[\w-]+|"
             r"(?:light|dark|pale|bright|deep) (?!instead$|now$)[\w-]+")
# What X becomes is its last word or two ("red", "a disk", "light blue"): each split is tried.
CHANGE_VERB = r"^(?:make|turn|color|colour|paint|change|recolou?r|convert|transform|reshape) "
CHANGE = (re.compile(CHANGE_VERB + r"(?P<x>.+?) (?:into |to |in )?(?P<y>(?:a |an )?[\w-]+)$"),
          re.compile(CHANGE_VERB + r"(?P<x>.+?) (?:into |to |in )?(?P<y>" + TWO_WORDS + r")$"),
          re.compile(r"^(?P<x>.+?) (?:should|to|must|needs to) (?:be|become) "
                     r"(?P<y>(?:" + TWO_WORDS + r"|(?:a |an )?[\w-]+))(?: instead| now)?$"),
          # "(i'd like) the triangle at the top in cyan"
          re.compile(r"^(?P<x>the .+?) in (?P<y>[\w-]+)(?: instead| now)?$"))
BACKGROUND = re.compile(r"background|backdrop")
# "the colour of X" names X.
COLOUR_OF = re.compile(r"\bthe colou?r of ")
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
    object or more than one fits. The objects whose names share the most of its words are the
    candidates; where none shares one (a word the reading does not use: "disk" for a "disc"),
    every object is, and its place, size or "leftmost" must pick one."""
    reference = COLOUR_OF.sub("", reference.lower())
    words = [w for w in _words(reference) if w not in ARTICLES]
    where = PLACE.search(reference)
    if where:
        words = [w for w in _words(PLACE.sub(" ", reference)) if w not in ARTICLES]
    named = [w for w in words if w not in ANY and w not in SIZE_WORDS and not w.endswith("most")]
    shared = {o.id: sum(w in _words(o.name) for w in named) for o in scene}
    best = max(shared.values(), default=0)
    fits = [o for o in scene if shared[o.id] == best]
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


def read_change(request: str, scene: list[SceneObject]
                ) -> tuple[str, list[PhraseChange] | str] | None:
    """("edit", the PhraseChanges) or ("background", the new background's words); None when
    the request is not read. A request of several clauses ("it is too big, make it smaller")
    is read from its last clause that reads."""
    text = POLITE.sub("", " ".join(request.lower().split()).strip(" .!?"))
    clauses = re.split(r"[,;] ", text)
    for clause in [text, *reversed(clauses)] if len(clauses) > 1 else [text]:
        read = _read_clause(POLITE.sub("", clause.strip()), scene)
        if read is not None:
            return read
    return None


def _read_clause(text: str, scene: list[SceneObject]):
    if BACKGROUND.search(text):
        for pattern in NEW_BACKGROUND:
            match = pattern.search(text)
            if match and match["value"] not in ARTICLES:
                return "background", match["value"]
        return None
    for pattern in SWAP:
        if (match := pattern.match(text)):
            pair = [find_object(match[k], scene) for k in ("a", "b")]
            changes = swapped_colours(*pair) if None not in pair and pair[0] != pair[1] else None
            return ("edit", changes) if changes else None
    for pattern in REMOVE:
        if (match := pattern.match(text)) and (o := find_object(match["x"], scene)):
            return "edit", [PhraseChange(do="remove", object=o.id)]
    for pattern in ADD:
        if (match := pattern.match(text)):
            said = match["y"] + (match.groupdict().get("where") or "")
            place = PLACE.search(said)
            what = PLACE.sub(" ", match["y"]).strip()
            cell = place_of(place) if place else free_cell(scene)
            box = cell_box(ROWS.index(cell[0]), COLUMNS.index(cell[1]), side_of(what))
            return "edit", [PhraseChange(do="add", box=box, becomes=" ".join(
                w for w in _words(what) if w not in ARTICLES and w not in ("one", "another")))]
    if (match := BESIDE.match(text)) and (o := find_object(match["x"], scene)):
        anchor = find_object(match["anchor"], scene)
        if anchor is not None and anchor != o:
            return "edit", [PhraseChange(do="change", object=o.id, becomes=_bare(o.name),
                                         box=beside(o.box, anchor.box, match["relation"]))]
    for pattern in MOVE:
        if (match := pattern.match(text)) and (o := find_object(match["x"], scene)):
            place = PLACE.search(match["where"]) or PLACE.search("at " + match["where"])
            if place and place_of(place)[0] is not None:
                row, column = place_of(place)
                return "edit", [PhraseChange(do="change", object=o.id, becomes=_bare(o.name),
                                             box=moved(o.box, row, column))]
    if (match := RESIZE.match(text)):
        reference = match["x"] or match["x2"] or match["x3"]
        o = find_object(reference, scene)
        # The size words of the reference ("the small dot should be larger") say which, not
        # how: the rest of the clause says how.
        said = text.replace(reference, " ", 1)
        factor = SHRINK if SMALLER.search(said) else GROW if BIGGER.search(said) else None
        if o is not None and factor is not None:
            return "edit", [PhraseChange(do="change", object=o.id, becomes=_bare(o.name),
                                         box=scaled(o.box, factor))]
    for pattern in CHANGE:
        match = pattern.match(text)
        o = find_object(match["x"], scene) if match else None
        if o is not None and _words(match["y"]):
            new_noun = _words(match["y"])[0] in ("a", "an")
            # A new kind of thing is as large as the old one's larger side: drawn into the old
            # box it would shrink to the old shape's outline (a circle in a triangle's box).
            return "edit", [PhraseChange(do="change", object=o.id,
                                         becomes=becomes(o.name, match["y"]),
                                         box=squared(o.box) if new_noun else None)]
    return None


def beside(box, anchor, relation: str) -> list[float]:
    """`box` moved next to `anchor` on the side `relation` names, a gap of a tenth of the
    image between them (what "left of" needs to be seen), level with it on the other axis."""
    width, height = box[2] - box[0], box[3] - box[1]
    ax, ay = centre(anchor)
    gap = 0.1
    if relation in ("left of", "right of"):
        sign = -1 if relation == "left of" else 1
        cx = ax + sign * ((anchor[2] - anchor[0]) / 2 + gap + width / 2)
        return box_about(cx, ay, width, height)
    sign = -1 if relation in ("above", "over", "on top of") else 1
    cy = ay + sign * ((anchor[3] - anchor[1]) / 2 + gap + height / 2)
    return box_about(ax, cy, width, height)


def swapped_colours(a: SceneObject, b: SceneObject) -> list[PhraseChange] | None:
    """Each object redrawn with the other's colour words (CSS colour names); None when either
    name has none."""
    colours = [[w for w in _noun_phrase(o.name) if w in colour_words()] for o in (a, b)]
    if not all(colours):
        return None
    changes = []
    for o, mine, theirs in ((a, colours[0], colours[1]), (b, colours[1], colours[0])):
        rest = [w for w in _noun_phrase(o.name) if w not in mine and w not in SIZE_WORDS]
        changes.append(PhraseChange(do="change", object=o.id, becomes=" ".join(theirs + rest)))
    return changes


@functools.cache
def colour_words() -> frozenset[str]:
    """The CSS colour names and a few everyday ones webcolors does not list."""
    import webcolors

    return frozenset(webcolors.names("css3")) | EVERYDAY_COLOURS


EVERYDAY_COLOURS = frozenset({"dark", "light", "pale", "bright", "golden", "pink", "grey",
                              "gray", "beige", "cream", "turquoise"})


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
    if kind == "background":
        # The instruction editor is trained on exactly this change and keeps every object as
        # it stands; redrawing the objects on a new canvas would move and resize them.
        return [{"op": "edit", "args": {"instruction": f"make the background {value}"},
                 "inputs": [context.current_image],
                 "reason": "a new background; the objects stay as they are"}]
    after = {o.id: _bare(o.name) for o in scene}
    for number, change in enumerate(value):
        if change.do == "remove":
            after.pop(change.object)
        elif change.do == "change":
            after[change.object] = change.becomes
        else:
            after[f"new_{number}"] = change.becomes
    caption = " and ".join(f"a {n}" for n in after.values()) or "an empty picture"
    steps = []
    for change in value:
        step = step_for(change, caption, {}, context)
        step["inputs"] = [context.current_image] if not steps else []
        step["reason"] = "only the named object's box is redrawn; the rest stays as it was"
        steps.append(step)
    return steps
