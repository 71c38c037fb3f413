"""The one way the UI runs work off the GUI thread: :class:`JobRunner` + :class:`JobOutcome`.

A job is a plain function ``fn(ctx: JobContext) -> value`` run on a ``QThread``. Whatever
happens, exactly one :class:`JobOutcome` comes back to the GUI thread (a queued signal):

- the value, or
- ``error``: a one-line message — a :class:`~maskstudio.errors.MaskStudioError` is an expected
  failure (bad file, missing model) and is passed on as it is; any other exception is a bug:
  it is logged with its traceback (``logging``, never printed) and reported as
  "Unexpected error (Type): message" with ``bug=True``;
- ``cancelled``: the job was asked to stop (:meth:`JobRunner.cancel`); a job may still return
  a value (e.g. the best result so far), or raise one of ``cancel_exceptions``.

``ctx.report(value)`` sends any progress value to the GUI thread (queued);
``ctx.progress(percent, text)`` sends ``(percent, text)``; ``ctx.cancelled`` tells the job to
stop. Jobs never raise across threads.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from maskstudio.errors import MaskStudioError

log = logging.getLogger(__name__)

__all__ = ["JobContext", "JobOutcome", "JobRunner"]


@dataclass
class JobOutcome:
    """What a background job produced; errors are values."""

    name: str
    value: Any = None
    error: str | None = None
    cancelled: bool = False
    bug: bool = False            # the error was an unexpected exception (logged with traceback)
    latency_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class JobContext:
    """Handed to a job function: progress reports and the cancel request."""

    def __init__(self, job: _JobThread) -> None:
        self._job = job
        self.cancel_event = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def report(self, value: Any) -> None:
        """Send ``value`` to the job's progress callback (on the GUI thread)."""
        self._job.progress.emit(value)

    def progress(self, percent: int, text: str = "") -> None:
        self.report((int(percent), str(text)))

    def wait(self, ms: int = 30000) -> bool:
        """Block until the job's thread ended (its outcome is still delivered through the GUI
        thread's event loop). True when it did within ``ms``."""
        return self._job.wait(ms)


#: every job whose thread has not been reaped yet: a job outlives the runner (or widget) that
#: started it until its thread has ended, so no QThread is ever destroyed while it runs
_LIVE: set[_JobThread] = set()


class _JobThread(QThread):
    progress = Signal(object)    # whatever the job reports
    done = Signal(object)        # JobOutcome

    def __init__(self, name: str, fn: Callable[[JobContext], Any], cancel_exceptions: tuple[type[BaseException], ...],
                 on_done: Callable[[JobOutcome], None], owner: set[_JobThread]) -> None:
        super().__init__()           # no Qt parent: _LIVE owns it until its thread ended
        self.name = name
        self._fn = fn
        self._cancel_exceptions = cancel_exceptions
        self._on_done: Callable[[JobOutcome], None] | None = on_done
        self._owner = owner
        self.ctx = JobContext(self)
        # bound methods of this QObject: queued to the GUI thread (where the job object lives),
        # and no reference cycle through a closure
        self.done.connect(self._deliver)
        self.finished.connect(self._reap)

    def run(self) -> None:
        t0 = time.perf_counter()
        out = JobOutcome(self.name)
        try:
            out.value = self._fn(self.ctx)
            out.cancelled = self.ctx.cancelled
        except self._cancel_exceptions as e:
            out.cancelled, out.error = True, str(e) or "cancelled"
        except MaskStudioError as e:
            out.error = str(e) or e.__class__.__name__
        except Exception as e:  # noqa: BLE001 - a bug: logged, delivered as a value, never raised across threads
            log.exception("background job %r failed", self.name)
            out.error, out.bug = f"Unexpected error ({e.__class__.__name__}): {e}", True
        out.latency_ms = (time.perf_counter() - t0) * 1e3
        self.done.emit(out)

    def _deliver(self, out: JobOutcome) -> None:
        cb, self._on_done = self._on_done, None
        if cb is not None:
            cb(out)

    def _reap(self) -> None:
        self.wait()                  # finished() comes right before the thread's very end
        self._owner.discard(self)
        _LIVE.discard(self)
        self.deleteLater()


class JobRunner(QObject):
    """Starts background jobs and keeps them alive until they are finished and delivered.

    ``start(name, fn, done, progress=None)``: ``done(JobOutcome)`` and ``progress(value)``
    (what the job reported) are called on the GUI thread. ``exclusive=True`` refuses a job while another
    exclusive job of this runner is running (one tool at a time)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: set[_JobThread] = set()
        self._exclusive: _JobThread | None = None

    @property
    def busy(self) -> bool:
        """An exclusive job is running (until its outcome is delivered)."""
        return self._exclusive is not None

    @property
    def running(self) -> int:
        return len(self._jobs)

    def start(self, name: str, fn: Callable[[JobContext], Any], done: Callable[[JobOutcome], None] | None = None,
              progress: Callable[[Any], None] | None = None, *, exclusive: bool = False,
              cancel_exceptions: tuple[type[BaseException], ...] = ()) -> JobContext:
        from maskstudio.errors import RenderError

        if exclusive and self._exclusive is not None:
            raise RenderError(f"{name}: {self._exclusive.name} is still running (cancel it first)")
        state: dict[str, _JobThread | None] = {"job": None}

        def on_done(out: JobOutcome) -> None:
            if self._exclusive is state["job"]:
                self._exclusive = None
            state["job"] = None
            if done is not None:
                done(out)

        job = _JobThread(name, fn, cancel_exceptions, on_done, self._jobs)
        state["job"] = job
        if progress is not None:
            job.progress.connect(progress)
        self._jobs.add(job)
        _LIVE.add(job)
        if exclusive:
            self._exclusive = job
        job.start()
        return job.ctx

    def cancel(self) -> None:
        """Ask every running job to stop."""
        for job in list(self._jobs):
            job.ctx.cancel_event.set()

    def wait(self, ms: int = 30000) -> bool:
        """Block until every job's thread ended (at close). True when all did within ``ms`` each."""
        return all(job.wait(ms) for job in list(self._jobs))
