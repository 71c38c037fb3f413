"""Application entry: QApplication set-up, the main window, and the ``--screenshot`` mode."""
from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QSettings, QTimer
from PySide6.QtWidgets import QApplication

from maskstudio.errors import MaskStudioError, file_error
from maskstudio.settings import Settings

ORG_NAME = "MaskStudio"
APP_NAME = "MaskStudio"
log = logging.getLogger(__name__)


def ensure_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if app is None:
        QCoreApplication.setOrganizationName(ORG_NAME)
        QCoreApplication.setApplicationName(APP_NAME)
        app = QApplication(argv if argv is not None else sys.argv[:1])
    return app  # type: ignore[return-value]


def wait_for_render(app: QApplication, window, timeout_s: float = 120.0) -> bool:
    """Process events until the window shows a full (non-preview) render or an error."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app.processEvents()
        res = window.render_view.last_result
        if res is not None and not res.preview and not window.client.busy:
            return True
        if window.exemplar is None and window.doc is not None:
            return False   # nothing to render
        time.sleep(0.01)
    return False


def install_excepthook(window) -> None:
    """An exception escaping a Qt slot is a bug: log it, autosave, tell the user — never a dead
    window (PySide6 would only print it)."""
    from maskstudio.ui import dialogs

    def hook(exc_type, exc, tb):
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        log.error("unhandled exception", exc_info=(exc_type, exc, tb))
        try:
            window.autosave_now()
        except Exception:  # noqa: BLE001 - already handling a failure; the second one is logged too
            log.exception("autosave after an unhandled exception failed")
        detail = str(exc) if isinstance(exc, MaskStudioError) else f"{exc_type.__name__}: {exc}"
        dialogs.show_error(window, "Unexpected error", f"{detail}\n\nYour work was autosaved. Details are in the log.")

    sys.excepthook = hook


def run_gui(settings: Settings | None = None, *, project: str | None = None, screenshot: str | None = None,
            open_path: str | None = None, theme: str | None = None) -> int:
    app = ensure_app()

    shot = Path(screenshot) if screenshot else None
    proj = None
    if project:
        from maskstudio.session.project import load_project

        proj = load_project(project)       # before any window: errors become one CLI line
    if shot is None:
        return _run_window(app, settings, proj, project, open_path, theme, None, None, None)
    # A screenshot run must neither read nor change the user's preferences / autosave, must never
    # wait on a modal dialog (errors are collected instead) and leaves no temporary folder behind.
    import shutil
    import tempfile

    from maskstudio.ui import dialogs

    errors: list[str] = []

    def no_dialogs(kind: str, **info):
        if kind == "error":
            errors.append(str(info.get("message", "")))
            return None
        if kind == "ask":
            return info.get("default") or "Discard"
        return None

    tmp = Path(tempfile.mkdtemp(prefix="maskstudio-shot-"))
    previous = dialogs.set_handler(no_dialogs)
    try:
        qs = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
        return _run_window(app, settings, proj, project, open_path, theme, shot, qs, tmp / "state", errors)
    finally:
        dialogs.set_handler(previous)
        shutil.rmtree(tmp, ignore_errors=True)   # the throw-away preferences / autosave folder


def _close_clean(win) -> None:
    if win.doc is not None:
        win.doc.mark_clean()
    win._extra_dirty = False
    win.close()


def _run_window(app, settings, proj, project, open_path, theme, shot, qs, state_dir,
                errors: list[str] | None = None) -> int:
    from maskstudio.ui.main_window import MainWindow

    if shot is not None and open_path and Path(open_path).suffix != ".msproj":
        from maskstudio.io.masks import read_mask

        read_mask(open_path)               # refuse a bad mask before any window: one CLI line
    if theme is not None:
        (qs if qs is not None else QSettings()).setValue("ui/dark", theme == "dark")
    win = MainWindow(settings, qsettings=qs, state_dir=state_dir, offer_recovery=shot is None,
                     open_sample=proj is None)
    if project:
        win.apply_project(proj)
        win.project_path = Path(project)
        win._update_title()
    elif open_path:
        p = Path(open_path)
        if p.suffix == ".msproj":
            win.open_project(p)
        else:
            win.open_mask(p)
    if shot is None:
        win.show()
        install_excepthook(win)
        QTimer.singleShot(0, win.canvas.fit)
        return int(app.exec())
    if errors:
        _close_clean(win)
        raise MaskStudioError(errors[0])   # e.g. "x.msproj: member 'mask.png': ..." (exit 2)
    win.show()
    win.resize(1480, 900)
    app.processEvents()
    win.canvas.fit()
    ok = wait_for_render(app, win)
    for _ in range(5):
        app.processEvents()
        time.sleep(0.02)
    try:
        shot.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _close_clean(win)
        raise file_error(MaskStudioError, shot, f"cannot create its folder ({e.strerror or e})") from e
    if not win.grab().save(str(shot)):
        _close_clean(win)
        raise file_error(MaskStudioError, shot, "could not save the screenshot (unknown image format?)")
    if errors:
        _close_clean(win)
        raise MaskStudioError(errors[0])
    if not ok:
        log.warning("no render arrived before the screenshot")
        print("maskstudio gui: warning: no render arrived before the screenshot", file=sys.stderr)
    _close_clean(win)
    return 0
