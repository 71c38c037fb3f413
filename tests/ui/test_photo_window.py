"""Photo editing in the app with the real shipped models: File ▸ Open photo aligns, the canvas
shows the crop, renders go back into the photo, export writes the full photo, projects keep it."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import photo_fixtures as pf  # noqa: E402

TIMEOUT_MS = 120_000


@pytest.fixture
def real_settings(tmp_path):
    from maskstudio.settings import Settings

    return Settings(device="cpu", models_dir=tmp_path / "user-models")


@pytest.fixture
def window(make_window, real_settings):
    from maskstudio.engine import Engine

    return make_window(settings=real_settings, render_size_px=None, engine=Engine(real_settings))


def _phone_photo(tmp_path, face=4, **kw):
    crop, _ = pf.gallery_face(face)
    photo, _, data = pf.synthetic_photo(crop, np.random.default_rng(21), jpeg=True, size_wh=(1200, 900), **kw)
    path = tmp_path / "phone.jpg"
    path.write_bytes(data)
    return path, photo


def _wait_photo_render(qtbot, w, *, full=True):
    def done():
        res = w.render_view.last_result
        assert res is not None and not res.preview and not w.client.busy and not w.composing
        assert w.render_view.last_photo is not None
        assert w._photo_result is not None
    qtbot.waitUntil(done, timeout=TIMEOUT_MS)
    return w._photo_result


def test_open_photo_edit_and_export_the_full_photo(qtbot, window, tmp_path, recorder):
    w = window
    path, photo = _phone_photo(tmp_path, angle_deg=-12, scale=0.7)
    w.open_photo(path)
    qtbot.waitUntil(lambda: w.session.photo is not None, timeout=TIMEOUT_MS)
    src = w.session.photo
    assert not recorder.errors
    assert np.array_equal(src.image, photo) and w.doc.shape == (512, 512)
    assert np.array_equal(w.doc.labels, src.parsed)
    assert w.render_view.photo_mode and w.exemplar.name == "phone"
    out = _wait_photo_render(qtbot, w)
    assert np.array_equal(out.full, photo)          # unedited: the photo itself
    # a brush stroke of hair over the forehead changes the photo only near the face
    ys, xs = np.nonzero(src.parsed == 1)
    y, x = int(np.percentile(ys, 8)) + 20, int(xs.mean())
    w._photo_result = None
    w.doc.stroke([(x - 30, y), (x + 30, y)], 24, 13)
    out = _wait_photo_render(qtbot, w)
    changed = (out.full != photo).any(2)
    assert changed.any()
    cy, cx = np.nonzero(changed)
    face_c = src.alignment.landmarks.mean(0)
    assert np.hypot(cx.mean() - face_c[0], cy.mean() - face_c[1]) < 200
    assert changed.mean() < 0.05
    shot = tmp_path / "window.png"
    w.grab().save(str(shot))
    w.grab().save("/tmp/photo_window.png")
    assert Image.open(shot).size[0] > 800
    # export: the full photo at its size, and the crop alone
    full_png, crop_png = tmp_path / "full.png", tmp_path / "crop.png"
    assert w.export_render(full_png)
    assert np.array_equal(np.asarray(Image.open(full_png)), out.full)
    assert w.export_render(crop_png, crop_only=True)
    assert Image.open(crop_png).size == (512, 512)
    # crop view toggle shows the crop
    w.render_view.full_photo.setChecked(False)
    assert w.render_view.last_image.shape == (512, 512, 3)
    # whole face: the whole crop footprint is re-rendered
    w._photo_result = None
    w.render_view.whole_face.setChecked(True)
    assert w.session.whole_face
    whole = _wait_photo_render(qtbot, w)
    assert (whole.full != photo).any(2).sum() > changed.sum()
    # the project keeps the photo, alignment, parsed mask and the toggle
    proj = tmp_path / "p.msproj"
    assert w.save_project(proj)
    w2_session = type(w.session)()
    w2_session.open_project(proj)
    assert w2_session.photo is not None and w2_session.whole_face
    assert np.array_equal(w2_session.photo.parsed, src.parsed)
    assert not recorder.errors


def test_two_faces_ask_which_one(qtbot, window, tmp_path, recorder):
    import cv2

    w = window
    a, _ = pf.gallery_face(1)
    b, _ = pf.gallery_face(5)
    canvas = pf.synthetic_photo(a, np.random.default_rng(8), size_wh=(1400, 700), angle_deg=0, scale=0.5)[0]
    canvas[70:630, 780:1340] = cv2.resize(b, (560, 560), interpolation=cv2.INTER_AREA)
    path = tmp_path / "two.png"
    Image.fromarray(canvas).save(path)
    recorder.faces.append(1)   # the smaller face, on the left
    w.open_photo(path)
    qtbot.waitUntil(lambda: w.session.photo is not None, timeout=TIMEOUT_MS)
    assert recorder.face_prompts and recorder.face_prompts[0] >= 2
    al = w.session.photo.alignment
    assert al.face_index == 1 and al.landmarks[:, 0].max() < 700


def test_opening_a_photo_then_another_file_asks_nothing(qtbot, window, tmp_path, recorder):
    # opening a photo is not a change to save: opening another file afterwards asks nothing
    w = window
    path, _ = _phone_photo(tmp_path)
    w.open_photo(path)
    _wait_photo_render(qtbot, w)
    assert not w.is_dirty() and not w.windowTitle().startswith("*")
    mask = tmp_path / "other.png"
    Image.fromarray(np.asarray(w.doc.labels)).save(mask)
    assert w.open_mask(mask)
    assert recorder.questions == []
