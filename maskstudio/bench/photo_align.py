"""Alignment accuracy and parser F1 on synthetic "phone photos" made from real aligned faces.

    python -m maskstudio.bench.photo_align --data ../shared/data [--n 90] [--seed 0] [--json OUT]

For each held-out face of the shipped parser's split (``checkpoints/face_parser.json``): the
512² crop goes into a 1600×1200 canvas with a random similarity (rotation ±20°, scale 0.4–1.2,
random position), another background (smooth colour noise) and JPEG q90. Then:

- **alignment error**: the ground-truth eye centroids (from the mask) mapped photo -> recovered
  crop, against the same points mapped by aligning the original crop itself (the aligner's own
  fixed point; distance in 512² crop px), and against the identity (the CelebA-HQ crop);
- **parser F1**: the parser's labels of the recovered crop, warped back into the original crop's
  frame (nearest), against the ground truth, vs the parser's labels of the original crop (the
  dataset-wide confusion-matrix F1 of :mod:`maskstudio.training.metrics`, 18 classes). Both are
  scored on the same pixels: the original crop without its outer 64 px band, which the
  synthetic photo feathers into the new background (there the ground truth no longer matches
  the picture). Also split by the face's scale in the photo (< 0.7: a smaller face than the
  crop's, i.e. upsampled into the 512² crop; >= 0.7).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from maskstudio.bench import write_json


def synthetic_photo(crop: np.ndarray, rng: np.random.Generator, size_wh=(1600, 1200), quality: int = 90, *,
                    angle_deg: float | None = None, scale: float | None = None, jpeg: bool = False):
    """(uint8 photo, 2×3 photo_from_crop[, JPEG bytes]): ``crop`` put into a canvas by a random
    similarity (or the given angle / scale), on another background, through JPEG."""
    import io

    import cv2
    from PIL import Image

    w, h = size_wh
    ang = math.radians(float(rng.uniform(-20, 20)) if angle_deg is None else float(angle_deg))
    sc = float(rng.uniform(0.4, 1.2)) if scale is None else float(scale)
    s = crop.shape[0]
    lin = sc * np.array([[math.cos(ang), math.sin(ang)], [-math.sin(ang), math.cos(ang)]])
    half = 0.5 * s * sc * (abs(math.cos(ang)) + abs(math.sin(ang)))
    cx, cy = rng.uniform(half, max(half + 1, w - half)), rng.uniform(half, max(half + 1, h - half))
    t = np.array([cx, cy]) - lin @ np.array([(s - 1) / 2, (s - 1) / 2])
    m = np.hstack([lin, t[:, None]])
    small = rng.integers(0, 256, size=(max(2, h // 200), max(2, w // 200), 3), dtype=np.uint8)
    bg = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    bg += rng.normal(0, 6, size=(h, w, 3)).astype(np.float32)
    face = cv2.warpAffine(crop, m, (w, h), flags=cv2.INTER_LINEAR)
    e = s // 16
    inside = np.zeros((s, s), np.float32)
    inside[e:-e, e:-e] = 1
    a = cv2.warpAffine(cv2.GaussianBlur(inside, (0, 0), e / 2), m, (w, h))[..., None]
    img = np.clip(a * face + (1 - a) * bg, 0, 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    decoded = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")).copy()
    return (decoded, m, buf.getvalue()) if jpeg else (decoded, m)


def main(argv=None) -> int:
    import cv2
    import torch

    from maskstudio.engine.device import DevicePolicy
    from maskstudio.engine.models import ModelSet
    from maskstudio.models.face_parser import parse_image
    from maskstudio.photo.align import _compose, _apply, align_face, warp_crop
    from maskstudio.photo.landmarks import LandmarkError, landmarks_from_labels
    from maskstudio.io.images import read_rgb_full
    from maskstudio.settings import SHIPPED_CHECKPOINTS, Settings
    from maskstudio.training.data import read_labels
    from maskstudio.training.metrics import ConfusionMatrix

    ap = argparse.ArgumentParser(prog="python -m maskstudio.bench.photo_align", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--n", type=int, default=90)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    pairs = args.data / "celebamask_pairs"
    meta = json.loads((SHIPPED_CHECKPOINTS / "face_parser.json").read_text())["meta"]
    stems = meta["train"]["split"]["val_stems"][: args.n]
    models = ModelSet.from_settings(Settings.from_env(device="cpu"), policy=DevicePolicy("cpu"))
    parser_info = models.first("parser")
    assert parser_info is not None, "the shipped face parser is missing"
    parser = models.load(parser_info.id).module
    rng = np.random.default_rng(args.seed)
    cm_orig, cm_photo = ConfusionMatrix(), ConfusionMatrix()
    cm_small, cm_large = ConfusionMatrix(), ConfusionMatrix()
    err_fix, err_id, times, failures = [], [], [], []
    for stem in stems:
        crop = read_rgb_full(pairs / "images" / f"{stem}.jpg")
        gt = read_labels(pairs / "masks" / f"{stem}.png", size=crop.shape[0])
        photo, photo_from_crop = synthetic_photo(crop, rng)
        band = crop.shape[0] // 8
        inner = np.zeros(gt.shape, bool)
        inner[band:-band, band:-band] = True
        cm_orig.update(gt[inner], parse_image(parser, crop)[inner])
        scale = float(np.hypot(photo_from_crop[0, 0], photo_from_crop[1, 0]))
        try:
            t0 = time.perf_counter()
            al = align_face(photo, parser, size=crop.shape[0], name=stem)
            times.append(time.perf_counter() - t0)
            al0 = align_face(crop, parser, size=crop.shape[0], name=stem)
        except Exception as e:  # noqa: BLE001 - counted and reported
            failures.append(f"{stem}: {e}")
            continue
        rec = warp_crop(photo, al.crop_from_photo, crop.shape[0])
        lab = parse_image(parser, rec)
        # recovered crop px -> original crop px
        comp = _compose(al.crop_from_photo, photo_from_crop)  # original crop -> recovered crop
        back = cv2.warpAffine(lab, comp, crop.shape[1::-1], flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=255)
        valid = (back != 255) & inner
        cm_photo.update(gt[valid], back[valid])
        (cm_small if scale < 0.7 else cm_large).update(gt[valid], back[valid])
        try:
            eyes = landmarks_from_labels(gt)[:2]
        except LandmarkError:
            continue
        p_rec = _apply(comp, eyes)
        err_fix.append(float(np.hypot(*(p_rec - _apply(al0.crop_from_photo, eyes)).T).max()))
        err_id.append(float(np.hypot(*(p_rec - eyes).T).max()))
    so, sp = cm_orig.scores(), cm_photo.scores()
    ef, ei = np.array(err_fix), np.array(err_id)
    out = {
        "faces": len(stems), "aligned": len(stems) - len(failures), "failures": failures,
        "eye_error_px_vs_crop_alignment": {"median": float(np.median(ef)), "p90": float(np.percentile(ef, 90)),
                                           "max": float(ef.max())},
        "eye_error_px_vs_identity": {"median": float(np.median(ei)), "p90": float(np.percentile(ei, 90)),
                                     "max": float(ei.max())},
        "mean_f1_original_crops": round(so.mean_f1, 4), "mean_f1_aligned_photos": round(sp.mean_f1, 4),
        "mean_f1_aligned_photos_scale_lt_0.7": round(cm_small.scores().mean_f1, 4),
        "mean_f1_aligned_photos_scale_ge_0.7": round(cm_large.scores().mean_f1, 4),
        "pixel_acc_original": round(so.pixel_acc, 4), "pixel_acc_aligned": round(sp.pixel_acc, 4),
        "align_s_p50_1600x1200": float(np.median(times)) if times else None,
    }
    print(json.dumps(out, indent=2))
    if args.json:
        write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
