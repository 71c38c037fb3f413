"""Canvas tools a Krita/GIMP user expects: Ctrl/Alt+click picks the class, X swaps the last two
classes, rectangle / ellipse selection moves or copies a part (one undo step), the brush outline
shows the size, the zoom text follows the wheel, hovering the canvas gives it the keyboard, and
the palette says which side "left" is and what the eraser does."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QEnterEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QHBoxLayout, QListWidget, QWidget

from maskstudio.mask import MaskDocument
from maskstudio.ui.canvas import MaskCanvas, Tool

SKIN, NOSE, L_EYE, HAIR = 1, 2, 4, 13


def face() -> np.ndarray:
    m = np.zeros((64, 64), np.uint8)
    m[8:56, 8:56] = SKIN
    m[20:24, 40:46] = L_EYE
    m[30:40, 29:35] = NOSE
    m[:8, :] = HAIR
    return m


@pytest.fixture
def canvas(qtbot):
    c = MaskCanvas()
    qtbot.addWidget(c)
    c.resize(400, 400)
    c.set_document(MaskDocument(face()))
    c.show()
    qtbot.waitExposed(c)
    c.fit()
    return c


def at(c, x, y) -> QPoint:
    p = c.image_to_widget(x, y)
    return QPoint(round(p.x()), round(p.y()))


def drag(qtbot, c, pts, mod=Qt.KeyboardModifier.NoModifier):
    qtbot.mousePress(c, Qt.MouseButton.LeftButton, mod, at(c, *pts[0]))
    for pt in pts[1:]:
        qtbot.mouseMove(c, at(c, *pt))
    qtbot.mouseRelease(c, Qt.MouseButton.LeftButton, mod, at(c, *pts[-1]))


@pytest.mark.parametrize("mod", [Qt.KeyboardModifier.ControlModifier, Qt.KeyboardModifier.AltModifier])
def test_ctrl_or_alt_click_picks_the_class_while_painting(qtbot, canvas, mod):
    canvas.classPicked.connect(lambda i: setattr(canvas, "active_class", i))
    canvas.set_tool(Tool.BRUSH)
    canvas.active_class = HAIR
    before = np.array(canvas.doc.labels)
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, mod, at(canvas, 32.5, 35.5))
    assert canvas.active_class == NOSE
    np.testing.assert_array_equal(canvas.doc.labels, before)      # picking paints nothing
    assert canvas.doc.history == []
    qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=at(canvas, 32.5, 35.5))   # a plain click paints
    assert canvas.doc.history == ["Brush (Nose)"]


def test_x_swaps_between_the_last_two_classes(qtbot, canvas):
    got = []
    canvas.classPicked.connect(lambda i: (got.append(i), setattr(canvas, "active_class", i)))
    canvas.active_class = HAIR
    canvas.active_class = NOSE
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_X)
    assert canvas.active_class == HAIR and got == [HAIR]
    qtbot.keyClick(canvas, Qt.Key.Key_X)
    assert canvas.active_class == NOSE and got == [HAIR, NOSE]


@pytest.mark.parametrize("tool,shape", [(Tool.SELECT_RECT, "rect"), (Tool.SELECT_ELLIPSE, "ellipse")])
def test_select_and_move_an_eye_is_one_undo_step(qtbot, canvas, tool, shape):
    start = np.array(canvas.doc.labels)
    canvas.set_tool(tool)
    drag(qtbot, canvas, [(37.2, 16.2), (43, 22), (49.2, 28.2)])          # select around the eye
    assert canvas.selection is not None and canvas.selection[0] == shape
    assert canvas.doc.history == []
    drag(qtbot, canvas, [(43, 22), (45, 24), (46, 27)])                  # drag it 3 right, 5 down
    expect = MaskDocument(start)
    expect.move_selection(shape, (37.2, 16.2, 49.2, 28.2), 3, 5)
    np.testing.assert_array_equal(canvas.doc.labels, expect.labels)
    assert canvas.doc.history == ["Move selection"]
    assert (canvas.doc.labels[25:29, 43:49] == L_EYE).all() and (canvas.doc.labels[20:24, 40:43] == SKIN).all()
    canvas.doc.undo()
    np.testing.assert_array_equal(canvas.doc.labels, start)


def test_ctrl_drag_copies_the_selected_part(qtbot, canvas):
    canvas.set_tool(Tool.SELECT_RECT)
    drag(qtbot, canvas, [(37.2, 16.2), (49.2, 28.2)])
    drag(qtbot, canvas, [(43, 22), (43, 30), (43, 34)], Qt.KeyboardModifier.ControlModifier)
    assert (canvas.doc.labels[20:24, 40:46] == L_EYE).all() and (canvas.doc.labels[32:36, 40:46] == L_EYE).all()
    assert canvas.doc.history == ["Copy selection"]
    qtbot.keyClick(canvas, Qt.Key.Key_Escape)
    assert canvas.selection is None


def test_brush_outline_shows_the_size_after_a_change_even_off_canvas(qtbot, canvas):
    canvas.set_tool(Tool.BRUSH)
    canvas._mouse = None
    assert canvas.brush_outline() is None
    canvas.set_brush_size(20)
    centre, r = canvas.brush_outline()
    assert r == pytest.approx(20 * canvas.zoom / 2)
    shown = canvas.grab().toImage()
    qtbot.wait(int(1.1 * 1000))
    assert canvas.brush_outline() is None          # the preview ends; over the canvas it follows the cursor
    gone = canvas.grab().toImage()
    cy = round(centre.y())
    on_ring = [(round(centre.x() + r) + d, cy) for d in (-1, 0, 1)]
    assert any(shown.pixel(x, y) != gone.pixel(x, y) for x, y in on_ring)     # the outline is drawn there
    assert shown.pixel(round(centre.x()), cy - round(r / 2)) == gone.pixel(round(centre.x()), cy - round(r / 2))
    qtbot.mouseMove(canvas, at(canvas, 20, 20))
    assert canvas.brush_outline() is not None


def test_wheel_zoom_updates_the_zoom_text_at_once(qtbot, canvas):
    texts = []
    canvas.cursorInfo.connect(texts.append)
    pos = QPointF(at(canvas, 20, 20))
    qtbot.mouseMove(canvas, at(canvas, 20, 20))
    z0 = canvas.zoom
    ev = QWheelEvent(pos, QPointF(canvas.mapToGlobal(pos)), QPoint(0, 0), QPoint(0, 120),
                     Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas, ev)
    assert canvas.zoom > z0
    assert texts and texts[-1].endswith(f"zoom {canvas.zoom * 100:.0f}%")


def test_hovering_the_canvas_takes_focus_back_from_a_list_so_space_pans(qtbot):
    host = QWidget()
    qtbot.addWidget(host)
    lay = QHBoxLayout(host)
    lst = QListWidget()
    lst.addItems(["a", "b"])
    c = MaskCanvas()
    c.set_document(MaskDocument(face()))
    lay.addWidget(lst)
    lay.addWidget(c)
    host.resize(700, 400)
    host.show()
    qtbot.waitExposed(host)
    host.activateWindow()
    lst.setFocus()
    qtbot.mouseClick(lst.viewport(), Qt.MouseButton.LeftButton, pos=lst.visualItemRect(lst.item(0)).center())
    assert host.focusWidget() is lst            # the list keeps the keyboard after a click
    QApplication.sendEvent(c, QEnterEvent(QPointF(50, 50), QPointF(50, 50), QPointF(c.mapToGlobal(QPoint(50, 50)))))
    assert host.focusWidget() is c
    before = np.array(c.doc.labels)
    p0 = c.image_to_widget(0, 0)
    qtbot.keyPress(host.focusWidget(), Qt.Key.Key_Space)
    drag(qtbot, c, [(20, 20), (30, 25)])
    qtbot.keyRelease(host.focusWidget(), Qt.Key.Key_Space)
    assert c.image_to_widget(0, 0).x() > p0.x()
    np.testing.assert_array_equal(c.doc.labels, before)


def test_palette_banner_follows_the_tool_and_says_which_side(qtbot):
    from maskstudio.ui.palette_dock import PaletteWidget

    pal = PaletteWidget()
    qtbot.addWidget(pal)
    pal.set_active(SKIN)
    assert pal.active_label.text().startswith("Painting: <b>Skin")
    pal.set_tool(Tool.ERASE)
    assert "Painting" not in pal.active_label.text() and "Background" in pal.active_label.text()
    pal.set_tool(Tool.RESTORE)
    assert "as opened" in pal.active_label.text()
    pal.set_tool(Tool.BRUSH)
    pal.set_active(L_EYE)
    assert "subject's left, image right" in pal.active_label.text()
    row = pal.rows[L_EYE]
    assert "subject's own left: on the image's right" in row.toolTip()
    assert "subject's own right: on the image's left" in pal.rows[5].toolTip()
    assert "subject" not in pal.rows[SKIN].toolTip()

