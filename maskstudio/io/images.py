"""Image files: the one reader of RGB photos / exemplars, PNG writing, and sibling masks.

* :func:`read_rgb` — any image file as uint8 H x W x 3 RGB (optionally resized to a square
  ``size``, area filter down / bicubic up). Problems raise
  :class:`~maskstudio.errors.MaskFileError` ``"{path}: {problem}"``.
* :func:`encode_png` (fast: filter "none" + zlib level 1, for masks), :func:`png_bytes`
  (Pillow's adaptive filters, for photos) and :func:`write_png` (atomic write of either).
* Sibling masks: an exemplar ``face.jpg`` takes its mask from ``face.mask.png`` or
  ``face_mask.png`` beside it (:func:`sibling_mask`); such files are masks, not exemplars
  (:func:`is_mask_sibling`, :func:`is_exemplar_image`). The gallery and the CLI use these.
"""
from __future__ import annotations

import contextlib
import io
import os
import struct
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from maskstudio.errors import MaskFileError, MaskStudioError, file_error
from maskstudio.files import atomic_write, check_regular_file

__all__ = [
    "IMAGE_SUFFIXES",
    "MASK_SIBLING_SUFFIXES",
    "MAX_IMAGE_PIXELS",
    "MAX_IMAGE_SIDE",
    "PHOTO_MAX_SIDE",
    "check_input_file",
    "exif_orientation",
    "image_size_hw",
    "open_image",
    "orient_array",
    "oriented",
    "read_rgb_full",
    "encode_png",
    "is_exemplar_image",
    "is_mask_sibling",
    "png_bytes",
    "read_rgb",
    "sibling_mask",
    "write_png",
]

PathLike = str | os.PathLike

#: Suffixes of image files MaskStudio opens as exemplars / photos.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
#: ``<stem><suffix>`` beside ``<stem>.<ext>`` is that image's mask, in this order of preference.
MASK_SIBLING_SUFFIXES = (".mask.png", "_mask.png")


# --------------------------------------------------------------------------- sibling masks
def sibling_mask(image_path: PathLike) -> Path | None:
    """``face.jpg`` -> ``face.mask.png`` (else ``face_mask.png``) when it exists, else None."""
    p = Path(image_path)
    for suffix in MASK_SIBLING_SUFFIXES:
        cand = p.with_name(p.stem + suffix)
        if cand.is_file():
            return cand
    return None


def is_mask_sibling(path: PathLike) -> bool:
    """True for ``<stem>.mask.png``, and for ``<stem>_mask.png`` when an image ``<stem>.<ext>``
    is beside it (a lone ``party_mask.png`` is an ordinary image)."""
    p = Path(path)
    name = p.name.lower()
    if name.endswith(".mask.png"):
        return True
    if name.endswith("_mask.png"):
        stem = p.name[: -len("_mask.png")]
        return bool(stem) and any(p.with_name(stem + ext).is_file()
                                  for ext in IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES))
    return False


