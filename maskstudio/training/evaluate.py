"""Evaluation of the face parser and the DMN on image/mask folders (used by ``maskstudio eval``).

Parser: parse each image at its own size, compare with its mask (dataset-wide confusion matrix):
per-class F1, mean F1 over the 18 non-background classes, pixel accuracy, mIoU.

DMN: at ``size``², render every mask (a) with its own photo as exemplar and (b) with a
different exemplar (pair ``(i + N//2) mod N`` in sorted stem order, so never itself); parse the
renders with the parser and score them against the input mask (mIoU etc.); for (a) also L1 (mean
absolute error, 0..1 intensity) and PSNR to the photo.

Texture (issue 14), on the renders of both modes and on the real photos, all as grey images at
256² (:mod:`maskstudio.training.metrics`): the checkerboard score (spectrum spikes at the 2/4/8/16
px periods over their 5×5 neighbourhood, dB; real photos sit near −1 dB, white noise at −0.9)
and the variance of the Laplacian, also as a ratio to the real photos' (``sharpness_ratio``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from maskstudio.errors import ConfigError, file_error
from maskstudio.training.data import IMAGE_EXTS, read_labels, read_rgb
from maskstudio.training.metrics import ConfusionMatrix, SegScores, TextureStats, psnr


def match_folders(images_dir, masks_dir, stems: list[str] | None = None) -> list[tuple[str, Path, Path]]:
    """(stem, image, mask) triples with matching stems (optionally restricted to ``stems``)."""
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for d in (images_dir, masks_dir):
        if not d.is_dir():
            raise file_error(ConfigError, d, "not a folder")
    imgs = {p.stem: p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS}
    msks = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() == ".png"}
    common = sorted(set(imgs) & set(msks))
    if stems is not None:
        wanted = set(stems)
        common = [s for s in common if s in wanted]
    if not common:
        raise file_error(ConfigError, images_dir, f"no image has a mask with the same name in {masks_dir}")
    return [(s, imgs[s], msks[s]) for s in common]


def evaluate_parser(parser, triples, flip_tta: bool = False, progress=None) -> SegScores:
    from maskstudio.models.face_parser import parse_image

    cm = ConfusionMatrix(parser.cfg.num_classes)
    for _, img_path, mask_path in triples:
        mask = read_labels(mask_path)
        rgb = read_rgb(img_path)
        pred = parse_image(parser, rgb, flip_tta=flip_tta)
        if pred.shape != mask.shape:
            import cv2

            pred = cv2.resize(pred, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_NEAREST)
        cm.update(mask, pred)
        if progress is not None:
            progress.update(1)
    return cm.scores()


@dataclass
class DMNScores:
    own: SegScores
    other: SegScores
    l1: float
    psnr_db: float
    size: int
    count: int
    tex_real: TextureStats | None = None
    tex_own: TextureStats | None = None
    tex_other: TextureStats | None = None

    def _texture(self, t: TextureStats) -> dict:
        d = t.to_dict()
        if self.tex_real is not None and t is not self.tex_real and self.tex_real.laplacian_var > 0:
            d["sharpness_ratio"] = round(t.laplacian_var / self.tex_real.laplacian_var, 4)
            d["checkerboard_db_over_real"] = round(t.checkerboard_db - self.tex_real.checkerboard_db, 3)
        return d

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"size": self.size, "count": self.count, "own_exemplar": {"parse": self.own.to_dict(),
             "l1": round(self.l1, 4), "psnr_db": round(self.psnr_db, 3)},
             "other_exemplar": {"parse": self.other.to_dict()}}
        if self.tex_real is not None:
            d["texture"] = {"size": self.tex_real.size, "real_photos": self._texture(self.tex_real)}
            for key, t in (("own_exemplar", self.tex_own), ("other_exemplar", self.tex_other)):
                if t is not None:
                    d["texture"][key] = self._texture(t)
        return d

    def summary(self) -> str:
        lines = [f"DMN at {self.size}² on {self.count} masks",
                 f"own exemplar:       parse-mIoU {self.own.miou:.4f}  mean F1 {self.own.mean_f1:.4f}  "
                 f"L1 {self.l1:.4f}  PSNR {self.psnr_db:.2f} dB",
                 f"different exemplar: parse-mIoU {self.other.miou:.4f}  mean F1 {self.other.mean_f1:.4f}"]
        if self.tex_real is not None:
            r = self.tex_real
            lines.append(f"texture at {r.size}² (grey): checkerboard dB (2/4/8/16 px) · Laplacian variance · ratio to real")
            for name, t in (("real photos", r), ("own exemplar", self.tex_own), ("different exemplar", self.tex_other)):
                if t is None:
                    continue
                per = " ".join(f"{v:+.2f}" for v in t.to_dict()["checkerboard_db_by_period"].values())
                ratio = f"  sharpness ratio {t.laplacian_var / r.laplacian_var:.3f}" if t is not r else ""
                lines.append(f"  {name + ':':<20}{t.checkerboard_db:+.2f} dB ({per})  "
                             f"Laplacian var {t.laplacian_var:.1f}{ratio}")
        return "\n".join(lines)


def to_uint8_image(t: torch.Tensor) -> np.ndarray:
    """[B,3,H,W] in [-1,1] -> uint8 [B,H,W,3]."""
    return ((t.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def render_batch(G, masks: np.ndarray, ref_masks: np.ndarray, ref_images: np.ndarray) -> np.ndarray:
    """uint8 renders of uint8 masks [B,S,S] with exemplars (masks [B,S,S], images [B,S,S,3])."""
    from maskstudio.models.dense_mapping import one_hot

    dev = next(G.parameters()).device
    oh = one_hot(torch.from_numpy(masks.astype(np.int64)).to(dev), G.cfg.label_nc)
    roh = one_hot(torch.from_numpy(ref_masks.astype(np.int64)).to(dev), G.cfg.label_nc)
    rimg = torch.from_numpy(ref_images).to(dev).permute(0, 3, 1, 2).float().div(127.5).sub(1)
    return to_uint8_image(G.generate(oh, G.encode_style(roh, rimg)))


@torch.no_grad()
def parse_batch(parser, images: np.ndarray) -> np.ndarray:
    """uint8 label maps [B,S,S] of uint8 images [B,S,S,3] (resized to the parser's size and back)."""
    dev = next(parser.parameters()).device
    x = torch.from_numpy(images).to(dev).permute(0, 3, 1, 2).float() / 255
    s = parser.cfg.input_size
    h, w = x.shape[-2:]
    if (h, w) != (s, s):
        x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=h > s)
    logits = parser(x)
    if (h, w) != (s, s):
        logits = F.interpolate(logits, size=(h, w), mode="bilinear", align_corners=False)
    return logits.argmax(1).to(torch.uint8).cpu().numpy()


