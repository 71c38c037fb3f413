"""Regenerate the app's sample content from aggregates and our own DMN — never a real face.

* ``resources/sample/template_mask.png``: per-pixel majority class over the training masks
  (512², the train split of the seeded split).
* ``resources/gallery/<name>.png`` + ``<name>.mask.png``: exemplar faces *rendered by our DMN*.
  Each mask is the per-pixel majority of one k-means cluster of training masks (clusters of
  ≥ ``min_cluster`` masks, so every mask is an aggregate of many annotations, e.g. long/short
  hair). Each style vector is drawn from a Gaussian fitted to the style codes
  ``encode_style(mask, photo)`` of the training faces (empirical mean and covariance, sampled
  exactly through the centred data matrix, scaled by ``temperature``). No photo or single real
  annotation is written.

Run: ``maskstudio train samples --dmn checkpoints/dmn_starter.safetensors --data ../shared/data``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from maskstudio.labels import NUM_CLASSES

SAMPLE_SIZE = 512


def majority(masks: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Per-pixel most frequent class of uint8 masks ``[N,H,W]`` (ties -> lower class index)."""
    counts = np.zeros((num_classes,) + masks.shape[1:], np.int32)
    for c in range(num_classes):
        counts[c] = (masks == c).sum(0)
    return counts.argmax(0).astype(np.uint8)


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
                 log=print) -> list[Path]:
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
    template = majority(masks512)
    sample_dir = resources / "sample"
    sample_dir.mkdir(parents=True, exist_ok=True)
    written = [sample_dir / "template_mask.png"]
    write_label_png(written[0], template)
    log(f"template mask: majority over {len(train)} training masks")

    small = np.stack([cv2.resize(m, (32, 32), interpolation=cv2.INTER_NEAREST) for m in masks512])
    k = max(1, min(count, len(train) // max(1, min_cluster)))
    groups = cluster_masks(small, k, seed)
    sizes = np.bincount(groups, minlength=k)
    order = [j for j in np.argsort(-sizes) if sizes[j] >= min(min_cluster, len(train))]
    cluster_masks_512 = [majority(masks512[groups == j]) for j in order]

    images = np.stack([read_rgb(pairs.images[s], size) for s in train])
    masks = np.stack([cv2.resize(m, (size, size), interpolation=cv2.INTER_NEAREST) for m in masks512])
    codes = style_codes(G, images, masks)
    styles = sample_styles(codes, count, rng, temperature)

    gallery = resources / "gallery"
    gallery.mkdir(parents=True, exist_ok=True)
    index = []
    dev = next(G.parameters()).device
    from maskstudio.models.dense_mapping import one_hot

    for i in range(count):
        m512 = cluster_masks_512[i % len(cluster_masks_512)]
        m = cv2.resize(m512, (size, size), interpolation=cv2.INTER_NEAREST)
        oh = one_hot(torch.from_numpy(m[None].astype(np.int64)).to(dev), G.cfg.label_nc)
        img = G.generate(oh, torch.from_numpy(styles[i:i + 1]).to(dev))
        rgb = ((img[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
        rgb512 = cv2.resize(rgb, (SAMPLE_SIZE, SAMPLE_SIZE), interpolation=cv2.INTER_CUBIC) if size != SAMPLE_SIZE else rgb
        name = f"dmn_sample_{i + 1:02d}"
        from PIL import Image

        Image.fromarray(rgb512).save(gallery / f"{name}.png", optimize=True)
        write_label_png(gallery / f"{name}.mask.png", m512)
        written += [gallery / f"{name}.png", gallery / f"{name}.mask.png"]
        index.append({"name": name, "mask": f"{name}.mask.png", "image": f"{name}.png",
                      "mask_source": f"per-pixel majority of mask cluster {i % len(cluster_masks_512)} "
                                     f"({int(sizes[order[i % len(order)]])} training masks)",
                      "style_source": f"Gaussian fitted to {len(codes)} training style codes, "
                                      f"temperature {temperature}, seed {seed}"})
    (gallery / "index.json").write_text(json.dumps({"generator": str(Path(dmn_path).name), "render_size": size,
                                                    "items": index}, indent=1))
    written.append(gallery / "index.json")
    return written