def is_exemplar_image(path: PathLike) -> bool:
    """An image file (by suffix) that is not some other image's sibling mask."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES and not is_mask_sibling(path)


# --------------------------------------------------------------------------- reading
#: Largest image accepted at all (photos, exemplars; checked from the header before any pixel is
#: decoded): 120 megapixels (e.g. 12000 x 10000), no side over 40000. Decoding one costs at most
#: ~4 bytes per pixel once (480 MB), so a read stays well inside a 1.5 GB process.
MAX_IMAGE_PIXELS = 120_000_000
MAX_IMAGE_SIDE = 40_000
#: :func:`read_rgb` shrinks photos / exemplars larger than this (longest side, aspect kept) while
#: decoding (JPEG DCT scaling, then an integer box reduce): every consumer (face parser, encoders,
#: DMN, canvas) works at 1024 px or less. :func:`read_rgb_full` keeps the full resolution.
PHOTO_MAX_SIDE = 2048

_TRANSPOSE = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM", 5: "TRANSPOSE",
              6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, struct.error, IndexError,
                  KeyError, TypeError)


def check_input_file(path: PathLike, what: str = "image", error: type[MaskStudioError] = MaskFileError) -> Path:
    """:func:`maskstudio.files.check_regular_file` for images: refuses folders, FIFOs, devices
    and empty files before anything opens them."""
    return check_regular_file(path, what, error)


def exif_orientation(im) -> int:
    """EXIF orientation (1..8) of an opened image; 1 when absent or unreadable."""
    try:
        value = im.getexif().get(0x0112, 1)
        return int(value) if int(value) in range(1, 9) else 1
    except Exception:  # noqa: BLE001 - a broken EXIF block only loses the orientation hint
        return 1


def _check_size(name: str, w: int, h: int, max_pixels: int, max_side: int, what: str) -> None:
    if w <= 0 or h <= 0:
        raise file_error(MaskFileError, name, f"image is empty ({w}x{h} pixels)")
    if w * h > max_pixels or max(w, h) > max_side:
        raise file_error(MaskFileError, name, f"image is {w}x{h} pixels ({w * h / 1e6:.1f} MP); the largest "
                                              f"accepted {what} is {_limit(max_pixels, max_side)}")


def _limit(max_pixels: int, max_side: int) -> str:
    return f"{max_side}x{max_side}" if max_side * max_side <= max_pixels else f"{max_pixels / 1e6:.0f} megapixels"


def _png_header_size(head: bytes) -> tuple[int, int] | None:
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return None


@contextlib.contextmanager
def open_image(source: PathLike | bytes, *, name: str | None = None, max_pixels: int = MAX_IMAGE_PIXELS,
               max_side: int = MAX_IMAGE_SIDE, what: str = "image") -> Iterator[Any]:
    """Open an image (a path, or the bytes of a file such as a project member) lazily, with
    its size checked from the header against ``max_pixels`` / ``max_side`` before any pixel is
    decoded. Yields the Pillow image (not loaded); every Pillow / zlib failure inside the block
    (bombs, truncated data, oversize text chunks, bad EXIF) becomes ``MaskFileError`` naming
    ``name`` (default: the path)."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "<image>"
        if not len(source):
            raise file_error(MaskFileError, label, "empty file (0 bytes)")
        head = bytes(source[:24])
        fp: Any = io.BytesIO(source)
    else:
        label = name or os.fspath(source)
        p = check_input_file(source, what)
        try:
            fp = open(p, "rb")
        except OSError as e:
            raise file_error(MaskFileError, label, f"cannot read ({e.strerror or e})") from e
        head = fp.read(24)
        fp.seek(0)
    try:
        hw = _png_header_size(head)
        if hw is not None:  # refuse from the PNG header before Pillow parses any chunk
            _check_size(label, hw[0], hw[1], max_pixels, max_side, what)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                im = Image.open(fp)
            except UnidentifiedImageError as e:
                raise file_error(MaskFileError, label, "not an image file (or an unsupported format)") from e
            with im:
                _check_size(label, im.size[0], im.size[1], max_pixels, max_side, what)
                try:
                    yield im
                except MaskStudioError:
                    raise
                except MemoryError as e:
                    raise file_error(MaskFileError, label, "not enough memory to decode this image") from e
                except _DECODE_ERRORS as e:  # decoding the pixels failed
                    raise file_error(MaskFileError, label, f"truncated or corrupt image ({e})") from e
    except MaskStudioError:
        raise
    except Image.DecompressionBombError as e:
        raise file_error(MaskFileError, label, f"image is too large to decode safely ({e}); the largest "
                                               f"accepted {what} is {_limit(max_pixels, max_side)}") from e
    except MemoryError as e:
        raise file_error(MaskFileError, label, "not enough memory to decode this image") from e
    except _DECODE_ERRORS as e:
        if "truncated" in str(e).lower():
            raise file_error(MaskFileError, label, f"truncated or corrupt image ({e})") from e
        raise file_error(MaskFileError, label, f"not a readable image ({e})") from e
    finally:
        fp.close()


def oriented(im, orientation: int):
    """``im`` turned upright for its EXIF ``orientation`` (a new image, or ``im`` itself for 1)."""
    from PIL import Image

    if orientation in _TRANSPOSE:
        return im.transpose(getattr(Image.Transpose, _TRANSPOSE[orientation]))
    return im


def orient_array(arr: np.ndarray, orientation: int) -> np.ndarray:
    """The numpy counterpart of :func:`oriented` (H x W [x C] arrays, a view where possible)."""
    if orientation == 2:
        return arr[:, ::-1]
    if orientation == 3:
        return arr[::-1, ::-1]
    if orientation == 4:
        return arr[::-1]
    if orientation == 5:
        return arr.swapaxes(0, 1)
    if orientation == 6:
        return arr.swapaxes(0, 1)[:, ::-1]
    if orientation == 7:
        return arr.swapaxes(0, 1)[::-1, ::-1]
    if orientation == 8:
        return arr.swapaxes(0, 1)[::-1]
    return arr


