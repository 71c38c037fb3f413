"""Pseudo-labels: parse the unlabelled faces with a trained parser and keep the confident parses.

Used by the DMN trainer (more masks to render) and by the parser trainer (self-training: a
student learns from the labelled pairs plus its teacher's confident parses). The kept labels are
cached in ``<out>/pseudo_<size>.npz`` and described in ``<out>/pseudo_labels.json`` (which files,
each face's confidence), so a resumed run uses the same set.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from maskstudio.models.face_parser import FaceParser, flip_tta_logits
from maskstudio.training import common
from maskstudio.training.data import cached_array, find_unlabeled


@torch.no_grad()
def pseudo_label(parser: FaceParser, images: np.ndarray, min_confidence: float, max_uncertain: float,
                 batch_size: int = 8, show_progress: bool = False, require_parts: bool = True) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Parse uint8 N×S×S×3 faces (flip-averaged); keep those whose parse is confident.

    A face passes when the mean max-probability over non-background pixels is at least
    ``min_confidence``, at most ``max_uncertain`` of all pixels have max-probability < 0.6, and
    (``require_parts``) skin, nose, both eyes and a lip are present. Returns (kept indices, label maps N×S×S, stats).
    """
    keep, labels, stats = [], [], []
    dev = next(parser.parameters()).device
    was = parser.training
    parser.eval()
    bar = common.progress(len(images), 0, "pseudo-labels", show_progress)
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(images[i:i + batch_size]).to(dev).permute(0, 3, 1, 2).float() / 255
        prob = torch.softmax(flip_tta_logits(parser, x), dim=1)
        conf, lab = prob.max(1)
        for j in range(len(x)):
            lj, cj = lab[j].cpu().numpy().astype(np.uint8), conf[j].cpu().numpy()
            fg = lj > 0
            mean_conf = float(cj[fg].mean()) if fg.any() else 0.0
            uncertain = float((cj < 0.6).mean())
            present = set(np.unique(lj).tolist())
            parts_ok = {1, 2, 4, 5}.issubset(present) and bool({11, 12} & present)
            ok = mean_conf >= min_confidence and uncertain <= max_uncertain and (parts_ok or not require_parts)
            stats.append({"index": i + j, "mean_conf": round(mean_conf, 4), "uncertain": round(uncertain, 4),
                          "parts_ok": parts_ok, "kept": ok})
            if ok:
                keep.append(i + j)
                labels.append(lj)
        bar.update(len(x))
    bar.close()
    parser.train(was)
    s = images.shape[1]
    return np.array(keep, np.int64), (np.stack(labels) if labels else np.zeros((0, s, s), np.uint8)), stats


def pseudo_labelled_faces(data_dir, parser: FaceParser, size: int, out_dir, min_confidence: float,
                          max_uncertain: float, cache_dir=None, show_progress: bool = False,
                          log=print, require_parts: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(images N×size×size×3, labels N×size×size) of the unlabelled faces that pass the filter.

    The parser sees each face at its own input size; labels are resized (nearest) to ``size``.
    The first call writes ``<out_dir>/pseudo_<size>.npz``; later calls (a resumed run) reuse it.
    """
    import cv2

    out = Path(out_dir)
    pl_path = out / f"pseudo_{size}.npz"
    files = find_unlabeled(data_dir)
    if not files:
        log("pseudo-labels: no unlabelled faces found")
        return np.zeros((0, size, size, 3), np.uint8), np.zeros((0, size, size), np.uint8)
    faces = cached_array(files, size, "rgb", cache_dir)
    if pl_path.exists():
        z = np.load(pl_path)
        keep, labels = z["keep"], z["labels"]
    else:
        ps = parser.cfg.input_size
        src = faces if size == ps else np.stack(
            [cv2.resize(im, (ps, ps), interpolation=cv2.INTER_AREA) for im in faces])
        keep, labels, stats = pseudo_label(parser, src, min_confidence, max_uncertain, show_progress=show_progress,
                                           require_parts=require_parts)
        if ps != size and len(labels):
            labels = np.stack([cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST) for m in labels])
        np.savez_compressed(pl_path, keep=keep, labels=labels)
        (out / "pseudo_labels.json").write_text(json.dumps({
            "unlabeled": len(files), "kept": int(len(keep)), "min_confidence": min_confidence,
            "max_uncertain": max_uncertain, "kept_files": [files[i].name for i in keep.tolist()],
            "stats": stats}, indent=0))
    log(f"pseudo-labels: {len(keep)} of {len(files)} unlabeled faces pass the confidence filter")
    if not len(keep):
        return np.zeros((0, size, size, 3), np.uint8), np.zeros((0, size, size), np.uint8)
    return faces[keep], labels