def load_pairs_at(triples, size: int) -> tuple[np.ndarray, np.ndarray]:
    imgs = np.stack([read_rgb(t[1], size) for t in triples])
    msks = np.stack([read_labels(t[2], size) for t in triples])
    return imgs, msks


def evaluate_dmn(G, parser, images: np.ndarray, masks: np.ndarray, batch_size: int = 4,
                 progress=None, real_images: np.ndarray | None = None) -> DMNScores:
    """Scores on uint8 arrays at one size (see module doc for the exemplar pairing).

    ``real_images``: the photos the texture of the renders is compared with (default
    ``images``); pass them at 256² (or larger) when rendering below 256²."""
    n = len(images)
    if n < 2:
        raise ConfigError("evaluating the DMN needs at least 2 image/mask pairs")
    other = (np.arange(n) + n // 2) % n
    cm_own, cm_other = ConfusionMatrix(), ConfusionMatrix()
    tex_real, tex_own, tex_other = TextureStats(), TextureStats(), TextureStats()
    tex_real.update(real_images if real_images is not None else images)
    abs_err, psnrs = [], []
    G.eval()
    parser.eval()
    for i in range(0, n, batch_size):
        sl = slice(i, min(n, i + batch_size))
        own = render_batch(G, masks[sl], masks[sl], images[sl])
        oth = render_batch(G, masks[sl], masks[other[sl]], images[other[sl]])
        cm_own.update(masks[sl], parse_batch(parser, own))
        cm_other.update(masks[sl], parse_batch(parser, oth))
        tex_own.update(own)
        tex_other.update(oth)
        for r, im in zip(own, images[sl]):
            abs_err.append(float(np.mean(np.abs(r.astype(np.float64) - im)) / 255.0))
            psnrs.append(psnr(r, im))
        if progress is not None:
            progress.update(sl.stop - sl.start)
    return DMNScores(cm_own.scores(), cm_other.scores(), float(np.mean(abs_err)), float(np.mean(psnrs)),
                     int(images.shape[1]), n, tex_real, tex_own, tex_other)


def stems_from_split(path: "str | os.PathLike[str]", subset: str) -> list[str]:
    from maskstudio.training.data import load_split

    split = load_split(path)
    if subset not in split:
        raise file_error(ConfigError, path, f"has no {subset!r} list")
    return list(split[subset])
