"""Regenerate the app's sample content from aggregates and our own DMN — never a real face.

* ``resources/sample/template_mask.png``: a clean aggregate face of the training masks (512²,
  the train split of the seeded split), see :func:`clean_template`: per-class frequency maps
  (with their left/right mirror), smoothed, argmax with per-class weights fitted so that every
  class has its mean area. Smooth boundaries, symmetric, full-size eyes and brows — unlike the
  plain per-pixel majority (:func:`majority`), whose edges are ragged and whose small parts shrink.
* ``resources/gallery/<name>.png`` + ``<name>.mask.png``: exemplar faces *rendered by our DMN*.
  The first (the app's default exemplar) is drawn on the template mask with the style, of
  ``candidates`` sampled ones, whose render the app reproduces best when it style-encodes that
  render again — so the app's first screen looks like that thumbnail (:func:`consistent_style`).
  The others use the clean aggregate of one k-means cluster of training masks each (clusters of ≥ ``min_cluster`` masks,
  so every mask is an aggregate of many annotations, e.g. long/short hair). Each style vector is
  drawn from a Gaussian fitted to the style codes ``encode_style(mask, photo)`` of the training
  faces (empirical mean and covariance, sampled exactly through the centred data matrix, scaled
  by ``temperature``). No photo or single real annotation is written.

Run: ``maskstudio train samples --dmn checkpoints/dmn_starter.safetensors --data ../shared/data``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from maskstudio.labels import MIRROR_LUT, NUM_CLASSES

SAMPLE_SIZE = 512
#: classes in fewer of the training masks than this are left out of the clean template
#: (glasses, hat, earrings, necklace; ears and an open mouth, seen in ~50-57 % of the faces)
TEMPLATE_MIN_PRESENCE = 0.58


def majority(masks: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Per-pixel most frequent class of uint8 masks ``[N,H,W]`` (ties -> lower class index)."""
    counts = np.zeros((num_classes,) + masks.shape[1:], np.int32)
    for c in range(num_classes):
        counts[c] = (masks == c).sum(0)
    return counts.argmax(0).astype(np.uint8)


def class_counts(masks: np.ndarray, num_classes: int = NUM_CLASSES, chunk: int = 64) -> np.ndarray:
    """float32 ``[C,H,W]``: how many of the masks ``[N,H,W]`` have class c at each pixel."""
    n, h, w = masks.shape
    hw = h * w
    counts = np.zeros(num_classes * hw, np.int64)
    offs = np.arange(hw, dtype=np.int64)
    for i in range(0, n, chunk):
        idx = masks[i:i + chunk].reshape(-1, hw).astype(np.int64) * hw + offs
        counts += np.bincount(idx.ravel(), minlength=num_classes * hw)
    return counts.reshape(num_classes, h, w).astype(np.float32)


def clean_template(masks: np.ndarray, *, min_presence: float = TEMPLATE_MIN_PRESENCE, sigma_px: float = 4.0,
                   iters: int = 60, mirror: bool = True) -> np.ndarray:
    """A clean aggregate label map of the masks ``[N,H,W]`` (uint8 ``[H,W]``), never one annotation.

    1. Per-class frequency maps (with ``mirror``: averaged with the left/right mirrored maps, the
       l_/r_ classes swapped, so the result is symmetric), Gaussian-smoothed (``sigma_px``).
    2. Classes present in fewer than ``min_presence`` of the masks are dropped.
    3. ``argmax_c w_c · freq_c`` with weights fitted (``iters`` multiplicative updates) so every
       kept class covers its mean area over the masks that contain it; background takes the rest.
    """
    import cv2

    masks = np.asarray(masks, np.uint8)
    n = len(masks)
    counts = class_counts(masks)
    areas = counts.reshape(NUM_CLASSES, -1).sum(1)
    present = np.array([(masks == c).any(axis=(1, 2)).sum() for c in range(NUM_CLASSES)], np.float64)
    if mirror:
        counts = (counts + counts[MIRROR_LUT][:, :, ::-1]) / 2
        areas = (areas + areas[MIRROR_LUT]) / 2
        present = (present + present[MIRROR_LUT]) / 2
    keep = present >= min_presence * n
    keep[0] = True
    target = np.where(present > 0, areas / np.maximum(present, 1), 0.0)
    freq = np.zeros_like(counts)
    for c in np.flatnonzero(keep):
        freq[c] = cv2.GaussianBlur(counts[c] / n, (0, 0), sigma_px) if sigma_px > 0 else counts[c] / n
    w = np.ones(NUM_CLASSES)
    lab = np.argmax(freq, 0)
    for _ in range(iters):
        lab = np.argmax(freq * w[:, None, None].astype(np.float32), 0)
        got = np.bincount(lab.ravel(), minlength=NUM_CLASSES)
        for c in np.flatnonzero(keep[1:]) + 1:
            w[c] = float(np.clip(w[c] * np.sqrt(target[c] / max(got[c], 1)), 1e-3, 1e3))
        if mirror:
            w = (w + w[MIRROR_LUT]) / 2
    return lab.astype(np.uint8)


