"""RulePlanner: the deterministic, offline default planner.

It reads a request in two passes: `interpret` turns words into an intent in the world's terms
(objects with attributes, places and relations to compose; or an edit of named objects of the
current scene), and `compile_intent` turns the intent into steps, choosing operations from
`CHOICES`, the one table that says which operation serves which kind of request. The table is
a constructor argument so a benchmark can re-measure other choices.

It plans for correctness: boxes satisfy every stated place and relation with a margin, and an
edit repaints only the boxes of the objects it names, with the whole after-scene as the
prompt, so everything else stays exactly as it was.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from world.captions import caption, describe, place_phrase
from world.scene import MAX_OBJECTS, SIZES, Obj, Scene

from . import language as lang
from .context import PlanningContext
from .layout import Slot, box_at, cell_centre, padded, solve, union
from .plan import NotUnderstood, Plan, PlanResult, Step

# Which operation serves which kind of request. Edits of objects use inpaint with the new
# objects placed: the mask keeps every other pixel as it was, which instruction editing can
# only approximate (others kept: inpaint 96.7%, invert_edit 93.3%, edit 43.3%;
# bench.pipelines quality --only one_of_several), and each changed object is drawn alone and
# placed in its box (recolour made 100% of 30, against 27% redrawn from the caption; --only
# inpaint). A new background is everywhere but the objects: an instruction edit, which keeps
# a photograph's own pixels; where it misses on the shapes world, the agent's corrector
# redraws the scene as a layout with every object in its old box (agent/orchestrator.py).
# Re-measure with bench/planner.py --choices.
CHOICES: dict[str, str] = {
    "compose_single": "generate",   # one object, no place or relation stated
    "compose": "layout",            # anything with several objects, places or relations
    "recolor": "inpaint",
    "reshape": "inpaint",
    "resize": "inpaint",
    "change": "inpaint",            # several attributes at once
    "move": "inpaint",
    "remove": "inpaint",
    "add": "inpaint",
    "swap_colors": "inpaint",
    "change_all": "inpaint",        # the same change to every object of the scene
    "background": "edit",
}
CHOICE_OPTIONS = {key: (("generate", "layout") if key.startswith("compose")
                        else ("inpaint", "edit", "invert_edit", "layout")) for key in CHOICES}

UNDO_WORDS = {"undo", "revert"}
REDO_WORDS = {"redo"}
UNDO_PHRASES = (("go", "back"), ("take", "that", "back"), ("step", "back"), ("undo",),
                ("never", "mind"), ("change", "it", "back"), ("put", "it", "back"))
RESTORE_WORDS = {"restore", "repair", "denoise", "sharpen", "deblur", "upscale", "enhance",
                 "sharper", "clearer", "blurry", "noisy", "noise", "blur"}
REFERENCE_WORDS = {"like", "style", "based", "similar", "reference", "following", "version",
                   "resembling", "resembles"}
PASTE_WORDS = {"paste", "pasted", "copy", "drop", "insert", "put", "place", "add"}
SWAP_WORDS = {"swap", "switch", "exchange", "trade", "swapped", "switched", "exchanged",
              "traded", "versa"}
REMOVE_WORDS = {"remove", "delete", "erase", "rid", "gone", "removed", "deleted", "erased",
                "without"}
ADD_WORDS = {"add", "include", "insert", "added", "included", "inserted", "too", "also",
             "well", "another", "extra", "additional"}
MOVE_WORDS = {"move", "shift", "drag", "moved", "shifted", "dragged", "put", "place",
              "placed", "go", "relocate", "position"}
RESIZE_VERBS = {"enlarge": "large", "grow": "large", "shrink": "small", "enlarged": "large",
                "shrunk": "small", "increase": "large", "reduce": "small",
                "decrease": "small", "magnify": "large"}
GENERATE_VERBS = {"draw", "make", "create", "render", "paint", "generate", "show", "give",
                  "picture", "image", "want", "like", "need"}
RELATION_WORDS = {"left_of": "to the left of", "right_of": "to the right of",
                  "above": "above", "below": "below", "beside": "next to"}


# --- intents ------------------------------------------------------------------------------

@dataclass
class ObjSpec:
    shape: str | None = None
    color: str | None = None
    size: str | None = None
    row: str | None = None
    column: str | None = None

    def phrase(self, size: str | None = None) -> str:
        words = [w for w in (size or self.size, self.color, self.shape or "shape") if w]
        text = " ".join(words)
        return f"{'an' if text[0] in 'aeiou' else 'a'} {text}"


@dataclass
class Compose:
    objects: list[ObjSpec]
    relations: list[tuple[int, str, int]] = field(default_factory=list)
    background: str | None = None
    counts: list[tuple[int, dict]] = field(default_factory=list)


@dataclass
class EditIntent:
    """An edit of the current scene in world.edits' terms: kind, target indices, params."""

    kind: str
    targets: tuple[int, ...] = ()
    params: dict = field(default_factory=dict)


@dataclass
class Special:
    kind: str                     # undo, redo, restore, reference, paste
    reference: str | None = None
    compose: Compose | None = None
    place: tuple[str, str] | None = None
    exemplars: bool = False


class NotRead(Exception):
    """Raised inside interpretation to stop with a NotUnderstood message."""

    def __init__(self, message: str, unknown: list[str] | None = None):
        super().__init__(message)
        self.unknown = unknown or []


# --- the planner ----------------------------------------------------------------------------

class RulePlanner:
    """Deterministic planner over the shapes world's vocabulary. `plan` returns a Plan, or a
    NotUnderstood saying what it could not read; it never raises for any request text."""

    name = "rules"

    def __init__(self, choices: dict[str, str] | None = None):
        self.choices = dict(CHOICES)
        for key, op in (choices or {}).items():
            if key not in CHOICES:
                raise ValueError(f"unknown choice {key!r}; known: {', '.join(CHOICES)}")
            if op not in CHOICE_OPTIONS[key]:
                raise ValueError(f"choice {key!r} can be {' or '.join(CHOICE_OPTIONS[key])}, "
                                 f"not {op!r}")
            self.choices[key] = op

    def plan(self, request: str, context: PlanningContext | None = None) -> PlanResult:
        context = (context or PlanningContext()).for_request(request)
        try:
            intent, why = interpret(request, context)
            return compile_intent(intent, context, self.choices, why)
        except NotRead as problem:
            return NotUnderstood(request=request, message=str(problem), unknown=problem.unknown)


