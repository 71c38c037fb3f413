"""Paste an edited crop back into the full-resolution photo through the inverse alignment.

Only what changed goes back: the crop-space alpha (the local re-render's alpha, or 1 over the
whole crop for a whole-face render) times a feathered crop edge is warped into the photo with
the edited crop; the photo is composited ``photo·(1−a) + warped·a`` inside the bounding box of
``a > 0`` and every other pixel — all of them when nothing was edited — is the input's, bit for
bit.
"""
from __future__ import annotations

import math

import numpy as np

from maskstudio.errors import RenderError

__all__ = ["edge_feather", "paste_back"]


def edge_feather(size: int, feather_px: int | None = None) -> np.ndarray:
    """float32 size×size: 1 inside, smoothstep down to 0 over ``feather_px`` at the crop edge
    (default size/32, 16 px at 512²)."""
    f = max(1, int(round(size / 32))) if feather_px is None else max(1, int(feather_px))
    r = np.arange(size, dtype=np.float32)
    d = np.minimum(r, size - 1 - r)  # distance to the nearest edge (pixel centres)
    t = np.clip(d / f, 0.0, 1.0)
    ramp = t * t * (3.0 - 2.0 * t)
    return np.minimum(ramp[:, None], ramp[None, :]).astype(np.float32)


def paste_back(photo: np.ndarray, crop: np.ndarray, crop_from_photo: np.ndarray,
               alpha: np.ndarray | None = None, *, feather_px: int | None = None) -> np.ndarray:
    """The photo with ``crop`` (uint8 S×S×3, cut with ``crop_from_photo``) composited back.

    ``alpha``: float32 S×S in [0, 1], what of the crop replaces the photo (None = all of it,
    the whole-face render); it is multiplied by :func:`edge_feather`. Returns a new array;
    pixels where the warped alpha is 0 are bit-identical to ``photo``."""
    import cv2

    s = crop.shape[0]
    if crop.shape != (s, s, 3) or crop.dtype != np.uint8:
        raise RenderError(f"paste-back: expected a uint8 square RGB crop, got {crop.dtype} {crop.shape}")
    a = edge_feather(s, feather_px)
    if alpha is not None:
        if alpha.shape != (s, s):
            raise RenderError(f"paste-back: alpha {alpha.shape} does not match the crop {crop.shape[:2]}")
        a = a * alpha.astype(np.float32)
    out = photo.copy()
    ys, xs = np.nonzero(a > 0)
    if ys.size == 0:
        return out
    m = np.asarray(crop_from_photo, np.float64)
    inv = cv2.invertAffineTransform(m)
    # the photo-space bounding box of the crop pixels with alpha > 0
    y0c, y1c, x0c, x1c = ys.min() - 1, ys.max() + 1, xs.min() - 1, xs.max() + 1
    corners = np.array([[x0c, y0c], [x1c, y0c], [x0c, y1c], [x1c, y1c]], np.float64) @ inv[:, :2].T + inv[:, 2]
    h, w = photo.shape[:2]
    x0 = max(0, int(math.floor(corners[:, 0].min())) - 1)
    y0 = max(0, int(math.floor(corners[:, 1].min())) - 1)
    x1 = min(w, int(math.ceil(corners[:, 0].max())) + 2)
    y1 = min(h, int(math.ceil(corners[:, 1].max())) + 2)
    if x1 <= x0 or y1 <= y0:
        return out
    # crop_from_photo restricted to the ROI: roi px (u, v) = photo px (u + x0, v + y0)
    m_roi = m.copy()
    m_roi[:, 2] += m[:, 0] * x0 + m[:, 1] * y0
    size = (x1 - x0, y1 - y0)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    wa = cv2.warpAffine(a, m_roi, size, flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    wc = cv2.warpAffine(crop, m_roi, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    roi = out[y0:y1, x0:x1]
    sel = wa > 1e-4
    if not sel.any():
        return out
    r = roi.astype(np.float32)
    blended = (r + (wc.astype(np.float32) - r) * wa[..., None] + 0.5).astype(np.uint8)
    np.copyto(roi, blended, where=sel[..., None])
    return out
