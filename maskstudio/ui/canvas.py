"""The mask canvas: the label map drawn over the exemplar / source photo, painted with tools.

The canvas turns Qt events into image-pixel coordinates and calls the :class:`MaskDocument`
(brush/erase/restore strokes, flood fill, polygon fill, pick, selection move/copy). It holds no
mask logic itself; it only redraws the region each document change reports.

Krita/GIMP habits: Ctrl+click (or Alt+click) with a painting tool picks the class under the
cursor; ``X`` swaps to the previously used class; the selection tools drag a rectangle /
ellipse, then a drag inside it moves the part (Ctrl/Alt+drag copies), one undo step per drop;
the brush outline shows the size (also for a moment after the size changes).
"""
from __future__ import annotations

import enum
import time

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPainterPath, QPen, QWheelEvent
from PySide6.QtWidgets import (
    QAbstractSpinBox, QApplication, QComboBox, QLineEdit, QPlainTextEdit, QTextEdit, QWidget,
)

from maskstudio.labels import NUM_CLASSES, PALETTE


class Tool(str, enum.Enum):
    BRUSH = "brush"
    ERASE = "erase"          # to background
    RESTORE = "restore"      # to the original mask
    FILL = "fill"
    POLYGON = "polygon"
    PICK = "pick"
    SELECT_RECT = "select_rect"
    SELECT_ELLIPSE = "select_ellipse"


SELECT_TOOLS = {Tool.SELECT_RECT: "rect", Tool.SELECT_ELLIPSE: "ellipse"}
#: tools with which Ctrl+click / Alt+click picks the class under the cursor
PICKING_TOOLS = {Tool.BRUSH, Tool.ERASE, Tool.RESTORE, Tool.FILL, Tool.POLYGON}
_PICK_MODIFIERS = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
SIZE_PREVIEW_S = 1.0   # the brush outline stays this long after a size change
STROKE_TOOLS = {Tool.BRUSH: "brush", Tool.ERASE: "erase", Tool.RESTORE: "restore"}
MIN_ZOOM, MAX_ZOOM = 0.05, 32.0
MIN_BRUSH_PX, MAX_BRUSH_PX = 1.0, 256.0  # maskstudio.mask.MIN/MAX_DIAMETER_PX


def numpy_to_qimage(arr: np.ndarray) -> QImage:
    """uint8 HxWx3 / HxWx4 -> QImage holding its own copy of the pixels."""
    arr = np.ascontiguousarray(arr)
    h, w = arr.shape[:2]
    fmt = QImage.Format.Format_RGB888 if arr.shape[2] == 3 else QImage.Format.Format_RGBA8888
    return QImage(arr.data, w, h, arr.strides[0], fmt).copy()


