"""Reading a change to the current scene: which objects it refers to and what should become of
them (a new background, a swap, a removal, an addition, a move, a new colour, shape or size),
into `EditIntent`s."""
from __future__ import annotations

from world.scene import MAX_OBJECTS, Scene

from planners.context import PlanningContext

from .. import language as lang
from .intents import EditIntent, NotRead
from .reading_composition import read_compose
from .references import Reference, focus, resolve
from .words import (ADD_WORDS, GENERATE_VERBS, MOVE_WORDS, REMOVE_WORDS, RESIZE_VERBS,
                    SWAP_WORDS, has_phrase)


def read_edit(items, words, context: PlanningContext, scene: Scene, found=None):
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
    adding = bool(word_set & ADD_WORDS) or has_phrase(words, ("should", "be", "added"))
    if news and not refs and not adding and not (word_set & {"put", "place"}):
        return read_compose(items, words), ["a new picture: the request describes objects "
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
    removing = bool(word_set & REMOVE_WORDS) or has_phrase(words, ("take", "out")) or has_phrase(
        words, ("take", "away")) or ends_with_go
    if removing or has_phrase(words, ("don't", "want")):
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
            return read_compose(items, words), ["a new picture"]
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
                            has_phrase(words, ("same", "color"))
                            and not has_phrase(words, ("same", "colour"))})
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
