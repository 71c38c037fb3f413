"""Autosave + crash recovery bookkeeping (files only; the edit session decides when to call it).

A session writes ``session.lock`` (its pid) when it starts and removes it, with the autosave, on a
clean exit. A lock left behind means the previous session crashed: if its autosave exists the
window offers to recover it.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from maskstudio.io.project import Project, load_project, save_project

AUTOSAVE_NAME = "autosave.msproj"
LOCK_NAME = "session.lock"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


class AutosaveStore:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / AUTOSAVE_NAME
        self.lock = self.folder / LOCK_NAME
        self.last_saved_at: float | None = None

    def crashed_session(self) -> bool:
        """True when a previous session did not end cleanly and left an autosave behind."""
        if not (self.lock.is_file() and self.path.is_file()):
            return False
        try:
            pid = int(json.loads(self.lock.read_text()).get("pid", 0))
        except (OSError, ValueError, AttributeError):
            pid = 0
        # Another live MaskStudio owns it: not a crash. Our own pid can only mean a test restart.
        return pid == os.getpid() or not _pid_alive(pid)

    def start_session(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lock.write_text(json.dumps({"pid": os.getpid(), "started": time.time()}))

    def end_session(self) -> None:
        for p in (self.lock, self.path):
            try:
                p.unlink(missing_ok=True)
            except OSError:
                pass

    def save(self, project: Project) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        save_project(self.path, project)
        self.last_saved_at = time.time()
        return self.path

    def load(self) -> Project:
        return load_project(self.path)

    def discard(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass
