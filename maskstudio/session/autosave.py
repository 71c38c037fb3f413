"""Autosave + crash recovery that never loses work (files only; the edit session decides when).

Every window (every :class:`AutosaveStore`) has its own session id and two files in the state
folder: ``autosave-<id>.msproj`` and ``autosave-<id>.lock``. The lock file holds an OS file
lock (``fcntl.flock`` / ``msvcrt.locking``) for as long as the session lives. The operating
system drops that lock when the process ends in any way, kill -9 included, and never hands it
to another process — so, unlike a pid in a file, it survives pid reuse, and two windows on one
state folder never mistake each other for a crash.

- A clean exit (:meth:`AutosaveStore.end_session`) deletes only its own two files.
- At start, :meth:`AutosaveStore.find_crashed` looks for autosaves whose lock nobody holds:
  their session crashed. It takes the crashed session's lock itself, so two windows starting
  at once never both offer (or delete) the same work; :class:`CrashedAutosave` then loads it,
  discards it or releases it for later (nothing is deleted unless the user said so or the work
  was recovered and autosaved again).
- :meth:`AutosaveStore.cleanup_stale` deletes what killed sessions left behind without work
  to recover: lock files without an autosave and half-written ``.tmp`` files of atomic saves.
  :func:`remove_stale_tmp` does the same beside other files (e.g. recent projects).
- The format before this one (``session.lock`` with a pid + ``autosave.msproj``) is still
  found and offered when its pid is gone.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from maskstudio.session.project import Project, load_project, save_project

PREFIX = "autosave-"
AUTOSAVE_SUFFIX = ".msproj"
LOCK_SUFFIX = ".lock"
LEGACY_AUTOSAVE = "autosave.msproj"
LEGACY_LOCK = "session.lock"
#: ``.tmp`` files beside user files are removed only when older than this (a live save is never older)
STALE_TMP_AGE_S = 600.0
_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")

# backward-compatible names
AUTOSAVE_NAME = LEGACY_AUTOSAVE
LOCK_NAME = LEGACY_LOCK

__all__ = ["AutosaveStore", "CrashedAutosave", "remove_stale_tmp", "STALE_TMP_AGE_S"]


# ---------------------------------------------------------------------------- OS file locks
def _try_lock(fh: IO[bytes]) -> bool:
    """Exclusive, non-blocking lock on an open file; False when another holder has it."""
    if sys.platform == "win32":
        import msvcrt

        try:
            fh.seek(0)
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    import fcntl

    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _open_locked(path: Path) -> IO[bytes] | None:
    """Open ``path`` (created when missing) and lock it; None when it is locked by someone else."""
    try:
        fh = open(path, "a+b")
    except OSError:
        return None
    if _try_lock(fh):
        return fh
    fh.close()
    return None


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


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


def _tmp_files_of(path: Path) -> list[Path]:
    """Temporary files atomic writes of ``path`` leave when killed: ``<name>.tmp`` (project
    saves) and ``.<name>.<pid>.tmp`` (:func:`maskstudio.files.atomic_write`)."""
    folder = path.parent
    out = [folder / f"{path.name}.tmp"]
    try:
        out += [p for p in folder.glob(f".{glob_escape(path.name)}.*.tmp")]
    except OSError:
        pass
    return [p for p in out if p.is_file()]


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


def remove_stale_tmp(paths: Iterable[str | os.PathLike[str]], min_age_s: float = STALE_TMP_AGE_S) -> list[Path]:
    """Delete half-written temporary files of killed atomic saves beside ``paths`` (e.g. the
    recent project files) that are older than ``min_age_s``. Returns what was deleted."""
    removed = []
    now = time.time()
    for p in paths:
        for tmp in _tmp_files_of(Path(p)):
            try:
                if now - tmp.stat().st_mtime >= min_age_s:
                    tmp.unlink()
                    removed.append(tmp)
            except OSError:
                continue
    return removed


# ---------------------------------------------------------------------------- crashed sessions
class CrashedAutosave:
    """The autosave of a session that did not end cleanly. Its lock is held by this object
    (nobody else can offer or delete it) until :meth:`discard` or :meth:`release`."""

    def __init__(self, path: Path, lock_path: Path, lock_fh: IO[bytes] | None) -> None:
        self.path = path
        self.lock_path = lock_path
        self._fh = lock_fh
        try:
            self.saved_at = path.stat().st_mtime
        except OSError:
            self.saved_at = 0.0

    def load(self) -> Project:
        """The crashed session's project (ProjectFileError naming the file when damaged)."""
        return load_project(self.path)

    def discard(self) -> None:
        """Delete the crashed session's files (its work is recovered elsewhere, or unwanted)."""
        _unlink(self.path)
        for tmp in _tmp_files_of(self.path):
            _unlink(tmp)
        _unlink(self.lock_path)
        self.release()

    def release(self) -> None:
        """Keep the files for a later start; let others see them again."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __repr__(self) -> str:
        return f"CrashedAutosave({self.path})"


class AutosaveStore:
    """The autosave of one window in ``folder``. ``session_id``: unique per window (default: a
    fresh one); files ``autosave-<id>.msproj`` / ``.lock``."""

    def __init__(self, folder: str | os.PathLike[str], session_id: str | None = None) -> None:
        self.folder = Path(folder)
        sid = session_id or f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        if not _ID.match(sid):
            raise ValueError(f"session id {sid!r}: letters, digits, - and _ only")
        self.session_id = sid
        self.path = self.folder / f"{PREFIX}{sid}{AUTOSAVE_SUFFIX}"
        self.lock = self.folder / f"{PREFIX}{sid}{LOCK_SUFFIX}"
        self.last_saved_at: float | None = None
        self._fh: IO[bytes] | None = None

    # -------------------------------------------------------------- own session
    @property
    def active(self) -> bool:
        """This store holds its session lock."""
        return self._fh is not None

    def start_session(self) -> None:
        """Take this session's lock (and note pid + start time in the file, for people)."""
        if self._fh is not None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        fh = _open_locked(self.lock)
        if fh is None:
            raise RuntimeError(f"{self.lock}: session lock held by another process (session id reused?)")
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "started": time.time()}).encode())
        fh.flush()
        self._fh = fh

    def end_session(self) -> None:
        """Clean exit: delete this session's autosave and lock — nobody else's."""
        _unlink(self.path)
        for tmp in _tmp_files_of(self.path):
            _unlink(tmp)
        _unlink(self.lock)
        self.abandon()

    def abandon(self) -> None:
        """Let go of the lock and leave the files: exactly what a crash leaves behind (tests
        use it to simulate one; the next :meth:`save` takes the lock again)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def save(self, project: Project) -> Path:
        """Write the autosave (atomic); the session lock is held while there is an autosave."""
        self.start_session()
        save_project(self.path, project)
        self.last_saved_at = time.time()
        return self.path

    def load(self) -> Project:
        return load_project(self.path)

    def discard(self) -> None:
        """Delete this session's autosave (the lock stays: the session goes on)."""
        _unlink(self.path)

    # -------------------------------------------------------------- other sessions
    def _candidates(self) -> list[tuple[Path, Path, bool]]:
        """(autosave, lock, legacy) of other sessions in the folder."""
        out = []
        try:
            locks = sorted(self.folder.glob(f"{PREFIX}*{LOCK_SUFFIX}"))
        except OSError:
            return []
        for lock in locks:
            if lock == self.lock:
                continue
            sid = lock.name[len(PREFIX):-len(LOCK_SUFFIX)]
            out.append((self.folder / f"{PREFIX}{sid}{AUTOSAVE_SUFFIX}", lock, False))
        # an autosave whose lock file is gone (deleted by hand): nobody can hold it
        for auto in sorted(self.folder.glob(f"{PREFIX}*{AUTOSAVE_SUFFIX}")):
            sid = auto.name[len(PREFIX):-len(AUTOSAVE_SUFFIX)]
            lock = self.folder / f"{PREFIX}{sid}{LOCK_SUFFIX}"
            if auto != self.path and not lock.exists():
                out.append((auto, lock, False))
        legacy = self.folder / LEGACY_AUTOSAVE
        if legacy.is_file():
            out.append((legacy, self.folder / LEGACY_LOCK, True))
        return out

    def _legacy_alive(self, lock: Path) -> bool:
        try:
            pid = int(json.loads(lock.read_text()).get("pid", 0))
        except (OSError, ValueError, AttributeError):
            return False
        return pid != os.getpid() and _pid_alive(pid)

    def find_crashed(self) -> list[CrashedAutosave]:
        """Autosaves of sessions that ended without a clean exit, newest first. Each returned
        one is locked by this process until it is discarded or released."""
        found = []
        for auto, lock, legacy in self._candidates():
            if legacy:
                if lock.is_file() and self._legacy_alive(lock):
                    continue
                fh = None
            else:
                fh = _open_locked(lock)
                if fh is None:
                    continue          # a live session (this process or another) holds it
            if not auto.is_file():    # nothing to recover (a clean exit raced us, or no autosave yet)
                if fh is not None:
                    fh.close()
                continue
            found.append(CrashedAutosave(auto, lock, fh))
        found.sort(key=lambda c: c.saved_at, reverse=True)
        return found

    def crashed_session(self) -> bool:
        """True when some earlier session crashed and left work to recover (locks released)."""
        crashed = self.find_crashed()
        for c in crashed:
            c.release()
        return bool(crashed)

    def cleanup_stale(self) -> list[Path]:
        """Delete what dead sessions left without work to recover: lock files without an
        autosave, and temporary files of killed atomic saves. Returns what was deleted."""
        removed: list[Path] = []
        try:
            locks = list(self.folder.glob(f"{PREFIX}*{LOCK_SUFFIX}"))
        except OSError:
            return removed
        for lock in locks:
            if lock == self.lock:
                continue
            fh = _open_locked(lock)
            if fh is None:
                continue              # alive
            try:
                sid = lock.name[len(PREFIX):-len(LOCK_SUFFIX)]
                auto = self.folder / f"{PREFIX}{sid}{AUTOSAVE_SUFFIX}"
                for tmp in _tmp_files_of(auto):
                    _unlink(tmp)
                    removed.append(tmp)
                if not auto.exists():
                    _unlink(lock)
                    removed.append(lock)
            finally:
                fh.close()
        removed += remove_stale_tmp([self.folder / LEGACY_AUTOSAVE])
        return removed
