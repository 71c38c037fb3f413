"""Segmentation metrics from a dataset-wide confusion matrix (numpy only).

Every count is accumulated over all pixels of all images first (not averaged per image), so a
class's F1 is ``2·TP / (2·TP + FP + FN)`` over the whole evaluation set. A class that is absent
from both ground truth and prediction has no defined F1/IoU (NaN) and is left out of the means;
the report says which.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maskstudio.labels import NAMES, NUM_CLASSES


class ConfusionMatrix:
    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        self.n = num_classes
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)  # [true, pred]

    def update(self, true: np.ndarray, pred: np.ndarray) -> None:
        t = np.asarray(true, dtype=np.int64).ravel()
        p = np.asarray(pred, dtype=np.int64).ravel()
        if t.shape != p.shape:
            raise ValueError(f"shape mismatch: true {np.shape(true)} vs pred {np.shape(pred)}")
        self.matrix += np.bincount(t * self.n + p, minlength=self.n * self.n).reshape(self.n, self.n)

    def scores(self) -> "SegScores":
        return SegScores.from_matrix(self.matrix)


@dataclass
class SegScores:
    f1: np.ndarray        # [C] per class, NaN where undefined
    iou: np.ndarray       # [C]
    support: np.ndarray   # [C] true pixel counts
    pixel_acc: float
    mean_f1: float        # over non-background classes with defined F1
    miou: float           # over all classes with defined IoU
    matrix: np.ndarray

    @classmethod
    def from_matrix(cls, m: np.ndarray) -> "SegScores":
        m = np.asarray(m, dtype=np.float64)
        tp = np.diag(m)
        fp = m.sum(0) - tp
        fn = m.sum(1) - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            denom_f1 = 2 * tp + fp + fn
            f1 = np.where(denom_f1 > 0, 2 * tp / np.maximum(denom_f1, 1), np.nan)
            denom_iou = tp + fp + fn
            iou = np.where(denom_iou > 0, tp / np.maximum(denom_iou, 1), np.nan)
        total = m.sum()
        acc = float(tp.sum() / total) if total else float("nan")
        fg = f1[1:]
        mean_f1 = float(np.nanmean(fg)) if np.isfinite(fg).any() else float("nan")
        miou = float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")
        return cls(f1, iou, m.sum(1).astype(np.int64), acc, mean_f1, miou, m.astype(np.int64))

    def to_dict(self) -> dict:
        def clean(v: float):
            return None if not np.isfinite(v) else round(float(v), 4)

        return {
            "mean_f1": clean(self.mean_f1),
            "miou": clean(self.miou),
            "pixel_acc": clean(self.pixel_acc),
            "per_class": {
                NAMES[i] if len(self.f1) == NUM_CLASSES else str(i): {
                    "f1": clean(self.f1[i]), "iou": clean(self.iou[i]), "support_px": int(self.support[i])
                }
                for i in range(len(self.f1))
            },
        }

    def table(self) -> str:
        names = NAMES if len(self.f1) == NUM_CLASSES else [str(i) for i in range(len(self.f1))]
        lines = [f"{'class':<12} {'F1':>7} {'IoU':>7} {'support_px':>12}"]
        for i, name in enumerate(names):
            f = "   n/a" if not np.isfinite(self.f1[i]) else f"{self.f1[i]:7.4f}"
            u = "   n/a" if not np.isfinite(self.iou[i]) else f"{self.iou[i]:7.4f}"
            lines.append(f"{name:<12} {f:>7} {u:>7} {int(self.support[i]):>12}")
        undefined = [names[i] for i in range(1, len(names)) if not np.isfinite(self.f1[i])]
        lines.append(f"mean F1 (18 non-background classes{', without ' + ', '.join(undefined) if undefined else ''}): {self.mean_f1:.4f}")
        lines.append(f"pixel accuracy: {self.pixel_acc:.4f}")
        lines.append(f"mIoU: {self.miou:.4f}")
        return "\n".join(lines)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (peak 255)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)
