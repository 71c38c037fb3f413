"""Five face landmarks from a CelebAMask-HQ class map, and the crop convention they define.

Landmarks (always in this order, ``float64 [5, 2]`` as ``(x, y)`` pixel coordinates):

0. the eye on the image's left  (normally class ``r_eye``, the subject's right eye), centroid
1. the eye on the image's right (normally class ``l_eye``, the subject's left eye), centroid
2. the nose (class ``nose``), centroid
3. the mouth corner on the image's left  } ends of the lips + mouth region (``mouth``, ``u_lip``,
4. the mouth corner on the image's right } ``l_lip``) along the eye-to-eye axis

Coordinates follow OpenCV: ``(0, 0)`` is the centre of the top-left pixel, x to the right, y down.
A centroid is the mean of the member pixels' integer indices. The eyes are the two largest
regions of ``l_eye`` ∪ ``r_eye`` ordered by x: 59 of the 900 training masks have the two eye
labels swapped, and the image position is what alignment needs. The same function measures the
training masks (to define the convention) and our parser's masks of a photo (to align it), so
any bias of the definitions cancels out.
"""
from __future__ import annotations

import numpy as np

from maskstudio.errors import FaceError

__all__ = ["MEAN_LANDMARKS_512", "LANDMARK_NAMES", "landmarks_from_labels", "LandmarkError"]

LANDMARK_NAMES = ("eye_image_left", "eye_image_right", "nose", "mouth_image_left", "mouth_image_right")

#: Mean landmark positions of OUR training data at 512² (the CelebA-HQ crop convention).
#: Computed once with ``landmarks_from_labels`` over all 900 ground-truth masks of
#: ``../shared/data/celebamask_pairs/masks`` (read at 512², class index = pixel value), averaging
#: each landmark over the masks where all five were found (870 of 900; the other 30 lack an eye
#: or the lips, e.g. hidden by hair or a hand):
#:     python -m maskstudio.photo.landmarks ../shared/data/celebamask_pairs/masks
#: For a crop of side S the targets are ``MEAN_LANDMARKS_512 * S / 512`` (pixel-centre scaling
#: is ignored: < 0.5 px at any S used here).
MEAN_LANDMARKS_512 = np.array([
    [193.88, 244.26],  # eye_image_left:    std over the masks x 4.2 px, y 2.6 px
    [317.64, 244.70],  # eye_image_right:   std x 5.9 px, y 2.7 px
    [255.25, 295.35],  # nose:              std x 8.1 px, y 7.1 px
    [206.61, 377.45],  # mouth_image_left:  std x 9.3 px, y 8.5 px
    [305.26, 377.53],  # mouth_image_right: std x 9.2 px, y 8.6 px
], dtype=np.float64)
MEAN_LANDMARKS_512.setflags(write=False)

_R_EYE, _L_EYE, _NOSE = 5, 4, 2
_LIPS = (10, 11, 12)


class LandmarkError(FaceError):
    """A landmark could not be found in a class map (no such class, e.g. a profile)."""


def _largest_component(mask: np.ndarray) -> tuple[np.ndarray, ...] | None:
    """(ys, xs) pixel indices of the largest 8-connected component of a bool mask, or None."""
    import cv2

    if not mask.any():
        return None
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    if n <= 2:
        return np.nonzero(mask)
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return np.nonzero(lab == k)


def _centroid(labels: np.ndarray, cls: int | tuple[int, ...], what: str) -> np.ndarray:
    m = np.isin(labels, cls) if isinstance(cls, tuple) else labels == cls
    idx = _largest_component(m)
    if idx is None:
        raise LandmarkError(f"no {what} found")
    ys, xs = idx
    return np.array([xs.mean(), ys.mean()], dtype=np.float64)


def _eyes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroids of the two largest regions of l_eye ∪ r_eye, the image-left one first."""
    import cv2

    m = np.isin(labels, (_R_EYE, _L_EYE)).view(np.uint8)
    n, lab, stats, cents = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n < 3:
        raise LandmarkError("fewer than two eyes found (a profile, or eyes hidden)")
    areas = stats[1:, cv2.CC_STAT_AREA]
    top = 1 + np.argsort(-areas, kind="stable")[:2]
    if areas[top[1] - 1] < 0.15 * areas[top[0] - 1]:
        raise LandmarkError("only one eye found (a profile, or one eye hidden)")
    pts = []
    for k in top:
        ys, xs = np.nonzero(lab == k)
        pts.append(np.array([xs.mean(), ys.mean()], dtype=np.float64))
    pts.sort(key=lambda p: p[0])
    return pts[0], pts[1]


def landmarks_from_labels(labels: np.ndarray, *, end_fraction: float = 0.03) -> np.ndarray:
    """``float64 [5, 2]`` landmarks (order in the module docstring) of a uint8 H×W class map.

    Eyes: centroids of the two largest regions of both eye classes, ordered by x. Nose:
    centroid of its largest connected region. Mouth corners: the
    lips + mouth pixels are projected on the eye-to-eye direction; each corner is the mean of the
    pixels in the outermost ``end_fraction`` at that end. Raises :class:`LandmarkError` when a
    part is missing (both eyes are needed: a profile has one).
    """
    if labels.ndim != 2:
        raise ValueError(f"labels must be H×W, got {labels.shape}")
    eye_a, eye_b = _eyes(labels)
    nose = _centroid(labels, _NOSE, "nose")
    idx = _largest_component(np.isin(labels, _LIPS))
    if idx is None:
        raise LandmarkError("no mouth or lips found")
    pts = np.stack([idx[1], idx[0]], axis=1).astype(np.float64)
    axis = eye_b - eye_a
    norm = float(np.hypot(*axis))
    if norm < 1e-6:
        raise LandmarkError("the two eyes coincide")
    axis /= norm
    proj = pts @ axis
    k = max(1, int(round(end_fraction * len(pts))))
    order = np.argsort(proj, kind="stable")
    left = pts[order[:k]].mean(axis=0)
    right = pts[order[-k:]].mean(axis=0)
    return np.stack([eye_a, eye_b, nose, left, right])


def _measure(folder: str, size: int = 512) -> None:  # pragma: no cover - run once by hand
    """Print the mean landmarks of every mask PNG in ``folder`` (at ``size``²) as Python."""
    from pathlib import Path

    from PIL import Image

    rows, failed = [], 0
    files = sorted(Path(folder).glob("*.png"))
    for f in files:
        with Image.open(f) as im:
            lab = np.asarray(im if im.mode == "L" else Image.frombytes("L", im.size, im.tobytes()))
        if lab.shape != (size, size):
            lab = np.asarray(Image.fromarray(lab).resize((size, size), Image.Resampling.NEAREST))
        try:
            rows.append(landmarks_from_labels(lab))
        except LandmarkError:
            failed += 1
    a = np.stack(rows)
    print(f"# {len(rows)} of {len(files)} masks (failed {failed})")
    for name, m, s in zip(LANDMARK_NAMES, a.mean(0), a.std(0)):
        print(f"    [{m[0]:.2f}, {m[1]:.2f}],  # {name}: std x {s[0]:.1f} px, y {s[1]:.1f} px")


if __name__ == "__main__":  # pragma: no cover
    import sys

    _measure(sys.argv[1])
