"""The shapes world against world/WORLD.md: renderer, detector, sampler, phrasings, edits, checker."""
from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from world.captions import caption
from world.check import (Background, Count, Exists, Preserved, Relation, check,
                         constraint_from_dict, constraint_to_dict, constraints_for_edit,
                         constraints_for_scene, constraints_from_json, constraints_to_json,
                         relation_holds)
from world.detect import detect
from world.edits import (EDIT_KINDS, Edit, EditError, apply_edit, edit_template_ids,
                         edit_templates, referring_expressions, sample_edit)
from world.phrasings import (BACKGROUND_WORDS, COLOR_WORDS, PLACE_WORDS, RELATION_PHRASES,
                             SHAPE_WORDS, SIZE_WORDS, Dice, all_words, phrasing_frames,
                             phrasing_templates, phrasings, random_phrasing, sample_phrasing,
                             tokenize)
from world.render import render
from world.sample import sample_scene
from world.scene import (BACKGROUNDS, CANVAS, CENTRE_RANGE, COLORS, MIN_GAP_PX, SHAPES, SIZES,
                         TRIANGLE_HEIGHT, Obj, Scene, boxes_clear, valid_layout)

PROPERTY = settings(max_examples=50, deadline=None)
seeds = st.integers(0, 2**32 - 1)
counts = st.integers(1, 4)


def scene_of(seed: int, n: int | None = None) -> Scene:
    return sample_scene(np.random.default_rng(seed), n)


def make(*specs, background: str = "white") -> Scene:
    """A scene from (shape, colour, size, x, y) tuples."""
    return Scene(tuple(Obj(*spec) for spec in specs), background)


def exact_constraints(scene: Scene, tolerance: float) -> list:
    """Same objects (shape, colour, size; centre within `tolerance`) and background."""
    return ([Count(len(scene.objects)), Background(scene.background)]
            + [Preserved(o.shape, o.color, o.size, o.x, o.y, tolerance) for o in scene.objects])


# --- renderer and detector ----------------------------------------------------------------

def test_render_then_detect_is_exact():
    rng = np.random.default_rng(20240501)
    for _ in range(200):
        scene = sample_scene(rng)
        found = detect(render(scene)).scene
        assert check(found, exact_constraints(scene, 0.02)) == [], scene.to_json()


def test_detect_survives_blur_and_noise():
    rng = np.random.default_rng(7)
    correct = 0
    for _ in range(200):
        scene = sample_scene(rng)
        pixels = np.asarray(render(scene), dtype=np.float32)
        blurred = ndimage.gaussian_filter(pixels, sigma=(1.2, 1.2, 0))
        noisy = np.clip(np.round(blurred + rng.normal(0, 15, pixels.shape)), 0, 255)
        found = detect(noisy.astype(np.uint8)).scene
        correct += not check(found, exact_constraints(scene, 0.02))
    assert correct >= 198


def coverage(pixels: np.ndarray, background: str, color: str) -> np.ndarray:
    """Per pixel, how far it is from the background toward the colour (0..1)."""
    bg, col = np.array(BACKGROUNDS[background], float), np.array(COLORS[color], float)
    direction = col - bg
    return (pixels.astype(float) - bg) @ direction / (direction @ direction)


def test_labelling_skips_only_pixels_that_cannot_be_an_object():
    # The shortcut for pixels near the background gives the labels of the full per-pixel
    # computation, on clean and noisy images of every background.
    from world.detect import PALETTE, _label_offsets, label_pixels, read_background

    rng = np.random.default_rng(5)
    for k in range(12):
        pixels = np.asarray(render(sample_scene(rng)), np.float32)
        if k % 2:
            pixels = np.clip(pixels + rng.normal(0, rng.uniform(5, 80), pixels.shape), 0, 255)
        _, background = read_background(pixels)
        offset = (pixels - background).reshape(-1, 3)
        direction = PALETTE - background
        length2 = np.maximum(np.sum(direction ** 2, axis=1), 1.0)
        full = _label_offsets(offset, direction, length2).reshape(pixels.shape[:2])
        assert np.array_equal(label_pixels(pixels, background), full)


