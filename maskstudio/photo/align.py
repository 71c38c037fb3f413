"""Find the faces in a photo and align one onto the crop convention of our training data.

Pipeline (all in photo pixel coordinates, OpenCV convention: (0, 0) = centre of the top-left
pixel, x right, y down):

1. **Detect** with OpenCV's bundled Haar cascade (``haarcascade_frontalface_alt2``) on a grey,
   histogram-equalised copy downscaled to at most :data:`DETECT_MAX_SIDE` px. Nothing found
   upright: the copy is rotated by ±:data:`TILT_DEG` and searched again (heads tilted further
   than the cascade tolerates). Still nothing: the profile cascade decides between "no face"
   and "a face in profile" for the error message.
2. **Rough crop**: the box is mapped onto the mean Haar box of our training crops
   (:data:`TRAIN_BOX_512`, upright or at the detection angle) at the parser's input size.
3. **Refine twice**: our face parser labels the crop, :func:`landmarks_from_labels` takes the
   5 landmarks (eye centres, nose, mouth corners), and a least-squares similarity (Umeyama)
   maps them onto :data:`MEAN_LANDMARKS_512` (scaled to the crop); a second crop with that
   transform is parsed again for the final fit (the first crop may still be tilted or off).
4. The result, :class:`Alignment`, holds ``crop_from_photo`` (2×3 affine, photo px -> crop px),
   the face box and the landmarks in photo coordinates; :func:`warp_crop` cuts the crop.

The crop convention (what "aligned" means here): a similarity transform (rotation, uniform scale,
translation; no shear, no mirror) that puts the face's 5 landmarks, as our own definitions
measure them on a class map, as close as possible (least squares) to their mean positions over
the CelebAMask-HQ training masks at 512² — the same convention the parser and the DMN were
trained on, whatever CelebA-HQ's own procedure was.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from maskstudio.errors import FaceError
from maskstudio.photo.landmarks import MEAN_LANDMARKS_512, LandmarkError, landmarks_from_labels

__all__ = ["Alignment", "FaceBox", "detect_faces", "align_face", "warp_crop", "similarity_lstsq",
           "crop_landmarks", "MIN_FACE_PX"]

#: The photo is searched for faces at most this large (longest side, px).
DETECT_MAX_SIDE = 800
#: Faces narrower than this (detected box, photo px) are refused: too little detail for 512².
MIN_FACE_PX = 64
#: Extra in-plane angles (degrees) tried when no face is found upright.
TILT_DEG = 25.0

#: Mean Haar box (``haarcascade_frontalface_alt2``, the largest detection, scaleFactor 1.1,
#: minNeighbors 4) on our training crops: centre x, centre y, side, in 512² crop px. Measured
#: once on the first 300 images of ../shared/data/celebamask_pairs/images (downscaled to 256²,
#: grey, equalised; 291 detected): centre (257.0, 282.2) std (4.8, 8.0) px, side 322.0 std 25 px.
TRAIN_BOX_512 = (257.0, 282.2, 322.0)

#: Mean of the face parts (skin, nose, eyes, brows, lips, mouth) over the 900 training masks at
#: 512²: centroid x, y and sqrt(area), px (std 20.8, 19.2, 25.5). Used to re-centre a rough
#: crop when the detector's box was off and the first parse found no eyes.
TRAIN_FACE_PARTS_512 = (257.87, 286.68, 280.61)
_FACE_PARTS = (1, 2, 4, 5, 6, 7, 10, 11, 12)

#: The parser runs on crops of this side during refinement (its input size).
REFINE_SIZE = 256


@dataclass(frozen=True)
class FaceBox:
    """A detected face: axis-aligned box of the (possibly rotated) detection, photo px, plus the
    in-plane angle it was found at (degrees, counter-clockwise; 0 = upright)."""

    x: float
    y: float
    w: float
    h: float
    angle_deg: float = 0.0

    @property
    def centre(self) -> tuple[float, float]:
        return (self.x + self.w / 2.0, self.y + self.h / 2.0)

    @property
    def area(self) -> float:
        return self.w * self.h

    def to_list(self) -> list[float]:
        return [round(float(v), 2) for v in (self.x, self.y, self.w, self.h)]


@dataclass(frozen=True, eq=False)
class Alignment:
    """How a crop was cut from a photo. ``crop_from_photo``: float64 2×3, photo px -> crop px."""

    photo_size: tuple[int, int]          # (w, h)
    crop_size: int
    crop_from_photo: np.ndarray
    box: FaceBox
    landmarks: np.ndarray                # float64 [5, 2], photo coords
    face_index: int = 0
    n_faces: int = 1
    extra: dict = field(default_factory=dict)

    @property
    def photo_from_crop(self) -> np.ndarray:
        import cv2

        return cv2.invertAffineTransform(self.crop_from_photo)

    @property
    def scale(self) -> float:
        """Crop px per photo px."""
        m = self.crop_from_photo
        return float(math.hypot(m[0, 0], m[1, 0]))

    @property
    def angle_deg(self) -> float:
        """The face's in-plane tilt in the photo, degrees, counter-clockwise as displayed (the sign
        of OpenCV's ``getRotationMatrix2D``): the crop undoes this rotation."""
        m = self.crop_from_photo
        return float(math.degrees(math.atan2(m[1, 0], m[0, 0])))

    def resized(self, crop_size: int) -> "Alignment":
        """The same alignment for a crop of another side."""
        s = crop_size / self.crop_size
        m = _scale_crop(self.crop_from_photo, s)
        return Alignment(self.photo_size, int(crop_size), m, self.box, self.landmarks, self.face_index,
                         self.n_faces, dict(self.extra))

    def to_json(self) -> dict:
        return {
            "photo_size": [int(self.photo_size[0]), int(self.photo_size[1])],
            "crop_size": int(self.crop_size),
            "crop_from_photo": [[float(v) for v in row] for row in self.crop_from_photo],
            "face_box": self.box.to_list(),
            "face_angle_deg": float(self.box.angle_deg),
            "face_index": int(self.face_index),
            "faces_found": int(self.n_faces),
            "landmarks": {name: [round(float(x), 2), round(float(y), 2)]
                          for name, (x, y) in zip(_LM_NAMES, self.landmarks)},
        }

    @classmethod
    def from_json(cls, d: dict) -> "Alignment":
        from maskstudio.errors import ConfigError

        try:
            m = np.asarray(d["crop_from_photo"], dtype=np.float64)
            if m.shape != (2, 3) or not np.isfinite(m).all():
                raise ValueError(f"crop_from_photo must be a finite 2×3 matrix, got shape {m.shape}")
            box = d.get("face_box") or [0, 0, 0, 0]
            lm = d.get("landmarks") or {}
            pts = np.array([lm.get(n, [0.0, 0.0]) for n in _LM_NAMES], dtype=np.float64)
            w, h = (int(v) for v in d["photo_size"])
            bx, by, bw, bh = (float(v) for v in box)
            return cls((w, h), int(d["crop_size"]), m,
                       FaceBox(bx, by, bw, bh, float(d.get("face_angle_deg", 0.0))),
                       pts, int(d.get("face_index", 0)), int(d.get("faces_found", 1)))
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"alignment: {e}") from e


