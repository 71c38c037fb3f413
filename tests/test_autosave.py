"""Crash recovery that never loses work: one autosave per window under an OS file lock, real
files, and real processes killed with SIGKILL."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from maskstudio.session.project import Project, save_project
from maskstudio.session import AutosaveStore, EditSession, remove_stale_tmp

ROOT = Path(__file__).resolve().parent.parent


def project(value: int) -> Project:
    return Project(labels=np.full((16, 16), value, np.uint8))


def crashed_process(folder: Path, value: int, session_id: str = "victim") -> None:
    """A real process that autosaves and is then killed with SIGKILL (no clean exit)."""
    code = (
        "import sys, time, numpy as np\n"
        "from maskstudio.session.project import Project\n"
        "from maskstudio.session import AutosaveStore\n"
        f"s = AutosaveStore({str(folder)!r}, session_id={session_id!r})\n"
        "s.start_session()\n"
        f"s.save(Project(labels=np.full((16, 16), {value}, np.uint8)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert p.stdout.readline().strip() == "ready"
    finally:
        p.send_signal(signal.SIGKILL) if hasattr(signal, "SIGKILL") else p.kill()
        p.wait(30)


def test_two_windows_on_one_folder_never_take_each_others_work(tmp_path):
    a, b = AutosaveStore(tmp_path), AutosaveStore(tmp_path)
    a.start_session()
    b.start_session()
    a.save(project(1))
    b.save(project(2))
    assert a.path != b.path
    c = AutosaveStore(tmp_path)
    assert c.find_crashed() == []                 # both alive (same process, separate locks)
    b.end_session()                                # a clean exit deletes only its own files
    assert not b.path.exists() and not b.lock.exists()
    assert a.path.is_file() and a.lock.is_file() and a.active
    a.abandon()                                    # now a "crashes"
    found = c.find_crashed()
    assert [f.path for f in found] == [a.path]
    np.testing.assert_array_equal(found[0].load().labels, project(1).labels)
    found[0].release()


def test_killed_process_leaves_recoverable_work_even_when_its_pid_is_reused(tmp_path):
    crashed_process(tmp_path, 7)
    lock = tmp_path / "autosave-victim.lock"
    # pid reuse: the lock file names a live process (this one); only the OS lock counts
    lock.write_text(json.dumps({"pid": os.getpid(), "started": time.time()}))
    s = AutosaveStore(tmp_path)
    s.start_session()
    found = s.find_crashed()
    assert len(found) == 1 and found[0].path.name == "autosave-victim.msproj"
    # while this window decides, a second window starting now does not see it
    other = AutosaveStore(tmp_path)
    assert other.find_crashed() == []
    found[0].release()
    assert len(other.find_crashed()) == 1


def test_recovery_autosaves_before_deleting_the_crashed_files(tmp_path):
    crashed_process(tmp_path, 9)
    store = AutosaveStore(tmp_path)
    store.start_session()
    s = EditSession(store)
    (crashed,) = store.find_crashed()
    s.recover(crashed)
    assert s.dirty and int(s.doc.labels[0, 0]) == 9
    assert store.path.is_file()                           # the work is in our own autosave now ...
    assert not (tmp_path / "autosave-victim.msproj").exists()   # ... and only then the old one went
    assert not (tmp_path / "autosave-victim.lock").exists()
    assert AutosaveStore(tmp_path).find_crashed() == []   # we are alive: nothing to offer
    store.end_session()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_damaged_crashed_autosave_is_kept(tmp_path):
    crashed_process(tmp_path, 3)
    (tmp_path / "autosave-victim.msproj").write_bytes(b"not a zip")
    store = AutosaveStore(tmp_path)
    (crashed,) = store.find_crashed()
    from maskstudio.errors import ProjectFileError

    with pytest.raises(ProjectFileError, match="autosave-victim.msproj"):
        EditSession(store).recover(crashed)
    assert (tmp_path / "autosave-victim.msproj").exists() and len(store.find_crashed()) == 1


def test_stale_locks_and_tmp_files_are_cleaned_up_on_start(tmp_path):
    crashed_process(tmp_path, 5)
    # a dead session that never autosaved, and a killed save of the crashed one
    (tmp_path / "autosave-gone.lock").write_text("{}")
    (tmp_path / "autosave-victim.msproj.tmp").write_bytes(b"half")
    live = AutosaveStore(tmp_path)
    live.start_session()
    live_tmp = tmp_path / f"{live.path.name}.tmp"
    live_tmp.write_bytes(b"being written")
    s = AutosaveStore(tmp_path)
    s.start_session()
    removed = {p.name for p in s.cleanup_stale()}
    assert removed == {"autosave-gone.lock", "autosave-victim.msproj.tmp"}
    assert live_tmp.exists() and (tmp_path / "autosave-victim.msproj").exists()   # work is kept
    # beside user files: only old temporary files of atomic saves go
    proj = tmp_path / "work.msproj"
    save_project(proj, project(1))
    old, young = tmp_path / "work.msproj.tmp", tmp_path / f".work.msproj.{os.getpid()}.tmp"
    old.write_bytes(b"killed save")
    young.write_bytes(b"a save in progress")
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    assert remove_stale_tmp([proj]) == [old]
    assert young.exists() and proj.exists()


def test_legacy_autosave_is_offered_when_its_pid_is_gone(tmp_path):
    save_project(tmp_path / "autosave.msproj", project(4))
    (tmp_path / "session.lock").write_text(json.dumps({"pid": os.getppid()}))   # a live other process
    s = AutosaveStore(tmp_path)
    assert s.find_crashed() == []
    (tmp_path / "session.lock").write_text(json.dumps({"pid": 2 ** 22 + 12345}))  # no such pid
    (found,) = s.find_crashed()
    assert found.path.name == "autosave.msproj"
    found.discard()
    assert not (tmp_path / "autosave.msproj").exists() and not (tmp_path / "session.lock").exists()