@pytest.mark.parametrize("background", sorted(BACKGROUNDS))
def test_render_uses_the_exact_palette_and_sizes(background):
    rng = np.random.default_rng(3)
    for shape in SHAPES:
        for size in SIZES:
            for color in COLORS:
                lo, hi = CENTRE_RANGE
                obj = Obj(shape, color, size, round(float(rng.uniform(lo + 0.02, hi - 0.02)), 4),
                          round(float(rng.uniform(lo + 0.02, hi - 0.02)), 4))
                if not valid_layout([obj]):
                    continue
                pixels = np.asarray(render(Scene((obj,), background)))
                cx, cy = int(obj.x * CANVAS), int(obj.y * CANVAS)
                assert tuple(pixels[cy, cx]) == COLORS[color]
                for corner in (pixels[0, 0], pixels[0, -1], pixels[-1, 0], pixels[-1, -1]):
                    assert tuple(corner) == BACKGROUNDS[background]
                # Box from pixels, counting antialiased edges by their coverage: the height
                # sums each row's coverage; the width is the widest row, each row's sum
                # scaled by its peak (the base row of a triangle is only partly covered).
                cover = np.clip(coverage(pixels, background, color), 0, 1)
                peak = cover.max(axis=1)
                rows = np.nonzero(peak > 0.2)[0]
                width = max(cover[r].sum() / peak[r] for r in rows)
                height = peak.sum()
                side = SIZES[size] * CANVAS
                assert abs(width - side) <= 1, (shape, size, width, side)
                expected_height = side * (TRIANGLE_HEIGHT if shape == "triangle" else 1)
                assert abs(height - expected_height) <= 1, (shape, size, height)
                if shape == "triangle":  # points up: a narrow apex row, a wide base row
                    top, bottom = cover[rows[0]].sum(), cover[rows[-1]].sum()
                    assert top < bottom / 3


# --- sampler ------------------------------------------------------------------------------

def test_sampler_obeys_every_placement_rule():
    lo, hi = CENTRE_RANGE
    backgrounds = []
    for seed in range(400):
        scene = scene_of(seed)
        backgrounds.append(scene.background)
        objs = scene.objects
        assert 1 <= len(objs) <= 4
        assert valid_layout(objs)
        for i, o in enumerate(objs):
            assert lo <= o.x <= hi and lo <= o.y <= hi
            x0, y0, x1, y1 = o.box
            assert x0 >= 0 and y0 >= 0 and x1 <= 1 and y1 <= 1
            for p in objs[:i]:
                assert boxes_clear(o.box, p.box, MIN_GAP_PX / CANVAS)
    share = {b: backgrounds.count(b) / len(backgrounds) for b in BACKGROUNDS}
    assert share["white"] > 0.5 and share["gray"] > 0.05 and share["black"] > 0.05
    assert {len(scene_of(s).objects) for s in range(100)} == {1, 2, 3, 4}


def test_sampler_is_deterministic():
    for seed in range(20):
        assert scene_of(seed) == scene_of(seed)
        assert scene_of(seed, 3) == scene_of(seed, 3)


@PROPERTY
@given(seeds)
def test_scene_json_round_trip(seed):
    scene = scene_of(seed)
    assert Scene.from_json(scene.to_json()) == scene
    assert Scene.from_dict(json.loads(scene.to_json())) == scene


# --- phrasings ----------------------------------------------------------------------------

def _alternation(words) -> str:
    return "|".join(sorted({re.escape(w) for w in words}, key=len, reverse=True))