def _to_rgb(im):
    """Any Pillow mode -> mode RGB (16/32-bit grey scaled to 8 bits; CMYK and palette
    converted; transparency composited on white, so a cut-out face shows on white, not on
    whatever colour its transparent pixels happen to hold)."""
    from PIL import Image

    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im)
        if im.mode.startswith("I;16"):
            a = (a.astype(np.uint32) + 128) // 257
        else:
            a = np.clip(a, 0, 255)
        return Image.fromarray(a.astype(np.uint8), "L").convert("RGB")
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def _shrink(im, max_side: int):
    """``im`` with its longest side at most ``max_side`` (integer box reduce, then area resize)."""
    from PIL import Image

    w, h = im.size
    if max(w, h) <= max_side:
        return im
    scale = max_side / max(w, h)
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    k = min(w // tw, h // th)
    if k >= 2:
        im = im.reduce(k)
    if im.size != (tw, th):
        im = im.resize((tw, th), Image.Resampling.BOX)
    return im


def image_size_hw(path: PathLike, *, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[int, int]:
    """(height, width) of an image as shown (EXIF orientation applied), from its header only."""
    with open_image(path, max_pixels=max_pixels) as im:
        w, h = im.size
        return (w, h) if exif_orientation(im) in (5, 6, 7, 8) else (h, w)


def read_rgb(path: PathLike, size: int | None = None, *, max_side: int | None = PHOTO_MAX_SIDE,
             max_pixels: int = MAX_IMAGE_PIXELS, data: bytes | None = None) -> np.ndarray:
    """An image file as uint8 H x W x 3 RGB, upright (EXIF orientation), a new writable array.

    The size is checked from the header first (over ``max_pixels``: ``MaskFileError``). Larger
    than ``max_side`` (longest side): shrunk while decoding, aspect kept (``None``: full
    resolution, see :func:`read_rgb_full`). ``size``: then resized to ``size`` x ``size``
    (area filter when shrinking, bicubic when growing). Any decoding problem raises
    :class:`MaskFileError` naming the file. ``data``: the file's bytes, already read (``path``
    then only names it in messages).
    """
    from PIL import Image

    source: PathLike | bytes = path if data is None else data
    with open_image(source, name=None if data is None else os.fspath(path), max_pixels=max_pixels) as im:
        orientation = exif_orientation(im)
        limit = max_side
        if size is not None and limit is not None:
            limit = max(limit, size)
        if limit is not None and max(im.size) > limit and im.format in ("JPEG", "MPO"):
            w, h = im.size
            scale = limit / max(w, h)
            im.draft("RGB", (max(1, int(w * scale)), max(1, int(h * scale))))  # DCT scaling: never below
        im.load()
        out = _to_rgb(im)
        if limit is not None:
            out = _shrink(out, limit)
        out = oriented(out, orientation)
        if size is not None and out.size != (size, size):
            resample = Image.Resampling.BOX if out.size[0] > size else Image.Resampling.BICUBIC
            out = out.resize((size, size), resample)
        arr = np.asarray(out)
        if not arr.flags.writeable:
            out = None  # drop a converted copy before copying the pixels once more
            arr = arr.copy()
        return arr


def read_rgb_full(path: PathLike, *, max_pixels: int = MAX_IMAGE_PIXELS, data: bytes | None = None) -> np.ndarray:
    """An image at full resolution as uint8 H x W x 3 RGB, upright (EXIF orientation), within
    the pixel budget (:data:`MAX_IMAGE_PIXELS`, checked from the header). For a photo being
    edited (paste-back into the original); exemplars read through :func:`read_rgb`."""
    return read_rgb(path, max_side=None, max_pixels=max_pixels, data=data)


# --------------------------------------------------------------------------- writing
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(pixels: np.ndarray) -> bytes:
    """8-bit grey (H x W) or RGB (H x W x 3) -> PNG bytes.

    Filter "none" + zlib level 1: masks are flat regions, so this is ~5x faster than Pillow's
    adaptive filtering for RGB at a similar size (~10 kB for a 512 x 512 face mask).
    """
    arr = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = arr.shape[:2]
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    color_type = {1: 0, 3: 2}[channels]
    raw = np.zeros((h, w * channels + 1), np.uint8)  # a leading 0 per row = filter "none"
    raw[:, 1:] = arr.reshape(h, w * channels)
    header = struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 1)) + _png_chunk(b"IEND", b""))


def png_bytes(pixels: np.ndarray) -> bytes:
    """uint8 H x W (grey) or H x W x 3 (RGB) -> PNG bytes with Pillow's compression (photos)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def write_png(path: PathLike, pixels: np.ndarray, *, fast: bool = False, parents: bool = False) -> Path:
    """Atomic PNG write of uint8 grey / RGB pixels (``fast``: :func:`encode_png`, for masks;
    else :func:`png_bytes`). ``parents``: create missing folders. MaskFileError on failure."""
    data = encode_png(pixels) if fast else png_bytes(pixels)
    return atomic_write(path, data, parents=parents)
