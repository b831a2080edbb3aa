"""`sample_edit`: a random edit that fits a scene, its instruction and its exact result."""
from __future__ import annotations

import numpy as np

from ..check import RELATIONS, relation_holds
from ..phrasings import (BACKGROUND_WORDS, COLOR_WORDS, PLACE_WORDS, RELATION_PHRASES,
                         SHAPE_WORDS, SIZE_WORDS, Dice, article)
from ..scene import BACKGROUNDS, COLORS, MAX_OBJECTS, SHAPES, SIZES, Scene
from .applying import apply_edit
from .record import Edit, EditError
from .referring import referring_expressions
from .spots import SAMPLE_SLACK, cell_mask, free_spots, random_spot, relation_mask
from .templates import DESTINATION_WORDS, EDIT_KINDS, RESIZE_WORDS, SIDE_WORDS, STYLES, TEMPLATES


def _choose_template(d: Dice, group: str, n_objects: int, level: bool, families,
                     templates) -> tuple[str, str] | None:
    options = [t for t in TEMPLATES[group]
               if (families is None or t[1] in families)
               and (templates is None or f"{group}.{t[0]}" in templates)
               and (t[3] != "pair" or n_objects == 2) and (t[3] != "level" or level)]
    if not options:
        return None
    t = d.pick(options)
    return f"{group}.{t[0]}", t[2]


def _finish(text: str) -> str:
    return text[0].upper() + text[1:]


def _sample_one(scene: Scene, d: Dice, kind: str, families, templates):
    """(targets, params, template id, instruction) for one random edit, or None."""
    objs = scene.objects
    n = len(objs)
    group = kind
    slots: dict[str, str] = {}
    targets: tuple[int, ...] = ()
    params: dict = {}
    level = False
    if kind in ("recolor", "reshape", "resize", "move", "remove"):
        if n == 0 or (kind == "remove" and n == 1):
            return None
        refs = [referring_expressions(scene, k, d) for k in range(n)]
        nameable = [k for k in range(n) if refs[k]]
        if not nameable:
            return None
        i = d.pick(nameable)
        t = objs[i]
        targets = (i,)
        slots["ref"] = d.pick(refs[i])
    if kind == "recolor":
        params["color"] = d.pick([c for c in COLORS if c != t.color])
        slots["color"] = d.pick(COLOR_WORDS[params["color"]])
    elif kind == "reshape":
        params["shape"] = d.pick([s for s in SHAPES if s != t.shape])
        word = d.pick(SHAPE_WORDS[params["shape"]])
        slots["shape"] = f"{article(word)} {word}"
    elif kind == "resize":
        size = params["size"] = "large" if t.size == "small" else "small"
        words = RESIZE_WORDS[size]
        slots.update({k: d.pick(v) for k, v in words.items()})
        slots["size"] = d.pick(SIZE_WORDS[size])
        slots["opposite"] = d.pick(SIZE_WORDS[t.size])
    elif kind == "move":
        others = objs[:i] + objs[i + 1:]
        free = free_spots(others, t.shape, t.size)
        twin = any((o.shape, o.color, o.size) == (t.shape, t.color, t.size) for o in others)
        if n > 1 and not twin and d.chance(0.4):
            group = "move_relative"
            anchors = [k for k in nameable if k != i]
            if not anchors:
                return None
            a = d.pick(anchors)
            relation = d.pick([r for r in RELATIONS if not relation_holds(t, objs[a], r)])
            spot = random_spot(d, free & relation_mask(objs[a], relation, SAMPLE_SLACK))
            if spot is None:
                return None
            params.update(relation=relation, anchor=a, x=spot[0], y=spot[1])
            slots["rel"] = d.pick(RELATION_PHRASES[relation])
            slots["anchor"] = d.pick(refs[a])
            slots["side"] = SIDE_WORDS.get(relation, "")
            level = relation in SIDE_WORDS
        else:
            group = "move_place"
            cells = [c for c in PLACE_WORDS if c != t.place]
            cell = d.pick(cells)
            spot = random_spot(d, free & cell_mask(*cell, SAMPLE_SLACK))
            if spot is None:
                return None
            params.update(place=list(cell), x=spot[0], y=spot[1])
            slots["dest"] = d.pick(DESTINATION_WORDS[cell])
            slots["loc"] = d.pick(PLACE_WORDS[cell])
    elif kind == "add":
        if n >= MAX_OBJECTS:
            return None
        shape, color = d.pick(SHAPES), d.pick(list(COLORS))
        size = d.pick(list(SIZES))
        free = free_spots(objs, shape, size)
        place = d.pick(list(PLACE_WORDS)) if d.chance(0.6) else None
        spot = random_spot(d, free & cell_mask(*place, SAMPLE_SLACK) if place else free)
        if spot is None:
            return None
        size_stated = d.chance(0.7)
        params.update(shape=shape, color=color, size=size, x=spot[0], y=spot[1],
                      place=list(place) if place else None, size_stated=size_stated)
        words = [d.pick(SIZE_WORDS[size])] if size_stated else []
        words += [d.pick(COLOR_WORDS[color]), d.pick(SHAPE_WORDS[shape])]
        new = f"{article(words[0])} {' '.join(words)}"
        slots["new"] = f"{new} {d.pick(PLACE_WORDS[place])}" if place else new
    elif kind == "swap_colors":
        refs = [referring_expressions(scene, k, d) for k in range(n)]
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)
                 if objs[i].color != objs[j].color and refs[i] and refs[j]]
        if not pairs:
            return None
        i, j = d.pick(pairs)
        if d.chance(0.5):
            i, j = j, i
        targets = (i, j)
        slots.update(a=d.pick(refs[i]), b=d.pick(refs[j]),
                     color_a=d.pick(COLOR_WORDS[objs[i].color]),
                     color_b=d.pick(COLOR_WORDS[objs[j].color]))
    elif kind == "background":
        params["background"] = d.pick([b for b in BACKGROUNDS if b != scene.background])
        slots["bg"] = d.pick(BACKGROUND_WORDS[params["background"]])
    chosen = _choose_template(d, group, n, level, families, templates)
    if chosen is None:
        return None
    template_id, text = chosen
    return targets, params, template_id, _finish(text.format(**slots))