SHAPE_OF = {w: s for s, ws in SHAPE_WORDS.items() for w in ws}
SHAPE_OF.update({w + ("es" if w.endswith("x") else "s"): s for w, s in list(SHAPE_OF.items())})
COLOR_OF = {w: c for c, ws in COLOR_WORDS.items() for w in ws}
SIZE_OF = {w: s for s, ws in SIZE_WORDS.items() for w in ws}
SHAPE_RE = re.compile(rf"\b({_alternation(SHAPE_OF)})\b")
COLOR_RE = re.compile(rf"\b({_alternation(COLOR_OF)})\b")
SIZE_RE = re.compile(rf"\b({_alternation(SIZE_OF)})\b")
NP = (rf"an? (?:(?:{_alternation(SIZE_OF)}) )?(?:(?P<c{{0}}>{_alternation(COLOR_OF)}) "
      rf"(?P<s{{0}}>{_alternation(SHAPE_OF)})|(?P<t{{0}}>{_alternation(SHAPE_OF)}) in "
      rf"(?P<d{{0}}>{_alternation(COLOR_OF)}))")
REL_WORD = {w: r for r, ws in RELATION_PHRASES.items() for w in ws}
RELATION_RE = re.compile(rf"{NP.format('a')} (?P<rel>{_alternation(REL_WORD)}) "
                         rf"{NP.format('b')}")


def _np_kind(match, tag) -> tuple[str, str]:
    color = match.group("c" + tag) or match.group("d" + tag)
    shape = match.group("s" + tag) or match.group("t" + tag)
    return SHAPE_OF[shape], COLOR_OF[color]


def words_fit_scene(text: str, scene: Scene) -> None:
    """The colour, shape and size words a phrasing uses are all of the scene's objects."""
    lower = text.lower()
    kinds = {(o.shape, o.color, o.size) for o in scene.objects}
    assert {SHAPE_OF[w] for w in SHAPE_RE.findall(lower)} <= {k[0] for k in kinds}, text
    assert {COLOR_OF[w] for w in COLOR_RE.findall(lower)} <= {k[1] for k in kinds}, text
    assert {SIZE_OF[w] for w in SIZE_RE.findall(lower)} <= {k[2] for k in kinds}, text
    # and every object's shape and colour is said.
    assert {SHAPE_OF[w] for w in SHAPE_RE.findall(lower)} == {k[0] for k in kinds}, text
    assert {COLOR_OF[w] for w in COLOR_RE.findall(lower)} == {k[1] for k in kinds}, text
    if scene.background != "white":
        assert any(f"{w} back" in lower for w in BACKGROUND_WORDS[scene.background]) or \
            re.search(rf"background is ({'|'.join(BACKGROUND_WORDS[scene.background])})",
                      lower), text
    # "A left of B": some A and some other B in the scene stand so.
    for match in RELATION_RE.finditer(lower):
        a, b = _np_kind(match, "a"), _np_kind(match, "b")
        relation = REL_WORD[match.group("rel")]
        assert any(relation_holds(p, q, relation) for p in scene.objects
                   for q in scene.objects if p is not q and (p.shape, p.color) == a
                   and (q.shape, q.color) == b), text


@PROPERTY
@given(seeds, counts)
def test_every_phrasing_is_true_of_its_scene(seed, n):
    scene = scene_of(seed, n)
    texts = phrasings(scene)
    assert texts[0] == caption(scene)
    for text in texts:
        words_fit_scene(text, scene)
    rng = np.random.default_rng(seed)
    for _ in range(30):
        p = sample_phrasing(scene, rng)
        words_fit_scene(p.text, scene)
        assert check(scene, p.constraints) == [], (p.text, check(scene, p.constraints))


@PROPERTY
@given(seeds, counts)
def test_phrasing_constraints_are_stated_not_vacuous(seed, n):
    """What a phrasing states fails on some changed scene: it says something checkable."""
    scene = scene_of(seed, n)
    rng = np.random.default_rng(seed)
    for _ in range(10):
        p = sample_phrasing(scene, rng)
        changed = Scene(scene.objects + (scene.objects[0],), scene.background)
        assert check(changed, p.constraints), p.text


