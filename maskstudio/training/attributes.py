"""Appearance attributes measured from a face image inside its mask (CIELAB, numpy + OpenCV).

One definition serves both sides of the DMN style boundaries: the labels they are fitted on
(training photos, inside their annotated masks) and the checks that moving along a boundary
changes the rendered face (renders of held-out masks, inside those masks).

Each attribute is the mean of one CIELAB channel (OpenCV's float conversion: ``L*`` 0..100,
``a*``/``b*`` about -128..127) over the pixels of some classes, after eroding the region by
``erode_px`` (so anti-aliased borders and the neighbouring class do not leak in); a region
with fewer than ``min_px`` pixels left gives NaN (e.g. a bald head has no hair lightness).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maskstudio.labels import NAMES

__all__ = ["Attribute", "ATTRIBUTES", "measure", "measure_batch", "to_lab"]


@dataclass(frozen=True)
class Attribute:
    name: str
    classes: tuple[str, ...]
    channel: str  # "L" | "a" | "b" | "C" (chroma sqrt(a²+b²))
    min_px: int = 200  # at 256² (scaled with the image area)
    what: str = ""

    @property
    def class_indices(self) -> tuple[int, ...]:
        return tuple(NAMES.index(c) for c in self.classes)

    @property
    def measurement(self) -> str:
        ch = {"L": "CIELAB L* (lightness, 0..100)", "a": "CIELAB a* (green- / red+)",
              "b": "CIELAB b* (blue- / yellow+)", "C": "CIELAB chroma sqrt(a*²+b*²)"}[self.channel]
        return (f"mean {ch} over the pixels of class {'+'.join(self.classes)} (mask eroded by 2 px at 256², "
                f"NaN below {self.min_px} px), sRGB photo converted with OpenCV (float, D65)")


#: Every candidate; the shipped set is the subset that measured separable (see the model card).
ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("hair_lightness", ("hair",), "L", what="dark ↔ light hair"),
    Attribute("hair_redness", ("hair",), "a", what="ash ↔ red/auburn hair"),
    Attribute("hair_warmth", ("hair",), "b", what="cool ↔ golden hair"),
    Attribute("hair_saturation", ("hair",), "C", what="grey ↔ saturated hair"),
    Attribute("skin_lightness", ("skin",), "L", what="dark ↔ light skin (incl. lighting)"),
    Attribute("skin_redness", ("skin",), "a", what="sallow ↔ rosy skin"),
    Attribute("skin_warmth", ("skin",), "b", what="pink/cool ↔ yellow/warm skin"),
    Attribute("lip_redness", ("u_lip", "l_lip"), "a", min_px=30, what="pale ↔ red lips"),
    Attribute("lip_lightness", ("u_lip", "l_lip"), "L", min_px=30, what="dark ↔ light lips"),
    Attribute("brow_lightness", ("l_brow", "r_brow"), "L", min_px=30, what="dark ↔ light brows"),
    Attribute("background_lightness", ("background",), "L", what="dark ↔ light background"),
    Attribute("background_saturation", ("background",), "C", what="grey ↔ colourful background"),
    Attribute("background_warmth", ("background",), "b", what="blue ↔ yellow background"),
    Attribute("cloth_lightness", ("cloth",), "L", what="dark ↔ light clothes"),
)
BY_NAME = {a.name: a for a in ATTRIBUTES}


def to_lab(image: np.ndarray) -> np.ndarray:
    """uint8 HxWx3 sRGB -> float32 HxWx3 CIELAB (OpenCV float convention)."""
    import cv2

    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def _region(labels: np.ndarray, classes: tuple[int, ...], erode_px: int) -> np.ndarray:
    import cv2

    m: np.ndarray = np.isin(labels, classes).astype(np.uint8)
    if erode_px > 0:
        k = 2 * erode_px + 1
        m = cv2.erode(m, np.ones((k, k), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=1)
    return m.astype(bool)


def measure(image: np.ndarray, labels: np.ndarray, attributes=ATTRIBUTES, lab: np.ndarray | None = None
            ) -> dict[str, float]:
    """{attribute name: value or NaN} of one image (uint8 HxWx3) inside its class map (HxW)."""
    if image.shape[:2] != labels.shape:
        raise ValueError(f"image {image.shape[:2]} and labels {labels.shape} sizes differ")
    lab = to_lab(image) if lab is None else lab
    side = labels.shape[0]
    erode = max(1, int(round(2 * side / 256)))
    area = labels.size / 256.0 ** 2
    chroma = None
    out: dict[str, float] = {}
    masks: dict[tuple[int, ...], np.ndarray] = {}
    for a in attributes:
        key = a.class_indices
        if key not in masks:
            masks[key] = _region(labels, key, erode)
        m = masks[key]
        if m.sum() < a.min_px * area:
            out[a.name] = float("nan")
            continue
        if a.channel == "C":
            if chroma is None:
                chroma = np.hypot(lab[..., 1], lab[..., 2])
            v = chroma[m]
        else:
            v = lab[..., "Lab".index(a.channel)][m]
        out[a.name] = float(v.mean())
    return out


def measure_batch(images: np.ndarray, labels: np.ndarray, attributes=ATTRIBUTES) -> np.ndarray:
    """[N, len(attributes)] float64 (NaN where a region is too small)."""
    rows = [measure(im, lb, attributes) for im, lb in zip(images, labels)]
    return np.array([[r[a.name] for a in attributes] for r in rows], np.float64).reshape(len(rows), len(attributes))
