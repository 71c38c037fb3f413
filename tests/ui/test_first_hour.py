"""A designer's first hour in the main window: Add… switches the render, the header is readable,
Export latents follows availability, export dialogs suggest a folder and a name, opening a photo
leaves nothing unsaved, the gallery hands the keyboard back to the canvas, the palette banner
follows the tool, and the selection / swap tools have their keys."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QPoint, Qt

from ui_helpers import SIZE, face_like_mask

RENDER_TIMEOUT_MS = 60_000


def wait_full_render(qtbot, w):
    def done():
        res = w.render_view.last_result
        assert res is not None and not res.preview and not w.client.busy
    qtbot.waitUntil(done, timeout=RENDER_TIMEOUT_MS)
    return w.render_view.last_result


def write_exemplar(folder: Path, name: str, tint: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    img = np.full((SIZE, SIZE, 3), 60, np.uint8)
    img[..., tint] = 230
    p = folder / f"{name}.png"
    Image.fromarray(img).save(p)
    Image.fromarray(face_like_mask()).save(folder / f"{name}.mask.png")
    return p
