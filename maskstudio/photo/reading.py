"""Reading a photo into uint8 RGB: EXIF orientation applied, any mode converted, a pixel budget.

One small function so it can be swapped for :mod:`maskstudio.io.images` (the project's one
image reader) when that exists.
"""
from __future__ import annotations

import os

import numpy as np

from maskstudio.errors import MaskFileError, file_error

#: Largest photo accepted, in pixels (a 12000×10000 photo; 8000² = 64 MP fits).
MAX_PHOTO_PIXELS = 120_000_000


def _to_rgb(im) -> "object":
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.uint32 if im.mode == "I" else np.uint16)
        peak = 65535 if im.mode != "I" or a.max() > 255 else 255
        im = Image.fromarray((a.astype(np.float64) * (255.0 / peak)).round().astype(np.uint8), "L")
    elif im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        scale = 255.0 if a.max() <= 1.0 else 1.0
        im = Image.fromarray(np.clip(a * scale, 0, 255).round().astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def read_photo_bytes(path: "str | os.PathLike[str]") -> bytes:
    """The file's bytes (kept by a photo edit so projects store the original, not a re-encode)."""
    if not os.path.isfile(path):
        raise file_error(MaskFileError, path, "no such file")
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise file_error(MaskFileError, path, f"cannot read ({e.strerror or e})") from e


def read_photo(path: "str | os.PathLike[str]", max_pixels: int = MAX_PHOTO_PIXELS, *,
               data: bytes | None = None) -> np.ndarray:
    """uint8 H×W×3 RGB of a photo file (JPEG/PNG/WebP/TIFF/...), upright as its EXIF
    orientation says; greyscale/CMYK/16-bit converted, transparency composited on white.
    ``data``: the file's bytes, already read (``path`` then only names it in messages).
    :class:`MaskFileError` naming the file for a missing, unreadable or too large file."""
    import io

    from PIL import Image, ImageOps, UnidentifiedImageError

    if data is None and not os.path.isfile(path):
        raise file_error(MaskFileError, path, "no such file")
    try:
        with Image.open(path if data is None else io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise file_error(MaskFileError, path, f"{w}×{h} is {w * h / 1e6:.0f} MP, more than the "
                                                      f"{max_pixels / 1e6:.0f} MP MaskStudio reads")
            if w < 1 or h < 1:
                raise file_error(MaskFileError, path, "image has no pixels")
            im.load()
            im = ImageOps.exif_transpose(im)
            return np.ascontiguousarray(np.asarray(_to_rgb(im), dtype=np.uint8))
    except MaskFileError:
        raise
    except Image.DecompressionBombError as e:
        raise file_error(MaskFileError, path, f"too many pixels ({e})") from e
    except UnidentifiedImageError as e:   # Pillow's message repeats the path; say it in words
        raise file_error(MaskFileError, path, "not an image file (or an unsupported format)") from e
    except (OSError, ValueError, SyntaxError) as e:
        raise file_error(MaskFileError, path, f"not a readable image ({e})") from e
