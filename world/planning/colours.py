"""Colour names the shapes world has no word for (the CSS list, from webcolors), each read as a
world colour, so the rule planner can say "salmon: read as red"."""
from __future__ import annotations

import math

# Colours of the CSS list (webcolors) that the world has no word for, each read as the world
# colour of the nearest hue (CIELAB hue angle: lightness would make pink a pale cyan); greys
# and near-whites are left out, since no world object has such a colour. The planner says how
# it read them ("salmon: read as red").
MIN_CHROMA = 20.0


def _lab(rgb) -> tuple[float, float, float]:
    def linear(c):
        c = c / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t):
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def named_colors(known: dict[str, str], backgrounds: dict[str, str]) -> dict[str, str]:
    """Each CSS colour name not in `known` (word -> world colour) or `backgrounds`, read as a
    world colour."""
    import webcolors

    from world.scene import COLORS

    def hue(lab) -> float:
        return math.degrees(math.atan2(lab[2], lab[1])) % 360

    world = {name: hue(_lab(rgb)) for name, rgb in COLORS.items()}
    named = {}
    for name in webcolors.names("css3"):
        if name in known or name in backgrounds or name.endswith("grey"):
            continue
        lab = _lab(tuple(webcolors.name_to_rgb(name)))
        if math.hypot(lab[1], lab[2]) < MIN_CHROMA:
            continue
        # A compound names its colour last ("darkblue", "blueviolet"): that word decides.
        inside = [(name.rfind(word) + len(word), colour) for word, colour in known.items()
                  if len(word) > 2 and word in name]
        if inside:
            named[name] = max(inside)[1]
            continue
        angle = hue(lab)
        named[name] = min(world, key=lambda c: min(abs(angle - world[c]),
                                                   360 - abs(angle - world[c])))
    return named
