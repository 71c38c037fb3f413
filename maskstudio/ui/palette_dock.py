"""Class palette dock: the 19 classes with swatch, name, shortcut, lock and show/hide."""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QFrame, QHBoxLayout, QLabel, QScrollArea, QToolButton, QVBoxLayout, QWidget,
)

from maskstudio.labels import CLASSES, image_side, side_note
from maskstudio.ui.icons import icon

#: the banner above the rows per tool; ``{cls}`` is the active class (None: "Painting: <class>")
TOOL_BANNERS = {
    "erase": "Erasing to <b>Background</b> &nbsp;[E]",
    "restore": "Erasing to <b>the mask as opened</b> &nbsp;[Shift+E]",
    "pick": "Eyedropper: click a class on the canvas &nbsp;[I]",
    "select_rect": "Selecting (rectangle): drag a part, then drag it to move · Ctrl+drag copies",
    "select_ellipse": "Selecting (ellipse): drag a part, then drag it to move · Ctrl+drag copies",
}


class ClassRow(QFrame):
    clicked = Signal(int)
    lockToggled = Signal(int, bool)
    visibleToggled = Signal(int, bool)

    def __init__(self, index: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        c = CLASSES[index]
        self.index = index
        self.setObjectName("classRow")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        note, img_side = side_note(index), image_side(index)
        subject = "left" if img_side == "right" else "right"
        where = f" — the subject's own {subject}: on the image's {img_side} as you look at the face" if note else ""
        self.setToolTip(f"{c.display} ({c.name}){where} — press {c.shortcut} to paint with it")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(6, 2, 4, 2)
        lay.setSpacing(6)
        self.swatch = QLabel()
        self.swatch.setFixedSize(18, 18)
        r, g, b = c.color
        self.swatch.setStyleSheet(f"background: rgb({r},{g},{b}); border: 1px solid #777; border-radius: 3px;")
        self.name = QLabel(c.display)
        self.side_note = note
        self.key = QLabel(c.shortcut)
        self.key.setObjectName("shortcutKey")
        self.key.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.key.setFixedWidth(22)
        self.lock = QToolButton()
        self.lock.setCheckable(True)
        self.lock.setAutoRaise(True)
        self.lock.setIconSize(QSize(14, 14))
        self.lock.setToolTip(f"Lock {c.display}: painting never overwrites it")
        self.lock.toggled.connect(self._on_lock)
        self.eye = QToolButton()
        self.eye.setCheckable(True)
        self.eye.setChecked(True)
        self.eye.setAutoRaise(True)
        self.eye.setIconSize(QSize(14, 14))
        self.eye.setToolTip(f"Show / hide {c.display} on the canvas")
        self.eye.toggled.connect(self._on_eye)
        lay.addWidget(self.swatch)
        lay.addWidget(self.name, 1)
        lay.addWidget(self.key)
        lay.addWidget(self.lock)
        lay.addWidget(self.eye)
        self.refresh_icons()
        self.set_active(False)

    def refresh_icons(self) -> None:
        self.lock.setIcon(icon("mdi6.lock" if self.lock.isChecked() else "mdi6.lock-open-variant-outline"))
        self.eye.setIcon(icon("mdi6.eye-outline" if self.eye.isChecked() else "mdi6.eye-off-outline"))

    def _on_lock(self, on: bool) -> None:
        self.refresh_icons()
        self.lockToggled.emit(self.index, on)

    def _on_eye(self, on: bool) -> None:
        self.refresh_icons()
        self.visibleToggled.emit(self.index, on)

    def set_active(self, active: bool) -> None:
        self.setProperty("active", active)
        f = self.name.font()
        f.setBold(active)
        self.name.setFont(f)
        self.style().unpolish(self)
        self.style().polish(self)

    def mousePressEvent(self, e) -> None:  # noqa: N802
        if e.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(self.index)


class PaletteWidget(QWidget):
    """Rows for every class. ``classSelected`` when the user clicks one."""

    classSelected = Signal(int)
    lockChanged = Signal(int, bool)
    visibilityChanged = Signal(int, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.active_label = QLabel()
        self.active_label.setObjectName("activeClass")
        self.active_label.setContentsMargins(8, 6, 8, 6)
        outer.addWidget(self.active_label)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        inner = QWidget()
        lay = QVBoxLayout(inner)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.setSpacing(1)
        self.rows: list[ClassRow] = []
        for c in CLASSES:
            row = ClassRow(c.index)
            row.clicked.connect(self.classSelected)
            row.lockToggled.connect(self.lockChanged)
            row.visibleToggled.connect(self.visibilityChanged)
            lay.addWidget(row)
            self.rows.append(row)
        lay.addStretch(1)
        scroll.setWidget(inner)
        outer.addWidget(scroll, 1)
        self.active = -1
        self.tool = "brush"
        self.refresh_theme()

    def refresh_theme(self) -> None:
        """(Re)apply the style sheet (it resolves palette() colours when set) and icons."""
        self.setStyleSheet("")
        self.setStyleSheet(
            "QFrame#classRow { border: 1px solid transparent; border-radius: 4px; }"
            "QFrame#classRow:hover { border: 1px solid palette(mid); }"
            "QFrame#classRow[active=\"true\"] { background: palette(highlight); border: 1px solid palette(highlight); }"
            "QFrame#classRow[active=\"true\"] QLabel { color: palette(highlighted-text); }"
            "QFrame#classRow QToolButton:checked { background: transparent; border: none; }"
            "QLabel#shortcutKey { border: 1px solid palette(mid); border-radius: 3px; font-size: 11px; }"

        )

        self.refresh_icons()

    def set_active(self, index: int) -> None:
        if index == self.active:
            return
        if 0 <= self.active < len(self.rows):
            self.rows[self.active].set_active(False)
        self.active = index
        self.rows[index].set_active(True)
        self._update_banner()

    def set_tool(self, tool: str) -> None:
        """The banner follows the tool: erasers and the selection say what they do instead of
        "Painting: <class>" (the class does not matter to them)."""
        self.tool = str(getattr(tool, "value", tool))
        self._update_banner()

    def _update_banner(self) -> None:
        if not 0 <= self.active < len(self.rows):
            return
        text = TOOL_BANNERS.get(self.tool)
        if text is not None:
            self.active_label.setText(text)
            self.active_label.setStyleSheet("background: palette(mid); color: palette(window-text);"
                                            " border-radius: 4px; margin: 4px;")
            return
        c = CLASSES[self.active]
        r, g, b = c.color
        fg = "black" if QColor(r, g, b).lightness() > 128 else "white"
        note = side_note(c.index)
        verb = {"fill": "Filling", "polygon": "Polygon"}.get(self.tool, "Painting")
        self.active_label.setText(f"{verb}: <b>{c.display}</b> &nbsp;<code>{c.name}</code> &nbsp;[{c.shortcut}]"
                                  + (f"<br><small>{note}</small>" if note else ""))
        self.active_label.setStyleSheet(
            f"background: rgb({r},{g},{b}); color: {fg}; border-radius: 4px; margin: 4px;"
        )

    def set_locked(self, locked: set[int]) -> None:
        for row in self.rows:
            row.lock.blockSignals(True)
            row.lock.setChecked(row.index in locked)
            row.lock.blockSignals(False)
            row.refresh_icons()

    def refresh_icons(self) -> None:
        for row in self.rows:
            row.refresh_icons()
