"""The MaskStudio main window: canvas + live render, docks, tools, files, safety.

The editing state (document, exemplar, render settings, tool state, latent, dirty and busy
state, projects, autosave) lives in a Qt-free :class:`maskstudio.session.EditSession`
(``self.session``); all mask edits go through its :class:`maskstudio.mask.MaskDocument`; all
renders through :class:`maskstudio.engine.Engine` (worker thread, newest request wins). The
window only wires widgets to them. Every action that can fail runs inside :meth:`MainWindow._guard`, which turns a
:class:`MaskStudioError` into an error dialog (routed through :mod:`maskstudio.ui.dialogs`).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, cast

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, QSize, QStandardPaths, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication, QDockWidget, QDoubleSpinBox, QLabel, QMainWindow, QSlider, QSplitter, QToolBar,
    QWidget,
)

from maskstudio import __version__
from maskstudio.errors import MaskStudioError
from maskstudio.io.images import read_rgb, write_png
from maskstudio.labels import CLASSES, DISPLAY_NAMES
from maskstudio.mask import MaskDocument
from maskstudio.session import AUTOSAVE_HISTORY, MAX_PROJECT_HISTORY, AutosaveStore, EditSession, remove_stale_tmp
from maskstudio.settings import Settings
from maskstudio.ui import dialogs
from maskstudio.ui.canvas import MaskCanvas, Tool
from maskstudio.ui.gallery_dock import GalleryEntry, GalleryWidget, is_exemplar_image, scan_folder, sibling_mask
from maskstudio.ui.history_dock import HistoryWidget
from maskstudio.ui.icons import icon, refresh_themed, themed
from maskstudio.ui.palette_dock import PaletteWidget
from maskstudio.ui.render_client import RenderClient
from maskstudio.ui.render_view import RenderView
from maskstudio.ui.sliders_dock import SlidersWidget
from maskstudio.ui.theme import apply_theme

log = logging.getLogger(__name__)

AUTOSAVE_INTERVAL_MS = 60_000
MAX_RECENT = 8
__all__ = ["AUTOSAVE_HISTORY", "MAX_PROJECT_HISTORY", "MainWindow"]
MASK_FILTER = "Masks (*.png *.bmp *.tif *.tiff);;All files (*)"
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.webp);;All files (*)"
PROJECT_FILTER = "MaskStudio project (*.msproj);;All files (*)"


def _pref_number(q: QSettings, key: str, default: float) -> str | int | float:
    """A numeric preference as stored: the text read back from the settings file, or the number
    set in this run (``QSettings.value`` is typed ``object``)."""
    return cast("str | int | float", q.value(key, default))


def default_state_dir() -> Path:
    loc = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    return Path(loc or Path.home() / ".maskstudio")


class MainWindow(QMainWindow):
    """``settings``: engine/model settings. ``qsettings``: preferences store (tests pass an
    isolated one). ``state_dir``: autosave / recovery folder. ``engine``: an Engine to use
    (tests: a small real one), else one is built from ``settings``."""

    renderShown = Signal(object)     # every RenderResult the view accepted (tests wait on it)
    toolFinished = Signal(object)    # Image2StyleGAN tool outcome
    styleExported = Signal(object, object)   # (path written or None, error text or None)

    def __init__(self, settings: Settings | None = None, *, engine=None, qsettings: QSettings | None = None,
                 state_dir: Path | None = None, open_sample: bool = True, offer_recovery: bool = True,
                 render_size_px: int | None = None) -> None:
        super().__init__()
        self.settings = settings or Settings.from_env()
        self.qsettings = qsettings or QSettings()
        app = QApplication.instance()
        if isinstance(app, QApplication):  # before any icon is made: icons take the theme's colour
            apply_theme(app, str(self.qsettings.value("ui/dark", "false")).lower() == "true")
        #: side of full renders (None: the mask's side, 512); a preference for slow CPUs
        self.render_size_px = render_size_px or (int(_pref_number(self.qsettings, "render/size_px", 0) or 0) or None)
        self.setWindowTitle("MaskStudio")
        self.setWindowIcon(icon("mdi6.face-woman-shimmer"))
        self.resize(1440, 860)
        self.setDockNestingEnabled(True)
        from maskstudio.ui.gc_guard import MainThreadGC

        self._gc = MainThreadGC(self)

        #: the editing state; the window wires widgets to it
        self.autosave = AutosaveStore(state_dir or default_state_dir())
        self.session = EditSession(self.autosave)
        self._wired_doc: MaskDocument | None = None   # the document whose listeners this window attached
        self._source_path: Path | None = None  # the mask / photo / part folder opened (export suggestions)
        self._stroke_active = False
        self._closing = False

        self.canvas = MaskCanvas()
        self.render_view = RenderView()
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.canvas)
        split.addWidget(self.render_view)
        split.setSizes([600, 600])
        split.setChildrenCollapsible(False)
        self.splitter = split
        self.setCentralWidget(split)

        self.palette_widget = PaletteWidget()
        self.history_widget = HistoryWidget()
        self.gallery = GalleryWidget()
        self.sliders = SlidersWidget()
        self.palette_dock = self._dock("Classes", "paletteDock", self.palette_widget, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.history_dock = self._dock("History", "historyDock", self.history_widget, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.gallery_dock = self._dock("Exemplars", "galleryDock", self.gallery, Qt.DockWidgetArea.RightDockWidgetArea)
        self.sliders_dock = self._dock("Latent sliders", "slidersDock", self.sliders, Qt.DockWidgetArea.RightDockWidgetArea)
        self.splitDockWidget(self.palette_dock, self.history_dock, Qt.Orientation.Vertical)
        self.tabifyDockWidget(self.gallery_dock, self.sliders_dock)
        self.gallery_dock.raise_()
        self.resizeDocks([self.palette_dock, self.gallery_dock], [230, 300], Qt.Orientation.Horizontal)
        self.resizeDocks([self.palette_dock, self.history_dock], [560, 200], Qt.Orientation.Vertical)

        self.status_pos = QLabel("B brush · E eraser · G fill · P polygon · S select · Ctrl+click pick · X swap · "
                                 "[ ] size · Space-drag pan · wheel zoom · F1 all shortcuts")
        self.status_render = QLabel()
        self.statusBar().addWidget(self.status_pos, 1)
        self.statusBar().addPermanentWidget(self.status_render)

        self._slider_settle = QTimer(self)
        self._slider_settle.setSingleShot(True)
        self._slider_settle.setInterval(250)
        self._slider_settle.timeout.connect(lambda: self.request_render(preview=False))
        self._reference_key = None
        self._ready = False
        self._make_actions()
        self._make_menus()
        self._make_toolbars()
        self._connect()
        self.session.add_listener(self._on_session_event)

        self._autosave_timer = QTimer(self)
        self._autosave_timer.setInterval(AUTOSAVE_INTERVAL_MS)
        self._autosave_timer.timeout.connect(lambda: self.autosave_now(background=True))

        from maskstudio.ui.jobs import JobRunner

        self._autosave_jobs = JobRunner(self)   # timer autosaves write off the GUI thread
        self.client = RenderClient(self.settings, engine=engine, parent=self)
        self.client.resultReady.connect(self._on_result)
        self.client.busyChanged.connect(lambda b: self.session.set_busy("render", b))
        from maskstudio.ui.latent_tools import LatentTools

        self.tools = LatentTools(self.client.engine, parent=self)
        self.tools.progress.connect(self._on_tool_progress)
        self.tools.finished.connect(self._on_tool_finished)
        self._restore_preferences()
        self.refresh_availability()
        self._load_gallery()

        recovered = False
        self.autosave.start_session()
        self.autosave.cleanup_stale()
        remove_stale_tmp(p for p, kind in self.recent_files() if kind == "project")
        crashed = self.autosave.find_crashed()      # locked by us until recovered/discarded/released
        if crashed and offer_recovery:
            recovered = self._offer_recovery(crashed[0])
            crashed = crashed[1:]
        for c in crashed:                           # more than one (or no offer): keep for a later start
            c.release()
        if not recovered and open_sample:
            self.new_from_template()
        self.set_active_class(1)
        self.set_tool(Tool.BRUSH)
        self._refresh_exports()
        self._autosave_timer.start()

    # ================================================================== session shortcuts
    # Read-only views of the session state (tests and wiring read them; changes go through the
    # session's methods).
    @property
    def doc(self):
        return self.session.doc

    @property
    def exemplar(self):
        return self.session.exemplar

    @property
    def exemplar_path(self) -> Path | None:
        return self.session.exemplar_path

    @property
    def source_photo(self) -> np.ndarray | None:
        return self.session.source_photo

    @property
    def project_path(self) -> Path | None:
        return self.session.project_path

    @project_path.setter
    def project_path(self, path) -> None:
        self.session.project_path = Path(path) if path else None

    @property
    def last_latent(self) -> np.ndarray | None:
        return self.session.latent

    @property
    def original_labels(self) -> np.ndarray | None:
        return self.session.original_labels

    def _refresh_exports(self) -> None:
        """File ▸ Export … are enabled only when there is something to export."""
        self.act_export_latent.setEnabled(self.last_latent is not None)
        self.act_export_latent.setToolTip(
            "Export the W+ latent (.npy [1,18,512] or .pt)" if self.last_latent is not None else
            "No latent yet: a StyleGAN output (encoder + generator, see Models…) makes one")

    def _on_session_event(self, event: str) -> None:
        self._refresh_exports()
        if event == "busy":
            self.render_view.set_busy(self.session.busy)
        elif event == "dirty":
            self._update_title()
        elif event == "document":
            self._wire_document()
        elif event == "settings":
            self._show_settings()

    # ================================================================== construction
    def _dock(self, title: str, name: str, widget: QWidget, area) -> QDockWidget:
        d = QDockWidget(title, self)
        d.setObjectName(name)
        d.setWidget(widget)
        self.addDockWidget(area, d)
        return d

    def _act(self, text: str, slot, shortcut=None, icon_name: str | None = None, tip: str | None = None,
             checkable: bool = False) -> QAction:
        a = QAction(text, self)
        if icon_name:
            themed(a, icon_name)
        if shortcut:
            seqs = shortcut if isinstance(shortcut, (list, tuple)) else [shortcut]
            a.setShortcuts([QKeySequence(s) for s in seqs])
        a.setCheckable(checkable)
        keys = a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        tip = tip or text.replace("&", "").rstrip("…")
        a.setToolTip(f"{tip} ({keys})" if keys else tip)
        a.setStatusTip(tip)
        if slot is not None:
            a.triggered.connect(slot)
        self.addAction(a)
        return a

    def _make_actions(self) -> None:
        A = self._act
        self.act_new = A("&New from template", self.new_from_template, "Ctrl+N", "mdi6.file-outline", "New mask from the shipped template")
        self.act_open_mask = A("Open &mask…", lambda: self.open_mask(), "Ctrl+O", "mdi6.folder-open-outline", "Open a label PNG or colour PNG mask")
        self.act_open_parts = A("Open &part folder…", lambda: self.open_part_folder(), None, "mdi6.folder-multiple-outline", "Open a CelebAMask-HQ part folder")
        self.act_open_photo = A("Open p&hoto…", lambda: self.open_photo(), "Ctrl+Shift+O", "mdi6.image-outline", "Open a photo: its face is found, aligned and parsed to a mask; edits go back into the photo")
        self.act_open_project = A("Open pro&ject…", lambda: self.open_project(), "Ctrl+Alt+O", "mdi6.folder-star-outline", "Open a MaskStudio project")
        self.act_save = A("&Save project", lambda: self.save_project(), QKeySequence.StandardKey.Save, "mdi6.content-save-outline", "Save the project")
        self.act_save_as = A("Save project &as…", lambda: self.save_project(ask=True), "Ctrl+Shift+S", "mdi6.content-save-edit-outline", "Save the project under a new name")
        self.act_export_render = A("Export &render PNG…", lambda: self.export_render(), "Ctrl+E", "mdi6.image-move", "Export the rendered face as PNG (an edited photo: the full photo at its size)")
        self.act_export_crop = A("Export edited &crop PNG…", lambda: self.export_render(crop_only=True), None, "mdi6.crop",
                                 "Export the edited, aligned face crop alone (photo editing)")
        self.act_export_label = A("Export mask as &label PNG…", lambda: self.export_mask(kind="label"), "Ctrl+Shift+E", "mdi6.export", "Export the mask as an 8-bit label PNG (values 0–18)")
        self.act_export_color = A("Export mask as &colour PNG…", lambda: self.export_mask(kind="color"), None, "mdi6.palette-outline", "Export the mask as a colour PNG (CelebAMask-HQ palette)")
        self.act_export_latent = A("Export &latents…", lambda: self.export_latents(), None, "mdi6.vector-point",
                                   "Export the W+ latent (.npy [1,18,512] or .pt); without one, the DMN style latent")
        self.act_load_style = A("Load DMN st&yle latent…", lambda: self.load_style_latent(), None, "mdi6.folder-open-outline",
                                "Use a saved DMN style latent (.npy + .json) as the style of the render")
        self.act_quit = A("&Quit", self.close, QKeySequence.StandardKey.Quit, "mdi6.exit-to-app")

        self.act_undo = A("&Undo", self.undo, "Ctrl+Z", "mdi6.undo", "Undo")
        self.act_redo = A("&Redo", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"], "mdi6.redo", "Redo")

        self.tool_group = QActionGroup(self)
        self.tool_actions: dict[Tool, QAction] = {}
        for tool, text, key, ic, tip in (
            (Tool.BRUSH, "Brush", "B", "mdi6.brush", "Brush: paint the active class"),
            (Tool.ERASE, "Eraser (to background)", "E", "mdi6.eraser", "Eraser: paint background"),
            (Tool.RESTORE, "Eraser (to original)", "Shift+E", "mdi6.eraser-variant", "Eraser: restore the mask as opened"),
            (Tool.FILL, "Fill", "G", "mdi6.format-color-fill", "Fill: flood-fill a region with the active class"),
            (Tool.POLYGON, "Polygon", "P", "mdi6.vector-polygon", "Polygon: click corners, double-click / Enter / right-click to fill"),
            (Tool.PICK, "Eyedropper", "I", "mdi6.eyedropper", "Eyedropper: pick the class under the cursor (or Ctrl+click with any painting tool)"),
            (Tool.SELECT_RECT, "Rectangle selection", "S", "mdi6.selection-drag",
             "Rectangle selection: drag around a part, then drag it to move (Ctrl+drag copies); Esc drops it"),
            (Tool.SELECT_ELLIPSE, "Ellipse selection", "Shift+S", "mdi6.selection-ellipse",
             "Ellipse selection: drag around a part, then drag it to move (Ctrl+drag copies); Esc drops it"),
        ):
            a = A(text, None, key, ic, tip, checkable=True)
            a.triggered.connect(lambda _c=False, t=tool: self.set_tool(t))
            self.tool_group.addAction(a)
            self.tool_actions[tool] = a
        self.act_swap_class = A("Swap with the previous class", lambda: self.canvas.swap_class(), "X",
                                "mdi6.swap-horizontal", "Swap the active class with the previously used one")
        self.act_mirror = A("&Mirror", None, "Shift+M", "mdi6.flip-horizontal", "Mirror: paint both sides (left/right classes swap)", checkable=True)
        self.act_mirror.toggled.connect(self.set_mirror)
        self.act_smaller = A("Smaller brush", lambda: self.canvas.set_brush_size(self.canvas.diameter_px / 1.2), "[", "mdi6.minus-circle-outline")
        self.act_bigger = A("Bigger brush", lambda: self.canvas.set_brush_size(self.canvas.diameter_px * 1.2), "]", "mdi6.plus-circle-outline")
        self.act_fit = A("Zoom to &fit", self.canvas.fit, "Ctrl+0", "mdi6.fit-to-screen-outline", "Zoom to fit")
        self.act_100 = A("Zoom &100%", self.canvas.actual_size, "Ctrl+1", "mdi6.magnify-scan", "Zoom to 100%")
        self.act_zoom_in = A("Zoom in", lambda: self.canvas.zoom_by(1.25), "Ctrl++", "mdi6.magnify-plus-outline")
        self.act_zoom_out = A("Zoom out", lambda: self.canvas.zoom_by(0.8), "Ctrl+-", "mdi6.magnify-minus-outline")
        self.act_compare = A("A/B compare", None, "Ctrl+B", "mdi6.compare-horizontal", "A/B compare with the unedited render", checkable=True)
        self.act_compare.toggled.connect(self.render_view.compare.setChecked)
        self.render_view.compare.toggled.connect(self.act_compare.setChecked)
        self.act_dark = A("&Dark theme", None, None, "mdi6.theme-light-dark", "Dark theme", checkable=True)
        self.act_dark.toggled.connect(self.set_dark)
        self.act_models = A("&Models…", lambda: self.open_models_dialog(), "Ctrl+M", "mdi6.package-variant", "Install, import and verify models")
        self.act_about = A("&About MaskStudio", self.about, None, "mdi6.information-outline")
        self.act_shortcuts = A("&Keyboard shortcuts", self.show_shortcuts, "F1", "mdi6.keyboard-outline")

        self.class_actions: list[QAction] = []
        for c in CLASSES:
            a = QAction(f"{c.display}", self)
            a.setShortcut(QKeySequence(c.shortcut))
            a.triggered.connect(lambda _c=False, i=c.index: self.set_active_class(i))
            self.addAction(a)
            self.class_actions.append(a)

    def _make_menus(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        f.aboutToShow.connect(self._refresh_exports)
        for a in (self.act_new, self.act_open_mask, self.act_open_parts, self.act_open_photo, self.act_open_project):
            f.addAction(a)
        self.recent_menu = f.addMenu(icon("mdi6.history"), "Open &recent")
        f.addSeparator()
        f.addAction(self.act_save)
        f.addAction(self.act_save_as)
        f.addSeparator()
        for a in (self.act_export_render, self.act_export_crop, self.act_export_label, self.act_export_color,
                  self.act_export_latent, self.act_load_style):
            f.addAction(a)
        f.addSeparator()
        f.addAction(self.act_quit)
        e = mb.addMenu("&Edit")
        e.addAction(self.act_undo)
        e.addAction(self.act_redo)
        e.addSeparator()
        classes = e.addMenu("Active &class")
        for a in self.class_actions:
            classes.addAction(a)
        t = mb.addMenu("&Tools")
        for a in self.tool_actions.values():
            t.addAction(a)
        t.addSeparator()
        t.addAction(self.act_swap_class)
        t.addAction(self.act_mirror)
        t.addAction(self.act_smaller)
        t.addAction(self.act_bigger)
        v = mb.addMenu("&View")
        for a in (self.act_fit, self.act_100, self.act_zoom_in, self.act_zoom_out, self.act_compare):
            v.addAction(a)
        v.addSeparator()
        for d in (self.palette_dock, self.history_dock, self.gallery_dock, self.sliders_dock):
            v.addAction(d.toggleViewAction())
        sizes = v.addMenu(icon("mdi6.image-size-select-large"), "Render &size")
        sizes.setToolTipsVisible(True)
        self.size_group = QActionGroup(self)
        for px, text in ((None, "Full (mask size, 512)"), (256, "256 px (faster on CPU)"), (128, "128 px")):
            a = sizes.addAction(text)
            a.setCheckable(True)
            a.setChecked(px == self.render_size_px)
            a.setToolTip("Side of the final render; previews while painting adapt to the measured speed")
            a.triggered.connect(lambda _c=False, p=px: self.set_render_size(p))
            self.size_group.addAction(a)
        v.addSeparator()
        v.addAction(self.act_dark)
        m = mb.addMenu("&Models")
        m.addAction(self.act_models)
        h = mb.addMenu("&Help")
        h.addAction(self.act_shortcuts)
        h.addAction(self.act_about)

    def _make_toolbars(self) -> None:
        tb = QToolBar("File")
        tb.setObjectName("fileToolbar")
        tb.setIconSize(QSize(20, 20))
        for a in (self.act_new, self.act_open_mask, self.act_open_photo, self.act_save, self.act_export_render):
            tb.addAction(a)
        tb.addSeparator()
        tb.addAction(self.act_undo)
        tb.addAction(self.act_redo)
        self.addToolBar(tb)
        tools = QToolBar("Tools")
        tools.setObjectName("toolsToolbar")
        tools.setIconSize(QSize(20, 20))
        for a in self.tool_actions.values():
            tools.addAction(a)
        tools.addAction(self.act_mirror)
        tools.addSeparator()
        tools.addWidget(QLabel(" Size "))
        self.size_spin = QDoubleSpinBox()
        self.size_spin.setRange(1, 256)
        self.size_spin.setDecimals(0)
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip("Brush diameter in mask pixels ([ smaller, ] bigger)")
        self.size_spin.setValue(self.canvas.diameter_px)
        self.size_spin.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        tools.addWidget(self.size_spin)
        tools.addWidget(QLabel("  Mask opacity "))
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(int(self.canvas.opacity * 100))
        self.opacity_slider.setFixedWidth(110)
        self.opacity_slider.setToolTip("Opacity of the mask over the photo")
        self.opacity_slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        tools.addWidget(self.opacity_slider)
        tools.addSeparator()
        for a in (self.act_fit, self.act_100, self.act_compare, self.act_models):
            tools.addAction(a)
        self.addToolBar(tools)

    def _connect(self) -> None:
        self.palette_widget.classSelected.connect(self.set_active_class)
        self.palette_widget.lockChanged.connect(self.set_locked)
        self.palette_widget.visibilityChanged.connect(self.canvas.set_class_visible)
        self.history_widget.stepRequested.connect(self.go_to_step)
        self.canvas.classPicked.connect(self._on_picked)
        self.canvas.strokeActive.connect(self._on_stroke_active)
        self.canvas.cursorInfo.connect(self.status_pos.setText)
        self.canvas.brushSizeChanged.connect(self._on_brush_size)
        self.size_spin.valueChanged.connect(lambda v: self.canvas.set_brush_size(v))
        self.opacity_slider.valueChanged.connect(lambda v: self.canvas.set_opacity(v / 100.0))
        self.gallery.exemplarChosen.connect(self._exemplar_clicked)
        self.gallery.addRequested.connect(lambda: self.add_exemplars())
        self.gallery.filesDropped.connect(lambda paths: self.add_exemplars(paths))
        self.sliders.changed.connect(self._on_sliders_changed)
        self.render_view.wholeFaceToggled.connect(self.set_whole_face)
        self.render_view.photoViewToggled.connect(lambda _on: self._ensure_reference())
        self.sliders.modelsRequested.connect(lambda: self.open_models_dialog())
        self.sliders.toolRequested.connect(self.run_latent_tool)
        self.sliders.cancelRequested.connect(self.cancel_latent_tool)
        from maskstudio.engine.types import REGIONS

        self.gallery.regions = tuple(REGIONS)
        self.gallery.regionStyleChosen.connect(lambda e, r: self.use_region_style(e, r))
        self.sliders.dmn_style.regionCleared.connect(lambda r: self.clear_region_style(r))
        self.sliders.dmn_style.loadRequested.connect(lambda: self.load_style_latent())
        self.sliders.dmn_style.exportRequested.connect(lambda: self.export_style_latent())
        self.render_view.outputChanged.connect(self._on_output_changed)
        self.render_view.compareToggled.connect(lambda _on: self._ensure_reference())

    # ================================================================== guard / dialogs
    @contextlib.contextmanager
    def _guard(self, title: str):
        """Turn any failure of a user action into an error dialog; the window keeps working."""
        try:
            yield
        except MaskStudioError as e:
            dialogs.show_error(self, title, str(e))
        except Exception as e:  # noqa: BLE001 - a bug, but never a dead window
            log.exception("%s failed", title)
            dialogs.show_error(self, title, f"Unexpected error ({e.__class__.__name__}): {e}")

    # ================================================================== document
    def set_document(self, labels: np.ndarray, *, original_size_hw=None, original: np.ndarray | None = None,
                     name: str = "Opened", history: list | None = None) -> None:
        """Start editing ``labels``. ``original``: the mask as first opened (what "erase to
        original" restores and A/B compares against) when it differs from ``labels``."""
        self.session.new_document(labels, original_size_hw=original_size_hw, original=original, history=history)
        self.request_render()

    def _wire_document(self) -> None:
        """The session has a new document: move the listeners over and show it."""
        old, doc = self._wired_doc, self.session.doc
        assert doc is not None  # "document" is emitted by new_document, after it set the document
        if old is not None:
            old.remove_listener(self._on_doc_changed)
            old.remove_history_listener(self._refresh_history)
        self._wired_doc = doc
        doc.add_listener(self._on_doc_changed)
        doc.add_history_listener(self._refresh_history)
        self.canvas.set_document(doc)
        self.palette_widget.set_locked(set(doc.locked))
        self.render_view.set_reference(None)
        self._reference_key = None
        self._refresh_history()
        self._update_title()

    def _on_doc_changed(self, bbox) -> None:
        self._update_title()
        self.request_render(preview=self._stroke_active)

    def _on_stroke_active(self, active: bool) -> None:
        self._stroke_active = active
        if not active:
            self.request_render(preview=False)

    def _refresh_history(self) -> None:
        if self.doc is None:
            return
        self.history_widget.refresh(list(self.doc.history), int(self.doc.history_index))
        self.act_undo.setEnabled(bool(self.doc.can_undo))
        self.act_redo.setEnabled(bool(self.doc.can_redo))
        self._update_title()

    def undo(self) -> None:
        if self.doc is not None and self.doc.can_undo:
            self.doc.undo()
            self._refresh_history()

    def redo(self) -> None:
        if self.doc is not None and self.doc.can_redo:
            self.doc.redo()
            self._refresh_history()

    def go_to_step(self, n: int) -> None:
        if self.doc is None:
            return
        while self.doc.history_index > n and self.doc.can_undo:
            self.doc.undo()
        while self.doc.history_index < n and self.doc.can_redo:
            self.doc.redo()
        self._refresh_history()

    def is_dirty(self) -> bool:
        return self.session.dirty

    def _update_title(self) -> None:
        self.setWindowTitle(f"{'*' if self.is_dirty() else ''}{self.session.display_name} — MaskStudio")

    # ================================================================== tools
    def set_active_class(self, index: int) -> None:
        self.session.set_active_class(index)
        self.canvas.active_class = int(index)
        self.palette_widget.set_active(int(index))
        self.canvas.update()

    def _on_picked(self, index: int) -> None:
        self.set_active_class(index)
        self.statusBar().showMessage(f"Picked {DISPLAY_NAMES[index]}", 2000)

    def set_tool(self, tool: Tool) -> None:
        self.canvas.set_tool(tool)
        self.tool_actions[Tool(tool)].setChecked(True)
        self.palette_widget.set_tool(Tool(tool))    # the erasers / selection do not say "Painting: <class>"

    def set_mirror(self, on: bool) -> None:
        self.session.set_mirror(on)
        if self.act_mirror.isChecked() != bool(on):
            self.act_mirror.setChecked(bool(on))
        self.canvas.update()

    def set_locked(self, cls: int, locked: bool) -> None:
        self.session.set_locked(cls, locked)
        self.palette_widget.set_locked(set(self.session.locked))

    def _on_brush_size(self, d: float) -> None:
        self.session.set_brush_px(d)
        self.size_spin.blockSignals(True)
        self.size_spin.setValue(d)
        self.size_spin.blockSignals(False)

    def set_dark(self, on: bool) -> None:
        app = QApplication.instance()
        if isinstance(app, QApplication):
            apply_theme(app, bool(on))
        self.palette_widget.refresh_theme()
        refresh_themed(self)
        self.render_view.set_busy(self.session.busy)   # re-draws the indicator in the new colours
        self._refresh_history()
        self.qsettings.setValue("ui/dark", bool(on))

    # ================================================================== rendering
    def _pull_settings(self, mark_dirty: bool = False) -> None:
        """The output choice + slider values into the session's RenderSettings."""
        st = self.sliders.values(self.session.render_settings).replace(output=self.render_view.current_output())
        self.session.set_render_settings(st, mark_dirty=mark_dirty)

    def _show_settings(self) -> None:
        """The session's RenderSettings into the output choice + sliders (no re-render)."""
        st = self.session.render_settings
        idx = self.render_view.output.findData(st.output)
        if idx >= 0:
            self.render_view.output.blockSignals(True)
            self.render_view.output.setCurrentIndex(idx)
            self.render_view.output.blockSignals(False)
        self.sliders.set_values(st)

    def _on_output_changed(self, _output=None) -> None:
        self._pull_settings()
        self.request_render()

    def render_request_kwargs(self) -> dict[str, Any]:
        """The session's render settings as RenderRequest keyword arguments."""
        st = self.session.render_settings
        kw = st.to_request(exemplar_name=getattr(self.exemplar, "name", "") or "",
                           dual_codes=self.client.dual_codes(st.dual.style),
                           size_px=int(self.render_size_px) if self.render_size_px else None)
        regions = self.session.region_request()
        if regions:
            kw["region_styles"] = regions
        if self.session.style_code is not None:
            kw["style"] = self.session.style_code
        return kw

    def request_render(self, preview: bool = False) -> None:
        if self.doc is None or self._closing:
            return
        if self.exemplar is None:
            self.render_view.show_message("Choose an exemplar in the Exemplars dock to render a face.")
            return
        with self._guard("Render"):
            kw = self.render_request_kwargs()
            if self.session.photo is not None and kw.get("output", "face") == "face":
                # the photo's renders are put back into it (compose) with the mask they were made of
                kw["tag"] = ("photo", np.array(self.doc.labels))
                kw["size_px"] = int(self.session.photo.crop.shape[0])
            self.client.submit(self.doc.labels, self.exemplar, preview=preview, **kw)

    def set_render_size(self, px: int | None) -> None:
        self.render_size_px = px
        self.qsettings.setValue("render/size_px", int(px or 0))
        self._reference_key = None
        self.request_render()

    def _reference_state_key(self):
        return (getattr(self.exemplar, "key", None), self.render_size_px,
                json.dumps(self.session.render_settings.to_json(), sort_keys=True))

    def _ensure_reference(self) -> None:
        """A/B: render the mask as opened with the current exemplar + sliders (tagged "ref")."""
        ph = self.session.photo
        if ph is not None and self.render_view.current_output() == "face":
            if not self.render_view.compare.isChecked():
                return
            # the unedited photo is the "before"
            self.render_view.set_reference(ph.image if self.render_view.showing_full_photo() else ph.crop)
            return
        if not self.render_view.compare.isChecked() or self.exemplar is None or self.original_labels is None:
            return
        key = self._reference_state_key()
        if key == getattr(self, "_reference_key", None) or self.client.busy:
            return
        with self._guard("Render"):
            self.client.submit(self.original_labels, self.exemplar, preview=False, tag="ref",
                               **self.render_request_kwargs())

    def _on_result(self, result) -> None:
        if isinstance(result.tag, tuple) and result.tag and result.tag[0] == "photo":
            if result.ok and self.session.photo is not None:
                self._compose_photo(result)
                return
            result.tag = None
        if result.tag == "ref":
            if result.ok:
                self.render_view.set_reference(result.image)
                self._reference_key = self._reference_state_key()
            return
        self.render_view.show_result(result)
        if isinstance(result.tag, tuple) and result.tag[:1] == ("tool",):
            _, name, cancelled, tool_ms = result.tag
            if result.ok:
                self.render_view.stage.setText(f"Image2StyleGAN {name}{' (cancelled: best so far)' if cancelled else ''}"
                                               f" · {result.size_px}px · {tool_ms + result.latency_ms:.0f} ms")
            self.renderShown.emit(result)
            return
        if result.ok:
            if result.latent is not None:
                self.session.set_latent(result.latent)
            self._refresh_exports()
            self.status_render.setText(f"last render {result.latency_ms:.0f} ms")
            if not result.preview:
                self._ensure_reference()
        self.renderShown.emit(result)

    def _on_sliders_changed(self, group: str = "") -> None:
        # a slider of a StyleGAN stage while the DMN face is shown: show that stage's output
        target = {"edit": "photo", "agile": "agile", "dual": "dual"}.get(group)
        if target and self.render_view.current_output() == "face":
            idx = self.render_view.output.findData(target)
            item = self.render_view.output_item(idx)
            if item is not None and item.isEnabled():
                self.render_view.output.blockSignals(True)
                self.render_view.output.setCurrentIndex(idx)
                self.render_view.output.blockSignals(False)
        self._pull_settings(mark_dirty=False)
        self.session.mark_changed()
        self.request_render(preview=True)
        self._slider_settle.start()

    def refresh_availability(self) -> None:
        """Enable slider groups / outputs per the engine's installed models."""
        status, outputs = self.client.group_status()
        self.sliders.set_status(status)
        for key, (ok, reason) in outputs.items():
            self.render_view.set_output_enabled(key, ok, reason)
        self._pull_settings()    # new choices may have changed what the widgets show

    # ================================================================== exemplars
    def _load_gallery(self) -> None:
        for entry in scan_folder(Path(self.settings.resources) / "gallery"):
            self.gallery.add_entry(entry)
        for p in cast("list[str]", self.qsettings.value("gallery/user", [], type=list)) or []:
            path = Path(p)
            if path.is_file():
                self.gallery.add_entry(GalleryEntry(path.stem, path, sibling_mask(path)))

    def _exemplar_clicked(self, entry: GalleryEntry) -> None:
        self.use_exemplar(entry)
        self.canvas.setFocus(Qt.FocusReason.OtherFocusReason)   # Space-drag pans, tool keys work

    def use_exemplar(self, entry: GalleryEntry) -> bool:
        """Use a gallery entry as the DMN style reference. Returns True on success."""
        with self._guard("Use exemplar"):
            image = read_rgb(entry.image_path)
            labels = None
            if entry.mask_path is not None:
                labels = self._read_mask_labels(entry.mask_path)
            self.set_exemplar(image, labels, name=entry.name, path=entry.image_path)
            self.gallery.set_current(entry.image_path)
            return True
        return False

    def set_exemplar(self, image: np.ndarray, labels: np.ndarray | None, name: str = "", path: Path | None = None,
                     *, mark_dirty: bool | None = None) -> None:
        # a user change once the window is set up (the first exemplar of a new mask is not)
        self.session.set_exemplar(self.client.make_exemplar(image, labels, name=name), path,
                                  mark_dirty=self._ready if mark_dirty is None else mark_dirty)
        if self.session.style_code is not None:   # a chosen exemplar replaces a loaded style latent
            self.session.set_style_code(None, mark_dirty=self._ready)
            self._show_style_sources()
        if self.source_photo is None:
            self.canvas.set_background(image)
        self._update_title()
        self.request_render()

    def add_exemplars(self, paths: list | None = None) -> None:
        if paths is None:
            chosen = dialogs.get_open_path(self, "Add exemplar image", IMAGE_FILTER)
            if not chosen:
                return
            paths = [chosen]
        added = []
        last = None
        for p in paths:
            p = Path(p)
            if not (p.is_file() and is_exemplar_image(p)):
                dialogs.show_error(self, "Add exemplar", f"{p}: not an image file (png, jpg, bmp, webp)")
                continue
            with self._guard("Add exemplar"):
                read_rgb(p)  # refuse unreadable files up front
                entry = GalleryEntry(p.stem, p, sibling_mask(p))
                self.gallery.add_entry(entry, select=True)
                added.append(str(p))
                last = entry
        if last is not None:   # what is shown as selected is what renders
            self.use_exemplar(last)
        if added:
            user = list(cast("list[str]", self.qsettings.value("gallery/user", [], type=list)) or [])
            self.qsettings.setValue("gallery/user", list(dict.fromkeys(user + added)))

    # ================================================================== files
    def _read_mask_labels(self, path) -> np.ndarray:
        from maskstudio.io.masks import read_mask

        return np.asarray(read_mask(path).labels, dtype=np.uint8)

    def _confirm_discard(self, what: str = "continue") -> bool:
        """Unsaved changes: ask Save / Discard / Cancel. True when it is fine to go on."""
        if not self.is_dirty():
            return True
        answer = dialogs.ask(self, "Unsaved changes", f"The mask has unsaved changes. Save them before you {what}?",
                             ("Save", "Discard", "Cancel"), default="Save")
        if answer == "Save":
            return self.save_project()
        return answer == "Discard"

    def new_from_template(self) -> None:
        if not self._confirm_discard("start a new mask"):
            return
        with self._guard("New mask"):
            tpl = Path(self.settings.resources) / "sample" / "template_mask.png"
            if tpl.is_file():
                labels = self._read_mask_labels(tpl)
            else:
                from maskstudio.io.masks import WORKING_SIZE

                labels = np.zeros((WORKING_SIZE, WORKING_SIZE), np.uint8)
            self.session.project_path = None
            self._clear_photo()
            self.set_document(labels)
            if self.exemplar is None and self.gallery.entries:
                self.use_exemplar(self.gallery.entries[0])
        self._source_path = None
        self._ready = True

    def open_mask(self, path: str | os.PathLike[str] | None = None) -> bool:
        if not self._confirm_discard("open another mask"):
            return False
        path = path or dialogs.get_open_path(self, "Open mask", MASK_FILTER, self._last_dir())
        if not path:
            return False
        with self._guard("Open mask"):
            from maskstudio.io.masks import read_mask

            self.autosave_now()
            m = read_mask(path)
            self.session.project_path = None
            self._clear_photo()
            if self.exemplar is not None:
                self.canvas.set_background(np.asarray(self.exemplar.image))
            self.set_document(np.asarray(m.labels, np.uint8), original_size_hw=m.original_size_hw)
            self._source_path = Path(path)
            self._add_recent(path, "mask")
            return True
        return False

    def open_part_folder(self, folder: str | os.PathLike[str] | None = None, image_id=None) -> bool:
        if not self._confirm_discard("open another mask"):
            return False
        folder = folder or dialogs.get_open_path(self, "Open CelebAMask-HQ part folder", folder=True)
        if not folder:
            return False
        with self._guard("Open part folder"):
            from maskstudio.io.masks import read_part_folder

            m = read_part_folder(folder, image_id)
            labels = getattr(m, "labels", m)
            self.session.project_path = None
            self.set_document(np.asarray(labels, np.uint8), original_size_hw=getattr(m, "original_size_hw", None))
            self._source_path = Path(folder)
            self._add_recent(folder, "parts")
            return True
        return False

    def open_photo(self, path: str | os.PathLike[str] | None = None) -> None:
        """Open a photo: in background threads its faces are found (a picker when there are
        several), the face is aligned onto the training crop convention and parsed; the canvas
        shows the aligned crop under its mask, the photo crop is the style exemplar, and renders
        are put back into the photo (changed regions only, unless Whole face)."""
        if not self._confirm_discard("open a photo"):
            return
        path = path or dialogs.get_open_path(self, "Open photo", IMAGE_FILTER, self._last_dir())
        if not path:
            return
        path = Path(path)
        with self._guard("Open photo"):
            self.autosave_now()
            self.statusBar().showMessage(f"Finding faces in {path.name}…")
            self.session.set_busy("parse", True)

            def detect():
                from maskstudio.photo.align import detect_faces
                from maskstudio.files import read_file_bytes
                from maskstudio.io.images import read_rgb_full

                data = read_file_bytes(path, "photo")
                image = read_rgb_full(path, data=data)
                return image, data, detect_faces(image)

            self.client.run_in_thread(detect, lambda value, error: self._photo_detected(path, value, error), "find faces")

    def _photo_failed(self, path: Path, error: str) -> None:
        self.statusBar().clearMessage()
        self.session.set_busy("parse", False)
        dialogs.show_error(self, "Open photo", error if str(path) in error else f"{path}: {error}")

    def _photo_detected(self, path: Path, value, error: str | None) -> None:
        if error is not None:
            return self._photo_failed(path, error)
        image, data, faces = value
        from maskstudio.ui.face_picker import pick_face

        index = pick_face(self, image, faces, path.name) if len(faces) > 1 else 0
        if index is None:
            self.statusBar().clearMessage()
            self.session.set_busy("parse", False)
            return
        self.statusBar().showMessage(f"Aligning and parsing the face in {path.name}…")

        def align():
            from maskstudio.photo.edit import open_photo, parser_module

            return open_photo(path, parser_module(self.client.engine.models), image=image, data=data,
                              faces=faces, face=index)

        self.client.run_in_thread(align, lambda src, err: self._photo_aligned(path, src, err), "align photo")

    def _photo_aligned(self, path: Path, src, error: str | None) -> None:
        if error is not None:
            return self._photo_failed(path, error)
        self.statusBar().clearMessage()
        self.session.set_busy("parse", False)
        with self._guard("Open photo"):
            self.session.project_path = None
            self.session.set_photo(src)
            self.render_view.set_photo_mode(True, self.session.whole_face)
            self.set_document(np.array(src.parsed))
            self.canvas.set_background(src.crop)
            # the photo is its own exemplar: part of opening it, not a change to save
            self.set_exemplar(src.crop, np.array(src.parsed), name=path.stem, path=path, mark_dirty=False)
            self._source_path = Path(path)
            self._add_recent(path, "photo")
            al = src.alignment
            self.statusBar().showMessage(f"{path.name}: face {al.face_index + 1} of {al.n_faces}, "
                                         f"{al.photo_size[0]}×{al.photo_size[1]} px, tilt {al.angle_deg:+.1f}°", 5000)

    def _clear_photo(self) -> None:
        self.session.set_photo(None)
        self.render_view.set_photo_mode(False)
        self._photo_result = None

    def set_whole_face(self, on: bool) -> None:
        """Re-render the whole face (True) or only the changed regions of the photo (False)."""
        self.session.set_whole_face(on)
        if self.render_view.whole_face.isChecked() != bool(on):
            self.render_view.whole_face.setChecked(bool(on))
        self._update_title()
        self.request_render()

    @property
    def composing(self) -> bool:
        """A render is being put back into the photo (background job in flight)."""
        return getattr(self, "_compose_done", 0) < getattr(self, "_compose_seq", 0)

    def _compose_photo(self, result) -> None:
        """Put a DMN render back into the photo (local blend + paste-back) in a background thread;
        the newest composition wins."""
        src = self.session.photo
        labels = result.tag[1]
        whole = self.session.whole_face
        paste = not result.preview or self.render_view.showing_full_photo()
        self._compose_seq = getattr(self, "_compose_seq", 0) + 1
        seq = self._compose_seq

        def compose():
            from maskstudio.photo.edit import compose_edit

            return compose_edit(src, labels, result.image, whole_face=whole, paste=paste)

        def done(out, error, result=result, seq=seq) -> None:
            self._compose_done = max(getattr(self, "_compose_done", 0), seq)
            if seq != self._compose_seq or self.session.photo is not src:
                return  # a newer render (or another photo) is on its way
            result.tag = None
            if error is not None:
                result.error, result.image = f"putting the render into the photo failed: {error}", None
                self.render_view.show_result(result)
            else:
                self.render_view.show_photo(result, out.crop, out.full if paste else None)
                if not result.preview:
                    self._photo_result = out
                self.status_render.setText(f"last render {result.latency_ms:.0f} ms")
                self._ensure_reference()
            self.renderShown.emit(result)

        self.client.run_in_thread(compose, done, "paste back")

    # -- project ----------------------------------------------------------------------------
    def current_project(self, history_limit: int | None = None):
        """The session as a Project (with the identities of the models in use)."""
        self._pull_settings()
        return self.session.to_project(models=self.client.model_identities(), history_limit=history_limit)

    def save_project(self, path: str | os.PathLike[str] | None = None, ask: bool = False) -> bool:
        if self.doc is None:
            return False
        if path is None and (ask or self.project_path is None):
            path = dialogs.get_save_path(self, "Save project", PROJECT_FILTER, self._last_dir())
            if not path:
                return False
        target = path or self.project_path
        assert target is not None  # no path given: the project's own (asked for above when it has none)
        path = Path(target)
        with self._guard("Save project"):
            self._pull_settings()
            path = self.session.save_project(path, models=self.client.model_identities())
            self._update_title()
            self._add_recent(path, "project")
            self.statusBar().showMessage(f"Saved {path}", 3000)
            return True
        return False

    def open_project(self, path: str | os.PathLike[str] | None = None) -> bool:
        if not self._confirm_discard("open a project"):
            return False
        path = path or dialogs.get_open_path(self, "Open project", PROJECT_FILTER, self._last_dir())
        if not path:
            return False
        with self._guard("Open project"):
            proj = self.session.open_project(path)
            self._show_project(proj)
            self._update_title()
            self._add_recent(path, "project")
            return True
        return False

    def apply_project(self, proj) -> None:
        """Take over a loaded Project (the caller sets ``project_path``)."""
        with self._guard("Open project"):
            self.session.apply_project(proj)
            self._show_project(proj)

    def _show_project(self, proj) -> None:
        """After the session took over ``proj``: its exemplar on the canvas and in the gallery."""
        self._show_style_sources()
        if proj.exemplar_image is not None:
            self.canvas.set_background(proj.exemplar_image)
            self.gallery.set_current(self.exemplar_path)
        self._refresh_exports()
        self._photo_result = None
        self.render_view.set_photo_mode(self.session.photo is not None, self.session.whole_face)
        if self.session.photo is not None:
            self.canvas.set_background(self.session.photo.crop)
        self.request_render()

    # -- exports ----------------------------------------------------------------------------
    def export_render(self, path: str | os.PathLike[str] | None = None, crop_only: bool = False) -> bool:
        """Export the render; for an edited photo the full photo at its own size (``crop_only``:
        the edited aligned crop alone)."""
        if self.session.photo is not None:
            out = getattr(self, "_photo_result", None)
            if out is None:
                out_img = self.session.photo.crop if crop_only else self.session.photo.image  # nothing edited yet
            else:
                out_img = out.crop if crop_only else out.full
            title = "Export edited crop" if crop_only else "Export photo"
            path = path or dialogs.get_save_path(self, title, "PNG image (*.png)", self._last_dir())
            if not path:
                return False
            with self._guard(title):
                write_png(path, out_img)
                self.statusBar().showMessage(f"Exported {path} ({out_img.shape[1]}×{out_img.shape[0]})", 3000)
                return True
            return False
        if crop_only:
            dialogs.show_error(self, "Export edited crop", "Only an edited photo has a crop (File ▸ Open photo)")
            return False
        res = self.render_view.last_full
        if res is None:
            dialogs.show_error(self, "Export render", "No rendered image yet (choose an exemplar; see the render view for errors)")
            return False
        if self.client.busy:
            self.statusBar().showMessage("A newer render is still running: exporting the last finished one", 4000)
        path = path or dialogs.get_save_path(self, "Export render", "PNG image (*.png)", self._export_suggestion("render.png"))
        if not path:
            return False
        with self._guard("Export render"):
            write_png(path, res.image)
            self._remember_export(path)
            self.statusBar().showMessage(f"Exported {path}", 3000)
            return True
        return False

    def export_mask(self, path: str | os.PathLike[str] | None = None, kind: str = "label") -> bool:
        if self.doc is None:
            return False
        title = "Export mask (label PNG)" if kind == "label" else "Export mask (colour PNG)"
        path = path or dialogs.get_save_path(self, title, "PNG image (*.png)",
                                             self._export_suggestion("mask.png" if kind == "label" else "mask_color.png"))
        if not path:
            return False
        with self._guard(title):
            from maskstudio.io import masks

            writer = masks.write_label_png if kind == "label" else masks.write_color_png
            writer(path, np.array(self.doc.labels), size_hw=getattr(self.doc, "original_size_hw", None))
            self._remember_export(path)
            self.statusBar().showMessage(f"Exported {path}", 3000)
            return True
        return False

    def export_latents(self, path: str | os.PathLike[str] | None = None) -> bool:
        if self.last_latent is None:   # no StyleGAN latent: the DMN style latent is always there
            return self.export_style_latent(path)
        path = path or dialogs.get_save_path(self, "Export latents", "NumPy latent (*.npy);;PyTorch latent (*.pt)",
                                             self._export_suggestion("latent.npy"))
        if not path:
            return False
        with self._guard("Export latents"):
            self.client.save_latent(path, self.last_latent)
            self._remember_export(path)
            self.statusBar().showMessage(f"Exported {path}", 3000)
            return True
        return False

    # -- DMN style space: per-region styles, style latents ------------------------------------
    def _show_style_sources(self) -> None:
        self.sliders.dmn_style.set_regions(self.session.region_summary())
        code = self.session.style_code
        self.sliders.dmn_style.loaded_label.setText(
            f"Style: {code.name or 'loaded latent'} (Load… again or pick an exemplar to replace)" if code is not None else "")

    def use_region_style(self, entry: GalleryEntry, region: str) -> bool:
        """Style ``region`` (a :data:`~maskstudio.engine.types.REGIONS` name) with a gallery entry."""
        from maskstudio.engine.types import REGIONS
        from maskstudio.labels import NAMES

        with self._guard(f"Use for {region}"):
            image = read_rgb(entry.image_path)
            labels = self._read_mask_labels(entry.mask_path) if entry.mask_path is not None else None
            ex = self.client.make_exemplar(image, labels, name=entry.name)
            self.session.set_region_style([NAMES.index(c) for c in REGIONS[region]], ex, region)
            self._show_style_sources()
            self.request_render()
            return True
        return False

    def clear_region_style(self, region: str) -> None:
        self.session.clear_region(region)
        self._show_style_sources()
        self.request_render()

    def _style_request(self):
        from maskstudio.engine import RenderRequest

        return RenderRequest(np.asarray(self.doc.labels), self.exemplar, **self.render_request_kwargs())

    def export_style_latent(self, path: str | os.PathLike[str] | None = None, wait: bool = False) -> bool:
        """Write the current DMN style latent (slider edits and per-region styles applied):
        ``.npy`` [R, dim] + ``.json`` naming the DMN. The codes are computed off the GUI thread."""
        if self.doc is None or self.exemplar is None:
            dialogs.show_error(self, "Export style latent", "Nothing to export: open a mask and choose an exemplar")
            return False
        path = path or dialogs.get_save_path(self, "Export DMN style latent", "DMN style latent (*.npy)", self._last_dir())
        if not path:
            return False
        with self._guard("Export style latent"):
            req = self._style_request()
        engine = self.client.engine

        def work():
            from maskstudio.engine.dmn_style import style_latent_meta
            from maskstudio.io.style_files import write_style_latent

            codes, rows = engine.style_code(req)
            return write_style_latent(path, codes, rows, style_latent_meta(engine, req))[0]

        def done(written, error) -> None:
            if error:
                dialogs.show_error(self, "Export style latent", error)
            else:
                self.statusBar().showMessage(f"Exported {written} (+ .json)", 3000)
            self.styleExported.emit(written, error)

        job = self.client.run_in_thread(work, done)
        if wait:
            job.wait()
        return True

    def load_style_latent(self, path: str | os.PathLike[str] | None = None) -> bool:
        """Use a DMN style latent file as the style: row 0 the main style, the others per region."""
        from maskstudio.engine.types import StyleCode
        from maskstudio.io.style_files import read_style_latent
        from maskstudio.labels import NAMES

        path = path or dialogs.get_open_path(self, "Load DMN style latent", "DMN style latent (*.npy *.json)")
        if not path:
            return False
        with self._guard("Load style latent"):
            lat = read_style_latent(path)
            name = Path(path).stem
            self.session.set_style_code(StyleCode(lat.codes[0], name=name, dmn_sha256=lat.dmn_sha256))
            for c in list(self.session.region_styles):
                self.session.set_region_style([c], None, mark_dirty=False)
            for i, classes in enumerate(lat.rows[1:], start=1):
                code = StyleCode(lat.codes[i], name=f"{name}[{i}]", dmn_sha256=lat.dmn_sha256)
                self.session.set_region_style([NAMES.index(c) for c in classes], code, "+".join(classes))
            self._show_style_sources()
            self.request_render()
            return True
        return False

    # -- recent files / preferences --------------------------------------------------------------
    def _last_dir(self) -> str:
        return str(self.qsettings.value("files/last_dir", "") or "")

    def _export_suggestion(self, suffix: str) -> str:
        """Where an export dialog opens: the folder of the last export, else the project's or the
        opened mask's / photo's folder, else the last folder opened, else home; named
        ``<project or mask stem>_<suffix>`` (``untitled_<suffix>`` for a new mask)."""
        source = self.project_path or self._source_path
        folder = (str(self.qsettings.value("files/last_export_dir", "") or "")
                  or (str(source.parent) if source is not None else "") or self._last_dir() or str(Path.home()))
        stem = source.stem if source is not None and source.stem else "untitled"
        return str(Path(folder) / f"{stem}_{suffix}")

    def _remember_export(self, path) -> None:
        self.qsettings.setValue("files/last_export_dir", str(Path(path).resolve().parent))

    def _add_recent(self, path, kind: str) -> None:
        path = str(Path(path).resolve())
        rec = [r for r in self.recent_files() if r[0] != path]
        rec.insert(0, (path, kind))
        self.qsettings.setValue("files/recent", json.dumps(rec[:MAX_RECENT]))
        self.qsettings.setValue("files/last_dir", str(Path(path).parent))
        self._rebuild_recent_menu()

    def recent_files(self) -> list[tuple[str, str]]:
        try:
            # "files/recent" is only ever set to JSON text (_add_recent)
            return [tuple(x) for x in json.loads(cast(str, self.qsettings.value("files/recent", "[]")) or "[]")]
        except (ValueError, TypeError):
            return []

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        rec = self.recent_files()
        if not rec:
            a = self.recent_menu.addAction("(none)")
            a.setEnabled(False)
            return
        openers: dict[str, Callable[[str], object]] = {
            "project": self.open_project, "mask": self.open_mask, "photo": self.open_photo,
            "parts": self.open_part_folder}
        for path, kind in rec:
            a = self.recent_menu.addAction(f"{Path(path).name}  ({kind})")
            a.setToolTip(path)
            a.triggered.connect(lambda _c=False, p=path, k=kind: openers.get(k, self.open_mask)(p))

    def _restore_preferences(self) -> None:
        q = self.qsettings
        geo = q.value("window/geometry")
        if isinstance(geo, QByteArray):
            self.restoreGeometry(geo)
        st = q.value("window/state")
        if isinstance(st, QByteArray):
            self.restoreState(st)
        self.act_dark.setChecked(str(q.value("ui/dark", "false")).lower() == "true")
        if not self.act_dark.isChecked():
            app = QApplication.instance()
            if isinstance(app, QApplication):
                apply_theme(app, False)
        self.canvas.set_brush_size(float(_pref_number(q, "tools/brush_px", 16.0)))
        self.opacity_slider.setValue(int(_pref_number(q, "canvas/opacity", 60)))
        self._rebuild_recent_menu()

    def _save_preferences(self) -> None:
        q = self.qsettings
        q.setValue("window/geometry", self.saveGeometry())
        q.setValue("window/state", self.saveState())
        q.setValue("tools/brush_px", self.canvas.diameter_px)
        q.setValue("canvas/opacity", self.opacity_slider.value())
        q.sync()

    # ================================================================== safety
    def autosave_now(self, background: bool = False) -> bool:
        """Write the autosave project when something changed since the last one. ``background``
        (the minute timer): the snapshot is taken here (~1 ms), the PNG/zip writing (~0.35 s at 512²,
        ``python -m maskstudio.bench.autosave``) runs as a
        background job (skipped while one still runs). Otherwise (before a risky operation) it
        is written before this returns, so the work is on disk whatever happens next."""
        self._pull_settings()
        if background and self._autosave_jobs.busy:
            return False
        if not background:
            self._autosave_jobs.wait()      # a background write in flight finishes first
        try:
            snap = self.session.autosave_snapshot(models=self.client.model_identities)
            if snap is None:
                return False
            if background:
                self._autosave_jobs.start("autosave", lambda _ctx: self.session.autosave_write(*snap),
                                          self._autosave_done, exclusive=True)
            else:
                self.session.autosave_write(*snap)
            return True
        except MaskStudioError as e:
            self._autosave_failed(str(e))
            return False

    def _autosave_done(self, out) -> None:
        if out.error is not None:
            self._autosave_failed(out.error)

    def _autosave_failed(self, message: str) -> None:
        log.warning("autosave failed: %s", message)
        if not self._closing:
            self.statusBar().showMessage(f"Autosave failed: {message}", 5000)

    def _offer_recovery(self, crashed) -> bool:
        saved = time.strftime("%Y-%m-%d %H:%M", time.localtime(crashed.saved_at)) if crashed.saved_at else "?"
        answer = dialogs.ask(self, "Recover work?",
                             f"MaskStudio did not close cleanly last time. Recover the autosaved mask (saved {saved})?",
                             ("Recover", "Discard"), default="Recover")
        if answer != "Recover":
            crashed.discard()
            return False
        with self._guard("Recover autosave"):
            proj = self.session.recover(crashed)
            self._show_project(proj)
            self._update_title()
            self._ready = True
            return True
        return False

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if not self._confirm_discard("close MaskStudio"):
            event.ignore()
            return
        self._closing = True
        self._autosave_timer.stop()
        self.tools.cancel()
        self.tools.wait(10000)
        self._save_preferences()
        self.client.close()
        self._autosave_jobs.wait()        # no autosave write may land after the clean exit
        self.autosave.end_session()
        self._gc.release()
        event.accept()

    # ================================================================== models / latent tools
    def open_models_dialog(self) -> None:
        """Open the model manager (window-modal, non-blocking); rescan the engine when it closes."""
        self.autosave_now()
        dlg = getattr(self, "models_dialog", None)
        if dlg is not None and dlg.isVisible():
            dlg.raise_()
            return
        try:
            from maskstudio.ui.models_dialog import ModelsDialog
        except ImportError as e:
            dialogs.show_error(self, "Models", f"The model manager is not available in this build ({e})")
            return
        with self._guard("Models"):
            dlg = ModelsDialog(self.settings, parent=self)
            dlg.setWindowModality(Qt.WindowModality.WindowModal)
            dlg.finished.connect(lambda _r: self._models_changed())
            self.models_dialog = dlg
            dlg.open()

    def _models_changed(self) -> None:
        with self._guard("Models"):
            self.client.rescan()
            self.refresh_availability()
            self.request_render()

    def run_latent_tool(self, name: str) -> None:
        """Image2StyleGAN tools (background thread, progress + cancel in the sliders dock)."""
        if self.doc is None or self.exemplar is None:
            return
        if name == "morph" and self.tools.busy:
            self._pending_morph = True        # slider moved while a morph runs: redo when it ends
            return
        self.autosave_now()
        kw = {"size_px": int(self.render_size_px)} if self.render_size_px else {}
        self._pull_settings()
        with self._guard("Image2StyleGAN"):
            labels = np.array(self.doc.labels)
            if name == "refine":
                self.tools.refine(labels, self.exemplar, noise=self.sliders.refine_noise.isChecked(),
                                  masked=self.sliders.refine_masked.isChecked(), **kw)
            elif name == "second":
                self.tools.capture_second(labels, self.exemplar, **kw)
            elif name in ("morph", "crossover", "expression"):
                self.tools.combine(name, labels, self.exemplar, self.original_labels,
                                   amount=self.session.render_settings.face_morph, **kw)
            else:
                return
            self.sliders.set_tool_running(True, 0, f"{name}…")
            self.session.set_busy("tool", True)

    def cancel_latent_tool(self) -> None:
        self.tools.cancel()

    def _on_tool_progress(self, pct: int, text: str) -> None:
        self.sliders.set_tool_running(True, pct, text)

    def _on_tool_finished(self, out) -> None:
        self.sliders.set_tool_running(False, 100 if not out.error else 0,
                                      "cancelled" if out.cancelled else (out.error and "failed") or f"{out.name}: done")
        self.session.set_busy("tool", False)
        if out.error:
            dialogs.show_error(self, "Image2StyleGAN", f"{out.name}: {out.error}")
        elif out.name == "second":
            self.sliders.second_label.setText("2nd face: set")
        elif out.latent is not None:
            self.session.set_latent(out.latent)
            self._refresh_exports()
            self._render_tool_latent(out)
        self.toolFinished.emit(out)
        if getattr(self, "_pending_morph", False):
            self._pending_morph = False
            self.run_latent_tool("morph")

    def _render_tool_latent(self, out) -> None:
        """Render a tool's W+ code with an ordinary engine request (photo StyleGAN2, no edits):
        it is shown, or dropped when a newer render was asked for, like every other result."""
        if self.doc is None or self.exemplar is None:
            return
        kw: dict[str, Any] = {"size_px": int(self.render_size_px)} if self.render_size_px else {}
        with self._guard("Image2StyleGAN"):
            self.client.submit(self.doc.labels, self.exemplar, output="photo", latent=out.latent,
                               noise=getattr(out, "noise", None), tag=("tool", out.name, bool(out.cancelled), out.latency_ms), **kw)

    # ================================================================== help
    def about(self) -> None:
        dialogs.show_info(self, "About MaskStudio",
                          f"MaskStudio {__version__}\nPaint a face mask, render a face live.\n"
                          f"Engine: {self.client.describe()}")

    def show_shortcuts(self) -> None:
        lines = [f"{a.toolTip()}" for a in list(self.tool_actions.values()) + [self.act_swap_class, self.act_mirror, self.act_smaller, self.act_bigger,
                                                                              self.act_undo, self.act_redo, self.act_fit, self.act_100]]
        lines.append("Classes: " + ", ".join(f"{c.shortcut} {c.display}" for c in CLASSES))
        lines.append("Ctrl+click (or Alt+click) with a painting tool: pick the class under the cursor.")
        lines.append("Left eye / brow / ear: the subject's left, on the image's right.")
        lines.append("Pan: hold Space and drag, or drag with the middle button. Zoom: mouse wheel.")
        dialogs.show_info(self, "Keyboard shortcuts", "\n".join(lines))
