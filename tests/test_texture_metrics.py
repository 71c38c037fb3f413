"""Texture metrics of ``maskstudio eval dmn`` on hand-made images: checkerboard dB, sharpness."""
from __future__ import annotations

import numpy as np
import pytest

from maskstudio.training.metrics import (CHECKER_PERIODS_PX, TextureStats, checkerboard_db, grey_at,
                                         laplacian_variance)

YY, XX = np.mgrid[0:256, 0:256]


def _gradient(noise: float = 1.0, seed: int = 0) -> np.ndarray:
    """A smooth diagonal grey ramp in RGB with a little sensor-like noise, uint8 256²."""
    g = 40 + 150 * (XX + YY) / 510.0 + np.random.default_rng(seed).normal(0, noise, XX.shape)
    return np.repeat(np.clip(g, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def _checker(period: int, amplitude: float = 20.0, seed: int = 0) -> np.ndarray:
    half = period // 2
    board = ((XX // half + YY // half) % 2) * amplitude
    return np.clip(_gradient(seed=seed).astype(np.float64) + board[..., None], 0, 255).astype(np.uint8)


def test_two_px_checkerboard_scores_high_and_a_smooth_gradient_low():
    smooth = checkerboard_db(_gradient())
    board = checkerboard_db(_checker(2))
    assert abs(smooth["score"]) < 2.0, smooth
    assert board["by_period"][2] > 20.0, board
    assert board["score"] > smooth["score"] + 5.0
    assert set(board["by_period"]) == set(CHECKER_PERIODS_PX)


def test_each_period_is_found_at_its_own_bins():
    for p in (4, 8, 16):
        got = checkerboard_db(_checker(p))["by_period"]
        base = checkerboard_db(_gradient())["by_period"]
        assert got[p] > base[p] + 15.0, (p, got, base)


def test_score_grows_with_the_checkerboard_amplitude():
    scores = [checkerboard_db(_checker(2, a))["by_period"][2] for a in (0.0, 2.0, 8.0, 32.0)]
    assert scores == sorted(scores) and scores[-1] - scores[0] > 20


def test_white_noise_sits_near_its_expected_minus_0_9_db():
    # |FFT| of white noise is Rayleigh: E[20·log10(R / median(R))] = −0.91 dB
    rng = np.random.default_rng(3)
    vals = [checkerboard_db(rng.normal(128, 20, (256, 256, 3)).clip(0, 255).astype(np.uint8))["score"]
            for _ in range(12)]
    assert -1.9 < float(np.mean(vals)) < 0.1


def test_laplacian_variance_ranks_sharp_over_smooth_and_matches_opencv():
    import cv2

    smooth, board = _gradient(noise=0.0), _checker(2)
    assert laplacian_variance(board) > 100 * max(laplacian_variance(smooth), 1e-3)
    g = grey_at(board)
    ref = cv2.Laplacian(g, cv2.CV_64F, ksize=1, borderType=cv2.BORDER_REFLECT_101).var()
    assert laplacian_variance(board) == pytest.approx(ref, rel=1e-9)
    # a blurred copy is less sharp
    blurred = cv2.GaussianBlur(board, (5, 5), 1.5)
    assert laplacian_variance(blurred) < 0.2 * laplacian_variance(board)


def test_images_are_measured_at_256_whatever_their_size():
    big = cv2_resize(_checker(4), 512)  # 4 px at 256² is 8 px at 512²
    assert grey_at(big).shape == (256, 256)
    assert checkerboard_db(big)["by_period"][4] > 15.0


def cv2_resize(img: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return cv2.resize(img, (size, size), interpolation=cv2.INTER_NEAREST)


def test_texture_stats_average_over_images():
    t = TextureStats()
    t.update([_gradient(seed=1), _checker(2)])
    d = t.to_dict()
    a, b = checkerboard_db(_gradient(seed=1))["score"], checkerboard_db(_checker(2))["score"]
    assert d["count"] == 2 and d["checkerboard_db"] == pytest.approx((a + b) / 2, abs=1e-3)
    assert set(d["checkerboard_db_by_period"]) == {"2px", "4px", "8px", "16px"}
