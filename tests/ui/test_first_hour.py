"""A designer's first hour in the main window: Add… switches the render, the header is readable,
Export latents follows availability, export dialogs suggest a folder and a name, opening a photo
leaves nothing unsaved, the gallery hands the keyboard back to the canvas, the palette banner
follows the tool, and the selection / swap tools have their keys."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QPoint, Qt

from ui_helpers import RENDER_TIMEOUT_MS, SIZE, face_like_mask, wait_full_render





def write_exemplar(folder: Path, name: str, tint: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    img = np.full((SIZE, SIZE, 3), 60, np.uint8)
    img[..., tint] = 230
    p = folder / f"{name}.png"
    Image.fromarray(img).save(p)
    Image.fromarray(face_like_mask()).save(folder / f"{name}.mask.png")
    return p


def test_add_exemplar_switches_the_render_to_it(qtbot, make_window, tmp_path):
    w = make_window()
    wait_full_render(qtbot, w)
    assert w.exemplar.name == "alice"
    p = write_exemplar(tmp_path / "mine", "carol", 2)
    with qtbot.waitSignal(w.renderShown, timeout=RENDER_TIMEOUT_MS):
        w.add_exemplars([p])
    res = wait_full_render(qtbot, w)
    assert w.exemplar.name == "carol" and w.exemplar_path == p
    assert w.gallery.entries[w.gallery.list.currentRow()].image_path == p   # selected = rendered
    assert res.ok and w.render_view.last_full is res


def test_render_header_is_not_clipped_at_the_default_window_size(qtbot, make_window):
    w = make_window()
    w.resize(1440, 860)            # MainWindow's default size
    wait_full_render(qtbot, w)
    qtbot.wait(50)
    rv = w.render_view
    rv.stage.setText("DMN face · preview 512px · 12345 ms · cuda:0")   # a long stage line
    qtbot.wait(20)
    assert rv.stage.fontMetrics().horizontalAdvance(rv.stage.text()) <= rv.stage.contentsRect().width()
    stage = rv.stage.geometry().translated(rv.stage.parentWidget().mapTo(rv, rv.stage.pos()) - rv.stage.pos())
    button = rv.compare.geometry().translated(rv.compare.parentWidget().mapTo(rv, rv.compare.pos()) - rv.compare.pos())
    assert not stage.intersects(button)


def test_export_latents_follows_availability(qtbot, make_window, photo_settings, tmp_path, recorder):
    w = make_window()
    wait_full_render(qtbot, w)
    assert w.last_latent is None and not w.act_export_latent.isEnabled()
    w2 = make_window(settings=photo_settings)
    wait_full_render(qtbot, w2)
    combo = w2.render_view.output
    combo.setCurrentIndex(combo.findData("photo"))
    qtbot.waitUntil(lambda: w2.last_latent is not None, timeout=RENDER_TIMEOUT_MS)
    assert w2.act_export_latent.isEnabled()
    assert not recorder.errors


def test_export_dialogs_suggest_a_folder_and_a_name(qtbot, make_window, tmp_path, recorder):
    w = make_window()
    wait_full_render(qtbot, w)
    w.export_mask(kind="label")               # a new mask: untitled, in the last folder / home
    first = recorder.file_dialogs[-1]
    assert Path(first["directory"]).name == "untitled_mask.png"
    folder = tmp_path / "work"
    folder.mkdir()
    mask = folder / "anna.png"
    Image.fromarray(face_like_mask()).save(mask)
    assert w.open_mask(mask)
    w.export_render()
    assert recorder.file_dialogs[-1]["directory"] == str(folder / "anna_render.png")
    w.export_mask(kind="color")
    assert recorder.file_dialogs[-1]["directory"] == str(folder / "anna_mask_color.png")
    out = tmp_path / "exports"
    out.mkdir()
    assert w.export_render(out / "x.png")      # the last export's folder wins next time
    w.export_mask(kind="label")
    assert recorder.file_dialogs[-1]["directory"] == str(out / "anna_mask.png")
    assert not recorder.errors


def test_photo_that_is_not_an_image_names_the_file_without_an_exception_name(qtbot, make_window, tmp_path, recorder):
    w = make_window()
    wait_full_render(qtbot, w)
    bad = tmp_path / "holiday.jpg"
    bad.write_text("not a photo")
    w.open_photo(bad)
    qtbot.waitUntil(lambda: bool(recorder.errors), timeout=RENDER_TIMEOUT_MS)
    (title, msg), = recorder.errors
    assert str(bad) in msg and "not an image file" in msg and "Error" not in msg


def test_after_a_gallery_click_space_drag_pans(qtbot, make_window):
    w = make_window()
    wait_full_render(qtbot, w)
    lst = w.gallery.list
    lst.setFocus()
    rect = lst.visualItemRect(lst.item(1))
    with qtbot.waitSignal(w.renderShown, timeout=RENDER_TIMEOUT_MS):
        qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert w.exemplar.name == "bob"
    assert w.focusWidget() is w.canvas
    before = np.array(w.doc.labels)
    c = w.canvas
    p0 = c.image_to_widget(0, 0)
    qtbot.keyPress(w.focusWidget(), Qt.Key.Key_Space)
    a, b = c.image_to_widget(100, 100), c.image_to_widget(200, 150)
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=QPoint(round(a.x()), round(a.y())))
    qtbot.mouseMove(c, QPoint(round(b.x()), round(b.y())))
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=QPoint(round(b.x()), round(b.y())))
    qtbot.keyRelease(w.focusWidget(), Qt.Key.Key_Space)
    assert c.image_to_widget(0, 0).x() > p0.x()
    np.testing.assert_array_equal(w.doc.labels, before)


def test_tool_keys_banner_swap_and_selection_move(qtbot, make_window):
    from maskstudio.ui.canvas import Tool

    w = make_window()
    wait_full_render(qtbot, w)
    w.activateWindow()
    qtbot.keyClick(w.canvas, Qt.Key.Key_E)
    assert w.canvas.tool == Tool.ERASE and "Painting" not in w.palette_widget.active_label.text()
    qtbot.keyClick(w.canvas, Qt.Key.Key_B)
    assert w.palette_widget.active_label.text().startswith("Painting:")
    qtbot.keyClick(w.canvas, Qt.Key.Key_H)
    qtbot.keyClick(w.canvas, Qt.Key.Key_N)
    qtbot.keyClick(w.canvas, Qt.Key.Key_X)
    assert w.canvas.active_class == 13 and w.palette_widget.active == 13
    qtbot.keyClick(w.canvas, Qt.Key.Key_S)
    assert w.canvas.tool == Tool.SELECT_RECT and "Selecting" in w.palette_widget.active_label.text()
    qtbot.keyClick(w.canvas, Qt.Key.Key_S, Qt.KeyboardModifier.ShiftModifier)
    assert w.canvas.tool == Tool.SELECT_ELLIPSE
    # move the (image-left) eye of the template 16 px down: one history row
    start = np.array(w.doc.labels)
    c = w.canvas

    def pt(x, y):
        q = c.image_to_widget(x, y)
        return QPoint(round(q.x()), round(q.y()))
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=pt(150, 200))
    qtbot.mouseMove(c, pt(200, 225))
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=pt(240, 260))
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, pos=pt(195, 230))
    qtbot.mouseMove(c, pt(195, 240))
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, pos=pt(195, 246))
    assert w.doc.history[-1] == "Move selection"
    eye = 4
    ys0, _ = np.nonzero(start == eye)
    ys1, _ = np.nonzero(np.asarray(w.doc.labels) == eye)
    assert len(ys1) == len(ys0) and abs(ys1.mean() - ys0.mean() - 16) < 0.5   # moved 16 px down, whole
    w.undo()
    np.testing.assert_array_equal(w.doc.labels, start)
