"""Sample content: the clean template mask (an aggregate, never one annotation) and the choice of
the default exemplar's style (its render of the template is what the app reproduces)."""
from __future__ import annotations

import numpy as np
import torch

from maskstudio import labels as L
from maskstudio.training.make_samples import clean_template, consistent_style, majority

SKIN, L_EYE, R_EYE, HAT = 1, 4, 5, 14


def jittered_faces(n: int = 40, size: int = 96, seed: int = 0) -> np.ndarray:
    """Faces whose parts move a little from mask to mask; a hat in two of them."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    out = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        cx, cy = size / 2 + rng.normal(0, 2), size / 2 + rng.normal(0, 2)
        m = out[i]
        m[((xx - cx) / 30) ** 2 + ((yy - cy) / 38) ** 2 <= 1] = SKIN
        ex, ey = rng.normal(0, 2.5, 2)
        m[((xx - cx - 12 - ex) / 5) ** 2 + ((yy - cy + 8 - ey) / 2.5) ** 2 <= 1] = L_EYE   # image right
        m[((xx - cx + 12 + rng.normal(0, 2.5)) / 5) ** 2 + ((yy - cy + 8 - rng.normal(0, 2.5)) / 2.5) ** 2 <= 1] = R_EYE
        if i < 2:
            m[:12] = HAT
    return out


def test_clean_template_is_symmetric_area_true_and_drops_rare_classes():
    masks = jittered_faces()
    tpl = clean_template(masks, sigma_px=2.0)
    assert tpl.dtype == np.uint8 and tpl.shape == masks.shape[1:]
    assert np.array_equal(L.flip_labels(tpl), tpl)                 # mirror-averaged: symmetric
    assert not (tpl == HAT).any()                                  # in 2 of 40 masks: left out
    for c in (SKIN, L_EYE, R_EYE):
        mean_area = np.mean([(m == c).sum() for m in masks if (m == c).any()])
        mean_area = (mean_area + np.mean([(m == L.mirror_class(c)).sum() for m in masks])) / 2
        assert abs((tpl == c).sum() - mean_area) <= 0.06 * mean_area, c
    # the plain majority shrinks the jittered eyes; the clean template keeps their size
    maj = majority(masks)
    assert (maj == L_EYE).sum() < 0.8 * (tpl == L_EYE).sum()
    assert not any(np.array_equal(tpl, m) for m in masks)          # an aggregate, not one of them


def test_consistent_style_picks_the_candidate_the_app_reproduces_best():
    from maskstudio.engine.pipeline import _resize_labels
    from maskstudio.models.dense_mapping import DenseMappingConfig, DenseMappingNetwork, one_hot
    from maskstudio.training.make_samples import _round_trip

    torch.manual_seed(0)
    G = DenseMappingNetwork(DenseMappingConfig(ngf=4, n_downsample=2, n_blocks=1)).eval()
    mask = np.kron(jittered_faces(1, 64)[0], np.ones((8, 8), np.uint8))   # 512²
    with torch.no_grad():
        oh = one_hot(torch.from_numpy(np.array(_resize_labels(mask, 32))[None].astype(np.int64)), 19)
        img = torch.rand(1, 3, 32, 32) * 2 - 1
        base = G.encode_style(oh, img).reshape(1, -1).numpy()
    rng = np.random.default_rng(0)
    cands = base + rng.normal(0, 0.5, (4, base.shape[1])).astype(np.float32)
    best, diffs = consistent_style(G, mask, cands, 32)
    assert diffs.shape == (4,) and 0 <= best < 4
    with torch.no_grad():   # recompute the chosen candidate's difference independently
        st = torch.from_numpy(cands[best][None])
        a = G.generate(oh, st).clamp(-1, 1)
        b = G.generate(oh, _round_trip(G, oh, 32, a)).clamp(-1, 1)
    assert abs(float((a - b).abs().mean() / 2) - diffs[best]) < 1e-6
