"""Shared helpers of the UI tests (tiny masks)."""
from __future__ import annotations

import numpy as np

SIZE = 64  # tiny documents keep every render a few ms on CPU
RENDER_TIMEOUT_MS = 60_000


def wait_full_render(qtbot, w, *, ok: bool = False, timeout_ms: int = RENDER_TIMEOUT_MS):
    """Wait until the engine is idle and the view shows a full (non-preview) render (``ok``:
    and a successful one); returns that result."""
    def done():
        res = w.render_view.last_result
        assert res is not None and not res.preview and not w.client.busy and (res.ok or not ok)
    qtbot.waitUntil(done, timeout=timeout_ms)
    return w.render_view.last_result


def write_tiny_psp(folder) -> None:
    """A tiny W+ pSp encoder (``psp_tiny``, 6 styles, 16² decoder, seeded) saved under ``folder``."""
    import torch

    from maskstudio.models.checkpoints import save_checkpoint
    from maskstudio.models.psp import PSPConfig, PSPEncoderModel
    from maskstudio.models.stylegan2 import StyleGAN2Config

    torch.manual_seed(1)
    sg = StyleGAN2Config(size=16, style_dim=512, n_mlp=2, channels={4: 8, 8: 8, 16: 8})
    cfg = PSPConfig(n_styles=6, input_size=32, units=(1, 1, 1, 1), depths=(16, 16, 16, 512), se_reduction=4,
                    coarse_ind=2, middle_ind=4, latent_space="wplus", start_from_latent_avg=False,
                    decoder=sg.to_dict())
    (folder / "psp_tiny").mkdir()
    save_checkpoint(folder / "psp_tiny" / "psp_tiny", PSPEncoderModel(cfg).eval(), "psp_encoder", cfg)


def face_like_mask(size: int = SIZE, shift: int = 0) -> np.ndarray:
    """A crude face layout: background, skin oval, hair, eyes, nose, lips (values 0..18)."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    m = np.zeros((size, size), np.uint8)
    m[((yy - 0.55) / 0.38) ** 2 + ((xx - 0.5) / 0.3) ** 2 < 1] = 1          # skin
    m[(yy < 0.3 + shift / size) & (m == 1)] = 13                              # hair
    m[((yy - 0.45) / 0.04) ** 2 + ((xx - 0.38) / 0.06) ** 2 < 1] = 4          # l_eye (image left)
    m[((yy - 0.45) / 0.04) ** 2 + ((xx - 0.62) / 0.06) ** 2 < 1] = 5          # r_eye
    m[((yy - 0.58) / 0.07) ** 2 + ((xx - 0.5) / 0.04) ** 2 < 1] = 2           # nose
    m[((yy - 0.72) / 0.03) ** 2 + ((xx - 0.5) / 0.1) ** 2 < 1] = 11           # u_lip
    m[((yy - 0.77) / 0.03) ** 2 + ((xx - 0.5) / 0.1) ** 2 < 1] = 12           # l_lip
    return m
