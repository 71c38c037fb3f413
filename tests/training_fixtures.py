"""Tiny synthetic "faces" for training tests: label maps of simple shapes, photos coloured by class.

Nothing here comes from real data. Each face: background, a skin ellipse, hair cap, nose, two
eyes (subject's left eye on the image's right, as in CelebAMask-HQ), lips; position jittered.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASS_RGB = {0: (20, 20, 30), 1: (200, 150, 120), 2: (170, 110, 90), 4: (40, 40, 200), 5: (40, 200, 40),
             11: (180, 40, 60), 12: (140, 30, 50), 13: (60, 40, 20)}


def synthetic_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    cy, cx = 0.55 + rng.uniform(-0.04, 0.04), 0.5 + rng.uniform(-0.04, 0.04)
    m = np.zeros((size, size), np.uint8)
    m[((yy - cy) / 0.36) ** 2 + ((xx - cx) / 0.28) ** 2 < 1] = 1
    m[(((yy - cy + 0.25) / 0.2) ** 2 + ((xx - cx) / 0.32) ** 2 < 1) & (yy < cy - 0.15)] = 13
    m[((yy - cy) / 0.08) ** 2 + ((xx - cx) / 0.05) ** 2 < 1] = 2
    m[((yy - cy + 0.1) / 0.04) ** 2 + ((xx - cx - 0.12) / 0.07) ** 2 < 1] = 4  # subject's left: image right
    m[((yy - cy + 0.1) / 0.04) ** 2 + ((xx - cx + 0.12) / 0.07) ** 2 < 1] = 5
    m[((yy - cy - 0.17) / 0.03) ** 2 + ((xx - cx) / 0.1) ** 2 < 1] = 11
    m[((yy - cy - 0.22) / 0.03) ** 2 + ((xx - cx) / 0.1) ** 2 < 1] = 12
    return m


def synthetic_photo(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    lut = np.zeros((19, 3), np.float32)
    for k, c in CLASS_RGB.items():
        lut[k] = c
    img = lut[mask] + rng.normal(0, 8, mask.shape + (3,))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_dataset(root: Path, n: int = 12, size: int = 64, seed: int = 0, unlabeled: int = 0) -> Path:
    """``root/celebamask_pairs/{images,masks}`` (+ ``root/faces_unlabeled``); returns ``root``."""
    rng = np.random.default_rng(seed)
    (root / "celebamask_pairs" / "images").mkdir(parents=True, exist_ok=True)
    (root / "celebamask_pairs" / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        m = synthetic_mask(size, rng)
        Image.fromarray(synthetic_photo(m, rng)).save(root / "celebamask_pairs" / "images" / f"face{i:03d}.png")
        Image.fromarray(m, mode="L").save(root / "celebamask_pairs" / "masks" / f"face{i:03d}.png")
    if unlabeled:
        (root / "faces_unlabeled").mkdir(parents=True, exist_ok=True)
        for i in range(unlabeled):
            m = synthetic_mask(size, rng)
            Image.fromarray(synthetic_photo(m, rng)).save(root / "faces_unlabeled" / f"u{i:03d}.jpg", quality=95)
    return root


#: a parser small enough for 64² tests
TINY_PARSER = {"channels": [8, 8, 16, 16, 16], "blocks": [0, 1, 1, 1, 1], "decoder": [16, 16, 8, 8]}