def test_at_least_20_phrasings_per_scene_type():
    for n in (1, 2, 3, 4):
        for seed in range(5):
            scene = scene_of(seed, n)
            assert len(set(phrasings(scene))) >= 20, (n, seed)


def test_relations_are_said_only_when_they_hold():
    # Level objects: no "above"; far apart horizontally: "left of" holds one way.
    scene = make(("circle", "red", "small", 0.2, 0.5), ("square", "blue", "small", 0.8, 0.55))
    rng = np.random.default_rng(0)
    said = set()
    for _ in range(300):
        p = sample_phrasing(scene, rng, families=["relation", "anchored"])
        said |= {(c.a.color, c.relation, c.b.color) for c in p.constraints
                 if isinstance(c, Relation)}
        words_fit_scene(p.text, scene)
    assert said == {("red", "left_of", "blue"), ("blue", "right_of", "red")}
    # Centres 0.05 apart (overlapping, so never sampled; every valid pair is related):
    # no relation at all, so those families do not apply.
    close = make(("circle", "red", "small", 0.3, 0.3), ("square", "blue", "small", 0.35, 0.35))
    with pytest.raises(ValueError):
        random_phrasing(close, rng, families=["relation", "anchored"])
    assert "relation" in [sample_phrasing(scene, rng).family for _ in range(200)]


def test_counts_in_words_and_rows():
    row = make(("circle", "red", "small", 0.2, 0.5), ("circle", "red", "small", 0.5, 0.52),
               ("circle", "red", "small", 0.8, 0.48))
    rng = np.random.default_rng(1)
    texts = {random_phrasing(row, rng, families=["ordered", "count"]) for _ in range(300)}
    assert any("three red" in t for t in texts)
    assert any("a row of three red" in t for t in texts)
    scattered = make(("circle", "red", "small", 0.2, 0.2), ("circle", "red", "small", 0.5, 0.5),
                     ("circle", "red", "small", 0.8, 0.8))
    texts = {random_phrasing(scattered, rng, families=["ordered", "count"]) for _ in range(300)}
    assert not any("row" in t for t in texts)


def test_families_and_frames_restrict_phrasings():
    scene = scene_of(5, 3)
    rng = np.random.default_rng(2)
    for family in phrasing_templates():
        try:
            p = sample_phrasing(scene, rng, families=[family])
        except ValueError:
            continue
        assert p.family == family
    for _ in range(50):
        p = sample_phrasing(scene, rng, families=["caption", "bare"], frames=["can_you"])
        assert p.family in ("caption", "bare") and p.text.startswith("Can you draw")
    assert "draw" in phrasing_frames()
    with pytest.raises(ValueError):
        random_phrasing(scene, rng, families=["no_such_family"])


def test_random_phrasing_is_fast_and_deterministic():
    scenes = [scene_of(s) for s in range(500)]
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for scene in scenes:
        random_phrasing(scene, rng)
    per_call = (time.perf_counter() - start) / len(scenes)
    assert per_call < 1e-3  # about 0.05 ms on an idle core; loose for busy machines
    a = [random_phrasing(s, np.random.default_rng(9)) for s in scenes[:20]]
    b = [random_phrasing(s, np.random.default_rng(9)) for s in scenes[:20]]
    assert a == b


def test_words_cover_every_phrasing_and_instruction():
    words = set(all_words())
    assert all_words() == sorted(words)
    from world.phrasings import WORDS
    assert list(WORDS) == all_words()
    rng = np.random.default_rng(4)
    for seed in range(300):
        scene = scene_of(seed)
        assert set(tokenize(random_phrasing(scene, rng))) <= words
        assert set(tokenize(caption(scene))) <= words
        edit, _ = sample_edit(scene, rng)
        assert set(tokenize(edit.instruction)) <= words, edit.instruction


