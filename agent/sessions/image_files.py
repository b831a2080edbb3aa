"""Reading image files given by the user, with errors that name the file."""
from __future__ import annotations

from contextlib import contextmanager
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
        with _quiet_decoder(), Image.open(path) as image:
            width, height = image.size
            if width > MAX_SIDE or height > MAX_SIDE:
                raise UsageError(
                    f"{path}: image is {width}x{height}, larger than the {MAX_SIDE}x{MAX_SIDE} "
                    "limit; scale it down first"
                )
            return to_rgb(image)
    except Image.DecompressionBombError:
        raise UsageError(
            f"{path}: image is too large to decode safely; scale it down below "
            f"{MAX_SIDE}x{MAX_SIDE} first"
        ) from None
    except UnidentifiedImageError:
        raise UsageError(
            f"{path}: not an image Atelier can read; give a PNG or JPEG file"
        ) from None
    except UsageError:
        raise
    except PermissionError:
        raise UsageError(f"{path}: permission denied; make the file readable") from None
    except MemoryError:
        raise UsageError(f"{path}: not enough memory to decode the image; scale it down "
                         "first") from None
    except Exception as error:
        # PIL's decoders report damaged data as OSError, SyntaxError, ValueError, struct.error,
        # EOFError and more, depending on the format and where the damage is.
        detail = str(error) or type(error).__name__
        raise UsageError(f"{path}: the image is damaged or incomplete ({detail}); save it "
                         "again, or give another file") from None


@contextmanager
def _quiet_decoder():
    """PIL's decoders warn and log about damaged files on stderr; the damage is reported as
    one UsageError instead, so a command's error stays one line."""
    import logging
    import warnings

    logger = logging.getLogger("PIL")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def to_rgb(image):
    """RGB for any PIL mode: transparency is flattened onto white (what a viewer shows behind
    it), and 16- and 32-bit pixels are scaled down rather than clipped to white."""
    from PIL import Image

    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        import numpy as np

        pixels = np.nan_to_num(np.asarray(image, dtype=np.float64))
        # 16-bit modes span 0..65535; 32-bit integer images ("I", how PIL reads some 16-bit
        # files) are taken as 16-bit when any value is beyond 8 bits; float images as 0..255.
        sixteen = image.mode.startswith("I;16") or (image.mode == "I"
                                                    and pixels.max(initial=0) > 255)
        scale = 255.0 / 65535.0 if sixteen else 1.0
        image = Image.fromarray(np.clip(pixels * scale + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        import warnings

        with warnings.catch_warnings():  # PIL's advice to do exactly this conversion
            warnings.simplefilter("ignore", UserWarning)
            image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(flat, rgba).convert("RGB")
    return image.convert("RGB")
