"""The Models dialog: real store, real 127.0.0.1 HTTP server, real worker thread."""
from __future__ import annotations

import numpy as np
import pytest

import model_files as mf
from model_http import serve
from maskstudio.io.registry import load_registry
from maskstudio.io.store import ModelStore

BASE = load_registry()


@pytest.fixture
def make_dialog(qtbot, settings, recorder, tmp_path):
    from maskstudio.ui.models_dialog import ModelsDialog

    def make(changes=None, **kw):
        kw.setdefault("retries", 0)
        kw.setdefault("retry_wait_s", 0.0)
        store = ModelStore(tmp_path / "models", registry=mf.tiny_registry(BASE, **(changes or {})),
                           shipped_dir=settings.shipped_checkpoints, **kw)
        dlg = ModelsDialog(settings, store=store)
        qtbot.addWidget(dlg)
        dlg.show()
        qtbot.waitExposed(dlg)
        return dlg

    return make


def run_job(qtbot, dlg, trigger, timeout=20000):
    with qtbot.waitSignal(dlg.jobFinished, timeout=timeout) as blocker:
        trigger()
    return blocker.args


def test_constructor_matches_the_main_window_call(qtbot, settings):
    from maskstudio.ui.models_dialog import ModelsDialog

    dlg = ModelsDialog(settings, parent=None)
    qtbot.addWidget(dlg)
    assert dlg.table.rowCount() == len(BASE)
    assert str(settings.models_dir) in dlg.folder_label.text()


