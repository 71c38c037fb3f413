"""Mask files: label PNGs, colour PNGs and the CelebAMask-HQ per-part folder layout.

* **Label PNG** — 8-bit, one channel, pixel value = class index 0..18 (mode ``L``; paletted
  ``P`` files are read by index, as the CelebAMask-HQ / MaskGAN masks are). Written as mode ``L``
  (``palette=True`` writes mode ``P`` with the official palette: same indices, colours in viewers).
* **Colour PNG** — RGB(A), each pixel one of the palette colours of :mod:`maskstudio.labels`.
  Colours within :data:`SNAP_DISTANCE` (Euclidean RGB) of a palette colour are snapped to it
  (half the closest palette pair is 25.5, so snapping is unambiguous); any other colour is an
  error naming the colour and a pixel. Fully transparent pixels (alpha 0) read as background.
* **Part folder** — CelebAMask-HQ annotations: one binary PNG per part, ``{id:05d}_{part}.png``
  (``00000_skin.png``, ``00000_l_eye.png``), in the folder or one level below it (the official
  layout splits ids into sub-folders). Parts are painted in class-index order, later over
  earlier; pixels of no part are background.

Every reader accepts any size: the map is resized to ``WORKING_SIZE`` x ``WORKING_SIZE`` with
nearest neighbour (pixel-centre sampling) unless ``resize=False``, and the original size is kept
in :attr:`MaskImage.original_size_hw`; writers take ``size_hw`` to export at that size. Going
up to 512 and back down is lossless for any original size up to 512.

Bad input raises :class:`~maskstudio.errors.MaskFileError` ``"{path}: {problem}"``; oversize
images are refused from their header, before any pixel is decoded. Writes are atomic (a
temporary file in the same folder, then ``os.replace``).
"""
from __future__ import annotations

import io
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from maskstudio import labels as L
from maskstudio.errors import MaskFileError, file_error
from maskstudio.files import atomic_write
from maskstudio.io.images import encode_png

WORKING_SIZE = 512
#: Largest accepted image: 8192 x 8192 pixels (refused from the header, before decoding).
MAX_PIXELS = 8192 * 8192
MAX_SIDE = 8192
#: Colours this close (Euclidean RGB) to a palette colour are snapped to it.
SNAP_DISTANCE = 20.0

LABEL_MODES = ("L", "P", "I", "I;16", "I;16B", "I;16L", "1", "LA", "PA")
COLOR_MODES = ("RGB", "RGBA", "RGBX")
PART_FILE_RE = re.compile(r"^(\d+)_([A-Za-z_]+)\.png$", re.IGNORECASE)

PathLike = str | os.PathLike


@dataclass(frozen=True)
class MaskImage:
    """A mask read from disk: ``labels`` (uint8, working size unless ``resize=False``)."""

    labels: np.ndarray
    original_size_hw: tuple[int, int]
    source_format: str  # "label" | "color" | "parts"
    path: str = ""