class MaskCanvas(QWidget):
    """Shows ``doc.labels`` over a background photo; paints with the current tool."""

    classPicked = Signal(int)
    strokeActive = Signal(bool)         # True while a drag is in progress (preview renders)
    cursorInfo = Signal(str)            # status-bar text: position and class under the cursor
    zoomChanged = Signal(float)
    brushSizeChanged = Signal(float)
    selectionChanged = Signal(object)   # (shape, (x0, y0, x1, y1)) or None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(200, 200)
        self.setAcceptDrops(False)
        self.doc = None
        self.tool = Tool.BRUSH
        self._active_class = 1
        self.previous_class: int | None = None   # what X swaps back to
        self.diameter_px = 16.0
        self.opacity = 0.6
        self.hidden: set[int] = set()
        self._background: QImage | None = None
        self._rgba: np.ndarray | None = None
        self._overlay: QImage | None = None
        self._zoom = 1.0
        self._offset = QPointF(0, 0)
        self._fit_pending = True   # auto-fit until the user zooms or pans
        self._stroke = None
        self._panning = False
        self._space = False
        self._pan_last = QPointF()
        self._mouse: QPointF | None = None
        self._polygon: list[tuple[float, float]] = []
        self._pressure: float | None = None   # pen pressure of the current tablet press (None: mouse)
        self.use_pressure = True
        self.selection: tuple[str, tuple[float, float, float, float]] | None = None
        self._sel_anchor: tuple[float, float] | None = None   # while dragging a new selection
        self._move: dict | None = None                         # while dragging the selected part
        self._size_preview_until = 0.0
        self._info_shown = False   # cursorInfo sent at least once (the status bar shows ours)
        self._size_timer = QTimer(self)
        self._size_timer.setSingleShot(True)
        self._size_timer.timeout.connect(self.update)
        self._lut = np.zeros((256, 4), np.uint8)
        self._rebuild_lut()

    # ------------------------------------------------------------------ classes
    @property
    def active_class(self) -> int:
        return self._active_class

    @active_class.setter
    def active_class(self, index: int) -> None:
        index = int(index)
        if index != self._active_class:
            self.previous_class = self._active_class
        self._active_class = index
        self.update()

    def swap_class(self) -> int | None:
        """``X``: ask for the previously used class (``classPicked``); returns it or None."""
        if self.previous_class is None:
            return None
        prev = self.previous_class
        self.classPicked.emit(prev)
        if self._active_class != prev:   # nobody listens: switch here
            self.active_class = prev
        return prev

    # ------------------------------------------------------------------ document
    def set_document(self, doc) -> None:
        if self.doc is not None:
            self.doc.remove_listener(self._on_doc_changed)
        self._stroke = None
        self._polygon = []
        self._move = None
        self._sel_anchor = None
        if self.selection is not None:
            self.selection = None
            self.selectionChanged.emit(None)
        self.doc = doc
        if doc is not None:
            doc.add_listener(self._on_doc_changed)
            self._rgba = np.ascontiguousarray(self._lut[doc.labels])
        self._refresh_overlay()
        self._fit_pending = True
        if self.isVisible():
            self.fit()
        self.update()

    def set_background(self, image: np.ndarray | None) -> None:
        """The exemplar / source photo under the mask (uint8 HxWx3) or None."""
        self._background = None if image is None else numpy_to_qimage(image)
        self.update()

    def set_opacity(self, value: float) -> None:
        self.opacity = float(min(1.0, max(0.0, value)))
        self.update()

    def set_class_visible(self, cls: int, visible: bool) -> None:
        (self.hidden.discard if visible else self.hidden.add)(cls)
        self._rebuild_lut()
        if self.doc is not None:
            self._rgba = np.ascontiguousarray(self._lut[self.doc.labels])
            self._refresh_overlay()
        self.update()

    def _rebuild_lut(self) -> None:
        self._lut[:NUM_CLASSES, :3] = PALETTE
        self._lut[:NUM_CLASSES, 3] = 255
        for c in self.hidden:
            self._lut[c, 3] = 0

    def _on_doc_changed(self, bbox) -> None:
        if self.doc is None:
            return
        labels = self.doc.labels
        if self._rgba is None or self._rgba.shape[:2] != labels.shape or bbox is None:
            self._rgba = np.ascontiguousarray(self._lut[labels])
        else:
            y0, x0, y1, x1 = (int(v) for v in tuple(bbox))
            self._rgba[y0:y1, x0:x1] = self._lut[labels[y0:y1, x0:x1]]
        self._refresh_overlay()
        self.update()

    def _refresh_overlay(self) -> None:
        if self._rgba is None or self.doc is None:
            self._overlay = None
            return
        h, w = self._rgba.shape[:2]
        # The QImage borrows the numpy buffer (kept alive by self._rgba; never reallocated in place).
        self._overlay = QImage(self._rgba.data, w, h, w * 4, QImage.Format.Format_RGBA8888)

    # ------------------------------------------------------------------ view transform
    @property
    def zoom(self) -> float:
        return self._zoom

    def image_size(self) -> tuple[int, int]:
        return tuple(self.doc.shape) if self.doc is not None else (512, 512)

    def widget_to_image(self, p: QPointF) -> tuple[float, float]:
        return ((p.x() - self._offset.x()) / self._zoom, (p.y() - self._offset.y()) / self._zoom)

    def image_to_widget(self, x: float, y: float) -> QPointF:
        return QPointF(x * self._zoom + self._offset.x(), y * self._zoom + self._offset.y())

    def fit(self) -> None:
        h, w = self.image_size()
        margin = 8
        z = min((self.width() - 2 * margin) / w, (self.height() - 2 * margin) / h)
        self._set_zoom(max(MIN_ZOOM, z), center=True)
        self._fit_pending = True

    def actual_size(self) -> None:
        self._set_zoom(1.0, center=True)

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        ix, iy = self.widget_to_image(anchor)
        z = min(MAX_ZOOM, max(MIN_ZOOM, self._zoom * factor))
        self._zoom = z
        self._offset = QPointF(anchor.x() - ix * z, anchor.y() - iy * z)
        self._fit_pending = False
        self.zoomChanged.emit(z)
        self._emit_cursor_info()
        self.update()

    def _set_zoom(self, z: float, center: bool) -> None:
        self._zoom = z
        h, w = self.image_size()
        if center:
            self._offset = QPointF((self.width() - w * z) / 2, (self.height() - h * z) / 2)
        self._fit_pending = False
        self.zoomChanged.emit(z)
        if self._info_shown:    # keep the status text current (but leave the start-up hint alone)
            self._emit_cursor_info()
        self.update()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self._fit_pending:
            self.fit()

    def set_brush_size(self, diameter_px: float) -> None:
        d = float(min(MAX_BRUSH_PX, max(MIN_BRUSH_PX, diameter_px)))
        changed = d != self.diameter_px
        self.diameter_px = d
        self.brushSizeChanged.emit(self.diameter_px)
        if changed and self.isVisible():   # show the new size even when the cursor is elsewhere
            self._size_preview_until = time.monotonic() + SIZE_PREVIEW_S
            self._size_timer.start(int(SIZE_PREVIEW_S * 1000) + 20)
        self.update()

    def set_tool(self, tool: Tool) -> None:
        self.tool = Tool(tool)
        self._polygon = []
        if self.tool not in SELECT_TOOLS:
            self.clear_selection()
        self._update_cursor()
        self.update()

    def clear_selection(self) -> None:
        self._move = None
        self._sel_anchor = None
        if self.selection is not None:
            self.selection = None
            self.selectionChanged.emit(None)
            self.update()

    def set_selection(self, shape: str, corners) -> None:
        x0, y0, x1, y1 = (float(v) for v in corners)
        self.selection = (shape, (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        self.selectionChanged.emit(self.selection)
        self.update()

    def _in_selection(self, x: float, y: float) -> bool:
        if self.selection is None:
            return False
        shape, (x0, y0, x1, y1) = self.selection
        if not (x0 <= x < x1 and y0 <= y < y1):
            return False
        if shape == "rect":
            return True
        rx, ry = max((x1 - x0) / 2, 1e-6), max((y1 - y0) / 2, 1e-6)
        return ((x - (x0 + x1) / 2) / rx) ** 2 + ((y - (y0 + y1) / 2) / ry) ** 2 <= 1.0

    def brush_outline(self) -> tuple[QPointF, float] | None:
        """Where the brush outline is drawn: (centre in widget pixels, radius) or None.

        Over the canvas it follows the cursor; for a moment after a size change it shows even
        when the cursor is elsewhere (at the last cursor position, else the canvas centre)."""
        if self.tool not in STROKE_TOOLS or self._panning or self._space or self.doc is None:
            return None
        previewing = time.monotonic() < self._size_preview_until
        if self._mouse is None and not previewing:
            return None
        centre = self._mouse if self._mouse is not None else QPointF(self.width() / 2, self.height() / 2)
        return centre, max(1.0, self.diameter_px * self._zoom / 2.0)

    def _emit_cursor_info(self, pos: QPointF | None = None) -> None:
        self._info_shown = True
        pos = pos if pos is not None else self._mouse
        if pos is None or self.doc is None:
            if self.doc is not None:
                self.cursorInfo.emit(f"zoom {self._zoom * 100:.0f}%")
            return
        x, y = self.widget_to_image(pos)
        if self._inside(x, y):
            from maskstudio.labels import DISPLAY_NAMES

            c = int(self.doc.labels[int(y), int(x)])
            self.cursorInfo.emit(f"x {int(x)}  y {int(y)}  ·  {DISPLAY_NAMES[c]} ({c})  ·  zoom {self._zoom * 100:.0f}%")
        else:
            self.cursorInfo.emit(f"zoom {self._zoom * 100:.0f}%")

    def _update_cursor(self) -> None:
        if self._panning or self._space:
            self.setCursor(Qt.CursorShape.ClosedHandCursor if self._panning else Qt.CursorShape.OpenHandCursor)
        elif self.tool in STROKE_TOOLS:
            self.setCursor(Qt.CursorShape.BlankCursor)  # the brush circle is the cursor
        elif self.tool == Tool.PICK:
            self.setCursor(Qt.CursorShape.PointingHandCursor)
        elif self.tool in SELECT_TOOLS and self._move is not None:
            self.setCursor(Qt.CursorShape.SizeAllCursor)
        else:
            self.setCursor(Qt.CursorShape.CrossCursor)

    # ------------------------------------------------------------------ painting
    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().color(self.backgroundRole()).darker(115))
        if self.doc is None:
            p.setPen(self.palette().color(self.foregroundRole()))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No mask open — File ▸ New or Open mask…")
            return
        h, w = self.image_size()
        target = QRectF(self._offset.x(), self._offset.y(), w * self._zoom, h * self._zoom)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        if self._background is not None:
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
            p.drawImage(target, self._background)
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._zoom < 1.0)
            p.setOpacity(self.opacity)
        else:
            p.fillRect(target, QColor(0, 0, 0))
            p.setOpacity(max(self.opacity, 0.85))
        if self._overlay is not None:
            p.drawImage(target, self._overlay)
        p.setOpacity(1.0)
        p.setPen(QPen(QColor(128, 128, 128), 1))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(target)
        if self.doc.mirror:
            ax = self.doc.mirror_axis_x
            ax = (w / 2.0) if ax is None else float(ax)
            x = self.image_to_widget(ax, 0).x()
            p.setPen(QPen(QColor(255, 255, 255, 150), 1, Qt.PenStyle.DashLine))
            p.drawLine(QPointF(x, target.top()), QPointF(x, target.bottom()))
        if self._polygon:
            color = QColor(*[int(c) for c in PALETTE[self.active_class]])
            path = QPainterPath(self.image_to_widget(*self._polygon[0]))
            for pt in self._polygon[1:]:
                path.lineTo(self.image_to_widget(*pt))
            if self._mouse is not None:
                path.lineTo(self._mouse)
            p.setPen(QPen(QColor("white"), 2))
            p.drawPath(path)
            p.setPen(QPen(color, 1, Qt.PenStyle.DashLine))
            p.drawPath(path)
            for pt in self._polygon:
                p.fillRect(QRectF(self.image_to_widget(*pt) - QPointF(3, 3), self.image_to_widget(*pt) + QPointF(3, 3)), color)
        self._paint_selection(p)
        outline = self.brush_outline()
        if outline is not None:
            centre, r = outline
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            p.setPen(QPen(QColor(0, 0, 0, 200), 3))
            p.drawEllipse(centre, r, r)
            edge = QColor(*[int(c) for c in PALETTE[self.active_class]]) if self.tool == Tool.BRUSH else QColor("white")
            p.setPen(QPen(edge, 1.5, Qt.PenStyle.DashLine if self.tool != Tool.BRUSH else Qt.PenStyle.SolidLine))
            p.drawEllipse(centre, r, r)
            if self._mouse is None or time.monotonic() < self._size_preview_until:
                label = f"{self.diameter_px:.0f} px"
                box = QRectF(centre.x() - 40, centre.y() + r + 4, 80, 18)
                p.setPen(QPen(QColor(0, 0, 0, 220), 1))
                p.setBrush(QColor(255, 255, 255, 210))
                p.drawRoundedRect(box, 4, 4)
                p.drawText(box, Qt.AlignmentFlag.AlignCenter, label)
                p.setBrush(Qt.BrushStyle.NoBrush)
            if self.doc.mirror and self._mouse is not None:  # where the mirrored dab lands
                ix, iy = self.widget_to_image(self._mouse)
                ax = self.doc.mirror_axis_x
                ax = (w / 2.0) if ax is None else float(ax)
                p.setPen(QPen(QColor(255, 255, 255, 140), 1, Qt.PenStyle.DotLine))
                p.drawEllipse(self.image_to_widget(2 * ax - ix, iy), r, r)
        p.end()

    def _paint_selection(self, p: QPainter) -> None:
        if self.selection is None and self._move is None:
            return
        if self._move is not None and self._move.get("preview") is not None:
            img, (bx, by) = self._move["preview"]
            dx, dy = self._move["delta"]
            h, w = img.height(), img.width()
            tl = self.image_to_widget(bx + dx, by + dy)
            p.setOpacity(0.85)
            p.drawImage(QRectF(tl.x(), tl.y(), w * self._zoom, h * self._zoom), img)
            p.setOpacity(1.0)
        if self.selection is None:
            return
        shape, (x0, y0, x1, y1) = self.selection
        if self._move is not None:
            dx, dy = self._move["delta"]
            x0, x1, y0, y1 = x0 + dx, x1 + dx, y0 + dy, y1 + dy
        a, b = self.image_to_widget(x0, y0), self.image_to_widget(x1, y1)
        rect = QRectF(a, b)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, shape == "ellipse")
        p.setBrush(Qt.BrushStyle.NoBrush)
        for pen in (QPen(QColor(0, 0, 0), 1.5), QPen(QColor(255, 255, 255), 1.5, Qt.PenStyle.DashLine)):
            p.setPen(pen)
            p.drawEllipse(rect) if shape == "ellipse" else p.drawRect(rect)

    # ------------------------------------------------------------------ input
    def _inside(self, x: float, y: float) -> bool:
        h, w = self.image_size()
        return 0 <= x < w and 0 <= y < h

    def mousePressEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        pos = e.position()
        if e.button() == Qt.MouseButton.MiddleButton or (e.button() == Qt.MouseButton.LeftButton and self._space):
            self._panning = True
            self._pan_last = pos
            self._update_cursor()
            return
        if self.doc is None:
            return
        x, y = self.widget_to_image(pos)
        if e.button() == Qt.MouseButton.RightButton and self.tool == Tool.POLYGON:
            self.close_polygon()
            return
        if e.button() != Qt.MouseButton.LeftButton:
            return
        mods = e.modifiers()
        if self.tool in PICKING_TOOLS and mods & _PICK_MODIFIERS:   # Krita/GIMP: pick the class under the cursor
            if self._inside(x, y):
                self.classPicked.emit(int(self.doc.pick(x, y)))
            return
        if self.tool in SELECT_TOOLS:
            if self.selection is not None and self._in_selection(x, y):
                shape, corners = self.selection
                bbox, lift = self.doc.lifted(shape, corners)
                preview = None
                if bbox is not None:
                    y0, x0, y1, x1 = bbox
                    rgba = self._lut[np.asarray(self.doc.labels[y0:y1, x0:x1])].copy()
                    rgba[~lift, 3] = 0
                    preview = (numpy_to_qimage(rgba), (x0, y0))
                self._move = {"start": (x, y), "delta": (0, 0), "preview": preview,
                              "copy": bool(mods & _PICK_MODIFIERS)}
                self._update_cursor()
            else:
                self.clear_selection()
                self._sel_anchor = (x, y)
            self.update()
            return
        if self.tool in STROKE_TOOLS:
            d = self.diameter_px
            if self.use_pressure and self._pressure is not None:  # tablet: press harder, paint wider
                d = max(MIN_BRUSH_PX, d * min(1.0, max(0.1, self._pressure)))
            self._stroke = self.doc.begin_stroke(
                tool=STROKE_TOOLS[self.tool], diameter_px=d,
                cls=self.active_class if self.tool == Tool.BRUSH else None,  # erasers: background / original
            )
            self._stroke.add_point(x, y)
            self.strokeActive.emit(True)
        elif self.tool == Tool.FILL:
            if self._inside(x, y):
                self.doc.flood_fill(int(x), int(y), self.active_class)
        elif self.tool == Tool.PICK:
            if self._inside(x, y):
                self.classPicked.emit(int(self.doc.pick(int(x), int(y))))
        elif self.tool == Tool.POLYGON:
            self._polygon.append((x, y))
            self.update()

    def mouseMoveEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        pos = e.position()
        self._mouse = pos
        if self._panning:
            d = pos - self._pan_last
            self._pan_last = pos
            self._offset += d
            self._fit_pending = False
            self.update()
            return
        x, y = self.widget_to_image(pos)
        if self._stroke is not None:
            self._stroke.add_point(x, y)
        if self._move is not None:
            sx, sy = self._move["start"]
            self._move["delta"] = (round(x - sx), round(y - sy))
        elif self._sel_anchor is not None:
            ax, ay = self._sel_anchor
            self.selection = (SELECT_TOOLS[self.tool], (min(ax, x), min(ay, y), max(ax, x), max(ay, y)))
        if self.doc is not None and self._inside(x, y):
            self._emit_cursor_info(pos)
        self.update()

    def mouseReleaseEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if self._panning and e.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._panning = False
            self._update_cursor()
            return
        self._pressure = None
        if e.button() == Qt.MouseButton.LeftButton and self._stroke is not None:
            stroke, self._stroke = self._stroke, None
            stroke.end()
            self.strokeActive.emit(False)
        elif e.button() == Qt.MouseButton.LeftButton and self._move is not None:
            move, self._move = self._move, None
            self._update_cursor()
            x, y = self.widget_to_image(e.position())      # the drop point counts, moved to or not
            sx, sy = move["start"]
            dx, dy = round(x - sx), round(y - sy)
            if self.selection is not None and (dx or dy) and self.doc is not None:
                shape, corners = self.selection
                self.doc.move_selection(shape, corners, dx, dy, copy=move["copy"])
                x0, y0, x1, y1 = corners
                self.set_selection(shape, (x0 + dx, y0 + dy, x1 + dx, y1 + dy))   # the part can move again
            self.update()
        elif e.button() == Qt.MouseButton.LeftButton and self._sel_anchor is not None:
            (ax, ay), self._sel_anchor = self._sel_anchor, None
            x, y = self.widget_to_image(e.position())
            self.selection = (SELECT_TOOLS.get(self.tool, "rect"), (min(ax, x), min(ay, y), max(ax, x), max(ay, y)))
            if self.selection is not None:
                x0, y0, x1, y1 = self.selection[1]
                if x1 - x0 < 1 and y1 - y0 < 1:     # a click: no selection
                    self.clear_selection()
                else:
                    self.set_selection(*self.selection)
            self.update()

    def tabletEvent(self, e) -> None:  # noqa: N802
        """Remember the pen pressure, then let Qt deliver the synthesized mouse events."""
        from PySide6.QtCore import QEvent

        if e.type() == QEvent.Type.TabletPress:
            self._pressure = float(e.pressure())
        elif e.type() == QEvent.Type.TabletRelease:
            self._pressure = None
        e.ignore()

    def mouseDoubleClickEvent(self, e: QMouseEvent) -> None:  # noqa: N802
        if self.tool == Tool.POLYGON and e.button() == Qt.MouseButton.LeftButton:
            self.close_polygon()

    def close_polygon(self) -> None:
        pts, self._polygon = self._polygon, []
        if self.doc is not None and len(pts) >= 3:
            self.doc.fill_polygon(pts, self.active_class)
        self.update()

    def leaveEvent(self, e) -> None:  # noqa: N802
        self._mouse = None
        self.update()

    def enterEvent(self, e) -> None:  # noqa: N802
        """Hovering the canvas gives it the keyboard (Space-drag pans, tool keys) — after a click
        in the gallery or palette — unless a text field is being edited."""
        if hasattr(e, "position"):
            self._mouse = e.position()
        focus = QApplication.focusWidget()
        if focus is not self and not isinstance(focus, (QLineEdit, QAbstractSpinBox, QTextEdit,
                                                        QPlainTextEdit, QComboBox)):
            self.setFocus(Qt.FocusReason.MouseFocusReason)
        self.update()
        super().enterEvent(e)

    def wheelEvent(self, e: QWheelEvent) -> None:  # noqa: N802
        dy = e.angleDelta().y()
        self._mouse = e.position()
        if dy:
            self.zoom_by(1.25 ** (dy / 120.0), e.position())
        e.accept()

    def keyPressEvent(self, e) -> None:  # noqa: N802
        if e.key() == Qt.Key.Key_Space and not e.isAutoRepeat():
            self._space = True
            self._update_cursor()
            return
        if self.tool == Tool.POLYGON and e.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.close_polygon()
            return
        if self.tool == Tool.POLYGON and e.key() == Qt.Key.Key_Escape:
            self._polygon = []
            self.update()
            return
        if self.tool in SELECT_TOOLS and e.key() in (Qt.Key.Key_Escape, Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.clear_selection()
            return
        if e.key() == Qt.Key.Key_X and not e.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            self.swap_class()
            return
        super().keyPressEvent(e)

    def keyReleaseEvent(self, e) -> None:  # noqa: N802
        if e.key() == Qt.Key.Key_Space and not e.isAutoRepeat():
            self._space = False
            self._panning = False
            self._update_cursor()
            return
        super().keyReleaseEvent(e)
