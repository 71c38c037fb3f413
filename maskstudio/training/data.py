"""Training data: file discovery, a deterministic seeded split, a resized numpy cache, batches.

Layout of a data folder (``../shared/data`` or one a test builds)::

    DIR/celebamask_pairs/images/<stem>.jpg|.png   RGB faces
    DIR/celebamask_pairs/masks/<stem>.png         label maps (value = class 0..18)
    DIR/faces_unlabeled/*.jpg                     optional, faces without masks

``DIR`` may also directly contain ``images/`` and ``masks/``.

The split is a pure function of the sorted stems and the seed; it is written to
``<out>/split.json`` (``{"seed", "val_fraction", "train": [...], "val": [...]}``) so every
number we report names exactly which faces it was measured on.

The cache holds uint8 arrays resized once (images: area/bicubic, masks: nearest), so an epoch
never decodes a JPEG. Augmentation here is numpy-only: horizontal flip that swaps the left/right
classes through :func:`maskstudio.labels.flip_labels`, plus an optional small random
scale/shift (nearest for labels).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maskstudio.errors import ConfigError, MaskFileError, file_error
from maskstudio.io.images import read_rgb  # noqa: F401 (the one image reader; used below and re-exported)
from maskstudio.labels import MIRROR_LUT, NUM_CLASSES

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@dataclass(frozen=True)
class PairFiles:
    stems: list[str]
    images: dict[str, Path]
    masks: dict[str, Path]


def find_pairs(data_dir: "str | os.PathLike[str]") -> PairFiles:
    """Image/mask pairs under ``data_dir`` (see module doc), matched by file stem."""
    root = Path(data_dir)
    for base in (root / "celebamask_pairs", root):
        if (base / "images").is_dir() and (base / "masks").is_dir():
            break
    else:
        raise file_error(ConfigError, root, "no images/ and masks/ folders (nor celebamask_pairs/)")
    images = {p.stem: p for p in sorted((base / "images").iterdir()) if p.suffix.lower() in IMAGE_EXTS}
    masks = {p.stem: p for p in sorted((base / "masks").iterdir()) if p.suffix.lower() == ".png"}
    stems = sorted(set(images) & set(masks))
    if not stems:
        raise file_error(ConfigError, base, "no image/mask pairs with matching stems")
    return PairFiles(stems, {s: images[s] for s in stems}, {s: masks[s] for s in stems})


def find_unlabeled(data_dir: "str | os.PathLike[str]") -> list[Path]:
    folder = Path(data_dir) / "faces_unlabeled"
    if not folder.is_dir():
        return []
    return [p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_EXTS]


def split_stems(stems: list[str], val_fraction: float = 0.1, seed: int = 0) -> dict:
    """Deterministic split: rank stems by sha1(seed:stem); the first ``val_fraction`` are val."""
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    ranked = sorted(stems, key=lambda s: hashlib.sha1(f"{seed}:{s}".encode()).hexdigest())
    n_val = int(round(len(stems) * val_fraction))
    if len(stems) > 1 and val_fraction > 0:
        n_val = max(1, min(n_val, len(stems) - 1))
    return {
        "seed": seed,
        "val_fraction": val_fraction,
        "train": sorted(ranked[n_val:]),
        "val": sorted(ranked[:n_val]),
    }


def write_split(path: "str | os.PathLike[str]", split: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(split, indent=1))
    os.replace(tmp, path)


def load_split(path: "str | os.PathLike[str]") -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise file_error(ConfigError, path, f"cannot read split: {e}") from e


def read_labels(path: "str | os.PathLike[str]", size: int | None = None) -> np.ndarray:
    """uint8 HxW class map from an 8-bit / palette PNG; nearest resize when ``size`` is given."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            if im.mode not in ("P", "L"):
                raise file_error(MaskFileError, path, f"expected an 8-bit label PNG, got mode {im.mode}")
            if im.mode == "P":
                # palette index = class index in CelebAMask-HQ masks; keep the indices
                im = Image.frombytes("L", im.size, im.tobytes())
            if size is not None and im.size != (size, size):
                im = im.resize((size, size), Image.Resampling.NEAREST)
            arr = np.asarray(im, dtype=np.uint8).copy()
    except OSError as e:
        raise file_error(MaskFileError, path, f"cannot read label PNG: {e}") from e
    if arr.size and int(arr.max()) >= NUM_CLASSES:
        raise file_error(MaskFileError, path, f"value {int(arr.max())} is not a class (0..{NUM_CLASSES - 1})")
    return arr