# --- reading ------------------------------------------------------------------------------

def _has(tokens: list[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(tuple(tokens[i:i + n]) == phrase for i in range(len(tokens) - n + 1))


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
    scene = context.current_scene()
    word_set = set(words)
    # undo / redo
    if word_set & REDO_WORDS:
        return Special("redo"), ["you asked to redo the last undone change"]
    if word_set & UNDO_WORDS or any(_has(words, p) for p in UNDO_PHRASES):
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
                told = _read_compose([i for i in items if not (i.kind == "mention" and i.value.pronoun)],
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
        return _read_compose(items, words), []
    return _read_edit(items, words, context, scene, found)


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
        compose = _read_compose([i for i in items], words, allow_empty=True)
    if not ids:
        return Special("reference", compose=compose, exemplars=True), [
            "you asked for an image like the retrieved examples"]
    if not set(words) & (REFERENCE_WORDS | {"but", "same", "as", "from", "using", "use"}):
        raise NotRead(f"I see {ids[0]} but not what to do with it; say for example "
                      f"'like {ids[0]} but with a blue square' or 'paste {ids[0]} at the top left'")
    return Special("reference", reference=ids[0], compose=compose), [
        f"you asked for a new image following {ids[0]}"]


# --- composing: what a new image should show ---------------------------------------------

def _read_compose(items, words, allow_empty: bool = False) -> Compose:
    objects: list[ObjSpec] = []
    relations: list[tuple[int, str, int]] = []
    counts: list[tuple[int, dict]] = []
    background = None
    last: list[int] = []            # objects of the latest mention
    group = None                    # open group: {"slots": [...], "filled": n, "attrs", "generic"}
    pending_relation = None         # (A objects, [relations])
    pending_anchor = None           # (relation, B objects)
    pending_place = None            # a place said before its object
    with_head: list[int] | None = None
    previous_kind = None            # kind of the previous non-separator item
    previous_sep = None
    sequence_axis = None            # "from left to right: ..." collects what follows
    sequence: list[int] = []
    lead_axis = None                # "a row of three ..."
    sequences: list[tuple[str, list[int]]] = []

    def next_kind(k):
        for it in items[k + 1:]:
            if it.kind != "sep":
                return it.kind
        return None

    def new_objects(m: lang.Mention, n: int, base: dict | None = None) -> list[int]:
        made = []
        for _ in range(n):
            spec = ObjSpec(**(base or {}))
            for key, value in m.attrs().items():
                setattr(spec, key, value)
            objects.append(spec)
            made.append(len(objects) - 1)
        return made

    for k, item in enumerate(items):
        kind = item.kind
        if kind == "sep":
            previous_sep = item.value
            if item.value == "with":
                with_head = last
            continue
        if kind == "mention":
            m: lang.Mention = item.value
            if m.pronoun is not None:
                raise NotRead(f"'{m.pronoun}' refers to an image, but there is none yet; "
                              "describe what to draw")
            count = m.count if m.count is not None else (None if m.plural else 1)
            made: list[int] = []
            if group is not None and group["filled"] < len(group["slots"]):
                attrs = group["attrs"]
                compatible = all(attrs.get(a) in (None, v) for a, v in m.attrs().items())
                partial = m.shape is None and (m.anaphoric or not m.generic)
                fits = (count or 1) <= len(group["slots"]) - group["filled"]
                if compatible and fits and (partial or group["generic"] or previous_sep == ":"):
                    slots = group["slots"][group["filled"]:group["filled"] + (count or 1)]
                    group["filled"] += len(slots)
                    for index in slots:
                        for key, value in m.attrs().items():
                            setattr(objects[index], key, value)
                    made = slots
                else:
                    group = None
            if not made and m.anaphoric and m.shape is None and objects:
                # "three blue squares and a red one": "one" takes the latest shape.
                m.shape = next((o.shape for o in reversed(objects) if o.shape), None)
            if not made:
                group = None
                if count is None:
                    raise NotRead(f"how many {_plural_words(m)}? say a number, e.g. "
                                  f"'two {_plural_words(m)}'")
                heading = m.generic and not m.anaphoric
                if heading and next_kind(k) == "total":
                    counts.append((count, m.attrs()))  # "..., three objects in total"
                    continue
                if count > MAX_OBJECTS:
                    raise NotRead(f"a picture holds at most {MAX_OBJECTS} objects")
                made = new_objects(m, count)
                # "two red circles", or a heading that a list follows: "one shape: a ..."
                if count > 1 or (heading and _next_sep(items, k) == ":"):
                    group = {"slots": made, "filled": 0, "attrs": m.attrs(), "generic": m.generic}
                    counts.append((count, m.attrs()))
                    if lead_axis:
                        sequences.append((lead_axis, made))
                        lead_axis = None
                if sequence_axis is not None:
                    sequence.extend(made)
            if pending_place is not None:
                for index in made:
                    objects[index].row, objects[index].column = pending_place
                pending_place = None
            if pending_relation is not None:
                a_objects, rels = pending_relation
                relations.extend((a, r, b) for a in a_objects for r in rels for b in made)
                pending_relation = None
            if pending_anchor is not None:
                rel, b_objects = pending_anchor
                relations.extend((a, rel, b) for a in made for b in b_objects)
                pending_anchor = None
            last = made
        elif kind == "place":
            if not last or _place_leads(items, k):
                pending_place = item.value  # "at the top left there is a red circle"
            else:
                for index in last:
                    objects[index].row, objects[index].column = item.value
        elif kind == "relation":
            if not last:
                raise NotRead("a relation ('left of', 'above' ...) needs an object before it")
            if previous_kind == "relation" and pending_relation is not None:
                pending_relation[1].extend(item.value)
            else:
                pending_relation = (last, list(item.value))
        elif kind == "anchored":
            if previous_kind == "mention" and previous_sep == "with" and with_head:
                relations.extend((a, item.value, b) for a in last for b in with_head)
            elif last:
                pending_anchor = (item.value, last)
            else:
                raise NotRead("'to its left' and the like need an object to refer to")
        elif kind == "sequence":
            axis, how = item.value
            if how == "lead":
                lead_axis = axis
            elif how == "group" or not any(it.kind == "mention" for it in items[k + 1:]):
                members = last if len(last) > 1 else list(range(len(objects)))
                if how == "list" and len(last) <= 1:
                    members = sequence or list(range(len(objects)))
                sequences.append((axis, list(members)))
            else:
                sequence_axis, sequence = axis, []
                sequences.append((axis, sequence))
        elif kind == "background":
            if item.value:
                background = item.value
        elif kind == "total":
            pass
        previous_kind = kind
        if kind != "sep":
            previous_sep = None if kind != "mention" else previous_sep
    for axis, members in sequences:
        rel = {"x": "left_of", "-x": "right_of", "y": "above", "-y": "below"}[axis]
        relations.extend((a, rel, b) for a, b in zip(members, members[1:]))
    if pending_relation is not None:
        raise NotRead("a relation ('left of', 'above' ...) needs an object after it")
    if not objects and not allow_empty:
        raise NotRead("I found no shape to draw; name one, e.g. 'a red circle at the top left'")
    if len(objects) > MAX_OBJECTS:
        raise NotRead(f"a picture holds at most {MAX_OBJECTS} objects; you asked for "
                      f"{len(objects)}")
    relations = [r for r in dict.fromkeys(relations) if r[0] != r[2]]
    return Compose(objects, relations, background, counts)


def _next_sep(items, k):
    return items[k + 1].value if k + 1 < len(items) and items[k + 1].kind == "sep" else None


def _place_leads(items, k) -> bool:
    """Is the place at k said before its object: "at the top there is a ...", "; near the
    top is a ..."?"""
    j = k + 1
    while j < len(items) and items[j].kind == "word" and items[j].value in ("there", "is", "are", "sits", "stands", "lies"):
        j += 1
    return j > k + 1 and j < len(items) and items[j].kind == "mention" and (
        k == 0 or items[k - 1].kind in ("sep", "word"))


def _plural_words(m: lang.Mention) -> str:
    return " ".join(w for w in (m.size, m.color, (m.shape + "s") if m.shape else "shapes") if w)


# --- editing: what to change in the current scene ----------------------------------------

def focus(context: PlanningContext) -> list[int]:
    """The objects of the current scene the conversation last talked about: those in the
    region the latest plan repainted or made ("it", "them", "the other one" read from here)."""
    scene = context.current_scene()
    if scene is None:
        return []
    objs = scene.objects
    for turn in reversed(context.history):
        plan = turn.plan
        if plan is None or plan.action != "run":
            continue
        step = plan.steps[-1]
        if step.op in ("generate", "layout", "reference", "invert_edit"):
            return list(range(len(objs)))
        if step.op == "edit":
            if "background" in step.args.instruction.lower():
                continue
            return list(range(len(objs)))
        if step.op == "inpaint":
            target = step.args.target
            if isinstance(target, list):
                return [i for i, o in enumerate(objs)
                        if any(b[0] <= o.x <= b[2] and b[1] <= o.y <= b[3] for b in target)]
            try:
                return _resolve_text(target, scene, [])
            except NotRead:
                return []
        if step.op == "compose":
            b = step.args.box
            return [i for i, o in enumerate(objs) if b[0] <= o.x <= b[2] and b[1] <= o.y <= b[3]]
        # restore and unknown operations change nothing anyone talks about: look further back
    return []


def _resolve_text(text: str, scene: Scene, focused: list[int]) -> list[int]:
    items = lang.chunk(lang.tokenize(text))
    mention = next((i for i in items if i.kind == "mention"), None)
    if mention is None:
        raise NotRead(f"I cannot tell which object {text!r} means")
    place = next((i.value for i in items if i.kind == "place"), None)
    return resolve(mention.value, place, scene, focused)


def resolve(m: lang.Mention, place, scene: Scene, focused: list[int],
            found: list[Reference] | None = None) -> list[int]:
    """The objects a referring expression picks out, or NotRead saying why it cannot.
    `found`, when given, receives a Reference for each expression resolved: the words that
    picked the objects out, so a plan can name them by what they are rather than by id."""
    objs = scene.objects
    n = len(objs)
    if m.pronoun == "it":
        if len(focused) == 1:
            chosen = focused
        elif n == 1:
            chosen = [0]
        else:
            raise NotRead("I cannot tell which object 'it' is; name it, e.g. 'the red circle'")
        if found is not None:
            found.append(Reference(m, None, chosen))
        return chosen
    if m.pronoun in ("them", "all"):
        if m.pronoun == "them" and len(focused) >= 2:
            chosen = focused
        else:
            chosen = list(range(n))
        if m.count and len(chosen) != m.count:
            raise NotRead(f"I see {len(chosen)} objects, not {m.count}; say which ones")
        if found is not None:
            found.append(Reference(m, None, chosen))
        return chosen
    wanted = m.attrs()
    candidates = [i for i, o in enumerate(objs) if all(getattr(o, a) == v for a, v in wanted.items())]
    if not candidates and "size" in wanted:
        # Sizes are judged by eye: "the tiny blue shape" means the one blue shape even when it
        # came out large. Only when that leaves a single object; the plan's notes name it.
        others = {a: v for a, v in wanted.items() if a != "size"}
        loose = [i for i, o in enumerate(objs) if all(getattr(o, a) == v for a, v in others.items())]
        candidates = loose if len(loose) == 1 else []
    what = _words(m)
    if m.other:
        candidates = [i for i in candidates if i not in focused]
        if not focused:
            raise NotRead(f"'the other {what}' needs an object we talked about first")
    if place is not None:
        row, column = place
        in_cell = [i for i in candidates if objs[i].place == (row, column)]
        if in_cell:
            candidates = in_cell
        else:
            directions = ([] if column == "center" else ["left_of" if column == "left" else "right_of"])
            directions += [] if row == "middle" else ["above" if row == "top" else "below"]
            if not directions:  # "the one in the middle": nearest the centre
                directions = []
                candidates = sorted(candidates, key=lambda i: (objs[i].x - .5) ** 2 + (objs[i].y - .5) ** 2)[:1]
            for direction in directions:
                candidates = _extreme(candidates, objs, direction)
    for direction in m.extremes:
        candidates = _extreme(candidates, objs, direction)
    if not candidates:
        raise NotRead(f"I see no {what}{_place_suffix(place)} in the image; it has "
                      f"{_scene_words(scene)}")
    if len(candidates) > 1 and not (m.plural or (m.count or 0) > 1):
        options = " or ".join(f"the {objs[i].describe()} {place_phrase(objs[i])}"
                              for i in candidates)
        raise NotRead(f"'{what}' could be {options}; say which")
    if m.count and m.count > 1 and len(candidates) != m.count:
        raise NotRead(f"I see {len(candidates)} {what}s, not {m.count}")
    if found is not None:
        found.append(Reference(m, place, candidates))
    return candidates


EXTREME_WORDS = {"left_of": "leftmost", "right_of": "rightmost", "above": "top", "below": "bottom"}


@dataclass
class Reference:
    """A referring expression as resolve read it: the mention, its place (row, column) or
    None, and the indices of the objects it picked out."""

    mention: lang.Mention
    place: tuple[str, str] | None
    chosen: list[int]


def _extreme(candidates: list[int], objs, direction: str) -> list[int]:
    """Of the candidates, the one furthest in `direction` (ties within the world's margin
    all stay, so an unclear "the left one" is reported, not guessed)."""
    if len(candidates) <= 1:
        return candidates
    key = {"left_of": lambda o: o.x, "right_of": lambda o: -o.x,
           "above": lambda o: o.y, "below": lambda o: -o.y}[direction]
    best = min(key(objs[i]) for i in candidates)
    return [i for i in candidates if key(objs[i]) - best < 0.1 - 1e-9]


def _words(m: lang.Mention) -> str:
    noun = m.shape or "one"
    return " ".join(w for w in (m.size, m.color, noun) if w)


def _place_suffix(place) -> str:
    if place is None:
        return ""
    return " " + place_phrase(Obj("circle", "red", "small", *cell_centre(*place)))


def _scene_words(scene: Scene) -> str:
    return caption(scene)


def _read_edit(items, words, context: PlanningContext, scene: Scene, found=None):
    objs = scene.objects
    word_set = set(words)
    focused = focus(context)
    mentions = [(k, i.value) for k, i in enumerate(items) if i.kind == "mention"]
    places = [(k, i.value) for k, i in enumerate(items) if i.kind == "place"]
    relations = [(k, i.value) for k, i in enumerate(items) if i.kind == "relation"]
    anchored = [(k, i.value) for k, i in enumerate(items) if i.kind == "anchored"]
    backgrounds = [i.value for i in items if i.kind == "background"]
    comparatives = [lang.COMPARATIVES[w] for w in words if w in lang.COMPARATIVES]

    def is_ref(m: lang.Mention) -> bool:
        return m.definite or m.other

    def place_after(k):
        """The place item right after item k, if any."""
        return items[k + 1].value if k + 1 < len(items) and items[k + 1].kind == "place" else None

    def ref_targets(k, m, own_place=True):
        return resolve(m, place_after(k) if own_place else None, scene, focused, found)

    refs = [(k, m) for k, m in mentions if is_ref(m)]
    news = [(k, m) for k, m in mentions if not is_ref(m) and m.has_head and not m.anaphoric
            and (m.shape is not None or m.generic)]
    # "it is too big" says how it is now, not what it should become.
    values = [(k, m) for k, m in mentions if not is_ref(m) and not m.has_head
              and _token_before(items, k) != "too"]

    # Background: the only thing named is the background.
    if ("background" in word_set or "backdrop" in word_set) and any(backgrounds) and not (
            news and word_set & GENERATE_VERBS and not refs):
        name = next(b for b in backgrounds if b)
        if name == scene.background:
            raise NotRead(f"the background is already {name}")
        return EditIntent("background", (), {"background": name}), [
            f"you asked for a {name} background"]
    # A new picture: indefinite objects after a drawing verb, nothing referred to.
    adding = bool(word_set & ADD_WORDS) or _has(words, ("should", "be", "added"))
    if news and not refs and not adding and not (word_set & {"put", "place"}):
        return _read_compose(items, words), ["a new picture: the request describes objects "
                                             "without referring to the current ones"]
    # Swap colours.
    if word_set & SWAP_WORDS and (word_set & {"colors", "colours", "color", "colour", "versa"}):
        if len(refs) >= 2:
            a = ref_targets(refs[0][0], refs[0][1])
            b = ref_targets(refs[1][0], refs[1][1])
            if len(a) != 1 or len(b) != 1:
                raise NotRead("say which two objects should swap colours")
            pair = (a[0], b[0])
        elif "their" in word_set or (refs and refs[0][1].pronoun == "them"):
            pair_list = focused if len(focused) == 2 else list(range(len(objs)))
            if len(pair_list) != 2:
                raise NotRead("'their colours' needs exactly two objects; name the two")
            pair = tuple(pair_list)
            if found is not None:
                found.append(Reference(lang.Mention(0, 0, pronoun="them"), None, pair_list))
        else:
            raise NotRead("say which two objects should swap colours")
        if objs[pair[0]].color == objs[pair[1]].color:
            raise NotRead("those two objects already have the same colour")
        return EditIntent("swap_colors", pair), ["you asked to swap two objects' colours"]
    # "make A blue and B red": two recolours that may be a swap.
    if len(refs) >= 2 and len(values) >= 2 and not (relations or anchored):
        intents = []
        for (k, m), (_, v) in zip(refs, values):
            for t in ref_targets(k, m):
                attrs = {a: val for a, val in v.attrs().items() if getattr(objs[t], a) != val}
                if attrs:
                    intents.append(EditIntent("change", (t,), attrs))
        if not intents:
            raise NotRead("those objects already look like that")
        return intents, ["you asked for several changes at once"]
    # Remove.
    # "... should go" / "has to go" at the end removes; "should go to the left" moves.
    ends_with_go = bool(words) and words[-1] == "go"
    removing = bool(word_set & REMOVE_WORDS) or _has(words, ("take", "out")) or _has(
        words, ("take", "away")) or ends_with_go
    if removing or _has(words, ("don't", "want")):
        if not refs:
            raise NotRead("say which object to remove, e.g. 'remove the red circle'")
        targets = ref_targets(*refs[0])
        if len(targets) >= len(objs):
            raise NotRead("a picture keeps at least one object; say which to remove")
        return EditIntent("remove", tuple(targets)), ["you asked to remove an object"]
    # Add.
    if news and (adding or word_set & {"put", "place", "draw"}):
        k, m = news[0]
        if m.shape is None:
            raise NotRead("say which shape to add, e.g. 'add a red circle'")
        count = m.count or 1
        if count > 1:
            raise NotRead("add one object at a time, e.g. 'add a red circle at the top left'")
        if len(objs) + count > MAX_OBJECTS:
            raise NotRead(f"a picture holds at most {MAX_OBJECTS} objects; this one has "
                          f"{len(objs)}")
        params = {"shape": m.shape, "color": m.color, "size": m.size,
                  "place": list(place_after(k)) if place_after(k) else None}
        relation = _relation_after(items, k, relations, anchored, scene, focused, refs, found)
        if relation:
            params["relation"], params["anchor"] = relation
        return EditIntent("add", (), params), ["you asked to add an object"]
    if not refs:
        if news or values:
            return _read_compose(items, words), ["a new picture"]
        raise NotRead("I could not find an object to change or a shape to draw; name one, "
                      "e.g. 'make the red circle blue'")
    k, m = refs[0]
    # Move: a destination (a place or a relation) after the reference.
    destination_places = [(pk, p) for pk, p in places if pk != k + 1 or word_set & MOVE_WORDS
                          and pk == places[-1][0]]
    moving = bool(word_set & MOVE_WORDS) or relations or anchored or (
        destination_places and not values and not comparatives)
    if moving and (destination_places or relations or anchored):
        own_place = len(places) > 1 and places[0][0] == k + 1
        targets = ref_targets(k, m, own_place=own_place)
        if len(targets) != 1:
            raise NotRead("say which one object to move")
        relation = _relation_after(items, k, relations, anchored, scene, focused, refs, found)
        if relation:
            rel, anchor = relation
            if anchor == targets[0]:
                raise NotRead("an object cannot move relative to itself")
            return EditIntent("move", tuple(targets), {"relation": rel, "anchor": anchor}), [
                "you asked to move an object next to another"]
        if not destination_places:
            raise NotRead("say where to move it, e.g. 'to the top left' or 'left of the square'")
        place = destination_places[-1][1]
        return EditIntent("move", tuple(targets), {"place": list(place)}), [
            "you asked to move an object to a place"]
    targets = ref_targets(k, m)
    # Resize, recolour, reshape: the new value after the reference.
    changes: dict = {}
    if comparatives:
        changes["size"] = comparatives[-1]
    for verb, size in RESIZE_VERBS.items():
        if verb in word_set:
            changes["size"] = size
    if "scale" in word_set and ("up" in word_set or "down" in word_set):
        changes["size"] = "large" if "up" in word_set else "small"
    for vk, v in values:
        if vk > k:
            changes.update(v.attrs())
    for nk, n in news:
        if nk > k:
            changes.update({a: val for a, val in n.attrs().items() if a == "shape" or not
                            _has(words, ("same", "color")) and not _has(words, ("same", "colour"))})
    if not changes:
        raise NotRead(f"I see what you refer to, but not what to change about it; say for "
                      f"example 'make {_target_words(objs, targets)} blue'")
    intents = []
    for t in targets:
        attrs = {a: v for a, v in changes.items() if getattr(objs[t], a) != v}
        if attrs:
            intents.append(EditIntent("change", (t,), attrs))
    if not intents:
        raise NotRead(f"{_target_words(objs, targets)} already looks like that")
    return intents if len(intents) > 1 else intents[0], ["you asked to change an object"]


def _token_before(items, k):
    return items[k - 1].value if k > 0 and items[k - 1].kind == "word" else None


def _target_words(objs, targets) -> str:
    return " and ".join(f"the {objs[t].describe()}" for t in targets)


def _relation_after(items, k, relations, anchored, scene, focused, refs, found=None):
    """(relation, anchor index) stated after item k: "left of the blue square", "next to
    the square, on its left"."""
    for rk, rels in relations:
        if rk <= k:
            continue
        rel = rels[0]
        anchor = next(((ak, am) for ak, am in ((j, it.value) for j, it in enumerate(items)
                                              if it.kind == "mention") if ak > rk), None)
        if anchor is None:
            raise NotRead("a relation needs an object after it, e.g. 'left of the blue square'")
        ak, am = anchor
        if am.pronoun == "it" and refs and refs[0][0] != ak:
            raise NotRead("'it' after a relation is unclear; name the other object")
        place = items[ak + 1].value if ak + 1 < len(items) and items[ak + 1].kind == "place" else None
        chosen = resolve(am, place, scene, focused, found)
        if len(chosen) != 1:
            raise NotRead("say which one object to place it next to")
        side = next((v for j, v in anchored if j > ak), None)
        if rel == "beside":
            rel = side or "beside"
        return rel, chosen[0]
    return None


# --- planning: intents to steps -------------------------------------------------------------

def compile_intent(intent, context: PlanningContext, choices: dict[str, str],
                   why: list[str]) -> PlanResult:
    if isinstance(intent, Special):
        return _compile_special(intent, context)
    if isinstance(intent, Compose):
        return _compile_compose(intent, choices, why)
    intents = intent if isinstance(intent, list) else [intent]
    return _compile_edits(intents, context, choices, why)


def _sizes(compose: Compose) -> list[str]:
    """Stated sizes, and for the rest large when there is room, small otherwise."""
    n = len(compose.objects)
    default = "large" if n <= 2 else "small"
    return [o.size or default for o in compose.objects]


def layout_boxes(compose: Compose) -> list[list[float]] | None:
    sizes = _sizes(compose)
    for attempt in range(2):
        slots = [Slot(o.shape, s, o.row, o.column) for o, s in zip(compose.objects, sizes)]
        points = solve(slots, compose.relations)
        if points is not None:
            return [box_at(o.shape, s, *p) for o, s, p in zip(compose.objects, sizes, points)]
        # No room: unstated sizes become small, then try once more.
        sizes = [o.size or "small" for o in compose.objects]
    return None


def _describe_spec(o: ObjSpec, size: str | None = None) -> str:
    text = o.phrase(size)
    if o.row or o.column:
        centre = cell_centre(o.row or "middle", o.column or "center")
        text += " " + place_phrase(Obj("circle", "red", "small", *centre))
    return text


def _background_suffix(name: str | None) -> str:
    return f", on a {name} background" if name else ""


def _compose_prompt(compose: Compose, sizes: list[str | None] | None = None) -> str:
    """What a Compose shows as one prompt: its objects joined by "and", then its background."""
    sizes = sizes or [None] * len(compose.objects)
    return (" and ".join(_describe_spec(o, size) for o, size in zip(compose.objects, sizes))
            + _background_suffix(compose.background))


def _compile_compose(compose: Compose, choices, why) -> PlanResult:
    objects = compose.objects
    single = len(objects) == 1 and not (objects[0].row or objects[0].column)
    op = choices["compose_single"] if single else choices["compose"]
    listing = "; ".join(_describe_spec(o) for o in objects)
    notes = [f"You asked for {len(objects)} object(s): {listing}"
             + (f", on a {compose.background} background" if compose.background else "") + "."]
    if op == "generate":
        sizes = _sizes(compose) if not single else [objects[0].size]
        prompt = _compose_prompt(compose, sizes)
        notes.append("One object with no place to keep: a plain text-to-image generation "
                     "is enough." if single else "Generated from the prompt alone.")
        step = Step(op="generate", args={"prompt": prompt}, reason="make the picture")
        return Plan(rationale=" ".join(notes), steps=[step])
    boxes = layout_boxes(compose)
    if boxes is None:
        raise NotRead("I cannot fit all of that on the canvas: the places and relations "
                      "asked for leave no room; try fewer or smaller objects")
    sizes = [_size_of_box(b) for b in boxes]
    layout_objects = [{"phrase": o.phrase(s), "box": b}
                      for o, s, b in zip(objects, sizes, boxes)]
    if compose.relations:
        said = ", ".join(f"#{a + 1} {RELATION_WORDS[r]} #{b + 1}" for a, r, b in compose.relations)
        notes.append(f"Relations to keep: {said}; the boxes keep them with room to spare "
                     "beyond WORLD.md's 0.1 margin.")
    notes.append("A text prompt cannot pin objects to places, so a layout gives each object "
                 "its own box, sized per WORLD.md (small 0.18, large 0.32) and centred in its "
                 "named cell.")
    args = {"objects": layout_objects}
    if compose.background:
        args["background_prompt"] = f"a plain {compose.background} background"
    return Plan(rationale=" ".join(notes),
                steps=[Step(op="layout", args=args, reason="place every object in its box")])


def _size_of_box(box) -> str:
    side = box[2] - box[0]
    return min(SIZES, key=lambda s: abs(SIZES[s] - side))


def _compile_special(intent: Special, context: PlanningContext) -> PlanResult:
    if intent.kind in ("undo", "redo"):
        return Plan(rationale=f"You asked to {intent.kind} the last change; no new image is "
                              "made.", action=intent.kind)
    scene = context.current_scene()
    if intent.kind == "restore":
        told = intent.compose
        if told is not None and told.objects:
            prompt = _compose_prompt(told)
            guide = "what you say it shows"
        else:
            prompt = caption(scene) if scene is not None else ""
            guide = "what the detector reads in it"
        return Plan(rationale="You asked to repair the current image; restore denoises and "
                              f"sharpens it, guided by {guide}.",
                    steps=[Step(op="restore", args={"prompt": prompt},
                                reason="repair noise and blur")])
    if intent.kind == "paste":
        caption_text = _caption_of(intent.reference, context)
        size, shape = "large", None
        words = lang.tokenize(caption_text)
        if "small" in words and "large" not in words:
            size = "small"
        shape = next((lang.SHAPE_OF[w] for w in words if w in lang.SHAPE_OF), None)
        spot = _free_spot(scene, shape, size, tuple(intent.place)) if scene else None
        if spot is None:
            raise NotRead("there is no room for it there; choose another place")
        box = box_at(shape, size, *spot)
        return Plan(rationale=f"You asked to paste {intent.reference} into the current image "
                              f"{_place_suffix(intent.place).strip()}; compose pastes it into a "
                              "free box there and harmonises the edges.",
                    steps=[Step(op="compose", args={"reference": intent.reference, "box": box,
                                                    "prompt": caption_text[:500]},
                                reason="paste the reference object")])
    # reference
    compose = intent.compose
    if compose is not None and compose.objects:
        prompt = _compose_prompt(compose)
    elif intent.reference:
        prompt = _caption_of(intent.reference, context) or "the same picture"
        if compose is not None and compose.background:
            prompt += _background_suffix(compose.background)
    else:
        raise NotRead("say what the new image should show, e.g. 'a red circle like the "
                      "examples'")
    if intent.exemplars:
        step = Step(op="reference", args={"prompt": prompt, "reference": "ref_1"},
                    exemplars={"query": prompt, "k": 4},
                    reason="follow the best retrieved exemplar")
        why = "retrieval finds exemplars for the prompt and the first one guides the result"
    else:
        step = Step(op="reference", args={"prompt": prompt, "reference": intent.reference},
                    reason=f"follow {intent.reference}")
        why = f"{intent.reference} guides the look and layout while the prompt says what to show"
    return Plan(rationale=f"You asked for an image like an earlier one: {why}.", steps=[step])


def _caption_of(image_id: str, context: PlanningContext) -> str:
    for image in context.images:
        if image.id == image_id:
            return image.caption
    for exemplar in context.exemplars:
        if exemplar.id == image_id:
            return exemplar.caption
    return ""


def _free_spot(scene: Scene, shape, size, place=None, others=None, relation=None):
    """A centre for a new or moved object: in `place` (a cell) or in `relation` to an anchor
    object, clear of `others` by more than the world's gap."""
    others = list(scene.objects if others is None else others)
    slot = Slot(shape, size, *(place or (None, None)))
    if relation is not None:
        rel, anchor = relation
        return _solve_beside(slot, anchor, rel, [o for o in others if o is not anchor])
    points = solve([slot], fixed=others, step=0.01)  # one object: a fine grid is cheap
    return points[0] if points else None


def _solve_beside(slot: Slot, anchor: Obj, rel: str, fixed) -> tuple[float, float] | None:
    """A centre in `rel` to a fixed anchor, level with it where possible and near it; roomy
    gaps first, then tighter ones that still meet WORLD.md."""
    from .layout import MARGINS, relation_ok
    from world.scene import RELATION_MARGIN

    rels = ["left_of", "right_of"] if rel == "beside" else [rel]
    for slack, gap in MARGINS:
        best = None
        for dx in range(-28, 29):
            for dy in range(-28, 29):
                x, y = round(anchor.x + dx * 0.025, 4), round(anchor.y + dy * 0.025, 4)
                if not (0.15 <= x <= 0.85 and 0.15 <= y <= 0.85):
                    continue
                if not any(relation_ok((x, y), (anchor.x, anchor.y), r, RELATION_MARGIN + slack)
                           for r in rels):
                    continue
                box = box_at(slot.shape, slot.size, x, y)
                if box[0] < 0 or box[1] < 0 or box[2] > 1 or box[3] > 1:
                    continue
                if any(not (box[2] + gap <= o.box[0] or o.box[2] + gap <= box[0] or
                            box[3] + gap <= o.box[1] or o.box[3] + gap <= box[1])
                       for o in list(fixed) + [anchor]):
                    continue
                level = abs(y - anchor.y) if rel in ("left_of", "right_of", "beside") else abs(x - anchor.x)
                score = (round(level, 4), abs(dx) + abs(dy))
                if best is None or score < best[0]:
                    best = (score, (x, y))
        if best is not None:
            return best[1]
    return None


@dataclass
class EditOutcome:
    """What a list of edit intents does to a scene: the after-scene, and per changed object
    its (index in the before-scene or None when added, before, after)."""

    before: Scene
    after: Scene
    touched: list[tuple[int | None, Obj | None, Obj | None]]
    kinds: list[str]
    notes: list[str]


def apply_intents(intents: list[EditIntent], scene: Scene) -> EditOutcome:
    objs = list(scene.objects)
    after = list(objs)
    removed: set[int] = set()
    added: list[Obj] = []
    background = scene.background
    touched: list[tuple[int | None, Obj | None, Obj | None]] = []
    kinds: list[str] = []
    notes: list[str] = []

    def others_than(i=None):
        return [o for j, o in enumerate(after) if j != i and j not in removed] + added

    for intent in intents:
        kind = intent.kind
        if kind == "background":
            background = intent.params["background"]
            kinds.append("background")
            notes.append(f"The background becomes {background}; every object stays as it is.")
        elif kind == "change":
            (i,) = intent.targets
            new = after[i].replace(**intent.params)
            name = next(iter(intent.params)) if len(intent.params) == 1 else "change"
            kinds.append({"color": "recolor", "shape": "reshape", "size": "resize"}.get(name, name))
            if new.size != objs[i].size and not _fits(new, others_than(i)):
                raise NotRead(f"there is no room to make the {objs[i].describe()} larger "
                              "without touching its neighbours")
            after[i] = new
            touched.append((i, objs[i], new))
            notes.append(f"obj_{i + 1} ({objs[i].describe()} {place_phrase(objs[i])}) becomes "
                         f"{new.describe()}.")
        elif kind == "swap_colors":
            i, j = intent.targets
            a, b = after[i], after[j]
            after[i], after[j] = a.replace(color=b.color), b.replace(color=a.color)
            touched += [(i, objs[i], after[i]), (j, objs[j], after[j])]
            kinds.append("swap_colors")
            notes.append(f"obj_{i + 1} and obj_{j + 1} trade colours ({a.color} <-> {b.color}).")
        elif kind == "remove":
            for i in intent.targets:
                removed.add(i)
                touched.append((i, objs[i], None))
                notes.append(f"obj_{i + 1} ({objs[i].describe()} {place_phrase(objs[i])}) is "
                             "removed; the background shows through.")
            kinds.append("remove")
        elif kind == "move":
            (i,) = intent.targets
            t = objs[i]
            if "place" in intent.params:
                place = tuple(intent.params["place"])
                spot = _free_spot(scene, t.shape, t.size, place, others_than(i))
                where = _place_suffix(place).strip().replace("at the", "to the")
            else:
                anchor = after[intent.params["anchor"]]
                spot = _free_spot(scene, t.shape, t.size, None, others_than(i),
                                  (intent.params["relation"], anchor))
                where = f"{RELATION_WORDS[intent.params['relation']]} the {anchor.describe()}"
            if spot is None:
                raise NotRead(f"there is no free room {where} for the {t.describe()}")
            new = t.replace(x=spot[0], y=spot[1])
            after[i] = new
            touched.append((i, t, new))
            kinds.append("move")
            notes.append(f"obj_{i + 1} ({t.describe()}) moves {where}, into a free box there.")
        elif kind == "add":
            p = intent.params
            shape, color = p["shape"], p["color"]
            if color is None:
                raise NotRead(f"which colour should the new {shape} be?")
            place = tuple(p["place"]) if p.get("place") else None
            relation = (p["relation"], after[p["anchor"]]) if p.get("relation") else None
            sizes = [p["size"]] if p["size"] else ["large", "small"]
            spot = None
            for size in sizes:
                spot = _free_spot(scene, shape, size, place, others_than(), relation)
                if spot is not None:
                    break
            if spot is None:
                raise NotRead(f"there is no free room for a {color} {shape} there")
            new = Obj(shape, color, size, *spot)
            added.append(new)
            touched.append((None, None, new))
            kinds.append("add")
            notes.append(f"A new {new.describe()} goes {place_phrase(new)}, in a free box.")
    after_scene = Scene(tuple(o for j, o in enumerate(after) if j not in removed) + tuple(added),
                        background)
    return EditOutcome(scene, after_scene, touched, kinds, notes)


def edit_boxes(outcome: EditOutcome) -> list[list[float]]:
    """The regions to repaint: each changed object's box before and after, padded for its
    antialiased edge. A change in place (same centre) is one box; a move keeps its old and
    new boxes apart and in that order, so the new one reads as where the object goes."""
    boxes = []
    for _, before, new in outcome.touched:
        if before is not None and new is not None and (before.x, before.y) == (new.x, new.y):
            boxes.append(union(padded(before.box), padded(new.box)))
            continue
        boxes.extend(padded(o.box) for o in (before, new) if o is not None)
    return [[round(v, 4) for v in b] for b in boxes]


def _compile_edits(intents: list[EditIntent], context, choices, why) -> PlanResult:
    scene = context.current_scene()
    outcome = apply_intents(intents, scene)
    kinds = outcome.kinds
    kind = kinds[0] if len(set(kinds)) == 1 else "change"
    n = len(scene.objects)
    changed = sorted(i for i, _, _ in outcome.touched if i is not None)
    all_changed = n > 1 and kind in ("recolor", "reshape", "resize", "change") and changed == list(range(n))
    op = choices["change_all" if all_changed else kind]
    untouched = n - len(set(changed))
    rationale = " ".join(outcome.notes)
    if op == "inpaint":
        boxes = edit_boxes(outcome)
        placed = [{"phrase": describe(new, with_place=False), "box": [round(v, 4) for v in new.box]}
                  for _, _, new in outcome.touched if new is not None]
        rationale += (f" Inpainting only {'this box' if len(boxes) == 1 else 'these boxes'}, "
                      f"{'with each new object drawn alone and placed in its box, ' if placed else 'cleared, '}"
                      f"keeps the other {untouched} object(s) exactly as they are.")
        step = Step(op="inpaint", args={"prompt": caption(outcome.after), "target": boxes,
                                        "objects": placed},
                    inputs=[context.current_image], reason=f"{kind}: repaint only what changes")
    elif op == "layout":
        rationale += (" Every object is drawn again in its own box on the new scene, so each "
                      "keeps its shape, colour, size and place.")
        args = {"objects": [{"phrase": describe(o, with_place=False),
                             "box": [round(v, 4) for v in o.box]} for o in outcome.after.objects]}
        if outcome.after.background != "white":
            args["background_prompt"] = f"a plain {outcome.after.background} background"
        step = Step(op="layout", args=args, reason=f"{kind}: redraw the scene as it should be")
    elif op == "invert_edit":
        rationale += (" The change touches the whole picture, so the image is inverted and "
                      "regenerated with the new caption, which keeps its layout.")
        step = Step(op="invert_edit", args={"source_prompt": caption(scene),
                                            "target_prompt": caption(outcome.after)},
                    inputs=[context.current_image], reason=f"{kind}: keep the structure")
    else:
        instruction = "; ".join(_instruction(i, scene.objects, outcome.after) for i in intents)
        rationale += " An instruction edit makes the change and keeps the rest."
        step = Step(op="edit", args={"instruction": instruction},
                    inputs=[context.current_image], reason=f"{kind}: edit as instructed")
    return Plan(rationale=rationale, steps=[step])


def _fits(obj: Obj, others) -> bool:
    box = obj.box
    if box[0] < 0 or box[1] < 0 or box[2] > 1 or box[3] > 1:
        return False
    return all(box[2] + 0.031 <= o.box[0] or o.box[2] + 0.031 <= box[0] or
               box[3] + 0.031 <= o.box[1] or o.box[3] + 0.031 <= box[1] for o in others)


def _the(o: Obj) -> str:
    return f"the {o.describe()} {place_phrase(o)}"


def _instruction(intent: EditIntent, objs, after_scene: Scene) -> str:
    """A plain instruction in the world's edit phrasing for the instruction editor."""
    kind, p = intent.kind, intent.params
    if kind == "background":
        return f"make the background {p['background']}"
    if kind == "change":
        (i,) = intent.targets
        if set(p) == {"color"}:
            return f"make {_the(objs[i])} {p['color']}"
        if set(p) == {"size"}:
            return f"make {_the(objs[i])} {p['size']}"
        if set(p) == {"shape"}:
            return f"turn {_the(objs[i])} into a {p['shape']}"
        new = objs[i].replace(**p)
        return f"turn {_the(objs[i])} into a {new.describe()}"
    if kind == "swap_colors":
        i, j = intent.targets
        return f"swap the colors of {_the(objs[i])} and {_the(objs[j])}"
    if kind == "remove":
        return "; ".join(f"remove {_the(objs[i])}" for i in intent.targets)
    if kind == "move":
        (i,) = intent.targets
        if "place" in p:
            where = place_phrase(Obj("circle", "red", "small", *cell_centre(*p["place"])))
            return f"move {_the(objs[i])} {where.replace('at the', 'to the')}"
        return (f"move {_the(objs[i])} {RELATION_WORDS[p['relation']]} "
                f"{_the(objs[p['anchor']])}")
    if kind == "add":
        new = after_scene.objects[-1]
        return f"add a {new.describe()} {place_phrase(new)}"
    raise ValueError(f"no instruction for edit kind {kind!r}")