from maskstudio.photo.landmarks import LANDMARK_NAMES as _LM_NAMES  # noqa: E402


# -- geometry ---------------------------------------------------------------------------------
def similarity_lstsq(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """2×3 similarity (rotation, uniform scale, translation) minimising the (weighted) squared
    distances ``|M·src_i − dst_i|²`` — Umeyama's closed form, no reflection."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    w = np.ones(len(src)) if weights is None else np.asarray(weights, np.float64)
    w = w / w.sum()
    mu_s = (w[:, None] * src).sum(0)
    mu_d = (w[:, None] * dst).sum(0)
    s0 = src - mu_s
    d0 = dst - mu_d
    var_s = float((w * (s0 ** 2).sum(1)).sum())
    cov = (w[:, None, None] * (d0[:, :, None] * s0[:, None, :])).sum(0)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0
    r = u @ np.diag(d) @ vt
    scale = float((sig * d).sum() / var_s)
    t = mu_d - scale * r @ mu_s
    return np.hstack([scale * r, t[:, None]])


def _apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2×3 of ``a ∘ b`` (b first)."""
    a3 = np.vstack([a, [0, 0, 1]])
    b3 = np.vstack([b, [0, 0, 1]])
    return (a3 @ b3)[:2]


def _scale_crop(m: np.ndarray, s: float) -> np.ndarray:
    """Rescale a crop_from_photo for a crop ``s`` times as large (pixel centres kept consistent)."""
    pre = np.array([[s, 0, 0.5 * s - 0.5], [0, s, 0.5 * s - 0.5]])
    return _compose(pre, m)


def crop_landmarks(size: int) -> np.ndarray:
    """The target landmark positions in a crop of side ``size`` (pixel-centre correct)."""
    s = size / 512.0
    return (MEAN_LANDMARKS_512 + 0.5) * s - 0.5


def warp_crop(rgb: np.ndarray, crop_from_photo: np.ndarray, size: int, *,
              border: str = "reflect") -> np.ndarray:
    """The ``size``² crop of ``rgb`` under ``crop_from_photo`` (bilinear; when the crop shrinks
    the photo by more than 2×, it is cut from a pre-downscaled copy to avoid aliasing)."""
    import cv2

    m = np.asarray(crop_from_photo, np.float64)
    scale = math.hypot(m[0, 0], m[1, 0])
    src = rgb
    if scale < 0.5:
        # cut a generous axis-aligned window of the photo first, shrink it with INTER_AREA, then warp
        f = int(2 ** math.floor(math.log2(1.0 / scale)))  # 2, 4, 8, ... (remaining scale in [0.5, 1))
        inv = cv2.invertAffineTransform(m)
        corners = _apply(inv, np.array([[-1, -1], [size, -1], [-1, size], [size, size]], np.float64))
        h, w = rgb.shape[:2]
        x0 = int(max(0, math.floor(corners[:, 0].min()) - 2 * f))
        y0 = int(max(0, math.floor(corners[:, 1].min()) - 2 * f))
        x1 = int(min(w, math.ceil(corners[:, 0].max()) + 2 * f))
        y1 = int(min(h, math.ceil(corners[:, 1].max()) + 2 * f))
        if x1 - x0 >= 2 * f and y1 - y0 >= 2 * f:
            x0 -= x0 % f  # keep the window on the f-grid
            y0 -= y0 % f
            x1 = min(w, x0 + (x1 - x0) // f * f)
            y1 = min(h, y0 + (y1 - y0) // f * f)
            win = rgb[y0:y1, x0:x1]
            src = cv2.resize(win, ((x1 - x0) // f, (y1 - y0) // f), interpolation=cv2.INTER_AREA)
            # photo px -> small px: u = (x - x0 + 0.5) / f - 0.5
            to_small = np.array([[1.0 / f, 0, (0.5 - x0) / f - 0.5], [0, 1.0 / f, (0.5 - y0) / f - 0.5]])
            m = _compose(m, cv2.invertAffineTransform(to_small))
    mode = cv2.BORDER_REFLECT101 if border == "reflect" else cv2.BORDER_CONSTANT
    return cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=mode)


# -- detection --------------------------------------------------------------------------------
_CASCADES: dict[str, object] = {}


def _cascade(name: str):
    import cv2
    import cv2.data  # the cascade folder; OpenCV's stubs do not list this submodule on ``cv2``

    c = _CASCADES.get(name)
    if c is None:
        path = cv2.data.haarcascades + name
        c = cv2.CascadeClassifier(path)
        if c.empty():
            raise FaceError(f"{path}: OpenCV's face cascade could not be loaded (is opencv-python-headless "
                            "4.x installed? 5.x wheels do not ship the cascades)")
        _CASCADES[name] = c
    return c


def _detect_grey(grey: np.ndarray, min_side: int, name: str = "haarcascade_frontalface_alt2.xml") -> np.ndarray:
    boxes = _cascade(name).detectMultiScale(grey, scaleFactor=1.1, minNeighbors=4,
                                             minSize=(min_side, min_side))
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def _detection_copy(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """Grey, equalised copy at most DETECT_MAX_SIDE px; and its scale (copy px per photo px)."""
    import cv2

    h, w = rgb.shape[:2]
    s = min(1.0, DETECT_MAX_SIDE / max(h, w))
    if s < 1.0:
        small = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        s = small.shape[1] / w
    else:
        small = rgb
    grey = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
    return grey, s


def _rotated(grey: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """grey rotated by ``angle`` about its centre on an enlarged canvas; and the 2×3 that maps
    rotated px -> grey px."""
    import cv2

    h, w = grey.shape
    rot = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle, 1.0)
    c, s = abs(rot[0, 0]), abs(rot[0, 1])
    nw, nh = int(h * s + w * c), int(h * c + w * s)
    rot[0, 2] += (nw - w) / 2.0
    rot[1, 2] += (nh - h) / 2.0
    out = cv2.warpAffine(grey, rot, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, cv2.invertAffineTransform(rot)


def _nms(boxes: list[tuple[np.ndarray, float]], thr: float = 0.3) -> list[tuple[np.ndarray, float]]:
    """Drop boxes whose centre lies in an earlier (larger) box."""
    boxes = sorted(boxes, key=lambda b: -b[0][2] * b[0][3])
    kept: list[tuple[np.ndarray, float]] = []
    for b, a in boxes:
        cx, cy = b[0] + b[2] / 2, b[1] + b[3] / 2
        if any(k[0] <= cx <= k[0] + k[2] and k[1] <= cy <= k[1] + k[3] for k, _ in kept):
            continue
        kept.append((b, a))
    return kept


def detect_faces(rgb: np.ndarray, *, min_face_px: int = MIN_FACE_PX // 2) -> list[FaceBox]:
    """Frontal faces in a uint8 H×W×3 photo, largest first (photo px). Faces smaller than
    ``min_face_px`` (or 20 px of the detection copy) are not searched for."""
    grey, s = _detection_copy(rgb)
    min_side = max(20, int(round(min_face_px * s)))
    found: list[tuple[np.ndarray, float]] = [(b, 0.0) for b in _detect_grey(grey, min_side)]
    if not found:
        for angle in (TILT_DEG, -TILT_DEG):
            rg, back = _rotated(grey, angle)
            for b in _detect_grey(rg, min_side):
                # centre back to the upright copy; keep the side
                cx, cy = _apply(back, np.array([[b[0] + b[2] / 2, b[1] + b[3] / 2]]))[0]
                found.append((np.array([cx - b[2] / 2, cy - b[3] / 2, b[2], b[3]]), angle))
    out = []
    for b, a in _nms(found):
        out.append(FaceBox(b[0] / s, b[1] / s, b[2] / s, b[3] / s, a))
    return out


def _profile_found(rgb: np.ndarray) -> bool:
    import cv2

    grey, s = _detection_copy(rgb)
    min_side = max(20, int(round(MIN_FACE_PX * s)))
    name = "haarcascade_profileface.xml"
    return bool(len(_detect_grey(grey, min_side, name)) or len(_detect_grey(cv2.flip(grey, 1), min_side, name)))


# -- alignment --------------------------------------------------------------------------------
def _rough_transform(box: FaceBox, size: int) -> np.ndarray:
    """crop_from_photo putting the detected box where the training crops have theirs."""
    bx, by, bs = TRAIN_BOX_512
    k = size / 512.0
    scale = bs * k / box.w
    ang = math.radians(box.angle_deg)
    # the detection was made on the photo rotated by +angle (counter-clockwise): undo it
    c, s_ = math.cos(ang) * scale, math.sin(ang) * scale
    lin = np.array([[c, s_], [-s_, c]])
    cx, cy = box.centre
    t = np.array([(bx + 0.5) * k - 0.5, (by + 0.5) * k - 0.5]) - lin @ np.array([cx, cy])
    return np.hstack([lin, t[:, None]])


def _recentre(labels: np.ndarray, m: np.ndarray) -> np.ndarray | None:
    """``m`` corrected so the parsed face parts sit where the training crops have theirs (same
    rotation), or None when the parse shows no face parts."""
    import cv2

    parts = np.isin(labels, _FACE_PARTS).view(np.uint8)
    n, lab, stats, cents = cv2.connectedComponentsWithStats(parts, connectivity=8)
    if n < 2:
        return None
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    area = float(stats[k, cv2.CC_STAT_AREA])
    if area < 100:
        return None
    size = labels.shape[0]
    f = size / 512.0
    tx, ty, tr = TRAIN_FACE_PARTS_512
    z = (tr * f) / math.sqrt(area)
    c = cents[k]
    tc = np.array([(tx + 0.5) * f - 0.5, (ty + 0.5) * f - 0.5])
    return np.hstack([z * m[:, :2], (z * (m[:, 2] - c) + tc)[:, None]])


def _parse(parser, crop: np.ndarray) -> np.ndarray:
    from maskstudio.models.face_parser import parse_image

    return parse_image(parser, crop)


def align_face(rgb: np.ndarray, parser, *, size: int = 512, face: int = 0,
               faces: list[FaceBox] | None = None, name: str = "photo") -> Alignment:
    """Align face number ``face`` (0 = the largest) of a uint8 H×W×3 photo onto the training
    crop convention at ``size``². ``parser``: a :class:`~maskstudio.models.face_parser.FaceParser`.
    ``faces``: a detection already made (the app's face picker). Raises :class:`FaceError`
    (message starting with ``name``) when there is no usable face."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise FaceError(f"{name}: expected a uint8 H×W×3 RGB image, got {rgb.dtype} {rgb.shape}")
    h, w = rgb.shape[:2]
    if min(h, w) < MIN_FACE_PX:
        raise FaceError(f"{name}: {w}×{h} px is too small to hold a face (at least {MIN_FACE_PX} px)")
    if faces is None:
        faces = detect_faces(rgb)
    if not faces:
        if _profile_found(rgb):
            raise FaceError(f"{name}: only a face in profile was found; MaskStudio needs a frontal face "
                            "(both eyes visible)")
        raise FaceError(f"{name}: no face found (a frontal face at least {MIN_FACE_PX} px wide is needed)")
    if not 0 <= face < len(faces):
        raise FaceError(f"{name}: face {face} asked for, but {len(faces)} face(s) found (0..{len(faces) - 1}, "
                        "0 = the largest)")
    box = faces[face]
    if box.w < MIN_FACE_PX:
        raise FaceError(f"{name}: the face is too small ({box.w:.0f} px wide; at least {MIN_FACE_PX} px "
                        "is needed for a usable crop)")
    import cv2

    target = crop_landmarks(REFINE_SIZE)
    m = _rough_transform(box, REFINE_SIZE)
    lm_photo = None
    passes, recentred = 0, False
    while passes < 2:
        crop = warp_crop(rgb, m, REFINE_SIZE)
        labels = _parse(parser, crop)
        try:
            lm_crop = landmarks_from_labels(labels)
        except LandmarkError as e:
            if lm_photo is not None:
                break  # keep the first pass's fit
            if not recentred:
                recentred = True
                m2 = _recentre(labels, m)
                if m2 is not None:
                    m = m2
                    continue
            raise FaceError(f"{name}: face {face}: {e} (a profile or a covered face cannot be aligned)") from e
        lm_photo = _apply(cv2.invertAffineTransform(m), lm_crop)
        m = similarity_lstsq(lm_photo, target)
        passes += 1
    assert lm_photo is not None
    final = _scale_crop(m, size / REFINE_SIZE)
    return Alignment((w, h), int(size), final, box, lm_photo, face, len(faces))
