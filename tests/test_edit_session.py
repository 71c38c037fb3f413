"""EditSession (headless, no Qt): document and tool state, dirty/busy, projects and autosave
with real files in tmp_path; history snapshots come from the undo patches and never touch the
live document."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from maskstudio.engine.render_settings import AgileSettings, RenderSettings
from maskstudio.engine.types import Exemplar
from maskstudio.errors import ProjectFileError
from maskstudio.session.project import load_project
from maskstudio.session import AUTOSAVE_HISTORY, AutosaveStore, EditSession

H = W = 32


def face() -> np.ndarray:
    lab = np.zeros((H, W), np.uint8)
    lab[6:28, 8:24] = 1     # skin
    lab[12:14, 10:14] = 4   # l_eye
    return lab


def exemplar(name: str = "ann") -> Exemplar:
    img = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    return Exemplar(img, face(), name=name)


class Events:
    def __init__(self, s: EditSession) -> None:
        self.got: list[str] = []
        s.add_listener(self.got.append)


def paint(s: EditSession, cls: int, row: int) -> None:
    s.doc.stroke([(2, row), (W - 2, row)], 3.0, cls)


def test_qt_and_torch_free():
    import subprocess

    code = ("import sys, maskstudio.session as s; s.EditSession(); "
            "bad = [m for m in ('PySide6', 'torch', 'qtawesome') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_new_document_carries_locks_and_mirror_and_is_clean():
    s = EditSession()
    ev = Events(s)
    s.set_locked(1, True)
    s.set_mirror(True)
    doc = s.new_document(face())
    assert s.doc is doc and doc.locked == {1} and doc.mirror
    assert "document" in ev.got and not s.dirty
    np.testing.assert_array_equal(s.original_labels, face())
    s.set_locked(1, False)
    s.set_locked(2, True)
    assert doc.locked == {2} == s.locked
    s.set_mirror(False)
    assert not doc.mirror
    paint(s, 13, 2)                        # hair over the background row
    assert s.dirty and s.doc.history == ["Brush (Hair)"]


def test_dirty_tracks_settings_and_exemplar_changes():
    s = EditSession()
    s.new_document(face())
    s.set_exemplar(exemplar(), "/x/ann.png", mark_dirty=False)
    assert not s.dirty and s.exemplar_path.name == "ann.png"
    s.set_render_settings(RenderSettings(output="photo"), mark_dirty=False)
    assert not s.dirty
    s.set_render_settings(RenderSettings(output="photo"))   # unchanged: still clean
    assert not s.dirty
    s.set_render_settings(RenderSettings(output="agile", agile=AgileSettings("t")))
    assert s.dirty
    s.mark_clean()
    assert not s.dirty
    s.set_exemplar(exemplar("bob"))
    assert s.dirty


def test_busy_is_one_flag_over_named_jobs():
    s = EditSession()
    ev = Events(s)
    s.set_busy("render", True)
    s.set_busy("parse", True)
    s.set_busy("render", False)
    assert s.busy and s.busy_jobs == {"parse"}
    s.set_busy("parse", False)
    assert not s.busy
    assert ev.got.count("busy") == 2        # only the changes of the flag itself


def test_history_snapshots_from_patches_leave_the_document_alone():
    s = EditSession()
    doc = s.new_document(face())
    states = []
    for cls, row in ((13, 2), (18, 4), (16, 30)):
        paint(s, cls, row)
        states.append(np.array(doc.labels))
    calls = []
    doc.add_listener(calls.append)
    doc.add_history_listener(lambda: calls.append("history"))
    rev = doc.revision
    snaps = s.history_snapshots(limit=2)
    assert [n for n, _ in snaps] == doc.history[1:]
    for (_, snap), want in zip(snaps, states[1:]):
        np.testing.assert_array_equal(snap, want)
    assert doc.revision == rev and not calls and doc.history_index == 3
    assert len(s.history_snapshots()) == 3
    # during a stroke: the unfinished stroke is not a step and its pixels are left out
    stroke = doc.begin_stroke("brush", 17, 5.0)
    stroke.add_points([(3, 20), (28, 20)])
    snaps = s.history_snapshots()
    np.testing.assert_array_equal(snaps[-1][1], states[-1])
    assert stroke.active and doc.revision > rev
    stroke.end()
    # after undo: only the applied steps
    doc.undo()
    doc.undo()
    snaps = s.history_snapshots()
    assert len(snaps) == 2
    np.testing.assert_array_equal(snaps[-1][1], states[1])
    np.testing.assert_array_equal(doc.labels, states[1])


def test_project_round_trip_restores_history_settings_and_exemplar(tmp_path):
    s = EditSession()
    s.new_document(face(), original_size_hw=(1024, 1024))
    s.set_exemplar(exemplar(), tmp_path / "ann.png", mark_dirty=False)
    paint(s, 13, 2)
    after_first = np.array(s.doc.labels)
    paint(s, 18, 30)
    settings = RenderSettings(output="agile", edits={"smile": 0.5}, agile=AgileSettings("toon", 0.5, "A"))
    s.set_render_settings(settings)
    s.set_latent(np.ones((1, 6, 512)))
    path = s.save_project(tmp_path / "work")           # suffix added
    assert path == tmp_path / "work.msproj" and s.project_path == path and not s.dirty

    t = EditSession()
    ev = Events(t)
    t.open_project(path)
    assert {"document", "settings", "exemplar"} <= set(ev.got)
    np.testing.assert_array_equal(t.doc.labels, s.doc.labels)
    np.testing.assert_array_equal(t.original_labels, face())
    assert t.doc.original_size_hw == (1024, 1024)
    assert t.render_settings == settings and t.exemplar.name == "ann" and t.exemplar_path == tmp_path / "ann.png"
    np.testing.assert_array_equal(t.exemplar.image, s.exemplar.image)
    assert t.latent.dtype == np.float32 and t.latent.shape == (1, 6, 512)
    assert t.doc.history == s.doc.history and not t.dirty and t.project_path == path
    t.doc.undo()
    np.testing.assert_array_equal(t.doc.labels, after_first)
    t.doc.undo()
    np.testing.assert_array_equal(t.doc.labels, face())


def test_open_project_failure_changes_nothing(tmp_path):
    s = EditSession()
    doc = s.new_document(face())
    bad = tmp_path / "bad.msproj"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ProjectFileError, match="bad.msproj"):
        s.open_project(bad)
    assert s.doc is doc and s.project_path is None


def test_autosave_writes_only_changes_and_keeps_a_short_history(tmp_path):
    store = AutosaveStore(tmp_path / "state")
    s = EditSession(store)
    assert not s.autosave_now()                         # no document yet
    s.new_document(face())
    calls = []

    def models():
        calls.append(1)
        return {"face": ["dmn_tiny"]}

    assert s.autosave_now(models=models) and store.path.is_file()
    assert not s.autosave_now(models=models) and len(calls) == 1   # unchanged: not even the identities
    for i in range(AUTOSAVE_HISTORY + 3):
        paint(s, 13 + i % 3, 1 + 2 * (i % 14))
    rev = s.doc.revision
    assert s.autosave_now(models=models)
    assert s.doc.revision == rev                        # the live document was not walked
    proj = load_project(store.path)
    np.testing.assert_array_equal(proj.labels, s.doc.labels)
    assert len(proj.history) == AUTOSAVE_HISTORY and proj.models == {"face": ["dmn_tiny"]}
    # a settings change alone is worth an autosave too
    s.set_render_settings(RenderSettings(face_morph=0.5), mark_dirty=False)
    assert s.autosave_now()
    assert load_project(store.path).render_settings.face_morph == 0.5


def test_recover_brings_back_the_autosave_as_unsaved_work(tmp_path):
    store = AutosaveStore(tmp_path / "state")
    s = EditSession(store)
    s.new_document(face())
    paint(s, 13, 2)
    s.autosave_now()
    s.autosave.abandon()                   # what a crash leaves: the files, no lock holder
    t = EditSession(AutosaveStore(tmp_path / "state"))
    (crashed,) = t.autosave.find_crashed()
    t.recover(crashed)
    np.testing.assert_array_equal(t.doc.labels, s.doc.labels)
    assert t.dirty and t.doc.history == ["Brush (Hair)"]