def sample_edit(scene: Scene, rng: np.random.Generator, kinds=None, families=None,
                templates=None) -> tuple[Edit, Scene]:
    """A random edit that fits `scene` and its exact result, with an instruction from the
    given families (styles) / template ids (all when None). Raises ValueError when no edit
    of the given kinds fits the scene."""
    kinds = list(EDIT_KINDS if kinds is None else kinds)
    for k in kinds:
        if k not in EDIT_KINDS:
            raise ValueError(f"unknown edit kind {k!r}; use some of {', '.join(EDIT_KINDS)}")
    if families is not None:
        families = set(families)
        if not families <= set(STYLES):
            raise ValueError(f"unknown edit families {sorted(families - set(STYLES))}; "
                             f"use some of {', '.join(STYLES)}")
    templates = None if templates is None else set(templates)
    d = Dice(rng)
    misses = {k: 0 for k in kinds}
    while misses:
        kind = d.pick(list(misses))
        try:
            sampled = _sample_one(scene, d, kind, families, templates)
            if sampled is not None:
                targets, params, template_id, instruction = sampled
                edit = Edit(kind, targets, params, instruction, template_id)
                return edit, apply_edit(scene, edit)
        except EditError:
            pass
        misses[kind] += 1
        if misses[kind] >= 8:  # this kind does not fit the scene (no room, one object ...)
            del misses[kind]
    raise ValueError(f"no edit of kinds {kinds} fits this scene of {len(scene.objects)} "
                     "object(s)")
