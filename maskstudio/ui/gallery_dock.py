"""Exemplar gallery: thumbnails of style references; click to use, Add… or drop image files.

An exemplar's mask comes from a sibling ``<name>.mask.png`` or ``<name>_mask.png`` (label or colour
PNG, :func:`maskstudio.io.images.sibling_mask`); without one
the engine parses the image with the installed face parser (or reports that it needs a mask).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout, QLabel, QListView, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget,
)

from maskstudio.io.images import IMAGE_SUFFIXES, is_exemplar_image, sibling_mask  # noqa: F401 (re-exported)
from maskstudio.ui.icons import icon, themed

THUMB_PX = 88
_LIST_SHEET = ("QListView::item { border: 2px solid transparent; border-radius: 4px; }"
               "QListView::item:selected { border: 2px solid palette(highlight); background: transparent;"
               " color: palette(text); }")


def thumbnail_icon(pm: QPixmap) -> QIcon:
    """An icon that shows the face unchanged when selected: by default the style tints a selected
    icon with the highlight colour (a face looks blue); the selection shows as the item frame."""
    ic = QIcon()
    for mode in (QIcon.Mode.Normal, QIcon.Mode.Selected, QIcon.Mode.Active):
        ic.addPixmap(pm, mode)
    return ic


@dataclass(frozen=True)
class GalleryEntry:
    name: str
    image_path: Path
    mask_path: Path | None


def scan_folder(folder: Path) -> list[GalleryEntry]:
    if not folder.is_dir():
        return []
    return [GalleryEntry(p.stem, p, sibling_mask(p)) for p in sorted(folder.iterdir()) if p.is_file() and is_exemplar_image(p)]


class _DropList(QListWidget):
    filesDropped = Signal(list)

    def __init__(self) -> None:
        super().__init__()
        self.setAcceptDrops(True)
        self.viewport().setAcceptDrops(True)
        self.setDragEnabled(False)
        self.setDropIndicatorShown(True)

    def dragEnterEvent(self, e) -> None:  # noqa: N802
        if e.mimeData().hasUrls():
            e.acceptProposedAction()
        else:
            super().dragEnterEvent(e)

    def dragMoveEvent(self, e) -> None:  # noqa: N802
        if e.mimeData().hasUrls():
            e.acceptProposedAction()
        else:
            super().dragMoveEvent(e)

    def dropEvent(self, e) -> None:  # noqa: N802
        paths = [Path(u.toLocalFile()) for u in e.mimeData().urls() if u.isLocalFile()]
        if paths:
            self.filesDropped.emit(paths)
            e.acceptProposedAction()


class GalleryWidget(QWidget):
    """``exemplarChosen(GalleryEntry)`` on click; ``addRequested()`` for the Add… button;
    ``filesDropped(list[Path])`` when image files are dropped on it."""

    exemplarChosen = Signal(object)
    addRequested = Signal()
    filesDropped = Signal(list)
    regionStyleChosen = Signal(object, str)   # (GalleryEntry, region name): "Use for <region>" menu

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        self.list = _DropList()
        self.list.setViewMode(QListView.ViewMode.IconMode)
        self.list.setIconSize(QSize(THUMB_PX, THUMB_PX))
        self.list.setGridSize(QSize(THUMB_PX + 28, THUMB_PX + 26))
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setWordWrap(True)
        self.list.setUniformItemSizes(True)
        self.list.setAcceptDrops(True)            # after setMovement(Static), which turns drops off
        self.list.viewport().setAcceptDrops(True)
        # the selection is a frame around the whole item (the thumbnail itself stays untinted)
        self.list.setStyleSheet(_LIST_SHEET)
        self.list.setToolTip("Click an exemplar to use it as the style reference; drop image files here to add them")
        self.list.itemClicked.connect(self._clicked)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.regions: tuple[str, ...] = ()   # offered in the context menu (set by the main window)
        self.list.filesDropped.connect(self.filesDropped)
        lay.addWidget(self.list, 1)
        row = QHBoxLayout()
        self.add = themed(QPushButton("Add…"), "mdi6.image-plus")
        self.add.setToolTip("Add your own exemplar images (mask from <name>.mask.png, or parsed)")
        self.add.clicked.connect(self.addRequested)
        self.hint = QLabel()
        self.hint.setWordWrap(True)
        row.addWidget(self.add)
        row.addWidget(self.hint, 1)
        lay.addLayout(row)
        self.entries: list[GalleryEntry] = []
        self._current: str | None = None
        self._update_hint()

    def add_entry(self, entry: GalleryEntry, select: bool = False) -> QListWidgetItem:
        for i, e in enumerate(self.entries):
            if e.image_path == entry.image_path:
                item = self.list.item(i)
                break
        else:
            img = QImage(str(entry.image_path))
            pm = QPixmap.fromImage(img.scaled(THUMB_PX, THUMB_PX, Qt.AspectRatioMode.KeepAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation)) if not img.isNull() else QPixmap()
            item = QListWidgetItem(thumbnail_icon(pm) if not pm.isNull() else icon("mdi6.image-broken-variant"), entry.name)
            mask_note = f"mask: {entry.mask_path.name}" if entry.mask_path else "no mask file: parsed by the face parser"
            item.setToolTip(f"{entry.image_path}\n{mask_note}")
            self.list.addItem(item)
            self.entries.append(entry)
        self._update_hint()
        if select:
            self.list.setCurrentItem(item)
        return item

    def set_current(self, image_path: Path | None) -> None:
        for i, e in enumerate(self.entries):
            if image_path is not None and e.image_path == Path(image_path):
                self.list.setCurrentRow(i)
                return
        self.list.clearSelection()

    def changeEvent(self, e) -> None:  # noqa: N802
        # a style sheet resolves palette() once: re-apply it when the theme (palette) changes
        if e.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.list.setStyleSheet("")
            self.list.setStyleSheet(_LIST_SHEET)
        super().changeEvent(e)

    def _clicked(self, item: QListWidgetItem) -> None:
        self.exemplarChosen.emit(self.entries[self.list.row(item)])

    def region_menu(self, row: int):
        """The context menu of thumbnail ``row``: "Use as exemplar", "Use for <region>" per region."""
        from PySide6.QtWidgets import QMenu

        entry = self.entries[row]
        menu = QMenu(self)
        menu.addAction("Use as exemplar", lambda: self.exemplarChosen.emit(entry))
        if self.regions:
            menu.addSeparator()
        for region in self.regions:
            def use_for(r: str = region) -> None:
                self.regionStyleChosen.emit(entry, r)

            act = menu.addAction(f"Use for {region}", use_for)
            act.setToolTip(f"Style the {region} with this exemplar (per-region DMN style)")
        return menu

    def _context_menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        self.region_menu(self.list.row(item)).exec(self.list.viewport().mapToGlobal(pos))

    def _update_hint(self) -> None:
        self.hint.setText(f"{len(self.entries)} exemplars" if self.entries else "No exemplars yet — Add… or drop images")