def _cache_key(files: list[Path], size: int, kind: str) -> str:
    h = hashlib.sha1(f"{kind}:{size}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:12]


def cached_array(files: list[Path], size: int, kind: str, cache_dir: "str | os.PathLike[str] | None") -> np.ndarray:
    """Stack of resized images (``kind='rgb'``, N×S×S×3) or masks (``'mask'``, N×S×S), cached as .npy."""
    reader = read_rgb if kind == "rgb" else read_labels
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"{kind}_{size}_{len(files)}_{_cache_key(files, size, kind)}.npy"
        if path.exists():
            return np.load(path)
    arr = np.stack([reader(f, size) for f in files]) if files else np.zeros((0, size, size, 3) if kind == "rgb" else (0, size, size), np.uint8)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, arr)
        os.replace(tmp, path)
    return arr


@dataclass
class PairArrays:
    stems: list[str]
    images: np.ndarray  # uint8 N×S×S×3
    masks: np.ndarray   # uint8 N×S×S


def load_pairs(data_dir, size: int, cache_dir=None, stems: list[str] | None = None) -> PairArrays:
    files = find_pairs(data_dir)
    all_stems = files.stems
    imgs = cached_array([files.images[s] for s in all_stems], size, "rgb", cache_dir)
    msks = cached_array([files.masks[s] for s in all_stems], size, "mask", cache_dir)
    if stems is not None:
        index = {s: i for i, s in enumerate(all_stems)}
        missing = [s for s in stems if s not in index]
        if missing:
            raise file_error(ConfigError, data_dir, f"split names unknown stem {missing[0]!r}")
        sel = np.array([index[s] for s in stems], dtype=np.int64)
        return PairArrays(list(stems), imgs[sel], msks[sel])
    return PairArrays(list(all_stems), imgs, msks)


# ----------------------------------------------------------------------------- augmentation

def flip_pair(image: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror an image/label pair horizontally, swapping l/r classes (4↔5, 6↔7, 8↔9)."""
    return image[:, ::-1], MIRROR_LUT[labels[:, ::-1]]


def _affine(image: np.ndarray, labels: np.ndarray | None, scale: float, dy: float, dx: float,
            angle: float = 0.0):
    import cv2

    h, w = image.shape[:2]
    m: np.ndarray = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)  # about the centre; angle 0 = scale only
    m[:, 2] += (dx, dy)
    m = m.astype(np.float32)
    img = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    lab = None
    if labels is not None:
        lab = cv2.warpAffine(labels, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101)
    return img, lab


def augment(image: np.ndarray, labels: np.ndarray | None, rng: np.random.Generator,
            flip: bool = True, jitter: float = 0.0, color: float = 0.0, rotate: float = 0.0):
    """Random flip (l/r-swapping) + optional scale/shift (``jitter`` = max relative change) and
    rotation (``rotate`` = max degrees) + optional brightness/contrast (``color``). Returns
    contiguous copies. ``rotate=0`` draws no extra random numbers (earlier recipes replay)."""
    if flip and rng.random() < 0.5:
        image = image[:, ::-1]
        if labels is not None:
            labels = MIRROR_LUT[labels[:, ::-1]]
    if jitter > 0 or rotate > 0:
        s = 1.0 + rng.uniform(-jitter, jitter)
        h = image.shape[0]
        dy, dx = rng.uniform(-jitter, jitter, 2) * h * 0.5
        angle = float(rng.uniform(-rotate, rotate)) if rotate > 0 else 0.0
        image, labels = _affine(np.ascontiguousarray(image), None if labels is None else np.ascontiguousarray(labels),
                                s, dy, dx, angle)
    if color > 0:
        a = 1.0 + rng.uniform(-color, color)
        b = rng.uniform(-color, color) * 128
        image = np.clip(image.astype(np.float32) * a + b, 0, 255).astype(np.uint8)
    image = np.ascontiguousarray(image)
    if labels is not None:
        labels = np.ascontiguousarray(labels)
    return image, labels


def batches(n: int, batch_size: int, rng: np.random.Generator, drop_last: bool = True):
    """Index batches of one shuffled epoch."""
    order = rng.permutation(n)
    stop = (n // batch_size) * batch_size if drop_last and n >= batch_size else n
    for i in range(0, stop, batch_size):
        yield order[i:i + batch_size]
