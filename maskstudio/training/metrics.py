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


# ------------------------------------------------------------------ texture (issue 14)

#: pixel periods the checkerboard score looks at (stride-2 up-sampling stacks 1..4 deep)
CHECKER_PERIODS_PX = (2, 4, 8, 16)
#: spectrum directions per period, as (row, column) steps: horizontal, vertical, both diagonals
CHECKER_DIRECTIONS = {"horizontal": (0, 1), "vertical": (1, 0), "diagonal": (1, 1), "antidiagonal": (1, -1)}
TEXTURE_SIZE_PX = 256


def grey_at(image: np.ndarray, size: int = TEXTURE_SIZE_PX) -> np.ndarray:
    """float64 grey (ITU-R 601 luma, 0..255) of a uint8 H×W×3 or H×W image at ``size``².

    Larger images are area-averaged down, smaller ones bilinearly up (cv2)."""
    a = np.asarray(image)
    if a.ndim == 3:
        a = a[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    else:
        a = a.astype(np.float64)
    if a.shape != (size, size):
        import cv2

        interp = cv2.INTER_AREA if min(a.shape) > size else cv2.INTER_LINEAR
        a = cv2.resize(a, (size, size), interpolation=interp)
    return a


def checkerboard_db(image: np.ndarray, size: int = TEXTURE_SIZE_PX) -> dict:
    """Checkerboard score of one image, in dB (0 = no spike; real photos sit near −1 dB).

    The grey image at ``size``² (mean removed) is multiplied by a 2-D Hann window and Fourier
    transformed. For each period p in :data:`CHECKER_PERIODS_PX` the bins at k = size/p cycles
    along the horizontal (0, k), vertical (k, 0) and both diagonals (k, ±k) are taken; each
    bin's magnitude is divided by the median magnitude of the other 24 bins of its 5×5
    neighbourhood (the spectrum wraps around), as 20·log10. ``score`` is the mean over the
    4 periods × 4 directions (at 2 px the two diagonals are the same Nyquist bin); ``by_period``
    the mean per period."""
    g = grey_at(image, size)
    g = g - g.mean()
    w = np.hanning(size)
    mag = np.abs(np.fft.fft2(g * np.outer(w, w)))
    tiny = np.finfo(np.float64).tiny
    by_period: dict[int, float] = {}
    values = []
    off = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if (dy, dx) != (0, 0)]
    for p in CHECKER_PERIODS_PX:
        k = size // p
        vals = []
        for sy, sx in CHECKER_DIRECTIONS.values():
            y, x = (sy * k) % size, (sx * k) % size
            ring = [mag[(y + dy) % size, (x + dx) % size] for dy, dx in off]
            vals.append(20.0 * np.log10(max(mag[y, x], tiny) / max(float(np.median(ring)), tiny)))
        by_period[p] = float(np.mean(vals))
        values += vals
    return {"score": float(np.mean(values)), "by_period": by_period}


def laplacian_variance(image: np.ndarray, size: int = TEXTURE_SIZE_PX) -> float:
    """Sharpness: variance of the 4-neighbour Laplacian of the grey image (0..255) at ``size``²
    (reflected borders, as OpenCV's ``Laplacian`` with ksize 1)."""
    g = np.pad(grey_at(image, size), 1, mode="reflect")
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4.0 * g[1:-1, 1:-1]
    return float(lap.var())


class TextureStats:
    """Running means of :func:`checkerboard_db` and :func:`laplacian_variance` over images."""

    def __init__(self, size: int = TEXTURE_SIZE_PX) -> None:
        self.size = size
        self.scores: list[float] = []
        self.periods: dict[int, list[float]] = {p: [] for p in CHECKER_PERIODS_PX}
        self.lap: list[float] = []

    def update(self, images) -> None:
        for im in images:
            c = checkerboard_db(im, self.size)
            self.scores.append(c["score"])
            for p, v in c["by_period"].items():
                self.periods[p].append(v)
            self.lap.append(laplacian_variance(im, self.size))

    @property
    def checkerboard_db(self) -> float:
        return float(np.mean(self.scores)) if self.scores else float("nan")

    @property
    def laplacian_var(self) -> float:
        return float(np.mean(self.lap)) if self.lap else float("nan")

    def to_dict(self) -> dict:
        return {"count": len(self.scores), "checkerboard_db": round(self.checkerboard_db, 3),
                "checkerboard_db_by_period": {f"{p}px": round(float(np.mean(v)), 3) for p, v in self.periods.items() if v},
                "laplacian_var": round(self.laplacian_var, 3)}
