"""Visible undo history: one row per step of the mask document; click a row to go back to it."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QFont
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from maskstudio.ui.icons import icon


class HistoryWidget(QWidget):
    """Row 0 is the opened mask; row i is after step i. ``stepRequested(n)``: go to n applied steps."""

    stepRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.list = QListWidget()
        self.list.setToolTip("Undo history — click a step to go back to it (Ctrl+Z / Ctrl+Shift+Z)")
        self.list.itemClicked.connect(lambda item: self.stepRequested.emit(self.list.row(item)))
        lay.addWidget(self.list)

    def refresh(self, names: list[str], index: int) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        rows = ["Opened"] + list(names)
        for i, name in enumerate(rows):
            item = QListWidgetItem(icon("mdi6.file-outline" if i == 0 else "mdi6.brush"), name)
            if i > index:
                f = QFont(item.font())
                f.setItalic(True)
                item.setFont(f)
                item.setForeground(QBrush(Qt.GlobalColor.gray))
            self.list.addItem(item)
        self.list.setCurrentRow(index)
        self.list.blockSignals(False)
        if self.list.currentItem() is not None:
            self.list.scrollToItem(self.list.currentItem())
