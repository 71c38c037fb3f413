"""The mask canvas: the label map drawn over the exemplar / source photo, painted with tools.

The canvas turns Qt events into image-pixel coordinates and calls the :class:`MaskDocument`
(brush/erase/restore strokes, flood fill, polygon fill, pick). It holds no mask logic itself;
it only redraws the region each document change reports.
"""
from __future__ import annotations

import enum

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPainterPath, QPen, QWheelEvent
from PySide6.QtWidgets import QWidget

from maskstudio.labels import NUM_CLASSES, PALETTE


class Tool(str, enum.Enum):
    BRUSH = "brush"
    ERASE = "erase"          # to background
    RESTORE = "restore"      # to the original mask
    FILL = "fill"
    POLYGON = "polygon"
    PICK = "pick"


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

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(200, 200)
        self.setAcceptDrops(False)
        self.doc = None
        self.tool = Tool.BRUSH
        self.active_class = 1
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
        self._lut = np.zeros((256, 4), np.uint8)
        self._rebuild_lut()

    # ------------------------------------------------------------------ document
    def set_document(self, doc) -> None:
        if self.doc is not None:
            self.doc.remove_listener(self._on_doc_changed)
        self._stroke = None
        self._polygon = []
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
        self.update()

    def _set_zoom(self, z: float, center: bool) -> None:
        self._zoom = z
        h, w = self.image_size()
        if center:
            self._offset = QPointF((self.width() - w * z) / 2, (self.height() - h * z) / 2)
        self._fit_pending = False
        self.zoomChanged.emit(z)
        self.update()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self._fit_pending:
            self.fit()

    def set_brush_size(self, diameter_px: float) -> None:
        self.diameter_px = float(min(MAX_BRUSH_PX, max(MIN_BRUSH_PX, diameter_px)))
        self.brushSizeChanged.emit(self.diameter_px)
        self.update()

    def set_tool(self, tool: Tool) -> None:
        self.tool = Tool(tool)
        self._polygon = []
        self._update_cursor()
        self.update()

    def _update_cursor(self) -> None:
        if self._panning or self._space:
            self.setCursor(Qt.CursorShape.ClosedHandCursor if self._panning else Qt.CursorShape.OpenHandCursor)
        elif self.tool in STROKE_TOOLS:
            self.setCursor(Qt.CursorShape.BlankCursor)  # the brush circle is the cursor
        elif self.tool == Tool.PICK:
            self.setCursor(Qt.CursorShape.PointingHandCursor)
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
        if self._mouse is not None and self.tool in STROKE_TOOLS and not (self._panning or self._space):
            r = max(1.0, self.diameter_px * self._zoom / 2.0)
            p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            p.setPen(QPen(QColor(0, 0, 0, 200), 3))
            p.drawEllipse(self._mouse, r, r)
            edge = QColor(*[int(c) for c in PALETTE[self.active_class]]) if self.tool == Tool.BRUSH else QColor("white")
            p.setPen(QPen(edge, 1.5, Qt.PenStyle.DashLine if self.tool != Tool.BRUSH else Qt.PenStyle.SolidLine))
            p.drawEllipse(self._mouse, r, r)
            if self.doc.mirror:  # where the mirrored dab lands
                ix, iy = self.widget_to_image(self._mouse)
                ax = self.doc.mirror_axis_x
                ax = (w / 2.0) if ax is None else float(ax)
                p.setPen(QPen(QColor(255, 255, 255, 140), 1, Qt.PenStyle.DotLine))
                p.drawEllipse(self.image_to_widget(2 * ax - ix, iy), r, r)
        p.end()

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
        if self.doc is not None and self._inside(x, y):
            from maskstudio.labels import DISPLAY_NAMES

            c = int(self.doc.labels[int(y), int(x)])
            self.cursorInfo.emit(f"x {int(x)}  y {int(y)}  ·  {DISPLAY_NAMES[c]} ({c})  ·  zoom {self._zoom * 100:.0f}%")
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

    def wheelEvent(self, e: QWheelEvent) -> None:  # noqa: N802
        dy = e.angleDelta().y()
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
        super().keyPressEvent(e)

    def keyReleaseEvent(self, e) -> None:  # noqa: N802
        if e.key() == Qt.Key.Key_Space and not e.isAutoRepeat():
            self._space = False
            self._panning = False
            self._update_cursor()
            return
        super().keyReleaseEvent(e)
