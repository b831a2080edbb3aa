"""Phrasings of a scene: one family's body in a sentence frame, with the background said or not;
drawn one at a time (`random_phrasing`, `sample_phrasing`) or many at once (`phrasings`)."""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from ..captions import caption
from ..check import Background, Constraint, Count
from ..scene import Scene
from .dice import Dice
from .families import CLAUSE_FAMILIES, FAMILIES, FAMILY_WEIGHTS, applicable_families
from .vocabulary import (BACKGROUND_PREFIX, BACKGROUND_SUFFIXES, BACKGROUND_WORDS,
                         CLAUSE_BACKGROUND_SUFFIXES, CLAUSE_FRAMES, NP_FRAMES, phrasing_frames)


@dataclass(frozen=True)
class Phrasing:
    text: str
    family: str
    frame: str
    constraints: tuple[Constraint, ...]


def _check_names(kind: str, given, known) -> list[str]:
    names = list(given)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown {kind} {unknown}; use some of {', '.join(known)}")
    return names


def _build(scene: Scene, d: Dice, families, frames, claims) -> tuple[str, str, str]:
    objs = scene.objects
    if not objs:
        raise ValueError("a scene to phrase needs at least one object")
    allowed = (list(FAMILY_WEIGHTS) if families is None
               else _check_names("phrasing families", families, FAMILIES))
    frame_names = None if frames is None else set(_check_names("frames", frames,
                                                               phrasing_frames()))
    candidates = []
    for f in allowed:
        table = CLAUSE_FRAMES if f in CLAUSE_FAMILIES else NP_FRAMES
        names = list(table) if frame_names is None else [n for n in table if n in frame_names]
        if names:
            candidates.append((f, names, table))
    while candidates:
        weights = [FAMILY_WEIGHTS[c[0]] for c in candidates]
        r, k = d.u() * sum(weights), 0
        while r >= weights[k] and k < len(weights) - 1:
            r -= weights[k]
            k += 1
        family, names, table = candidates[k]
        if claims is not None:  # every phrasing names every object: the count is stated
            claims[:] = [Count(len(objs))]
        body = FAMILIES[family](d, objs, claims)
        if body is None:
            candidates.pop(k)
            continue
        frame = d.pick(names)
        text = _with_background(d, scene, body, family in CLAUSE_FAMILIES, frame, claims)
        text = table[frame].format(text)
        if frame != "bare" and text[0].islower():
            text = text[0].upper() + text[1:]
        return text, family, frame
    raise ValueError(f"none of the phrasing families {allowed} (with frames {frames}) "
                     f"fits a scene of {len(objs)} object(s)")


def _with_background(d, scene, body, clause, frame, claims) -> str:
    if claims is not None:
        claims.append(Background(scene.background))
    # White is the default and goes unsaid most of the time; the others are always said.
    if scene.background == "white" and not d.chance(0.2):
        return body
    word = d.pick(BACKGROUND_WORDS[scene.background])
    if frame in ("bare", "sentence") and d.chance(0.25):
        return BACKGROUND_PREFIX.format(word) + body
    suffixes = CLAUSE_BACKGROUND_SUFFIXES if clause else BACKGROUND_SUFFIXES
    return body + d.pick(suffixes).format(word)


def random_phrasing(scene: Scene, rng: np.random.Generator, families=None,
                    frames=None) -> str:
    """One random true phrasing of `scene`, from the given families and frames (all when
    None)."""
    return _build(scene, Dice(rng), families, frames, None)[0]


def sample_phrasing(scene: Scene, rng: np.random.Generator, families=None,
                    frames=None) -> Phrasing:
    """Like `random_phrasing`, with the family, the frame and the constraints the text
    states (check(scene, phrasing.constraints) is empty)."""
    claims: list = []
    text, family, frame = _build(scene, Dice(rng), families, frames, claims)
    return Phrasing(text, family, frame, tuple(claims))


def phrasings(scene: Scene, limit: int = 40) -> list[str]:
    """Up to `limit` distinct phrasings of `scene` (the canonical caption first), every
    applicable family represented; deterministic for a given scene."""
    rng = np.random.default_rng(zlib.crc32(scene.to_json().encode()))
    d = Dice(rng)
    found = dict.fromkeys([caption(scene)])
    families = applicable_families(scene)
    for attempt in range(limit * 10):
        if len(found) >= limit:
            break
        family = families[attempt % len(families)]
        found.setdefault(_build(scene, d, [family], None, None)[0])
    return list(found)
