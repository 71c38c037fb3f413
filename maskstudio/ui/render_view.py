"""Render view: the live result beside the mask, its stage, a busy indicator, latency, A/B compare."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QComboBox, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget,
)

from maskstudio.ui.canvas import numpy_to_qimage
from maskstudio.ui.icons import icon, themed

#: engine output -> what the designer reads
OUTPUT_TITLES = {
    "face": "DMN face",
    "photo": "StyleGAN edit",
    "agile": "AgileGAN",
    "dual": "DualStyleGAN",
}


class ImagePane(QWidget):
    """Draws image B (the current render), optionally split with image A (the unedited render)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.image_b: QImage | None = None
        self.image_a: QImage | None = None
        self.compare = False
        self.split = 0.5
        self.message = "Waiting for the first render…"

    def image_rect(self) -> QRectF:
        img = self.image_b or self.image_a
        if img is None:
            return QRectF(self.rect())
        s = min(self.width() / img.width(), self.height() / img.height())
        w, h = img.width() * s, img.height() * s
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        p.fillRect(self.rect(), self.palette().color(self.backgroundRole()).darker(115))
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        if self.image_b is None:
            p.setPen(self.palette().color(self.foregroundRole()))
            p.drawText(self.rect().adjusted(12, 12, -12, -12), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.message)
            return
        r = self.image_rect()
        if self.compare and self.image_a is not None:
            xs = r.left() + r.width() * self.split
            p.save()
            p.setClipRect(QRectF(r.left(), r.top(), xs - r.left(), r.height()))
            p.drawImage(r, self.image_a)
            p.restore()
            p.save()
            p.setClipRect(QRectF(xs, r.top(), r.right() - xs, r.height()))
            p.drawImage(r, self.image_b)
            p.restore()
            p.setPen(QPen(QColor("white"), 2))
            p.drawLine(QPointF(xs, r.top()), QPointF(xs, r.bottom()))
            p.setPen(QColor("white"))
            p.fillRect(QRectF(r.left() + 6, r.top() + 6, 64, 18), QColor(0, 0, 0, 150))
            p.drawText(QRectF(r.left() + 6, r.top() + 6, 64, 18), Qt.AlignmentFlag.AlignCenter, "A: before")
            p.fillRect(QRectF(r.right() - 70, r.top() + 6, 64, 18), QColor(0, 0, 0, 150))
            p.drawText(QRectF(r.right() - 70, r.top() + 6, 64, 18), Qt.AlignmentFlag.AlignCenter, "B: now")
        else:
            p.drawImage(r, self.image_b)
        p.end()

    def _set_split(self, x: float) -> None:
        r = self.image_rect()
        if r.width() > 0:
            self.split = float(min(1.0, max(0.0, (x - r.left()) / r.width())))
            self.update()

    def mousePressEvent(self, e) -> None:  # noqa: N802
        if self.compare:
            self._set_split(e.position().x())

    def mouseMoveEvent(self, e) -> None:  # noqa: N802
        if self.compare and e.buttons() & Qt.MouseButton.LeftButton:
            self._set_split(e.position().x())


