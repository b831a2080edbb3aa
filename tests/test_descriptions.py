"""The domain-free reader of descriptions (planners/descriptions.py): things, counts, places,
relations and backgrounds, whatever the things are."""
from __future__ import annotations

import pytest

from planners.descriptions import Thing, read_description, singular


def things(text):
    return [(t.phrase, t.count, t.place) for t in read_description(text).things]


@pytest.mark.parametrize("text, expected", [
    ("a lighthouse", [("lighthouse", 1, None)]),
    ("three yellow taxis", [("yellow taxi", 3, None)]),
    ("two dogs and a cat at the top left", [("dog", 2, None), ("cat", 1, ("top", "left"))]),
    ("a vase in blue on the right side", [("blue vase", 1, ("middle", "right"))]),
    ("a pair of boots, a red one and one in the lower left",
     [("red boot", 1, None), ("boot", 1, ("bottom", "left"))]),
    ("4 apples in the middle of the picture", [("apple", 4, ("middle", "center"))]),
])
def test_things_their_counts_and_places(text, expected):
    assert things(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("Please draw me a lighthouse.", [("lighthouse", 1, None)]),
    ("Could you make a scene in which a fox is at the left side?",
     [("fox", 1, ("middle", "left"))]),
    ("I would like a picture of just one violin", [("violin", 1, None)]),
    ("there are two animals: a goat in brown and a cow at the bottom left",
     [("brown goat", 1, None), ("cow", 1, ("bottom", "left"))]),
    ("Make a scene where on the right there is a fir; in the top left is a moon",
     [("fir", 1, ("middle", "right")), ("moon", 1, ("top", "left"))]),
    ("a tent at the top center, one object in total", [("tent", 1, ("top", "center"))]),
])
def test_the_words_around_a_request_are_not_its_things(text, expected):
    assert things(text) == expected


def test_a_background_said_as_a_sentence_is_the_background():
    d = read_description("a sled on the left; the background is snowy white")
    assert d.things == [Thing("sled", 1, ("middle", "left"))] and d.background == "snowy white"


def test_relations_join_the_things_on_either_side():
    d = read_description("a kite above a windmill, on a cloudy background")
    assert d.things == [Thing("kite"), Thing("windmill")]
    assert d.relations == [(0, "above", 1)] and d.background == "cloudy"
    d = read_description("a mug below and to the right of a teapot")
    assert d.relations == [(0, "below", 1), (0, "right_of", 1)]
    assert read_description("a bench to the left of two lamps").things[1] == Thing("lamp", 2)


def test_a_relation_to_it_and_an_order_relate_the_things_said_before():
    d = read_description("Can you draw a blue kite, and under it, a yellow windmill?")
    assert d.things == [Thing("blue kite"), Thing("yellow windmill")]
    assert d.relations == [(1, "below", 0)]
    d = read_description("a cup, a fork and a plate, in order from left to right")
    assert [t.phrase for t in d.things] == ["cup", "fork", "plate"]
    assert d.relations == [(0, "left_of", 1), (1, "left_of", 2)]
    assert read_description("a hat and a shoe from top to bottom").relations == [(0, "above", 1)]


def test_plurals_become_the_detector_queries_singular():
    assert [singular(w) for w in ("boxes", "berries", "glasses", "benches", "bus", "cats")] == [
        "box", "berry", "glass", "bench", "bus", "cat"]


def test_a_description_without_words_has_no_things():
    assert read_description("  ...  ").things == []
