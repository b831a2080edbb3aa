"""Reading image files given by the user, with errors that name the file."""
from __future__ import annotations

from pathlib import Path

from agent.errors import UsageError

# Larger images are refused before decoding: a small file can expand to gigabytes of pixels.
MAX_SIDE = 4096


def open_rgb(path: str | Path):
    """Open an image file as an RGB PIL image, or raise UsageError saying what is wrong with it."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path}: is a folder; give the path of a PNG or JPEG image file")
    if not path.is_file():
        raise UsageError(f"{path}: no such file; give the path of a PNG or JPEG image")
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width > MAX_SIDE or height > MAX_SIDE:
                raise UsageError(
                    f"{path}: image is {width}x{height}, larger than the {MAX_SIDE}x{MAX_SIDE} "
                    "limit; scale it down first"
                )
            return image.convert("RGB")
    except Image.DecompressionBombError:
        raise UsageError(
            f"{path}: image is too large to decode safely; scale it down below "
            f"{MAX_SIDE}x{MAX_SIDE} first"
        ) from None
    except UnidentifiedImageError:
        raise UsageError(
            f"{path}: not an image Atelier can read; give a PNG or JPEG file"
        ) from None
    except OSError as error:
        raise UsageError(f"{path}: could not read the image ({error}); check the file") from None