# --- referring expressions ----------------------------------------------------------------

EXTREMES = {"left": "left_of", "leftmost": "left_of", "right": "right_of",
            "rightmost": "right_of", "top": "above", "upper": "above", "topmost": "above",
            "bottom": "below", "lower": "below", "lowest": "below"}
PLACE_OF = {p: cell for cell, ps in PLACE_WORDS.items() for p in ps}
PLACE_RE = re.compile(rf"({_alternation(PLACE_OF)})$")


def resolve(scene: Scene, phrase: str) -> list[int]:
    """Which objects a referring expression fits, read the way a listener would."""
    if phrase == "it":
        return list(range(len(scene.objects)))
    objs = scene.objects
    place = PLACE_RE.search(phrase)
    # "on the left" / "on the right" at the end read as relative ("the one on the left").
    if place and not re.search(r" on the (left|right)$", phrase):
        cell = PLACE_OF[place.group(1)]
        return [k for k, o in enumerate(objs) if o.place == cell]
    text = phrase[len("the "):]
    direction = None
    for word, rel in EXTREMES.items():
        if text.startswith(word + " ") or text.endswith(f" on the {word}"):
            direction = rel
            text = text[len(word) + 1:] if text.startswith(word + " ") else \
                text[: -len(f" on the {word}")]
            break
    shape = [SHAPE_OF[w] for w in SHAPE_RE.findall(text)]
    color = [COLOR_OF[w] for w in COLOR_RE.findall(text)]
    size = [SIZE_OF[w] for w in SIZE_RE.findall(text)]
    fits = [k for k, o in enumerate(objs)
            if (not shape or o.shape == shape[0]) and (not color or o.color == color[0])
            and (not size or o.size == size[0])]
    if direction:
        fits = [k for k in fits
                if all(relation_holds(objs[k], objs[j], direction) for j in fits if j != k)]
    return fits


@PROPERTY
@given(seeds, counts)
def test_references_pick_out_exactly_their_object(seed, n):
    scene = scene_of(seed, n)
    d = Dice(np.random.default_rng(seed))
    for i in range(n):
        for phrase in referring_expressions(scene, i, d):
            assert resolve(scene, phrase) == [i], (phrase, scene.to_json())
            if n > 1:
                assert phrase != "it"


# --- edits --------------------------------------------------------------------------------

def untouched(before: Scene, edit: Edit) -> list[Obj]:
    return [o for k, o in enumerate(before.objects)
            if edit.kind == "add" or k not in edit.targets]


@PROPERTY
@given(seeds, counts)
def test_sampled_edits_are_exact_and_checkable(seed, n):
    before = scene_of(seed, n)
    rng = np.random.default_rng(seed)
    for kind in EDIT_KINDS:
        try:
            edit, after = sample_edit(before, rng, kinds=[kind])
        except ValueError:
            assert kind in ("remove", "add", "swap_colors", "move", "resize", "reshape")
            continue
        assert edit.kind == kind
        assert apply_edit(before, edit) == after
        assert valid_layout(after.objects)
        for o in untouched(before, edit):
            assert o in after.objects
        constraints = constraints_for_edit(before, edit, after)
        assert check(after, constraints) == [], (edit, check(after, constraints))
        assert check(before, constraints), edit
        assert Edit.from_dict(json.loads(json.dumps(edit.to_dict()))) == edit
        # The rendered after-image, read back, passes too.
        assert check(detect(render(after)), constraints) == [], edit


def test_edit_kinds_have_ten_phrasings_each():
    rng = np.random.default_rng(11)
    used = {kind: set() for kind in EDIT_KINDS}
    texts = {kind: set() for kind in EDIT_KINDS}
    for seed in range(400):
        scene = scene_of(seed, 2 + seed % 2)
        for kind in EDIT_KINDS:
            try:
                edit, _ = sample_edit(scene, rng, kinds=[kind])
            except ValueError:
                continue
            used[kind].add(edit.template)
            texts[kind].add(edit.instruction)
    for kind in EDIT_KINDS:
        assert len(edit_template_ids(kind)) >= 10
        assert len(used[kind]) >= 10, (kind, used[kind])
        assert len(texts[kind]) >= 10