class RenderView(QWidget):
    """Header (output choice, stage, busy, latency, A/B) over an :class:`ImagePane`."""

    outputChanged = Signal(str)
    compareToggled = Signal(bool)
    photoViewToggled = Signal(bool)    # True: the full photo, False: the aligned crop
    wholeFaceToggled = Signal(bool)    # True: re-render the whole face, False: changed regions only

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        head = QHBoxLayout()
        head.setContentsMargins(6, 4, 6, 0)
        self.output = QComboBox()
        self.output.setToolTip("Which output the render view shows (pipeline stage)")
        for key, title in OUTPUT_TITLES.items():
            self.output.addItem(title, key)
        self.output.currentIndexChanged.connect(lambda _i: self.outputChanged.emit(self.output.currentData()))
        self.busy = QLabel()
        self.busy.setFixedSize(18, 18)
        self.busy.setToolTip("Rendering…")
        self._spin = 0
        self._spin_timer = QTimer(self)
        self._spin_timer.setInterval(90)
        self._spin_timer.timeout.connect(self._tick)
        self.stage = QLabel("—")
        self.stage.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # never widens the view
        self.stage.setToolTip("Stage that produced the image shown, its size, and the last render latency")
        self.compare = QToolButton()
        self.compare.setCheckable(True)
        themed(self.compare, "mdi6.compare-horizontal")
        self.compare.setText("A/B")
        self.compare.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.compare.setToolTip("A/B compare with the unedited render (drag the divider) — Ctrl+B")
        self.compare.toggled.connect(self._on_compare)
        head.addWidget(QLabel("Output:"))
        head.addWidget(self.output)
        head.addWidget(self.busy)
        head.addStretch(1)
        head.addWidget(self.compare)
        # photo editing: crop / full photo, local / whole-face (shown only while a photo is open)
        self.full_photo = QToolButton()
        self.full_photo.setCheckable(True)
        self.full_photo.setChecked(True)
        self.full_photo.setText("Full photo")
        self.full_photo.setToolTip("Show the edit pasted back into the full photo (off: the aligned crop)")
        self.full_photo.toggled.connect(self._on_full_photo)
        self.whole_face = QToolButton()
        self.whole_face.setCheckable(True)
        self.whole_face.setText("Whole face")
        self.whole_face.setToolTip("Re-render the whole face (off: only the regions whose labels changed, "
                                   "blended into the photo's own pixels)")
        self.whole_face.toggled.connect(self.wholeFaceToggled.emit)
        head.addWidget(self.full_photo)
        head.addWidget(self.whole_face)
        self.photo_mode = False
        self.last_photo: tuple[np.ndarray, np.ndarray | None] | None = None   # (edited crop, full photo)
        self.full_photo.setVisible(False)
        self.whole_face.setVisible(False)
        lay.addLayout(head)
        # the stage line has the view's whole width (beside the A/B button it was clipped at the
        # default window size); the full text is also its tooltip
        stage_row = QHBoxLayout()
        stage_row.setContentsMargins(8, 0, 6, 0)
        stage_row.addWidget(self.stage, 1)
        lay.addLayout(stage_row)
        self.pane = ImagePane()
        lay.addWidget(self.pane, 1)
        self.last_result = None
        self.last_full = None          # newest successful full-size (non-preview) result
        self.last_image: np.ndarray | None = None
        self.set_busy(False)

    def current_output(self) -> str:
        return self.output.currentData()

    def output_item(self, idx: int) -> QStandardItem | None:
        """The output combo's item at ``idx`` (a QComboBox's own model is a QStandardItemModel)."""
        model = self.output.model()
        assert isinstance(model, QStandardItemModel)
        return model.item(idx)

    def set_output_enabled(self, key: str, enabled: bool, reason: str = "") -> None:
        idx = self.output.findData(key)
        item = self.output_item(idx)
        if item is not None:
            item.setEnabled(enabled)
            item.setToolTip("" if enabled else reason)
        if not enabled and self.output.currentData() == key:
            self.output.setCurrentIndex(self.output.findData("face"))

    def _tick(self) -> None:
        self._spin = (self._spin + 30) % 360
        self.busy.setPixmap(icon("mdi6.loading", rotated=self._spin).pixmap(16, 16))

    def set_busy(self, busy: bool) -> None:
        self.is_busy = busy
        if busy:
            if not self._spin_timer.isActive():
                self._spin_timer.start()
            self._tick()
        else:
            self._spin_timer.stop()
            self.busy.setPixmap(icon("mdi6.check-circle-outline").pixmap(16, 16))

    def show_result(self, result) -> None:
        """Show a :class:`RenderResult` (image or error)."""
        self.last_result = result
        title = OUTPUT_TITLES.get(result.output, result.output)
        if result.ok:
            self.last_image = result.image
            if not result.preview:
                self.last_full = result
            self.pane.image_b = numpy_to_qimage(result.image)
            kind = "preview " if result.preview else ""
            self.stage.setText(f"{title} · {kind}{result.size_px}px · {result.latency_ms:.0f} ms · {result.device}")
            self.stage.setStyleSheet("")
        else:
            self.stage.setText(f"{title}: {result.error}")
            self.stage.setStyleSheet("color: #e05050;")
            if self.pane.image_b is None:
                hint = "\n\nInstall models with Models… (Ctrl+M)." if "unavailable" in (result.error or "") else ""
                self.pane.message = f"Render failed:\n{result.error}{hint}"
        self.pane.update()

    # -- photo editing -----------------------------------------------------------------------
    def set_photo_mode(self, on: bool, whole_face: bool = False) -> None:
        self.photo_mode = bool(on)
        self.full_photo.setVisible(self.photo_mode)
        self.whole_face.setVisible(self.photo_mode)
        self.whole_face.blockSignals(True)
        self.whole_face.setChecked(bool(whole_face))
        self.whole_face.blockSignals(False)
        if not on:
            self.last_photo = None

    def showing_full_photo(self) -> bool:
        return self.photo_mode and self.full_photo.isChecked()

    def show_photo(self, result, crop: np.ndarray, full: np.ndarray | None) -> None:
        """A render put into the photo: the edited crop and (final renders) the full photo."""
        self.show_result(result)
        prev_full = self.last_photo[1] if self.last_photo else None
        self.last_photo = (crop, full if full is not None else prev_full)
        self._show_photo_image()

    def _show_photo_image(self) -> None:
        if self.last_photo is None:
            return
        crop, full = self.last_photo
        img = full if (self.full_photo.isChecked() and full is not None) else crop
        self.pane.image_b = numpy_to_qimage(np.ascontiguousarray(img))
        self.last_image = img
        self.pane.update()

    def _on_full_photo(self, on: bool) -> None:
        self._show_photo_image()
        self.photoViewToggled.emit(on)

    def show_message(self, text: str) -> None:
        self.pane.message = text
        self.stage.setText(text.splitlines()[0] if text else "—")
        self.pane.update()

    def set_reference(self, image: np.ndarray | None) -> None:
        """The unedited render (A side of the compare)."""
        self.pane.image_a = None if image is None else numpy_to_qimage(image)
        self.pane.update()

    def _on_compare(self, on: bool) -> None:
        self.pane.compare = on
        self.pane.update()
        self.compareToggled.emit(on)
