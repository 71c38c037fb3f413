"""The Models dialog: the same actions as ``maskstudio models`` (install, import, verify, remove)
with a progress bar. Downloads, imports and verification run as background jobs
(:mod:`maskstudio.ui.jobs`) and can be cancelled; the model store itself (:mod:`maskstudio.io.store`) is Qt-free.

``ModelsDialog(settings, parent=None)`` — the main window opens it from the Models menu and
from the slider groups' "install a model" links, then rescans the engine.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from maskstudio.ui import dialogs
from maskstudio.ui.icons import icon
from maskstudio.ui.jobs import JobContext, JobOutcome, JobRunner

log = logging.getLogger(__name__)

__all__ = ["ModelsDialog"]

COLUMNS = ("Model", "ID", "Role", "State", "Size", "Licence")
STATE_TEXT = {
    "installed": "Installed",
    "shipped": "Shipped",
    "available": "Available",
    "manual": "Import by hand",
    "missing": "Missing",
}


class ModelsDialog(QDialog):
    """Browse the registry, install / import / verify / remove models, watch the progress."""

    jobFinished = Signal(str, bool)    # action, ok (tests and the main window can wait on it)

    def __init__(self, settings, parent: QWidget | None = None, *, store=None) -> None:
        super().__init__(parent)
        from maskstudio.io.store import ModelStore

        self.settings = settings
        self.store = store if store is not None else ModelStore.from_settings(settings)
        self.jobs = JobRunner(self)
        self.worker: JobContext | None = None      # the running action's job, if any
        self._action = ""
        self._rows: list[str] = []
        self.setWindowTitle("Models")
        self.setWindowIcon(icon("mdi6.package-variant"))
        self.resize(980, 600)

        lay = QVBoxLayout(self)
        top = QHBoxLayout()
        self.folder_label = QLabel()
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top.addWidget(self.folder_label, 1)
        self.btn_open_folder = QPushButton(icon("mdi6.folder-open-outline"), "Open folder")
        self.btn_open_folder.setToolTip("Show the installed-models folder in the file manager")
        self.btn_open_folder.clicked.connect(self.open_folder)
        top.addWidget(self.btn_open_folder)
        lay.addLayout(top)

        split = QSplitter(Qt.Orientation.Vertical)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setAlternatingRowColors(True)
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for c in range(1, len(COLUMNS) - 1):
            hh.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Interactive)
        self.table.setColumnWidth(len(COLUMNS) - 1, 190)
        self.table.itemSelectionChanged.connect(self._update_details)
        split.addWidget(self.table)
        self.details = QTextBrowser()
        self.details.setOpenExternalLinks(True)
        split.addWidget(self.details)
        split.setSizes([380, 160])
        lay.addWidget(split, 1)

        prog = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("")
        self.status = QLabel("Ready")
        self.status.setMinimumWidth(360)
        self.status.setWordWrap(True)
        prog.addWidget(self.progress, 1)
        prog.addWidget(self.status, 1)
        lay.addLayout(prog)

        buttons = QHBoxLayout()
        self.btn_install = QPushButton(icon("mdi6.download"), "Install")
        self.btn_import = QPushButton(icon("mdi6.file-import-outline"), "Import file…")
        self.btn_verify = QPushButton(icon("mdi6.check-decagram-outline"), "Verify")
        self.btn_verify_all = QPushButton(icon("mdi6.check-all"), "Verify all")
        self.btn_remove = QPushButton(icon("mdi6.delete-outline"), "Remove")
        self.btn_cancel = QPushButton(icon("mdi6.cancel"), "Cancel")
        self.btn_close = QPushButton("Close")
        self.btn_install.setToolTip("Download, check and install the selected model")
        self.btn_import.setToolTip("Install the selected model from a file you downloaded by hand")
        self.btn_verify.setToolTip("Check the selected model's checksums, keys and shapes")
        self.btn_remove.setToolTip("Delete the selected installed model")
        self.btn_cancel.setToolTip("Stop the running download or import")
        for b in (self.btn_install, self.btn_import, self.btn_verify, self.btn_verify_all, self.btn_remove):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.btn_cancel)
        buttons.addWidget(self.btn_close)
        lay.addLayout(buttons)

        self.btn_install.clicked.connect(self.install_selected)
        self.btn_import.clicked.connect(self.import_selected)
        self.btn_verify.clicked.connect(self.verify_selected)
        self.btn_verify_all.clicked.connect(lambda: self.verify_selected(all_models=True))
        self.btn_remove.clicked.connect(self.remove_selected)
        self.btn_cancel.clicked.connect(self.cancel)
        self.btn_close.clicked.connect(self.close)

        self.refresh()
        if self._rows:
            self.table.selectRow(0)

    # ------------------------------------------------------------------ table
    def refresh(self) -> None:
        from maskstudio.io.download import format_bytes
        from maskstudio.settings import resolve_device

        try:
            device = resolve_device(getattr(self.settings, "device", "auto"))
        except Exception as e:  # noqa: BLE001 - informational only (logged)
            log.warning("device unavailable for the Models dialog: %s", e)
            device = "unknown"
        self.folder_label.setText(f"Models folder: <b>{self.store.models_dir}</b> &nbsp;·&nbsp; Device: <b>{device}</b>")
        selected = self.selected_id()
        rows = self.store.list()
        self._rows = [s.id for s in rows]
        self.table.setRowCount(len(rows))
        for r, s in enumerate(rows):
            state = STATE_TEXT.get(s.state, s.state)
            if s.partial_bytes and s.state != "installed":
                state += f" (partial {format_bytes(s.partial_bytes)})"
            values = (s.entry.title, s.id, s.entry.role, state,
                      format_bytes(s.size_bytes) if s.size_bytes is not None else "?", s.entry.licence_name)
            for c, v in enumerate(values):
                item = QTableWidgetItem(v)
                item.setToolTip(v)
                if c == 3:
                    item.setData(Qt.ItemDataRole.UserRole, s.state)
                self.table.setItem(r, c, item)
        if selected in self._rows:
            self.table.selectRow(self._rows.index(selected))
        self._update_buttons()
        self._update_details()

    def open_folder(self) -> bool:
        """Open the models folder in the system file manager (created if missing)."""
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        try:
            self.store.models_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            dialogs.show_error(self, "Models folder", f"{self.store.models_dir}: {e}")
            return False
        return bool(QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.store.models_dir))))

    def select(self, model_id: str) -> None:
        self.table.selectRow(self._rows.index(model_id))

    def selected_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        r = rows[0].row()
        return self._rows[r] if 0 <= r < len(self._rows) else None

    def state_of(self, model_id: str) -> str:
        item = self.table.item(self._rows.index(model_id), 3)
        assert item is not None, "every row has its state cell"
        return str(item.data(Qt.ItemDataRole.UserRole))

    def _update_details(self) -> None:
        mid = self.selected_id()
        self._update_buttons()
        if mid is None:
            self.details.setHtml("")
            return
        e = self.store.entry(mid)
        esc = _html_escape
        parts = [f"<b>{esc(e.title)}</b> &nbsp;<code>{esc(e.id)}</code>"]
        lic = esc(e.licence_name)
        if e.licence.get("url"):
            lic = f'<a href="{esc(e.licence["url"])}">{lic}</a>'
        parts.append(f"Licence: {lic}" + (f" — {esc(e.licence['note'])}" if e.licence.get("note") else ""))
        for key in ("page", "download_page", "mirror", "paper"):
            v = e.source.get(key)
            if v and str(v).startswith("http"):
                parts.append(f'{key.replace("_", " ").capitalize()}: <a href="{esc(v)}">{esc(v)}</a>')
        files = ", ".join(f"{esc(f.name)} ({'sha256 ' + f.sha256[:12] + '…' if f.sha256 else 'sha256 unknown'})"
                          for f in e.files)
        if files:
            parts.append(f"Files: {files}")
        if e.expected:
            parts.append(f"Expected layout: {e.expected['keys']} keys, {e.expected['parameters']:,} parameters")
        if e.notes:
            parts.append(esc(e.notes))
        rec = self.store.status(mid).record
        if rec:
            parts.append(f"Installed {esc(str(rec.get('installed_at')))} from {esc(str(rec.get('source')))}")
        self.details.setHtml("<br>".join(parts))

    def _update_buttons(self) -> None:
        busy = self.worker is not None
        mid = self.selected_id()
        state = self.state_of(mid) if mid is not None else ""
        self.btn_install.setEnabled(not busy and state == "available")
        self.btn_import.setEnabled(not busy and state in ("available", "manual", "installed"))
        self.btn_verify.setEnabled(not busy and state in ("installed", "shipped"))
        self.btn_verify_all.setEnabled(not busy)
        self.btn_remove.setEnabled(not busy and state == "installed")
        self.btn_cancel.setEnabled(busy)
        self.table.setEnabled(not busy)

    # ------------------------------------------------------------------ actions
    def install_selected(self) -> None:
        mid = self.selected_id()
        if mid is None:
            return
        self._start("install", mid, lambda progress, cancel: self.store.install(mid, progress=progress, cancel=cancel))

    def import_selected(self) -> None:
        mid = self.selected_id()
        if mid is None:
            return
        e = self.store.entry(mid)
        if e.is_boundary_set:
            path = dialogs.get_open_path(self, f"Folder of direction files for {mid}", folder=True)
            paths = [path] if path else []
        else:
            weights = next(f for f in e.files if f.kind == "weights")
            path = dialogs.get_open_path(self, f"{weights.name} for {mid}",
                                         "Checkpoints (*.pt *.pth *.pkl *.safetensors);;All files (*)")
            paths = [path] if path else []
            codes = [f for f in e.files if f.kind == "style_codes"]
            if paths and codes:
                cpath = dialogs.get_open_path(self, f"{codes[0].name} (style codes) for {mid}",
                                              "NumPy (*.npy);;All files (*)")
                if cpath:
                    paths.append(cpath)
        if not paths:
            return
        force = self.store.is_installed(mid)
        if force and dialogs.ask(self, "Models", f"{mid} is installed. Replace it with this file?",
                                 ("Replace", "Cancel"), "Cancel") != "Replace":
            return
        self._start("import", mid, lambda progress, cancel: self.store.import_files(
            mid, paths, progress=progress, cancel=cancel, force=force))

    def verify_selected(self, all_models: bool = False) -> None:
        mid = None if all_models else self.selected_id()
        if mid is None and not all_models:
            return
        self._start("verify", mid or "all models",
                    lambda progress, cancel: self.store.verify(mid, progress=progress))

    def remove_selected(self) -> None:
        mid = self.selected_id()
        if mid is None:
            return
        if dialogs.ask(self, "Remove model", f"Delete {mid} from {self.store.models_dir}?",
                       ("Remove", "Cancel"), "Cancel") != "Remove":
            return
        try:
            self.store.remove(mid)
        except Exception as e:  # noqa: BLE001 - MaskStudioError expected; shown either way, bugs logged
            from maskstudio.errors import MaskStudioError

            if not isinstance(e, MaskStudioError):
                log.exception("removing %s failed", mid)
            dialogs.show_error(self, "Remove model", str(e))
            self.jobFinished.emit("remove", False)
            return
        self.status.setText(f"Removed {mid}")
        self.refresh()
        self.jobFinished.emit("remove", True)

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel_event.set()
            self.status.setText("Cancelling…")

    # ------------------------------------------------------------------ worker plumbing
    def _start(self, action: str, mid: str, fn: Callable[..., Any]) -> None:
        if self.worker is not None:
            return
        self._action = action
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.status.setText(f"{action.capitalize()} {mid}…")
        from maskstudio.errors import DownloadCancelled

        def done(out: JobOutcome, mid=mid) -> None:
            if out.error is None:
                self._on_done(mid, out.value)
            else:
                self._on_failed(mid, out.error, out.cancelled)

        self.worker = self.jobs.start(action, lambda ctx: fn(progress=ctx.report, cancel=lambda: ctx.cancelled),
                                      done, self._on_progress, cancel_exceptions=(DownloadCancelled,))
        self._update_buttons()

    def _on_progress(self, ev) -> None:
        from maskstudio.io.download import format_bytes

        frac = ev.fraction
        if frac is None:
            self.progress.setRange(0, 0)  # busy indicator
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(frac * 1000))
            self.progress.setFormat(f"{frac * 100:.0f}%")
        what = {"download": "Downloading", "checksum": "Checking", "convert": "Converting",
                "done": "Done"}.get(ev.stage, ev.stage)
        text = f"{what} {ev.file}"
        if ev.stage in ("download", "checksum") and ev.done:
            text += f" — {format_bytes(ev.done)}" + (f" / {format_bytes(ev.total)}" if ev.total else "")
        if ev.message:
            text += f" ({ev.message})"
        self.status.setText(text)

    def _finish_worker(self) -> None:
        self.worker = None
        self.jobs.wait()
        self.progress.setRange(0, 1000)

    def _on_done(self, mid: str, value) -> None:
        action = self._action
        self._finish_worker()
        if action == "verify":
            bad = [r for r in value if not r.ok]
            ok = not bad
            self.progress.setValue(1000 if ok else 0)
            if ok:
                msg = "All checks passed: " + ", ".join(r.id for r in value) if value else "Nothing to verify"
                self.status.setText(msg)
                dialogs.show_info(self, "Verify", msg)
            else:
                msg = "\n".join(f"{r.id}: {r.problem}" for r in bad)
                self.status.setText(f"Verification failed for {', '.join(r.id for r in bad)}")
                dialogs.show_error(self, "Verify", msg)
        else:
            ok = True
            self.progress.setValue(1000)
            self.progress.setFormat("100%")
            self.status.setText(f"{'Installed' if action == 'install' else 'Imported'} {mid}")
        self.refresh()
        self.jobFinished.emit(action, ok)

    def _on_failed(self, mid: str, message: str, cancelled: bool) -> None:
        action = self._action
        self._finish_worker()
        self.progress.setValue(0)
        self.progress.setFormat("")
        if cancelled:
            self.status.setText(f"Cancelled {action} of {mid}; a partial download is kept and resumes next time")
        else:
            self.status.setText(f"{action.capitalize()} of {mid} failed")
            dialogs.show_error(self, f"{action.capitalize()} {mid}", message)
        self.refresh()
        self.jobFinished.emit(action, False)

    # ------------------------------------------------------------------ closing
    def done(self, result: int) -> None:  # noqa: D401 - Qt override (Close, Esc, window close)
        self.jobs.cancel()
        self.jobs.wait(30000)
        super().done(result)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.jobs.cancel()
        self.jobs.wait(30000)
        super().closeEvent(event)


def _html_escape(s: str) -> str:
    return (str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))