def test_edit_examples():
    one = make(("circle", "red", "small", 0.5, 0.5))
    rng = np.random.default_rng(0)
    seen = {sample_edit(one, rng, kinds=["resize"])[0].instruction for _ in range(200)}
    assert "Make it bigger" in seen
    pair = make(("circle", "red", "small", 0.25, 0.5), ("square", "blue", "large", 0.7, 0.5))
    seen = {sample_edit(pair, rng, kinds=["swap_colors"])[0].instruction for _ in range(300)}
    assert "Swap their colors" in seen
    edit, after = sample_edit(pair, rng, kinds=["swap_colors"])
    assert {(o.shape, o.color) for o in after.objects} == {("circle", "blue"), ("square", "red")}
    edit = Edit("add", (), {"shape": "circle", "color": "red", "size": "small",
                            "place": ["top", "left"]}, "add a small red circle at the top left")
    after = apply_edit(pair, edit)
    assert after.objects[:2] == pair.objects and after.objects[2].place == ("top", "left")
    assert check(after, constraints_for_edit(pair, edit, after)) == []
    moved = apply_edit(pair, Edit("move", (0,), {"place": ["bottom", "right"]}))
    assert moved.objects[0].place == ("bottom", "right") and moved.objects[1] == pair.objects[1]
    with pytest.raises(EditError):  # the large square fills the right side's middle
        apply_edit(pair, Edit("move", (0,), {"place": ["middle", "right"]}))
    below = apply_edit(pair, Edit("move", (0,), {"relation": "below", "anchor": 1}))
    assert relation_holds(below.objects[0], below.objects[1], "below")


def test_edits_that_cannot_be_placed_raise():
    full = scene_of(1, 4)
    with pytest.raises(EditError):
        apply_edit(full, Edit("add", (), {"shape": "circle", "color": "red", "size": "small"}))
    one = make(("circle", "red", "small", 0.5, 0.5))
    with pytest.raises(EditError):
        apply_edit(one, Edit("remove", (0,)))
    crowded = make(("square", "red", "large", 0.2, 0.5), ("square", "blue", "small", 0.5, 0.5))
    with pytest.raises(EditError):  # growing the small square would touch its neighbour
        apply_edit(crowded, Edit("resize", (1,), {"size": "large"}))
    with pytest.raises(EditError):
        apply_edit(crowded, Edit("move", (0,), {"place": ["top", "left"], "x": 0.8, "y": 0.8}))


def test_edit_families_hold_out_templates():
    scene = scene_of(3, 3)
    rng = np.random.default_rng(5)
    assert set(edit_templates()) == {"plain", "please", "question", "wish", "should"}
    for _ in range(100):
        edit, _ = sample_edit(scene, rng, families=["question"])
        assert edit.family == "question" and edit.instruction.endswith("?")
    for _ in range(100):
        edit, _ = sample_edit(scene, rng, templates=["recolor.paint", "remove.erase"])
        assert edit.template in ("recolor.paint", "remove.erase")


# --- checker ------------------------------------------------------------------------------

def perturbations(scene: Scene):
    o = scene.objects[0]
    rest = scene.objects[1:]
    other = {"shape": [s for s in SHAPES if s != o.shape][0],
             "color": [c for c in COLORS if c != o.color][0],
             "size": "large" if o.size == "small" else "small"}
    for attr, value in other.items():
        yield Scene((o.replace(**{attr: value}),) + rest, scene.background)
    far_x = 0.2 if o.x > 0.5 else 0.8
    yield Scene((o.replace(x=far_x),) + rest, scene.background)
    yield Scene(scene.objects + (o,), scene.background)
    if rest:
        yield Scene(rest, scene.background)
    yield Scene(scene.objects, "black" if scene.background != "black" else "white")


