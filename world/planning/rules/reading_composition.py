"""Reading what a new picture should show: objects with their counts, attributes, places and
relations, groups ("two circles, one red and one blue"), sequences ("from left to right")
and the background, into a `Compose`."""
from __future__ import annotations

from world.scene import MAX_OBJECTS

from .. import language as lang
from .intents import Compose, NotRead, ObjSpec


def read_compose(items, words, allow_empty: bool = False) -> Compose:
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