# --------------------------------------------------------------------------- helpers
def resize_nearest(label_map: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize by pixel-centre sampling (exact integer arithmetic).

    Destination pixel ``i`` takes source pixel ``floor((i + 0.5) * src / dst)``.
    """
    h, w = label_map.shape[:2]
    th, tw = int(size_hw[0]), int(size_hw[1])
    if th <= 0 or tw <= 0:
        raise ValueError(f"size {size_hw} must be positive")
    if (th, tw) == (h, w):
        return label_map.copy()
    rows = ((2 * np.arange(th, dtype=np.int64) + 1) * h) // (2 * th)
    cols = ((2 * np.arange(tw, dtype=np.int64) + 1) * w) // (2 * tw)
    return label_map[rows[:, None], cols[None, :]]


def _to_working(arr: np.ndarray, resize: bool) -> np.ndarray:
    if resize and arr.shape[:2] != (WORKING_SIZE, WORKING_SIZE):
        arr = resize_nearest(arr, (WORKING_SIZE, WORKING_SIZE))
    return np.ascontiguousarray(arr, dtype=np.uint8)


def _check_path_is_file(path: PathLike) -> Path:
    p = Path(path)
    if p.is_dir():
        raise file_error(MaskFileError, path, "is a directory, not a mask image")
    if not p.exists():
        raise file_error(MaskFileError, path, "no such file")
    try:
        size = p.stat().st_size
    except OSError as e:
        raise file_error(MaskFileError, path, f"cannot read ({e.strerror or e})") from e
    if size == 0:
        raise file_error(MaskFileError, path, "empty file (0 bytes)")
    return p


def _check_dimensions(path: PathLike, w: int, h: int) -> None:
    if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
        raise file_error(
            MaskFileError, path,
            f"image is {w}x{h} pixels; the largest accepted mask is {MAX_SIDE}x{MAX_SIDE}",
        )


def _open_pixels(path: PathLike) -> tuple[np.ndarray, str]:
    """Decode an image file to a numpy array, refusing oversize images before decoding.

    Returns ``(array, mode)``; for mode ``P`` the array holds palette indices.
    """
    p = _check_path_is_file(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(24)
    except OSError as e:
        raise file_error(MaskFileError, path, f"cannot read ({e.strerror or e})") from e
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        # PNG header: refuse oversize images before Pillow's own bomb check or any decoding
        _check_dimensions(path, int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big"))
    try:
        # Pillow's decompression-bomb warning starts above MAX_PIXELS: the size check refuses first
        with Image.open(p) as im:
            w, h = im.size
            _check_dimensions(path, w, h)
            if w == 0 or h == 0:
                raise file_error(MaskFileError, path, f"image is empty ({w}x{h} pixels)")
            mode = im.mode
            try:
                im.load()
            except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as e:
                raise file_error(MaskFileError, path, f"truncated or corrupt image ({e})") from e
            if mode in ("LA", "PA"):
                arr = np.asarray(im.getchannel(0))
                mode = mode[0]
            elif mode == "1":
                arr = np.asarray(im, dtype=np.uint8)
            elif mode in COLOR_MODES:
                # 4 channels, so colour keys are a free uint32 view (alpha 255 for RGB)
                arr = np.asarray(im.convert("RGBA"))
                mode = "RGBA" if mode == "RGBA" else "RGB"
            else:
                arr = np.asarray(im)
    except MaskFileError:
        raise
    except UnidentifiedImageError as e:
        raise file_error(MaskFileError, path, "not an image file (or an unsupported format)") from e
    except Image.DecompressionBombError as e:
        raise file_error(
            MaskFileError, path, f"image is too large ({e}); the largest accepted mask is {MAX_SIDE}x{MAX_SIDE}"
        ) from e
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as e:
        raise file_error(MaskFileError, path, f"cannot read image ({e})") from e
    return arr, mode


def _is_gray(arr: np.ndarray) -> bool:
    """True when R == G == B everywhere (a quick sample first: colour masks fail it at once)."""
    flat = arr.reshape(-1, arr.shape[-1])
    probe = flat[:: max(1, len(flat) // 997)]
    if not ((probe[:, 0] == probe[:, 1]).all() and (probe[:, 0] == probe[:, 2]).all()):
        return False
    return bool((flat[:, 0] == flat[:, 1]).all() and (flat[:, 0] == flat[:, 2]).all())


def _labels_from_indices(arr: np.ndarray, path: PathLike) -> np.ndarray:
    """Validate a one-channel index array (any integer dtype) -> uint8 labels."""
    if arr.ndim != 2:
        raise file_error(MaskFileError, path, f"expected a one-channel image, got shape {arr.shape}")
    bad = arr >= L.NUM_CLASSES
    if np.issubdtype(arr.dtype, np.signedinteger):
        bad |= arr < 0
    if bad.any():
        y, x = divmod(int(np.flatnonzero(bad)[0]), arr.shape[1])
        raise file_error(
            MaskFileError, path,
            f"value {int(arr[y, x])} at pixel (x={x}, y={y}) is not a class index "
            f"(0..{L.NUM_CLASSES - 1}); {int(bad.sum())} pixel(s) affected",
        )
    return arr.astype(np.uint8, copy=False)


def _pack_rgb(c: np.ndarray) -> np.ndarray:
    """uint8 [..., 3|4] -> uint32 keys ``r | g << 8 | b << 16`` (alpha dropped)."""
    if c.shape[-1] == 4 and c.flags.c_contiguous:
        return c.view("<u4")[..., 0] & np.uint32(0xFFFFFF)  # no copy of the pixels
    rgba = np.zeros(c.shape[:-1] + (4,), np.uint8)
    rgba[..., :3] = c[..., :3]
    return rgba.view("<u4")[..., 0].astype(np.uint32, copy=False)


_PALETTE_KEYS = _pack_rgb(L.PALETTE)
# Perfect multiplicative hash of the 19 palette colours into 64 slots: ``(key * A) >> 26``
# (uint32 arithmetic) is distinct for each, so a lookup is one multiply, one shift and two
# small-table gathers; a miss is detected by comparing the stored key. A is found at import.
_HASH_SHIFT = np.uint32(26)
_HASH_A = next(
    np.uint32(a) for a in range(2654435761, 2654435761 + 2_000_000, 2)
    if len(set(((_PALETTE_KEYS * np.uint32(a)) >> _HASH_SHIFT).tolist())) == L.NUM_CLASSES
)
_HASH_SLOTS = (_PALETTE_KEYS * _HASH_A) >> _HASH_SHIFT
_HASH_CLASS = np.zeros(64, np.uint8)
_HASH_CLASS[_HASH_SLOTS] = np.arange(L.NUM_CLASSES)
_HASH_KEY = np.full(64, 0xFFFFFFFF, np.uint32)  # never equals a 24-bit key
_HASH_KEY[_HASH_SLOTS] = _PALETTE_KEYS


def colors_to_labels(rgb: np.ndarray, path: PathLike = "<array>") -> np.ndarray:
    """uint8 [H,W,3|4] palette colours -> uint8 [H,W] labels (snapping; see module doc)."""
    if rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
        raise file_error(MaskFileError, path, f"expected an RGB image, got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise file_error(MaskFileError, path, f"expected 8-bit colour channels, got {rgb.dtype}")
    h, w = rgb.shape[:2]
    keys = _pack_rgb(rgb).ravel()
    slot = (keys * _HASH_A) >> _HASH_SHIFT
    out = _HASH_CLASS[slot]
    miss = _HASH_KEY[slot] != keys
    if rgb.shape[2] == 4:
        transparent = rgb[..., 3].ravel() == 0
        out[transparent] = L.BACKGROUND
        miss &= ~transparent
    if miss.any():
        miss_idx = np.flatnonzero(miss)
        colours, inverse = np.unique(keys[miss_idx], return_inverse=True)
        cols = np.stack([colours & 255, (colours >> 8) & 255, (colours >> 16) & 255], 1).astype(np.float64)
        dist = np.sqrt(((cols[:, None, :] - L.PALETTE[None, :, :].astype(np.float64)) ** 2).sum(-1))
        nearest = dist.argmin(1)
        near_d = dist[np.arange(len(colours)), nearest]
        far = near_d > SNAP_DISTANCE
        if far.any():
            k = int(np.flatnonzero(far)[0])
            first = int(miss_idx[np.flatnonzero(inverse == k)[0]])
            y, x = divmod(first, w)
            rgb_t = tuple(int(v) for v in cols[k])
            n_bad = int(far[inverse].sum())
            cls = int(nearest[k])
            raise file_error(
                MaskFileError, path,
                f"colour {rgb_t} at pixel (x={x}, y={y}) is not a palette colour "
                f"(nearest: {L.NAMES[cls]} {tuple(int(v) for v in L.PALETTE[cls])}, distance "
                f"{near_d[k]:.1f} > {SNAP_DISTANCE:g}); {n_bad} pixel(s) affected",
            )
        out[miss_idx] = nearest[inverse].astype(np.uint8)
    return out.reshape(h, w)


def labels_to_colors(label_map: np.ndarray) -> np.ndarray:
    """uint8 [H,W] labels -> uint8 [H,W,3] palette colours (``np.take``: ~4x faster than
    fancy indexing)."""
    return np.take(L.PALETTE, np.asarray(label_map, np.uint8), axis=0)


def _check_labels_arg(label_map: np.ndarray) -> np.ndarray:
    arr = np.asarray(label_map)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"labels must be a 2-D integer array, got {arr.dtype} {arr.shape}")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= L.NUM_CLASSES):
        raise ValueError(f"labels must be class indices 0..{L.NUM_CLASSES - 1}")
    return arr.astype(np.uint8, copy=False)


def _export(label_map: np.ndarray, size_hw: tuple[int, int] | None) -> np.ndarray:
    arr = _check_labels_arg(label_map)
    if size_hw is not None and tuple(size_hw) != arr.shape:
        arr = resize_nearest(arr, size_hw)
    return np.ascontiguousarray(arr)


# --------------------------------------------------------------------------- readers
def read_label_png(path: PathLike, *, resize: bool = True) -> MaskImage:
    """Read a label PNG (value = class index). Also accepts RGB files whose channels are equal."""
    arr, mode = _open_pixels(path)
    if mode in COLOR_MODES:
        c = arr[..., :3]
        if not _is_gray(arr):
            raise file_error(
                MaskFileError, path,
                f"is a colour image (mode {mode}), not a label PNG; read it as a colour mask",
            )
        arr = c[..., 0]
    elif mode not in LABEL_MODES:
        raise file_error(MaskFileError, path, f"unsupported image mode {mode} for a label PNG")
    labels = _labels_from_indices(arr, path)
    return MaskImage(_to_working(labels, resize), labels.shape, "label", os.fspath(path))


def read_color_png(path: PathLike, *, resize: bool = True) -> MaskImage:
    """Read a colour PNG (palette colours, snapped within :data:`SNAP_DISTANCE`)."""
    arr, mode = _open_pixels(path)
    if mode == "P" or mode in LABEL_MODES:
        raise file_error(
            MaskFileError, path,
            f"is a one-channel image (mode {mode}), not a colour PNG; read it as a label PNG",
        )
    if mode not in COLOR_MODES:
        raise file_error(MaskFileError, path, f"unsupported image mode {mode} for a colour PNG")
    labels = colors_to_labels(arr, path)
    return MaskImage(_to_working(labels, resize), labels.shape, "color", os.fspath(path))


def find_part_files(folder: PathLike) -> dict[int, dict[str, Path]]:
    """``{image_id: {part: path}}`` of CelebAMask-HQ part files in ``folder`` and one level down."""
    root = Path(folder)
    found: dict[int, dict[str, Path]] = {}
    candidates = [e for e in root.iterdir()]
    for sub in list(candidates):
        if sub.is_dir():
            candidates.extend(sub.iterdir())
    for f in candidates:
        m = PART_FILE_RE.match(f.name)
        if not m or not f.is_file():
            continue
        image_id, part = int(m.group(1)), m.group(2).lower()
        parts = found.setdefault(image_id, {})
        if part in parts:
            raise file_error(MaskFileError, f, f"duplicate part file (also {parts[part]})")
        parts[part] = f
    return found


def read_part_folder(folder: PathLike, image_id: int | None = None, *,
                     resize: bool = True) -> MaskImage:
    """Merge CelebAMask-HQ per-part PNGs of one face into a label map (see module doc)."""
    root = Path(folder)
    if not root.is_dir():
        raise file_error(MaskFileError, folder, "not a folder of CelebAMask-HQ part files")
    try:
        found = find_part_files(root)
    except OSError as e:
        raise file_error(MaskFileError, folder, f"cannot list folder ({e.strerror or e})") from e
    if not found:
        raise file_error(
            MaskFileError, folder,
            "no CelebAMask-HQ part files ({id:05d}_{part}.png, e.g. 00000_skin.png) in this folder",
        )
    if image_id is None:
        if len(found) > 1:
            ids = sorted(found)
            shown = ", ".join(str(i) for i in ids[:5]) + (", ..." if len(ids) > 5 else "")
            raise file_error(
                MaskFileError, folder,
                f"holds parts of {len(ids)} faces (ids {shown}); choose one image id",
            )
        image_id = next(iter(found))
    if image_id not in found:
        raise file_error(MaskFileError, folder, f"no part files for image id {image_id:05d}")
    parts = found[image_id]
    by_class: list[tuple[int, Path]] = []
    for part, f in parts.items():
        try:
            by_class.append((L.index_of(part), f))
        except KeyError:
            raise file_error(
                MaskFileError, f, f"unknown part {part!r} (parts are named {', '.join(L.NAMES[1:])})"
            ) from None
    by_class.sort()
    merged: np.ndarray | None = None
    size_from: Path | None = None
    for cls, f in by_class:
        arr, mode = _open_pixels(f)
        if arr.ndim == 3:
            arr = arr[..., :3].max(axis=2)
        elif mode == "1":
            arr = arr * 255
        if merged is None:
            merged = np.zeros(arr.shape[:2], np.uint8)
            size_from = f
        elif arr.shape[:2] != merged.shape:
            raise file_error(
                MaskFileError, f,
                f"part is {arr.shape[1]}x{arr.shape[0]} but {size_from.name} is "  # type: ignore[union-attr]
                f"{merged.shape[1]}x{merged.shape[0]}",
            )
        merged[arr > 127] = cls
    assert merged is not None
    return MaskImage(_to_working(merged, resize), merged.shape, "parts", os.fspath(folder))


def read_mask(path: PathLike, *, image_id: int | None = None, resize: bool = True) -> MaskImage:
    """Read any mask: a label PNG, a colour PNG (by image mode) or a part folder (a directory)."""
    p = Path(path)
    if p.is_dir():
        return read_part_folder(p, image_id, resize=resize)
    arr, mode = _open_pixels(path)
    if mode in COLOR_MODES:
        c = arr[..., :3]
        if _is_gray(arr) and int(c[..., 0].max()) < L.NUM_CLASSES and (
            mode != "RGBA" or bool((arr[..., 3] == 255).all())
        ):
            labels = _labels_from_indices(c[..., 0], path)  # a label map saved as RGB
            fmt = "label"
        else:
            labels = colors_to_labels(arr, path)
            fmt = "color"
    elif mode in LABEL_MODES:
        labels = _labels_from_indices(arr, path)
        fmt = "label"
    else:
        raise file_error(MaskFileError, path, f"unsupported image mode {mode} for a mask")
    return MaskImage(_to_working(labels, resize), labels.shape, fmt, os.fspath(path))


# --------------------------------------------------------------------------- writers
def write_label_png(path: PathLike, labels: np.ndarray, size_hw: tuple[int, int] | None = None,
                    *, palette: bool = False) -> None:
    """Write a label PNG (mode ``L``; ``palette=True``: mode ``P`` with the official palette).

    ``size_hw``: export size (nearest neighbour), e.g. ``MaskImage.original_size_hw``.
    """
    arr = _export(labels, size_hw)
    if palette:
        im = Image.frombytes("P", (arr.shape[1], arr.shape[0]), arr.tobytes())
        pal = np.zeros((256, 3), np.uint8)
        pal[: L.NUM_CLASSES] = L.PALETTE
        im.putpalette(pal.ravel().tolist())
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        atomic_write(path, buf.getvalue())
    else:
        atomic_write(path, encode_png(arr))


def write_color_png(path: PathLike, labels: np.ndarray, size_hw: tuple[int, int] | None = None) -> None:
    """Write a colour PNG (RGB palette colours), optionally at ``size_hw``."""
    arr = _export(labels, size_hw)
    atomic_write(path, encode_png(labels_to_colors(arr)))


def write_part_folder(folder: PathLike, labels: np.ndarray, image_id: int = 0,
                      size_hw: tuple[int, int] | None = None) -> list[Path]:
    """Write the CelebAMask-HQ layout: one 0/255 PNG per class present (not background)."""
    root = Path(folder)
    if not root.is_dir():
        raise file_error(MaskFileError, folder, "folder does not exist")
    arr = _export(labels, size_hw)
    written = []
    for cls in np.unique(arr):
        if cls == L.BACKGROUND:
            continue
        f = root / f"{image_id:05d}_{L.NAMES[cls]}.png"
        atomic_write(f, encode_png(np.where(arr == cls, 255, 0).astype(np.uint8)))
        written.append(f)
    return written


def write_mask(path: PathLike, labels: np.ndarray, fmt: str = "label",
               size_hw: tuple[int, int] | None = None) -> None:
    """``fmt``: ``"label"`` or ``"color"``."""
    if fmt == "label":
        write_label_png(path, labels, size_hw)
    elif fmt == "color":
        write_color_png(path, labels, size_hw)
    else:
        raise ValueError(f"unknown mask format {fmt!r}; formats: label, color")
