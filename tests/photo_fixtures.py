"""Synthetic "phone photos" made from an aligned 512² face crop, with the transform known.

A random similarity (rotation, scale, translation) puts the crop into a larger canvas with
another background (smooth colour noise); the crop's square edge is feathered so the cascade
sees a face, not a pasted tile; the result goes through JPEG like a phone's output.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "celebamask_pairs"


@dataclass
class SyntheticPhoto:
    image: np.ndarray           # uint8 H×W×3 (after JPEG)
    photo_from_crop: np.ndarray  # float64 2×3: original crop px -> photo px
    jpeg: bytes


def background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    import cv2

    small = rng.integers(0, 256, size=(max(2, h // 200), max(2, w // 200), 3), dtype=np.uint8)
    bg = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    bg += rng.normal(0, 6, size=(h, w, 3)).astype(np.float32)
    return np.clip(bg, 0, 255).astype(np.uint8)


def make_photo(crop: np.ndarray, rng: np.random.Generator, *, size_wh=(1600, 1200),
               angle_deg: float | None = None, scale: float | None = None, quality: int = 90) -> SyntheticPhoto:
    import cv2
    from PIL import Image

    w, h = size_wh
    ang = float(rng.uniform(-20, 20)) if angle_deg is None else float(angle_deg)
    sc = float(rng.uniform(0.4, 1.2)) if scale is None else float(scale)
    s = crop.shape[0]
    a = math.radians(ang)
    lin = sc * np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    # keep the whole crop inside the canvas: random centre in the feasible range
    half = 0.5 * s * sc * (abs(math.cos(a)) + abs(math.sin(a)))
    cx = rng.uniform(half, max(half + 1, w - half))
    cy = rng.uniform(half, max(half + 1, h - half))
    t = np.array([cx, cy]) - lin @ np.array([(s - 1) / 2, (s - 1) / 2])
    m = np.hstack([lin, t[:, None]])
    face = cv2.warpAffine(crop, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    alpha_c = np.zeros((s, s), np.float32)
    e = s // 16
    alpha_c[e:-e, e:-e] = 1.0
    alpha_c = cv2.GaussianBlur(alpha_c, (0, 0), e / 2)
    alpha = cv2.warpAffine(alpha_c, m, (w, h), flags=cv2.INTER_LINEAR)[..., None]
    out = (alpha * face + (1 - alpha) * background(h, w, rng)).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, format="JPEG", quality=quality)
    data = buf.getvalue()
    img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).copy()
    return SyntheticPhoto(img, m, data)


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return np.asarray(pts, np.float64) @ m[:, :2].T + m[:, 2]