def test_install_over_http_with_progress(qtbot, make_dialog, recorder, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    files = mf.write_directions(src)
    with serve(files) as srv:
        dlg = make_dialog({"e4e_directions": {"files": {n: {"urls": [srv.url(n)]} for n in files}}})
        dlg.select("e4e_directions")
        assert dlg.btn_install.isEnabled() and not dlg.btn_remove.isEnabled()
        seen = []
        dlg.progress.valueChanged.connect(seen.append)
        assert run_job(qtbot, dlg, dlg.btn_install.click) == ["install", True]
    assert recorder.errors == []
    assert dlg.state_of("e4e_directions") == "installed"
    assert dlg.progress.value() == 1000 and any(0 < v < 1000 for v in seen) or 1000 in seen
    assert "Installed e4e_directions" in dlg.status.text()
    assert dlg.btn_remove.isEnabled() and dlg.btn_verify.isEnabled()
    # verify, then remove (confirmed)
    assert run_job(qtbot, dlg, dlg.btn_verify.click) == ["verify", True]
    assert recorder.infos and "e4e_directions" in recorder.infos[-1][1]
    recorder.answers.append("Remove")
    assert run_job(qtbot, dlg, dlg.btn_remove.click) == ["remove", True]
    assert dlg.state_of("e4e_directions") == "available"
    assert not (tmp_path / "models" / "e4e_directions").exists()


def test_cancel_stops_the_download_and_installs_nothing(qtbot, make_dialog, recorder, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    files = mf.write_directions(src)
    with serve(files, delay_s=0.5) as srv:
        dlg = make_dialog({"e4e_directions": {"files": {n: {"urls": [srv.url(n)]} for n in files}}})
        dlg.select("e4e_directions")
        with qtbot.waitSignal(dlg.jobFinished, timeout=20000) as blocker:
            dlg.btn_install.click()
            assert dlg.btn_cancel.isEnabled() and not dlg.btn_install.isEnabled()
            dlg.btn_cancel.click()
        assert blocker.args == ["install", False]
    assert recorder.errors == []  # a cancel is not an error
    assert "Cancelled" in dlg.status.text()
    assert dlg.state_of("e4e_directions") == "available"
    assert not (tmp_path / "models" / "e4e_directions").exists()
    assert not dlg.btn_cancel.isEnabled() and dlg.btn_install.isEnabled()


def test_import_wrong_file_shows_clear_error(qtbot, make_dialog, recorder, tmp_path):
    path, _ = mf.write_stylegan2(tmp_path / "stylegan2-ffhq-config-f.pt")
    dlg = make_dialog()
    dlg.select("maskgan_dmn")
    assert not dlg.btn_install.isEnabled() and dlg.btn_import.isEnabled()  # manual-only entry
    recorder.paths.append(str(path))
    assert run_job(qtbot, dlg, dlg.btn_import.click) == ["import", False]
    title, message = recorder.errors[-1]
    assert "maskgan_dmn" in title and "wrong file for maskgan_dmn" in message and "stylegan2" in message
    assert dlg.state_of("maskgan_dmn") == "manual"


def test_import_official_dmn_and_dualstylegan_pair(qtbot, make_dialog, recorder, tmp_path):
    dmn, _ = mf.write_dmn(tmp_path / "latest_net_G.pth")
    g, c, _ = mf.write_dualstylegan(tmp_path)
    dlg = make_dialog()
    dlg.select("maskgan_dmn")
    recorder.paths.append(str(dmn))
    assert run_job(qtbot, dlg, dlg.btn_import.click) == ["import", True]
    assert dlg.state_of("maskgan_dmn") == "installed"
    dlg.select("dualstylegan_cartoon")
    recorder.paths.extend([str(g), str(c)])  # generator first, then the style codes
    assert run_job(qtbot, dlg, dlg.btn_import.click) == ["import", True]
    assert recorder.errors == []
    from maskstudio.models.checkpoints import load_checkpoint

    loaded = load_checkpoint(tmp_path / "models" / "dualstylegan_cartoon" / "dualstylegan_cartoon.safetensors")
    assert len(loaded.meta["exstyle_names"]) == 2
    assert all(loaded.extras[f"exstyle_code.{n}"].shape == (1, 4, 512) for n in loaded.meta["exstyle_names"])


def test_verify_all_reports_damage(qtbot, make_dialog, recorder, tmp_path):
    src = tmp_path / "b"
    src.mkdir()
    np.save(src / "boundary_Smiling.npy", np.random.default_rng(0).standard_normal((1, 512)))
    dlg = make_dialog()
    dlg.select("interfacegan_stylegan2_ffhq")
    recorder.paths.append(str(src))
    assert run_job(qtbot, dlg, dlg.btn_import.click) == ["import", True]
    (tmp_path / "models" / "interfacegan_stylegan2_ffhq" / "boundary_Smiling.npy").write_bytes(b"broken")
    assert run_job(qtbot, dlg, dlg.btn_verify_all.click) == ["verify", False]
    assert "interfacegan_stylegan2_ffhq" in recorder.errors[-1][1]


def test_screenshot(qtbot, make_dialog, tmp_path):
    """Offscreen grab for a visual check (written to $MASKSTUDIO_SCREENSHOT_DIR when set)."""
    import os

    dlg = make_dialog()
    dlg.resize(1000, 620)
    dlg.select("dualstylegan_cartoon")
    img = dlg.grab().toImage()
    assert img.width() > 500 and img.height() > 300
    out = os.environ.get("MASKSTUDIO_SCREENSHOT_DIR")
    if out:
        img.save(os.path.join(out, "models_dialog.png"))


def test_open_folder_asks_the_desktop_for_the_models_dir(qtbot, make_dialog, tmp_path):
    from PySide6.QtCore import QObject, QUrl, Slot
    from PySide6.QtGui import QDesktopServices

    class Catch(QObject):
        def __init__(self):
            super().__init__()
            self.urls = []

        @Slot(QUrl)
        def handle(self, url):
            self.urls.append(url.toLocalFile())

    catch = Catch()
    QDesktopServices.setUrlHandler("file", catch, "handle")
    try:
        dlg = make_dialog()
        assert dlg.open_folder()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert catch.urls == [str(tmp_path / "models")]
    assert (tmp_path / "models").is_dir()
