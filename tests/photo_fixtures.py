"""Faces and synthetic "phone photos" for the photo tests.

Faces: the shipped gallery's DMN-rendered samples (``resources/gallery``, generated, no real
person; always present) and, when ``../shared/data`` exists, real CelebAMask-HQ crops.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from maskstudio.bench.photo_align import synthetic_photo  # noqa: F401 - re-exported for the tests

ROOT = Path(__file__).resolve().parents[1]
GALLERY = ROOT / "resources" / "gallery"
PAIRS = ROOT.parent / "shared" / "data" / "celebamask_pairs"


def gallery_face(i: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 512²×3 face, uint8 512² labels) of a shipped DMN sample."""
    img = np.asarray(Image.open(GALLERY / f"dmn_sample_{i:02d}.png").convert("RGB")).copy()
    with Image.open(GALLERY / f"dmn_sample_{i:02d}.mask.png") as im:
        lab = np.asarray(im if im.mode == "L" else Image.frombytes("L", im.size, im.tobytes())).copy()
    return img, lab


def real_stems(n: int) -> list[str]:
    import json

    meta = json.loads((ROOT / "checkpoints" / "face_parser.json").read_text())["meta"]
    return meta["train"]["split"]["val_stems"][:n]


def real_face(stem: str) -> tuple[np.ndarray, np.ndarray]:
    img = np.asarray(Image.open(PAIRS / "images" / f"{stem}.jpg").convert("RGB")).copy()
    with Image.open(PAIRS / "masks" / f"{stem}.png") as im:
        lab = np.asarray(Image.frombytes("L", im.size, im.tobytes()) if im.mode == "P" else im).copy()
    return img, lab


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return np.asarray(pts, np.float64) @ m[:, :2].T + m[:, 2]