@PROPERTY
@given(seeds, counts)
def test_scene_constraints_pass_and_catch_changes(seed, n):
    scene = scene_of(seed, n)
    constraints = constraints_for_scene(scene)
    assert check(scene, constraints) == []
    # Read back from pixels too, unless a centre sits on a cell edge (the detector's centres
    # are good to ~0.005, so such an object's cell is a coin toss).
    if all(min(abs(v - 1 / 3), abs(v - 2 / 3)) > 0.01 for o in scene.objects for v in (o.x, o.y)):
        assert check(detect(render(scene)), constraints) == []
    for changed in perturbations(scene):
        assert check(changed, constraints), changed.to_json()
    assert constraints_from_json(constraints_to_json(constraints)) == constraints


def test_check_messages_and_assignment():
    scene = make(("circle", "red", "small", 0.2, 0.2), ("square", "blue", "small", 0.8, 0.8))
    assert check(scene, [Count(2, "circle", "red")]) == ["expected 2 red circles, found 1"]
    blue, red = Exists("square", "blue"), Exists("circle", "red")
    assert check(scene, [Relation(blue, "left_of", red)]) == \
        ["the blue square is not left of the red circle"]
    assert check(scene, [Relation(red, "left_of", blue), Relation(red, "above", blue)]) == []
    # One red circle cannot stand for two.
    assert len(check(scene, [red, red])) == 1
    assert check(scene, [Background("gray")]) == ["expected a gray background, found white"]
    moved = Scene((scene.objects[0].replace(x=0.3),) + scene.objects[1:])
    message = check(moved, [Preserved.of(scene.objects[0])])
    assert message and "moved 0.10" in message[0]
    assert check(moved, [Preserved.of(scene.objects[0], tolerance=0.11)]) == []
    # Exactly the margin counts (0.3 - 0.2 is 0.0999... in floats); just under does not.
    a, b = Obj("circle", "red", "small", 0.2, 0.5), Obj("circle", "blue", "small", 0.3, 0.5)
    assert relation_holds(a, b, "left_of") and relation_holds(b, a, "right_of")
    assert not relation_holds(a, b.replace(x=0.2999), "left_of")


def test_constraint_json_round_trip():
    constraints = [Count(2, "circle", "red"), Exists("square", None, "large", "top", None),
                   Relation(Exists(color="red"), "above", Exists("triangle", x=0.5, y=0.5)),
                   Background("black"), Preserved("circle", "green", "small", 0.3, 0.4)]
    for c in constraints:
        assert constraint_from_dict(json.loads(json.dumps(constraint_to_dict(c)))) == c
    with pytest.raises(ValueError):
        constraint_from_dict({"type": "count", "n": 1, "hue": "red"})
    with pytest.raises(ValueError):
        Exists(color="magenta")


def test_the_contract_in_the_repository_states_the_worlds_numbers():
    """world/WORLD.md is the world's contract, which other tools check images against; the
    numbers in world/scene.py are its numbers."""
    from pathlib import Path

    from world.scene import BACKGROUNDS, CENTRE_RANGE, COLORS, MIN_GAP_PX, SIZES

    text = (Path(__file__).resolve().parents[1] / "world" / "WORLD.md").read_text()
    for name, rgb in COLORS.items():
        assert re.search(rf"\|\s*{name}\s*\|\s*\({', '.join(map(str, rgb))}\)", text), name
    for name, rgb in BACKGROUNDS.items():
        assert f"`{name}` ({', '.join(map(str, rgb))})" in text, name
    assert f"`small` = bounding box side {SIZES['small']}" in text
    assert f"`large` = {SIZES['large']}" in text
    assert f"[{CENTRE_RANGE[0]}, {CENTRE_RANGE[1]}]" in text
    assert f"at least {MIN_GAP_PX} px" in text
