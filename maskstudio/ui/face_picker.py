"""Face picker: when a photo holds several faces, the user clicks the one to edit.

Thumbnails are cut from the photo around each detected box (largest first, as
:func:`maskstudio.photo.align.detect_faces` orders them); the dialog returns the index.
Tests answer it through :mod:`maskstudio.ui.dialogs` (kind ``"face"``) like every other dialog.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from maskstudio.ui.canvas import numpy_to_qimage

THUMB_PX = 128


def face_thumbnail(image: np.ndarray, box, size: int = THUMB_PX) -> np.ndarray:
    """uint8 size²×3: the box grown by 40 % around its centre, clamped to the photo."""
    import cv2

    h, w = image.shape[:2]
    cx, cy = box.centre
    half = 0.7 * max(box.w, box.h)
    x0, x1 = int(max(0, cx - half)), int(min(w, cx + half))
    y0, y1 = int(max(0, cy - half)), int(min(h, cy + half))
    part = np.ascontiguousarray(image[y0:max(y0 + 1, y1), x0:max(x0 + 1, x1)])
    return cv2.resize(part, (size, size), interpolation=cv2.INTER_AREA)


class FacePickerDialog(QDialog):
    def __init__(self, image: np.ndarray, faces: list, name: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose a face")
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(f"{len(faces)} faces were found in {name or 'the photo'}. Which one do you want to edit?"))
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMB_PX, THUMB_PX))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMovement(QListWidget.Movement.Static)
        for i, box in enumerate(faces):
            thumb = QPixmap.fromImage(numpy_to_qimage(face_thumbnail(image, box)))
            item = QListWidgetItem(QIcon(thumb), f"face {i + 1}" + (" (largest)" if i == 0 else ""))
            item.setData(Qt.ItemDataRole.UserRole, i)
            self.list.addItem(item)
        self.list.setCurrentRow(0)
        self.list.itemDoubleClicked.connect(lambda _it: self.accept())
        lay.addWidget(self.list, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.resize(min(900, 160 * len(faces) + 80), 300)

    def chosen(self) -> int:
        item = self.list.currentItem()
        return int(item.data(Qt.ItemDataRole.UserRole)) if item is not None else 0


def pick_face(parent: QWidget | None, image: np.ndarray, faces: list, name: str = "") -> int | None:
    """The index of the face to edit (0 = largest), or None when the user cancels. One face:
    0 without asking."""
    from maskstudio.ui import dialogs

    if len(faces) <= 1:
        return 0
    if dialogs._handler is not None:  # tests answer like any other dialog
        answer = dialogs._handler("face", title="Choose a face", faces=faces, name=name)
        return None if answer is None else int(answer)
    dlg = FacePickerDialog(image, faces, name, parent)
    return dlg.chosen() if dlg.exec() == QDialog.DialogCode.Accepted else None
