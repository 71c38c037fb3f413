"""UI test fixtures: a small REAL engine (tiny DMN + tiny face parser saved with
``save_checkpoint``), tiny gallery/template resources, isolated QSettings / autosave folder,
and a dialog recorder so no dialog ever blocks."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from ui_helpers import SIZE, face_like_mask, write_tiny_psp  # noqa: E402


@pytest.fixture(scope="session")
def tiny_install(tmp_path_factory) -> dict[str, Path]:
    """Shipped-checkpoint folder with a tiny DMN and a tiny face parser, plus resources."""
    import torch

    from maskstudio.models.checkpoints import save_checkpoint
    from maskstudio.models.dense_mapping import DenseMappingConfig, DenseMappingNetwork
    from maskstudio.models.face_parser import FaceParser, FaceParserConfig

    root = tmp_path_factory.mktemp("install")
    ckpt = root / "checkpoints"
    ckpt.mkdir()
    torch.manual_seed(0)
    dmn_cfg = DenseMappingConfig(ngf=4, n_downsample=2, n_blocks=1)
    save_checkpoint(ckpt / "dmn_tiny", DenseMappingNetwork(dmn_cfg).eval(), "maskgan_dmn", dmn_cfg)
    fp_cfg = FaceParserConfig(channels=(4, 4, 8, 8, 8), blocks=(0, 0, 0, 0, 0), decoder=(8, 8, 8, 8), input_size=64)
    save_checkpoint(ckpt / "parser_tiny", FaceParser(fp_cfg).eval(), "face_parser", fp_cfg)

    res = root / "resources"
    (res / "gallery").mkdir(parents=True)
    (res / "sample").mkdir()
    rng = np.random.default_rng(0)
    for i, name in enumerate(("alice", "bob")):
        img = (rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8)
        img[..., i] = 220  # distinct tints
        Image.fromarray(img).save(res / "gallery" / f"{name}.png")
        Image.fromarray(face_like_mask(shift=i * 4)).save(res / "gallery" / f"{name}.mask.png")
    Image.fromarray(face_like_mask()).save(res / "sample" / "template_mask.png")
    return {"checkpoints": ckpt, "resources": res, "root": root}


@pytest.fixture(scope="session")
def photo_models_dir(tmp_path_factory) -> Path:
    """A per-user models folder with a tiny pSp W+ encoder (with its StyleGAN2 decoder) and one
    W-space boundary: enough for the "photo" output and the semantic-edit sliders."""
    d = tmp_path_factory.mktemp("photo-models")
    write_tiny_psp(d)
    (d / "boundaries").mkdir()
    v = np.random.default_rng(0).standard_normal((1, 512))
    np.save(d / "boundaries" / "smile_w_boundary.npy", (v / np.linalg.norm(v)).astype(np.float32))
    return d


@pytest.fixture
def photo_settings(tiny_install, photo_models_dir):
    from maskstudio.settings import Settings

    return Settings(device="cpu", models_dir=photo_models_dir,
                    shipped_checkpoints=tiny_install["checkpoints"], resources=tiny_install["resources"])


@pytest.fixture
def settings(tiny_install, tmp_path):
    from maskstudio.settings import Settings

    return Settings(device="cpu", models_dir=tmp_path / "user-models",
                    shipped_checkpoints=tiny_install["checkpoints"], resources=tiny_install["resources"])


@pytest.fixture
def recorder():
    from maskstudio.ui import dialogs

    rec = dialogs.DialogRecorder()
    prev = dialogs.set_handler(rec)
    yield rec
    dialogs.set_handler(prev)


@pytest.fixture
def qsettings(tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "prefs.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, settings, qsettings, recorder, tmp_path):
    """Factory: a shown MainWindow on the tiny install that waits for its first render."""
    from maskstudio.ui.main_window import MainWindow

    windows = []

    def make(settings=settings, **kw):
        from maskstudio.engine import Engine

        kw.setdefault("qsettings", qsettings)
        kw.setdefault("render_size_px", SIZE)
        kw.setdefault("engine", Engine(settings, style_size_px=SIZE))
        kw.setdefault("state_dir", tmp_path / "state")
        w = MainWindow(settings, **kw)
        qtbot.addWidget(w)
        w.resize(1100, 700)
        w.show()
        qtbot.waitExposed(w)
        windows.append(w)
        return w

    yield make
    import gc

    for w in windows:
        w.session.mark_clean()
        w.close()
        w._gc.release()   # a window closed with "Cancel" keeps its guard; give it back here
    gc.collect()          # on the GUI thread, while no render thread can start a collection
