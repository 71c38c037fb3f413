"""The 19 CelebAMask-HQ classes: one table, the single source of truth.

Index order, names and palette are the ones of the official MaskGAN demo / CelebAMask-HQ masks.
``l_`` / ``r_`` are the subject's own left/right, so a horizontal mirror swaps 4↔5, 6↔7, 8↔9.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FaceClass:
    index: int
    name: str          # exactly as CelebAMask-HQ names its part files
    display: str       # what a designer reads
    color: tuple[int, int, int]
    shortcut: str      # default key to select the class


_TABLE = (
    # idx, name,   display,          colour,          shortcut
    (0, "background", "Background", (0, 0, 0), "0"),
    (1, "skin", "Skin", (204, 0, 0), "1"),
    (2, "nose", "Nose", (76, 153, 0), "2"),
    (3, "eye_g", "Glasses", (204, 204, 0), "3"),
    (4, "l_eye", "Left eye", (51, 51, 255), "4"),
    (5, "r_eye", "Right eye", (204, 0, 204), "5"),
    (6, "l_brow", "Left brow", (0, 255, 255), "6"),
    (7, "r_brow", "Right brow", (51, 255, 255), "7"),
    (8, "l_ear", "Left ear", (102, 51, 0), "8"),
    (9, "r_ear", "Right ear", (255, 0, 0), "9"),
    (10, "mouth", "Mouth", (102, 204, 0), "M"),
    (11, "u_lip", "Upper lip", (255, 255, 0), "U"),
    (12, "l_lip", "Lower lip", (0, 0, 153), "L"),
    (13, "hair", "Hair", (0, 0, 204), "H"),
    (14, "hat", "Hat", (255, 51, 153), "T"),
    (15, "ear_r", "Earring", (0, 204, 204), "R"),
    (16, "neck_l", "Necklace", (0, 51, 0), "K"),
    (17, "neck", "Neck", (255, 153, 51), "N"),
    (18, "cloth", "Cloth", (0, 204, 0), "C"),
)

CLASSES: tuple[FaceClass, ...] = tuple(FaceClass(*row) for row in _TABLE)
NUM_CLASSES: int = len(CLASSES)  # 19
NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)
DISPLAY_NAMES: tuple[str, ...] = tuple(c.display for c in CLASSES)
SHORTCUTS: tuple[str, ...] = tuple(c.shortcut for c in CLASSES)
BACKGROUND: int = 0

#: uint8 [19, 3] RGB palette, row = class index.
PALETTE: np.ndarray = np.array([c.color for c in CLASSES], dtype=np.uint8)
PALETTE.setflags(write=False)

#: Left/right pairs (subject's left/right).
LR_PAIRS: tuple[tuple[int, int], ...] = ((4, 5), (6, 7), (8, 9))

#: uint8 [19] lookup table: class index -> its mirror class (identity for unpaired classes).
MIRROR_LUT: np.ndarray = np.arange(NUM_CLASSES, dtype=np.uint8)
for _a, _b in LR_PAIRS:
    MIRROR_LUT[_a], MIRROR_LUT[_b] = _b, _a
MIRROR_LUT.setflags(write=False)

_BY_NAME = {c.name: c.index for c in CLASSES}


def image_side(index: int) -> str:
    """``"right"`` for the subject's-left classes (``l_eye``, ``l_brow``, ``l_ear``: they appear on
    the image's right as you look at the face), ``"left"`` for ``r_*``, else ``""``."""
    for left, right in LR_PAIRS:
        if index == left:
            return "right"
        if index == right:
            return "left"
    return ""


def side_note(index: int) -> str:
    """``"subject's left, image right"`` for ``l_*``, the reverse for ``r_*``, else ``""``."""
    side = image_side(index)
    if not side:
        return ""
    return f"subject's {'left' if side == 'right' else 'right'}, image {side}"


def index_of(name: str) -> int:
    """Class index from its CelebAMask-HQ name (``"l_eye"`` -> 4). KeyError if unknown."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown class name {name!r}; known: {', '.join(NAMES)}") from None


def mirror_class(index: int) -> int:
    """The class a horizontal mirror turns ``index`` into."""
    return int(MIRROR_LUT[index])


def colorize(label_map: np.ndarray) -> np.ndarray:
    """uint8 [H,W] label map -> uint8 [H,W,3] RGB using :data:`PALETTE` (no Python loops)."""
    return np.take(PALETTE, np.asarray(label_map, dtype=np.uint8), axis=0)


def flip_labels(label_map: np.ndarray) -> np.ndarray:
    """Horizontally mirror a label map and swap left/right classes (for augmentation / mirror)."""
    return MIRROR_LUT[np.asarray(label_map)[..., ::-1]]
