"""Drive the app like a user: shortcuts, synthesized mouse strokes, docks, files, safety.

Every test runs the real window on a small real engine (tiny DMN + face parser checkpoints)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, Qt

from maskstudio.labels import index_of
from maskstudio.ui.canvas import Tool
import ui_helpers
from ui_helpers import SIZE

RENDER_TIMEOUT_MS = 30_000


def wait_full_render(qtbot, w):
    return ui_helpers.wait_full_render(qtbot, w, timeout_ms=RENDER_TIMEOUT_MS)





def scale(w) -> int:
    """Masks open at the 512 working size; tests think in a 64 grid (one cell = 8 pixels)."""
    return w.doc.shape[0] // SIZE


def at(w, x: float, y: float) -> QPoint:
    """Widget position of the centre of grid cell (x, y)."""
    s = scale(w)
    p = w.canvas.image_to_widget((x + 0.5) * s, (y + 0.5) * s)
    return QPoint(round(p.x()), round(p.y()))


def grid(w) -> np.ndarray:
    """The document sampled at the grid-cell centres (64x64)."""
    s = scale(w)
    return np.array(w.doc.labels[s // 2::s, s // 2::s])


def brush(w, cells: float) -> None:
    w.canvas.set_brush_size(cells * scale(w))


def drag(qtbot, w, points, button=Qt.MouseButton.LeftButton):
    c = w.canvas
    qtbot.mousePress(c, button, pos=at(w, *points[0]))
    for pt in points[1:]:
        qtbot.mouseMove(c, pos=at(w, *pt))
    qtbot.mouseRelease(c, button, pos=at(w, *points[-1]))


def key(qtbot, w, k, mod=Qt.KeyboardModifier.NoModifier):
    w.activateWindow()
    qtbot.keyClick(w.canvas, k, mod)


def test_first_render_arrives_and_shows_stage(qtbot, make_window):
    w = make_window()
    res = wait_full_render(qtbot, w)
    assert res.ok, res.error
    assert res.image.shape == (SIZE, SIZE, 3)
    assert w.exemplar is not None and w.exemplar.name == "alice"
    assert "DMN face" in w.render_view.stage.text() and "ms" in w.render_view.stage.text()
    assert not w.render_view.is_busy


def test_class_shortcut_then_stroke_paints_and_renders(qtbot, make_window):
    w = make_window()
    wait_full_render(qtbot, w)
    key(qtbot, w, Qt.Key.Key_H)
    assert w.canvas.active_class == index_of("hair")
    assert w.palette_widget.active == index_of("hair")
    assert w.palette_widget.rows[index_of("hair")].property("active") is True
    before = grid(w)
    n_before = w.client.delivered
    brush(w, 5)
    row = 58  # below the face: background
    drag(qtbot, w, [(8, row), (20, row), (32, row), (44, row)])
    after = grid(w)
    assert (after[row, 10:43] == index_of("hair")).all()
    assert (after[:50] == before[:50]).all()            # nothing painted far from the stroke
    assert w.doc.history == ["Brush (Hair)"]
    res = wait_full_render(qtbot, w)
    assert w.client.delivered > n_before and res.ok
    # the render reflects the painted mask: an identical request gives the same image
    from maskstudio.engine import RenderRequest

    again = w.client.engine.render_sync(RenderRequest(np.array(w.doc.labels), w.exemplar, size_px=SIZE))
    np.testing.assert_array_equal(again.image, res.image)


def test_undo_redo_shortcuts_and_history_list(qtbot, make_window):
    w = make_window()
    wait_full_render(qtbot, w)
    original = np.array(w.doc.labels)
    key(qtbot, w, Qt.Key.Key_N)  # neck
    drag(qtbot, w, [(5, 60), (30, 60)])
    painted = np.array(w.doc.labels)
    assert not np.array_equal(painted, original)
    assert w.history_widget.list.count() == 2            # "Opened" + the stroke
    key(qtbot, w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(w.doc.labels, original)
    assert w.history_widget.list.currentRow() == 0
    key(qtbot, w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    np.testing.assert_array_equal(w.doc.labels, painted)
    # clicking the first history row goes back to the opened mask
    item = w.history_widget.list.item(0)
    rect = w.history_widget.list.visualItemRect(item)
    qtbot.mouseClick(w.history_widget.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    np.testing.assert_array_equal(w.doc.labels, original)
    wait_full_render(qtbot, w)


def test_locked_class_is_not_painted(qtbot, make_window):
    w = make_window()
    wait_full_render(qtbot, w)
    skin = index_of("skin")
    row = w.palette_widget.rows[skin]
    qtbot.mouseClick(row.lock, Qt.MouseButton.LeftButton)
    assert skin in w.doc.locked
    before = grid(w)
    key(qtbot, w, Qt.Key.Key_T)  # hat
    brush(w, 9)
    drag(qtbot, w, [(2, 40), (62, 40)])
    after = grid(w)
    was_skin = before == skin
    assert (after[was_skin] == skin).all()
    assert (after[40, :8][before[40, :8] == 0] == index_of("hat")).all()


def test_mirror_paints_the_other_side_with_swapped_class(qtbot, make_window):
    w = make_window()
    wait_full_render(qtbot, w)
    key(qtbot, w, Qt.Key.Key_M, Qt.KeyboardModifier.ShiftModifier)
    assert w.act_mirror.isChecked() and w.doc.mirror
    key(qtbot, w, Qt.Key.Key_4)  # left eye
    brush(w, 3)
    drag(qtbot, w, [(5, 5), (6, 5)])
    lab = grid(w)
    assert lab[5, 5] == index_of("l_eye")
    assert lab[5, SIZE - 1 - 5] == index_of("r_eye")


def test_fill_tool_fills_region(qtbot, make_window):
    w = make_window()
    wait_full_render(qtbot, w)
    key(qtbot, w, Qt.Key.Key_G)
    assert w.canvas.tool == Tool.FILL
    key(qtbot, w, Qt.Key.Key_C)  # cloth
    before = grid(w)
    qtbot.mouseClick(w.canvas, Qt.MouseButton.LeftButton, pos=at(w, 1, 62))
    after = grid(w)
    bg_corner = before == 0
    assert after[62, 1] == index_of("cloth")
    assert (after[~bg_corner] == before[~bg_corner]).all()
    assert (after == index_of("cloth")).sum() > 200


def test_eyedropper_and_polygon(qtbot, make_window):
    w = make_window()
    wait_full_render(qtbot, w)
    key(qtbot, w, Qt.Key.Key_I)
    qtbot.mouseClick(w.canvas, Qt.MouseButton.LeftButton, pos=at(w, 32, 37))  # nose
    assert w.canvas.active_class == grid(w)[37, 32] == index_of("nose")
    key(qtbot, w, Qt.Key.Key_P)
    key(qtbot, w, Qt.Key.Key_R)  # earring
    for pt in ((2, 2), (12, 2), (12, 12)):
        qtbot.mouseClick(w.canvas, Qt.MouseButton.LeftButton, pos=at(w, *pt))
    qtbot.mouseClick(w.canvas, Qt.MouseButton.RightButton, pos=at(w, 12, 12))
    assert grid(w)[4, 9] == index_of("ear_r")


def test_gallery_click_changes_exemplar_and_renders(qtbot, make_window):
    w = make_window()
    first = wait_full_render(qtbot, w)
    lst = w.gallery.list
    names = [e.name for e in w.gallery.entries]
    assert names == ["alice", "bob"]
    rect = lst.visualItemRect(lst.item(1))
    with qtbot.waitSignal(w.renderShown, timeout=RENDER_TIMEOUT_MS):
        qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert w.exemplar.name == "bob"
    res = wait_full_render(qtbot, w)
    assert res.ok and not np.array_equal(res.image, first.image)


def test_gallery_add_and_drop_without_mask_uses_face_parser(qtbot, make_window, tmp_path, recorder):
    from PySide6.QtCore import QMimeData, QPointF, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    w = make_window()
    wait_full_render(qtbot, w)
    img = tmp_path / "carol.png"
    Image.fromarray((np.random.default_rng(3).random((SIZE, SIZE, 3)) * 255).astype(np.uint8)).save(img)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(img))])
    lst = w.gallery.list
    enter = QDragEnterEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(lst.viewport(), enter)
    assert enter.isAccepted()
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(lst.viewport(), ev)
    assert [e.name for e in w.gallery.entries][-1] == "carol"
    assert w.gallery.entries[-1].mask_path is None
    w.use_exemplar(w.gallery.entries[-1])
    res = wait_full_render(qtbot, w)
    assert res.ok, res.error  # the tiny face parser made the exemplar's mask
    # Add… through the (recorded) file dialog
    recorder.paths.append(str(tmp_path / "missing.png"))
    w.add_exemplars()
    assert recorder.errors and "missing.png" in recorder.errors[-1][1]


def test_opacity_zoom_and_brush_size_keys(qtbot, make_window):
    w = make_window()
    wait_full_render(qtbot, w)
    w.opacity_slider.setValue(25)
    assert w.canvas.opacity == pytest.approx(0.25)
    d = w.canvas.diameter_px
    key(qtbot, w, Qt.Key.Key_BracketRight)
    assert w.canvas.diameter_px > d and w.size_spin.value() == pytest.approx(round(w.canvas.diameter_px))
    key(qtbot, w, Qt.Key.Key_BracketLeft)
    key(qtbot, w, Qt.Key.Key_BracketLeft)
    assert w.canvas.diameter_px < d
    w.canvas.actual_size()
    assert w.canvas.zoom == 1.0
    z = w.canvas.zoom
    from PySide6.QtCore import QPointF

    w.canvas.zoom_by(2.0, QPointF(50, 50))
    assert w.canvas.zoom == pytest.approx(2 * z)
    # middle-button pan moves the image
    p0 = w.canvas.image_to_widget(0, 0)
    qtbot.mousePress(w.canvas, Qt.MouseButton.MiddleButton, pos=QPoint(100, 100))
    qtbot.mouseMove(w.canvas, pos=QPoint(130, 110))
    qtbot.mouseRelease(w.canvas, Qt.MouseButton.MiddleButton, pos=QPoint(130, 110))
    p1 = w.canvas.image_to_widget(0, 0)
    assert (p1.x() - p0.x(), p1.y() - p0.y()) == (30, 10)


def test_exports_exist_and_reopen_identically(qtbot, make_window, tmp_path, recorder):
    w = make_window()
    wait_full_render(qtbot, w)
    key(qtbot, w, Qt.Key.Key_K)
    drag(qtbot, w, [(3, 50), (25, 62)])
    painted = np.array(w.doc.labels)
    res = wait_full_render(qtbot, w)
    assert w.export_render(tmp_path / "render.png")
    np.testing.assert_array_equal(np.array(Image.open(tmp_path / "render.png").convert("RGB")), res.image)
    assert w.export_mask(tmp_path / "label.png", kind="label")
    assert w.export_mask(tmp_path / "color.png", kind="color")
    for name in ("label.png", "color.png"):
        assert (tmp_path / name).is_file()
        w.doc.mark_clean()
        assert w.open_mask(tmp_path / name), recorder.errors
        np.testing.assert_array_equal(w.doc.labels, painted)
    # a CelebAMask-HQ part folder opens too (File > Open part folder…)
    from maskstudio.io.masks import write_part_folder

    parts = tmp_path / "parts"
    parts.mkdir()
    write_part_folder(parts, painted, image_id=7)
    w.doc.mark_clean()
    recorder.paths.append(str(parts))
    w.act_open_parts.trigger()
    assert not recorder.errors
    np.testing.assert_array_equal(w.doc.labels, painted)
    # no StyleGAN chain: Export latents writes the DMN style latent (issue 19)
    with qtbot.waitSignal(w.styleExported, timeout=30_000):
        assert w.export_latents(tmp_path / "w.npy")
    from maskstudio.io.style_files import read_style_latent

    assert read_style_latent(tmp_path / "w.npy").codes.shape[0] == 1 and not recorder.errors


def test_latent_export_formats(tmp_path):
    from maskstudio.ui.render_client import RenderClient

    lat = np.random.default_rng(0).standard_normal((1, 18, 512)).astype(np.float32)
    RenderClient.save_latent(tmp_path / "w.npy", lat)
    np.testing.assert_array_equal(np.load(tmp_path / "w.npy"), lat)
    import torch

    RenderClient.save_latent(tmp_path / "w.pt", lat[0])
    t = torch.load(tmp_path / "w.pt", weights_only=True)
    assert tuple(t.shape) == (1, 18, 512) and np.array_equal(t.numpy(), lat)
    from maskstudio.errors import LatentFileError

    with pytest.raises(LatentFileError, match="bad.npy"):
        RenderClient.save_latent(tmp_path / "bad.npy", np.zeros((3, 4)))


def test_project_round_trip(qtbot, make_window, tmp_path, recorder):
    w = make_window()
    wait_full_render(qtbot, w)
    bob = w.gallery.entries[1]
    w.use_exemplar(bob)
    key(qtbot, w, Qt.Key.Key_U)
    drag(qtbot, w, [(10, 10), (50, 12)])
    after_first = np.array(w.doc.labels)
    key(qtbot, w, Qt.Key.Key_G)
    key(qtbot, w, Qt.Key.Key_C)
    qtbot.mouseClick(w.canvas, Qt.MouseButton.LeftButton, pos=at(w, 1, 62))
    painted = np.array(w.doc.labels)
    history = list(w.doc.history)
    assert len(history) == 2
    last = w.session.history_snapshots(limit=1)                # what the autosave keeps, shortened
    assert [n for n, _ in last] == history[-1:]
    np.testing.assert_array_equal(last[0][1], painted)
    np.testing.assert_array_equal(w.doc.labels, painted)       # the walk leaves the mask as it was
    assert w.doc.history_index == 2
    assert w.is_dirty() and w.windowTitle().startswith("*")
    path = tmp_path / "p.msproj"
    assert w.save_project(path)
    assert not w.is_dirty() and not w.windowTitle().startswith("*")
    ex_img = np.array(w.exemplar.image)

    w2 = make_window(open_sample=False)
    assert w2.open_project(path), recorder.errors
    np.testing.assert_array_equal(w2.doc.labels, painted)
    np.testing.assert_array_equal(w2.exemplar.image, ex_img)
    assert w2.exemplar.name == "bob"
    # "erase to original" still restores the mask as first opened, not the saved edits
    np.testing.assert_array_equal(w2.doc.original, w.doc.original)
    assert w2.session.render_settings == w.session.render_settings
    # the undo history came along: same steps, undo walks back to the opened mask
    assert w2.doc.history == history and not w2.is_dirty()
    assert w2.history_widget.list.count() == 3
    w2.undo()
    np.testing.assert_array_equal(w2.doc.labels, after_first)
    w2.undo()
    np.testing.assert_array_equal(w2.doc.labels, w.doc.original)
    w2.redo()
    w2.redo()
    np.testing.assert_array_equal(w2.doc.labels, painted)
    res = wait_full_render(qtbot, w2)
    assert res.ok
    assert str(path.resolve()) == w2.recent_files()[0][0]


def test_corrupt_files_show_error_and_window_keeps_working(qtbot, make_window, tmp_path, recorder):
    w = make_window()
    wait_full_render(qtbot, w)
    bad = tmp_path / "broken.msproj"
    bad.write_bytes(b"PK\x03\x04 this is not a project")
    assert not w.open_project(bad)
    assert recorder.errors and "broken.msproj" in recorder.errors[-1][1]
    badmask = tmp_path / "broken.png"
    badmask.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    assert not w.open_mask(badmask)
    assert "broken.png" in recorder.errors[-1][1]
    assert w.isVisible()
    key(qtbot, w, Qt.Key.Key_H)
    drag(qtbot, w, [(4, 60), (30, 60)])
    assert grid(w)[60, 10] == index_of("hair")
    assert wait_full_render(qtbot, w).ok


def test_unsaved_changes_prompt_on_close(qtbot, make_window, recorder):
    w = make_window()
    wait_full_render(qtbot, w)
    key(qtbot, w, Qt.Key.Key_H)
    drag(qtbot, w, [(4, 60), (30, 60)])
    recorder.answers.append("Cancel")
    w.close()
    assert w.isVisible() and recorder.questions and "unsaved" in recorder.questions[-1]
    recorder.answers.append("Discard")
    w.close()
    assert not w.isVisible()


def test_recovery_after_crash_restores_autosave(qtbot, make_window, recorder, tmp_path):
    w = make_window()
    wait_full_render(qtbot, w)
    key(qtbot, w, Qt.Key.Key_H)
    drag(qtbot, w, [(4, 60), (30, 60)])
    painted = np.array(w.doc.labels)
    assert w._autosave_timer.isActive() and w._autosave_timer.interval() == 60_000
    # a crash-prone operation (opening a file) autosaves first, whatever happens next
    assert not w.autosave.path.exists()
    recorder.answers.append("Discard")
    w.open_mask(tmp_path / "does-not-exist.png")
    assert w.autosave.path.is_file() and "does-not-exist.png" in recorder.errors[-1][1]
    assert not w.autosave_now()            # nothing changed since: no rewrite
    # a second window on the same state folder while the first lives: nothing to recover
    n_questions = len(recorder.questions)
    other = make_window()
    assert len(recorder.questions) == n_questions
    other.close()                          # its clean exit leaves the first window's autosave alone
    assert w.autosave.path.is_file() and w.autosave.lock.is_file()
    # "crash": the first window lets go of its lock and leaves its files, as a killed process does
    w._autosave_timer.stop()
    w.autosave.abandon()
    recorder.answers.append("Recover")
    w2 = make_window()
    assert any("did not close" in q for q in recorder.questions[n_questions:])
    np.testing.assert_array_equal(w2.doc.labels, painted)
    assert w2.is_dirty()
    assert w2.autosave.path.is_file() and not w.autosave.path.exists()   # moved into w2's own autosave
    # a clean close removes the autosave: no recovery offer next time
    w2.session.mark_clean()
    w2.close()
    assert not w2.autosave.path.exists()
    assert list((tmp_path / "state").glob("autosave-*.msproj")) == []


def test_open_photo_without_a_face_is_a_clear_error(qtbot, make_window, tmp_path, recorder):
    # the photo path (face found, aligned, parsed, pasted back) is tested with the real models in
    # tests/ui/test_photo_window.py; here: a photo without a face says so, and nothing changes
    w = make_window()
    wait_full_render(qtbot, w)
    img = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(5).random((SIZE, SIZE, 3)) * 255).astype(np.uint8)).save(img)
    w.open_photo(img)
    qtbot.waitUntil(lambda: bool(recorder.errors), timeout=RENDER_TIMEOUT_MS)
    title, msg = recorder.errors[0]
    assert title == "Open photo" and "photo.png" in msg and "face" in msg
    assert w.source_photo is None and w.session.photo is None and not w.session.busy


def test_slider_groups_disabled_with_hint_when_models_missing(qtbot, make_window):
    w = make_window()
    wait_full_render(qtbot, w)
    for key_, g in w.sliders.groups.items():
        assert not g.body.isEnabled(), key_
        assert g.hint.text()
    # the output choice lists StyleGAN outputs but disables them, with the reason as tooltip
    idx = w.render_view.output.findData("dual")
    assert not w.render_view.output.model().item(idx).isEnabled()


def test_screenshot_command_writes_png(tmp_path, settings, recorder):
    from maskstudio.ui.app import run_gui

    out = tmp_path / "shot.png"
    assert run_gui(settings, screenshot=str(out)) == 0
    im = Image.open(out)
    assert im.size[0] > 800 and im.size[1] > 500


def test_slider_move_rerenders_live_and_latents_export(qtbot, make_window, photo_settings, tmp_path, recorder):
    w = make_window(settings=photo_settings)
    wait_full_render(qtbot, w)
    edit = w.sliders.groups["edit"]
    assert edit.body.isEnabled() and not edit.hint_row.isVisibleTo(edit)
    assert list(w.sliders.boundary_sliders) == ["smile_w_boundary"]
    # show the StyleGAN output, as a user would with the combo box
    combo = w.render_view.output
    combo.setCurrentIndex(combo.findData("photo"))
    first = wait_full_render(qtbot, w)
    assert first.ok and first.output == "photo", first.error
    edits_before = w.client.engine.stage_counts["edit"]
    slider = w.sliders.boundary_sliders["smile_w_boundary"].slider
    slider.setFocus()
    with qtbot.waitSignal(w.renderShown, timeout=RENDER_TIMEOUT_MS):
        for _ in range(3):
            qtbot.keyClick(slider, Qt.Key.Key_PageUp)
    res = wait_full_render(qtbot, w)
    assert w.session.render_settings.edits["smile_w_boundary"] > 0
    assert w.client.engine.stage_counts["edit"] > edits_before
    assert res.ok and not np.array_equal(res.image, first.image)
    # latents of the shown render: official [1, n_latent, 512] .npy and .pt
    assert w.export_latents(tmp_path / "w.npy"), recorder.errors
    lat = np.load(tmp_path / "w.npy")
    assert lat.shape == (1, 6, 512) and lat.dtype == np.float32
    assert w.export_latents(tmp_path / "w.pt")
    import torch

    np.testing.assert_array_equal(torch.load(tmp_path / "w.pt", weights_only=True).numpy(), lat)
    # the project keeps the latent, the output choice and the slider values
    assert w.save_project(tmp_path / "photo.msproj")
    from maskstudio.session.project import load_project

    proj = load_project(tmp_path / "photo.msproj")
    np.testing.assert_array_equal(proj.latents["w_plus"], w.last_latent)
    assert proj.render_settings.output == "photo" and proj.render_settings.edits["smile_w_boundary"] > 0
    assert "photo" in proj.models
    # reset puts the slider back and renders again
    with qtbot.waitSignal(w.renderShown, timeout=RENDER_TIMEOUT_MS):
        w.sliders.boundary_reset.click()
    assert w.session.render_settings.edits["smile_w_boundary"] == 0


def test_preferences_and_recent_files_persist(qtbot, make_window, qsettings, tmp_path, recorder):
    w = make_window()
    wait_full_render(qtbot, w)
    w.act_dark.setChecked(True)
    w.canvas.set_brush_size(33)
    w.opacity_slider.setValue(40)
    assert w.save_project(tmp_path / "a.msproj")
    w.close()
    w2 = make_window()
    assert w2.act_dark.isChecked()
    assert w2.canvas.diameter_px == 33 and w2.opacity_slider.value() == 40
    assert w2.recent_files()[0][0] == str((tmp_path / "a.msproj").resolve())
    acts = [a for a in w2.recent_menu.actions() if a.isEnabled()]
    assert acts and "a.msproj" in acts[0].text()
    acts[0].trigger()
    assert w2.project_path == tmp_path / "a.msproj" or w2.project_path.resolve() == (tmp_path / "a.msproj").resolve()
    w2.act_dark.setChecked(False)



def test_wheel_zooms_about_the_cursor(qtbot, make_window):
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    w = make_window()
    c = w.canvas
    c.actual_size()
    pos = QPointF(120, 90)
    under = c.widget_to_image(pos)

    def wheel(dy: int) -> None:
        ev = QWheelEvent(pos, c.mapToGlobal(pos), QPoint(0, 0), QPoint(0, dy), Qt.MouseButton.NoButton,
                         Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(c, ev)

    wheel(120)                                   # one notch in
    assert c.zoom == pytest.approx(1.25)
    assert c.widget_to_image(pos) == pytest.approx(under)   # the pixel under the cursor stays put
    wheel(-240)                                  # two notches out
    assert c.zoom == pytest.approx(1.25 / 1.25 ** 2)
    assert c.widget_to_image(pos) == pytest.approx(under)
    for _ in range(60):                          # clamped, never zero or negative
        wheel(-120)
    assert c.zoom > 0 and c.zoom == pytest.approx(min(c.zoom, 1.0))
    z = c.zoom
    wheel(-120)
    assert c.zoom == z


def test_dark_theme_changes_the_palette_and_back(qtbot, make_window):
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QApplication

    w = make_window()
    wait_full_render(qtbot, w)
    light = QApplication.palette().color(QPalette.ColorRole.Window).lightness()
    w.act_dark.setChecked(True)
    dark_pal = QApplication.palette()
    assert dark_pal.color(QPalette.ColorRole.Window).lightness() < 80 < light
    assert dark_pal.color(QPalette.ColorRole.WindowText).lightness() > 180
    qtbot.wait(50)                               # palette-change events reach the widgets
    shot = w.grab().toImage()
    assert shot.pixelColor(shot.width() - 5, shot.height() // 2).lightness() < 100  # dock background
    w.act_dark.setChecked(False)
    assert QApplication.palette().color(QPalette.ColorRole.Window).lightness() == light

def test_tooltips_name_shortcuts(make_window):
    w = make_window()
    assert "(B)" in w.tool_actions[Tool.BRUSH].toolTip()
    assert "Ctrl+Z" in w.act_undo.toolTip()
    assert "press H" in w.palette_widget.rows[index_of("hair")].toolTip()


def test_models_dialog_opens_from_menu_and_slider_hint(qtbot, make_window):
    w = make_window()
    wait_full_render(qtbot, w)
    w.act_models.trigger()
    dlg = w.models_dialog
    assert dlg.isVisible()
    dlg.reject()
    qtbot.waitUntil(lambda: not dlg.isVisible())
    # the hint button of an unavailable group opens it too
    btn = [b for b in w.sliders.groups["dual"].hint_row.findChildren(type(w.sliders.boundary_reset))][0]
    btn.click()
    assert w.models_dialog.isVisible()
    w.models_dialog.reject()


def wait_tool_render(qtbot, w, name):
    def shown():
        r = w.render_view.last_result
        assert r is not None and isinstance(r.tag, tuple) and r.tag[:2] == ("tool", name) and not w.client.busy
    qtbot.waitUntil(shown, timeout=RENDER_TIMEOUT_MS)
    return w.render_view.last_result


def test_image2stylegan_tools_progress_cancel_and_combine(qtbot, make_window, photo_settings, recorder):
    w = make_window(settings=photo_settings)
    wait_full_render(qtbot, w)
    tools = w.sliders.groups["tools"]
    assert tools.body.isEnabled()
    # 2nd face = the face as opened
    with qtbot.waitSignal(w.toolFinished, timeout=RENDER_TIMEOUT_MS) as sig:
        w.sliders.second_btn.click()
    assert sig.args[0].error is None and w.tools.second_face is not None
    assert w.sliders.second_label.text() == "2nd face: set"
    key(qtbot, w, Qt.Key.Key_H)
    brush(w, 8)
    drag(qtbot, w, [(4, 30), (60, 30)])
    wait_full_render(qtbot, w)
    with qtbot.waitSignal(w.toolFinished, timeout=RENDER_TIMEOUT_MS) as sig:
        w.sliders.combine_buttons[0].click()          # crossover
    out = sig.args[0]
    assert out.error is None and out.name == "crossover", out.error
    assert out.latent.shape == (1, 6, 512)
    np.testing.assert_array_equal(w.last_latent, out.latent)
    # the code is rendered by an ordinary engine request (real id, so the stale-result check applies)
    shown = wait_tool_render(qtbot, w, "crossover")
    assert shown.ok and shown.request_id > 0 and shown.output == "photo" and shown.image.shape == (SIZE, SIZE, 3)
    assert w.render_view.stage.text().startswith("Image2StyleGAN crossover")
    from maskstudio.engine import RenderRequest

    same = w.client.engine.render_sync(RenderRequest(np.array(w.doc.labels), w.exemplar, output="photo",
                                                     latent=out.latent, size_px=SIZE))
    np.testing.assert_array_equal(shown.image, same.image)
    with qtbot.waitSignal(w.toolFinished, timeout=RENDER_TIMEOUT_MS) as sig:
        w.sliders.combine_buttons[1].click()          # expression transfer
    assert sig.args[0].error is None
    with qtbot.waitSignal(w.toolFinished, timeout=RENDER_TIMEOUT_MS) as sig:
        w.sliders.face_morph.set_value(0.5)            # the morph slider runs the morph live
    assert sig.args[0].name == "morph" and sig.args[0].error is None
    wait_tool_render(qtbot, w, "morph")
    # a stroke after a tool: its render replaces the tool's result (newest request wins)
    drag(qtbot, w, [(4, 40), (60, 40)])
    res = wait_full_render(qtbot, w)
    assert res.tag is None and res.output == "face"
    # refine: progress arrives, cancel stops it and keeps the best code so far
    got = []
    w.tools.progress.connect(lambda pct, text: got.append(text))
    with qtbot.waitSignal(w.toolFinished, timeout=RENDER_TIMEOUT_MS) as sig:
        w.tools.refine(np.array(w.doc.labels), w.exemplar, steps=100_000, size_px=SIZE)
        w.sliders.set_tool_running(True)
        qtbot.waitUntil(lambda: any(t.startswith("step") for t in got), timeout=RENDER_TIMEOUT_MS)
        assert w.sliders.cancel_btn.isEnabled()
        w.sliders.cancel_btn.click()
    out = sig.args[0]
    assert out.cancelled and out.error is None and out.latent.shape == (1, 6, 512)
    assert not w.sliders.cancel_btn.isEnabled()
    assert not recorder.errors


def test_ab_compare_renders_the_unedited_mask(qtbot, make_window):
    w = make_window()
    wait_full_render(qtbot, w)
    key(qtbot, w, Qt.Key.Key_H)
    brush(w, 6)
    drag(qtbot, w, [(4, 60), (60, 60)])
    wait_full_render(qtbot, w)
    key(qtbot, w, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    assert w.render_view.compare.isChecked() and w.render_view.pane.compare
    qtbot.waitUntil(lambda: w.render_view.pane.image_a is not None and not w.client.busy, timeout=RENDER_TIMEOUT_MS)
    from maskstudio.engine import RenderRequest
    from maskstudio.ui.canvas import numpy_to_qimage

    ref = w.client.engine.render_sync(RenderRequest(w.doc.original, w.exemplar, size_px=SIZE))
    assert w.render_view.pane.image_a == numpy_to_qimage(ref.image)
    assert w.render_view.pane.image_b != w.render_view.pane.image_a


def test_space_drag_pans_instead_of_painting(qtbot, make_window):
    w = make_window()
    wait_full_render(qtbot, w)
    before = np.array(w.doc.labels)
    p0 = w.canvas.image_to_widget(0, 0)
    w.canvas.setFocus()
    qtbot.keyPress(w.canvas, Qt.Key.Key_Space)
    drag(qtbot, w, [(10, 10), (20, 15)])
    qtbot.keyRelease(w.canvas, Qt.Key.Key_Space)
    p1 = w.canvas.image_to_widget(0, 0)
    assert p1.x() > p0.x() and p1.y() > p0.y()
    np.testing.assert_array_equal(w.doc.labels, before)


def test_gui_command_screenshot_exits_zero(tmp_path, qapp, recorder):
    from maskstudio.cli.main import main

    out = tmp_path / "cli-shot.png"
    assert main(["gui", "--screenshot", str(out)]) == 0
    assert out.is_file() and Image.open(out).size[0] > 800


def test_erasers_and_hiding_a_class(qtbot, make_window):
    w = make_window()
    wait_full_render(qtbot, w)
    original = grid(w)
    key(qtbot, w, Qt.Key.Key_E)
    assert w.canvas.tool == Tool.ERASE
    brush(w, 4)
    drag(qtbot, w, [(20, 40), (44, 40)])
    assert (grid(w)[40, 22:43] == 0).all()                 # erased to background
    key(qtbot, w, Qt.Key.Key_E, Qt.KeyboardModifier.ShiftModifier)
    assert w.canvas.tool == Tool.RESTORE
    brush(w, 8)
    drag(qtbot, w, [(18, 40), (46, 40)])
    np.testing.assert_array_equal(grid(w), original)        # erased back to the mask as opened
    skin = index_of("skin")
    qtbot.mouseClick(w.palette_widget.rows[skin].eye, Qt.MouseButton.LeftButton)
    assert skin in w.canvas.hidden
    s = scale(w)
    assert original[50, 20] == skin and original[50, 2] == 0
    assert w.canvas._rgba[50 * s + s // 2, 20 * s + s // 2, 3] == 0    # skin transparent on the canvas
    assert w.canvas._rgba[50 * s + s // 2, 2 * s + s // 2, 3] == 255    # other classes still drawn
    np.testing.assert_array_equal(grid(w), original)        # hiding never edits the mask


def test_gui_command_opens_a_project_and_refuses_a_missing_one(qtbot, make_window, settings, tmp_path, recorder, capsys):
    from maskstudio.cli.main import main
    from maskstudio.ui.app import run_gui

    w = make_window()
    wait_full_render(qtbot, w)
    assert w.save_project(tmp_path / "p.msproj")
    out = tmp_path / "p.png"
    assert run_gui(settings, project=str(tmp_path / "p.msproj"), screenshot=str(out)) == 0
    assert out.is_file()
    assert main(["gui", "--project", str(tmp_path / "nope.msproj"), "--screenshot", str(out)]) == 2
    err = capsys.readouterr().err
    assert "nope.msproj" in err and "Traceback" not in err
    from maskstudio.errors import MaskStudioError

    with pytest.raises(MaskStudioError, match=r"shot\.unknownformat: could not save"):
        run_gui(settings, screenshot=str(tmp_path / "shot.unknownformat"))



def test_without_any_dmn_the_window_explains_and_keeps_working(qtbot, make_window, tiny_install, tmp_path):
    from maskstudio.settings import Settings

    empty = tmp_path / "no-checkpoints"
    empty.mkdir()
    s = Settings(device="cpu", models_dir=tmp_path / "none", shipped_checkpoints=empty,
                 resources=tiny_install["resources"])
    w = make_window(settings=s)
    res = wait_full_render(qtbot, w)
    assert not res.ok and "DMN" in res.error
    assert "Models…" in w.render_view.pane.message and w.render_view.stage.text()
    key(qtbot, w, Qt.Key.Key_H)
    drag(qtbot, w, [(4, 60), (30, 60)])
    assert grid(w)[60, 10] == index_of("hair")        # painting still works


def test_tablet_pressure_scales_the_brush(qtbot, make_window):
    from PySide6.QtCore import QEvent, QPointF
    from PySide6.QtGui import QPointingDevice, QTabletEvent
    from PySide6.QtWidgets import QApplication

    w = make_window()
    wait_full_render(qtbot, w)
    key(qtbot, w, Qt.Key.Key_H)
    brush(w, 10)
    pos = QPointF(at(w, 10, 60))
    ev = QTabletEvent(QEvent.Type.TabletPress, QPointingDevice.primaryPointingDevice(), pos, pos, 0.3,
                      0.0, 0.0, 0.0, 0.0, 0.0, Qt.KeyboardModifier.NoModifier, Qt.MouseButton.LeftButton,
                      Qt.MouseButton.LeftButton)
    QApplication.sendEvent(w.canvas, ev)
    assert w.canvas._pressure == pytest.approx(0.3)
    before = grid(w)
    drag(qtbot, w, [(10, 60), (11, 60)])
    changed = (grid(w) != before).sum()
    assert 0 < changed < 30          # a 3-cell dab, not the 10-cell brush (about 80 cells)
    assert w.canvas._pressure is None  # the next mouse stroke paints at full size again


def test_timer_autosave_writes_in_the_background_and_close_waits_for_it(qtbot, make_window, tmp_path):
    import threading

    from maskstudio.session.project import load_project

    w = make_window()
    wait_full_render(qtbot, w)
    key(qtbot, w, Qt.Key.Key_H)
    drag(qtbot, w, [(4, 60), (30, 60)])
    writers = []
    store_save = w.autosave.save

    def save(project):                       # the real save, noting which thread ran it
        writers.append(threading.current_thread())
        return store_save(project)

    w.autosave.save = save
    w._autosave_timer.timeout.emit()         # what the minute timer does
    assert not w.autosave_now(background=True)    # one write at a time: a second tick is skipped
    qtbot.waitUntil(lambda: w.autosave.path.is_file() and not w._autosave_jobs.busy, timeout=RENDER_TIMEOUT_MS)
    assert writers and writers[0] is not threading.main_thread()
    np.testing.assert_array_equal(load_project(w.autosave.path).labels, w.doc.labels)
    assert not w.autosave_now()              # nothing changed since
    drag(qtbot, w, [(4, 50), (30, 50)])
    w._autosave_timer.timeout.emit()
    w.session.mark_clean()
    w.close()                                # waits for the write, then deletes the autosave
    assert not w.autosave.path.exists() and list((tmp_path / "state").glob("autosave-*")) == []
