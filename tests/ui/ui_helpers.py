"""Shared helpers of the UI tests (tiny masks)."""
from __future__ import annotations

import numpy as np

SIZE = 64  # tiny documents keep every render a few ms on CPU


def face_like_mask(size: int = SIZE, shift: int = 0) -> np.ndarray:
    """A crude face layout: background, skin oval, hair, eyes, nose, lips (values 0..18)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    m = np.zeros((size, size), np.uint8)
    m[((yy - 0.55) / 0.38) ** 2 + ((xx - 0.5) / 0.3) ** 2 < 1] = 1          # skin
    m[(yy < 0.3 + shift / size) & (m == 1)] = 13                              # hair
    m[((yy - 0.45) / 0.04) ** 2 + ((xx - 0.38) / 0.06) ** 2 < 1] = 4          # l_eye (image left)
    m[((yy - 0.45) / 0.04) ** 2 + ((xx - 0.62) / 0.06) ** 2 < 1] = 5          # r_eye
    m[((yy - 0.58) / 0.07) ** 2 + ((xx - 0.5) / 0.04) ** 2 < 1] = 2           # nose
    m[((yy - 0.72) / 0.03) ** 2 + ((xx - 0.5) / 0.1) ** 2 < 1] = 11           # u_lip
    m[((yy - 0.77) / 0.03) ** 2 + ((xx - 0.5) / 0.1) ** 2 < 1] = 12           # l_lip
    return m
