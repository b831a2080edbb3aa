"""Scene -> 128 x 128 RGB image, exactly per world/WORLD.md (edges antialiased by supersampling)."""
from __future__ import annotations

from PIL import Image, ImageDraw

from .scene import BACKGROUNDS, CANVAS, COLORS, Obj, Scene

SUPERSAMPLE = 4


def object_polygon(obj: Obj, scale: float) -> list[tuple[float, float]]:
    """The triangle's vertices in pixels: equilateral, pointing up, centred on its box."""
    x0, y0, x1, y1 = (v * scale for v in obj.box)
    return [((x0 + x1) / 2, y0), (x0, y1), (x1, y1)]


def draw_object(draw: ImageDraw.ImageDraw, obj: Obj, scale: float, fill) -> None:
    x0, y0, x1, y1 = (v * scale for v in obj.box)
    # PIL's boxes include the far edge pixel; subtract one so the drawn side is exact.
    if obj.shape == "circle":
        draw.ellipse([x0, y0, x1 - 1, y1 - 1], fill=fill)
    elif obj.shape == "square":
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], fill=fill)
    else:
        draw.polygon(object_polygon(obj, scale), fill=fill)


def render(scene: Scene, size: int = CANVAS) -> Image.Image:
    big = size * SUPERSAMPLE
    image = Image.new("RGB", (big, big), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(image)
    for obj in scene.objects:
        draw_object(draw, obj, big, COLORS[obj.color])
    return image.resize((size, size), Image.Resampling.BOX)


def render_mask(obj: Obj, size: int = CANVAS) -> Image.Image:
    """One object's coverage as an 8-bit mask at the canvas size."""
    big = size * SUPERSAMPLE
    mask = Image.new("L", (big, big), 0)
    draw_object(ImageDraw.Draw(mask), obj, big, 255)
    return mask.resize((size, size), Image.Resampling.BOX)