def _round_trip(G, oh, size: int, img: torch.Tensor) -> torch.Tensor:
    """Style code the app computes from ``img`` stored as a gallery PNG: uint8, upscaled to 512
    (cubic) as :func:`make_samples` writes it, downscaled as the engine does, encoded with ``oh``."""
    import cv2

    from maskstudio.engine.pipeline import _resize_rgb

    dev = oh.device
    rgb = ((img[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    up = cv2.resize(rgb, (SAMPLE_SIZE, SAMPLE_SIZE), interpolation=cv2.INTER_CUBIC) if size != SAMPLE_SIZE else rgb
    down = np.array(_resize_rgb(up, size))
    x = torch.from_numpy(down).to(dev).permute(2, 0, 1)[None].float().div(127.5).sub(1)
    return G.encode_style(oh, x).reshape(1, -1).float()


@torch.no_grad()
def consistent_style(G, mask: np.ndarray, candidates: np.ndarray, size: int) -> tuple[int, np.ndarray]:
    """Which candidate style renders ``mask`` (uint8 512²) to a face that the app reproduces.

    For each style ``s``: the thumbnail is ``G(mask, s)``; the app style-encodes that image and
    renders ``G(mask, s')``. Returns the index of the candidate with the smallest mean absolute
    difference (0..1 scale) between the two among the sharper half (image standard deviation at
    least the median: the encoder pulls towards a washed-out mean face, whose round trip is
    trivially good), and the differences of all candidates.
    """
    from maskstudio.engine.pipeline import _resize_labels
    from maskstudio.models.dense_mapping import one_hot

    dev = next(G.parameters()).device
    m = torch.from_numpy(np.array(_resize_labels(mask, size)).astype(np.int64))[None].to(dev)
    oh = one_hot(m, G.cfg.label_nc)
    diffs, spread = [], []
    for s in np.asarray(candidates, np.float32):
        st = torch.from_numpy(s[None]).to(dev)
        img = G.generate(oh, st).clamp(-1, 1)
        again = G.generate(oh, _round_trip(G, oh, size, img)).clamp(-1, 1)
        diffs.append(float((img - again).abs().mean() / 2))
        spread.append(float(img.std()))
    diffs_a, spread_a = np.array(diffs), np.array(spread)
    ok = spread_a >= np.median(spread_a)
    best = int(np.flatnonzero(ok)[np.argmin(diffs_a[ok])])
    return best, diffs_a


def cluster_masks(masks_small: np.ndarray, k: int, seed: int = 0, iters: int = 25) -> np.ndarray:
    """k-means (seeded, k-means++ init) on one-hot masks ``[N,h,w]``; returns labels ``[N]``."""
    n = len(masks_small)
    x = np.eye(NUM_CLASSES, dtype=np.float32)[masks_small].reshape(n, -1)
    rng = np.random.default_rng(seed)
    centers = [x[rng.integers(n)]]
    for _ in range(1, k):
        d = np.min([((x - c) ** 2).sum(1) for c in centers], axis=0)
        centers.append(x[rng.choice(n, p=d / d.sum())])
    c = np.stack(centers)
    lab = np.zeros(n, np.int64)
    for _ in range(iters):
        d = ((x[:, None, :] - c[None]) ** 2).sum(-1)
        lab = d.argmin(1)
        for j in range(k):
            if (lab == j).any():
                c[j] = x[lab == j].mean(0)
    return lab


def sample_styles(codes: np.ndarray, count: int, rng: np.random.Generator, temperature: float = 0.8) -> np.ndarray:
    """Draw from N(mean, cov) of ``codes`` [N,D] exactly: mean + Xcᵀ·w/√(N−1), w ~ N(0, I_N)."""
    mu = codes.mean(0)
    xc = codes - mu
    w = rng.standard_normal((count, len(codes))) * temperature
    return (mu + w @ xc / np.sqrt(max(1, len(codes) - 1))).astype(np.float32)


@torch.no_grad()
def style_codes(G, images: np.ndarray, masks: np.ndarray, batch_size: int = 8) -> np.ndarray:
    from maskstudio.models.dense_mapping import one_hot

    dev = next(G.parameters()).device
    out = []
    for i in range(0, len(images), batch_size):
        oh = one_hot(torch.from_numpy(masks[i:i + batch_size].astype(np.int64)).to(dev), G.cfg.label_nc)
        x = torch.from_numpy(images[i:i + batch_size]).to(dev).permute(0, 3, 1, 2).float().div(127.5).sub(1)
        out.append(G.encode_style(oh, x).reshape(len(x), -1).float().cpu().numpy())
    return np.concatenate(out)


def make_samples(dmn_path, data_dir, resources=None, count: int = 6, seed: int = 0, device: str = "cpu",
                 temperature: float = 0.8, min_cluster: int = 20, size: int | None = None,
                 candidates: int = 24, log=print) -> list[Path]:
    import cv2

    from maskstudio.io.masks import write_label_png
    from maskstudio.settings import RESOURCES
    from maskstudio.training.common import load_dmn
    from maskstudio.training.data import find_pairs, read_labels, read_rgb, split_stems

    resources = Path(resources) if resources is not None else RESOURCES
    G, loaded = load_dmn(dmn_path, device)
    size = size or int(loaded.meta.get("train", {}).get("size", 256))
    pairs = find_pairs(data_dir)
    train = split_stems(pairs.stems, 0.1, 0)["train"]
    rng = np.random.default_rng(seed)

    masks512 = np.stack([read_labels(pairs.masks[s], SAMPLE_SIZE) for s in train])
    template = clean_template(masks512)
    sample_dir = resources / "sample"
    sample_dir.mkdir(parents=True, exist_ok=True)
    written = [sample_dir / "template_mask.png"]
    write_label_png(written[0], template)
    log(f"template mask: clean aggregate of {len(train)} training masks")

    small = np.stack([cv2.resize(m, (32, 32), interpolation=cv2.INTER_NEAREST) for m in masks512])
    k = max(1, min(count - 1, len(train) // max(1, min_cluster)))
    groups = cluster_masks(small, k, seed)
    sizes = np.bincount(groups, minlength=k)
    order = [j for j in np.argsort(-sizes) if sizes[j] >= min(min_cluster, len(train))]
    item_masks = [(template, f"the template mask (clean aggregate of {len(train)} training masks)")]
    for j in order:
        item_masks.append((clean_template(masks512[groups == j]),
                           f"clean aggregate of mask cluster {j} ({int(sizes[j])} training masks)"))

    images = np.stack([read_rgb(pairs.images[s], size) for s in train])
    masks = np.stack([cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST) for m in masks512])
    codes = style_codes(G, images, masks)
    styles = sample_styles(codes, count, rng, temperature)
    style_note = f"Gaussian fitted to {len(codes)} training style codes, temperature {temperature}, seed {seed}"
    # the default exemplar: of `candidates` further samples, the one whose render of the template the
    # app reproduces best (its render of the template then resembles its thumbnail)
    pool = sample_styles(codes, candidates, rng, temperature)
    best, diffs = consistent_style(G, template, pool, size)
    styles[0] = pool[best]
    first_note = (f"{style_note}; of {candidates} further samples the one whose template render the app "
                  f"reproduces best (mean |thumbnail - app render| {diffs[best]:.3f}, median of all "
                  f"{np.median(diffs):.3f})")
    log(f"default exemplar: round-trip difference {diffs[best]:.3f} (candidates: median {np.median(diffs):.3f}, "
        f"max {diffs.max():.3f})")

    gallery = resources / "gallery"
    gallery.mkdir(parents=True, exist_ok=True)
    for old in gallery.glob("dmn_sample_*.png"):
        old.unlink()
    index = []
    dev = next(G.parameters()).device
    from PIL import Image

    from maskstudio.models.dense_mapping import one_hot

    for i in range(count):
        m512, mask_note = item_masks[i % len(item_masks)]
        style = styles[i]
        note = first_note if i == 0 else style_note
        m = cv2.resize(m512, (size, size), interpolation=cv2.INTER_NEAREST)
        oh = one_hot(torch.from_numpy(m[None].astype(np.int64)).to(dev), G.cfg.label_nc)
        img = G.generate(oh, torch.from_numpy(np.asarray(style, np.float32)[None]).to(dev))
        rgb = ((img[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
        rgb512 = cv2.resize(rgb, (SAMPLE_SIZE, SAMPLE_SIZE), interpolation=cv2.INTER_CUBIC) if size != SAMPLE_SIZE else rgb
        name = f"dmn_sample_{i + 1:02d}"
        Image.fromarray(rgb512).save(gallery / f"{name}.png", optimize=True)
        write_label_png(gallery / f"{name}.mask.png", m512)
        written += [gallery / f"{name}.png", gallery / f"{name}.mask.png"]
        index.append({"name": name, "mask": f"{name}.mask.png", "image": f"{name}.png",
                      "mask_source": mask_note, "style_source": note})
    (gallery / "index.json").write_text(json.dumps({"generator": str(Path(dmn_path).name), "render_size": size,
                                                    "items": index}, indent=1))
    written.append(gallery / "index.json")
    return written
