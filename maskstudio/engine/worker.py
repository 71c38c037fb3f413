"""One render thread, newest request wins (the stylegan3 visualizer's AsyncRenderer idea).

- ``submit(job)`` never blocks: it puts the job into a one-element pending slot. A job that was
  still pending is *dropped* (it never runs). The job that is running gets its
  :class:`CancelToken` set when ``cancellable(job)`` says so (the engine: full-size renders are
  cancellable, short previews are not — a preview that finishes during a drag is useful
  feedback), so it stops at its next stage boundary (work already done stays in the pipeline
  caches, so the newer job reuses it).
- Results carry the job id; a cancelled job delivers nothing; a job that completed is
  delivered even if a newer one is pending (the caller drops results older than the one shown). Exceptions inside the
  job function become values (the job function is expected to catch them itself; anything that
  still escapes is turned into an error result here — nothing is raised across threads).
- ``wait_idle()`` / ``drain()`` serve tests and the CLI.
"""
from __future__ import annotations

import itertools
import logging
import threading
import traceback
from typing import Any, Callable

_log = logging.getLogger(__name__)

__all__ = ["CancelToken", "Cancelled", "LatestWinsWorker"]


class Cancelled(Exception):
    """Raised inside a job at a stage boundary when a newer request superseded it."""


class CancelToken:
    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()


class LatestWinsWorker:
    """Runs ``fn(job_id, job, token) -> result`` on one daemon thread; delivers ``deliver(result)``.

    ``on_error(job_id, job, exc_text) -> result`` builds the error value for an exception that
    escaped ``fn`` (a bug); it is delivered like any result.
    """

    def __init__(
        self,
        fn: Callable[[int, Any, CancelToken], Any],
        deliver: Callable[[Any], None] | None,
        on_error: Callable[[int, Any, str], Any],
        name: str = "maskstudio-render",
        cancellable: Callable[[Any], bool] = lambda job: True,
        thread_init: Callable[[], None] | None = None,
    ) -> None:
        self._thread_init = thread_init
        self._cancellable = cancellable
        self._fn = fn
        self._deliver = deliver
        self._on_error = on_error
        self._ids = itertools.count(1)
        self._cv = threading.Condition()
        self._pending: tuple[int, Any] | None = None
        self._running_token: CancelToken | None = None
        self._running_job: Any = None
        self._running_id = 0
        self._busy = False
        self._closed = False
        self.submitted = 0
        self.dropped = 0      # replaced while pending: never ran
        self.cancelled = 0    # started, stopped at a stage boundary
        self.completed = 0    # delivered
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # -- caller side --------------------------------------------------------------------------
    def submit(self, job: Any) -> int:
        with self._cv:
            if self._closed:
                raise RuntimeError("worker is closed")
            job_id = next(self._ids)
            self.submitted += 1
            if self._pending is not None:
                self.dropped += 1
            self._pending = (job_id, job)
            if self._running_token is not None and self._cancellable(self._running_job):
                self._running_token.cancel()
            self._cv.notify_all()
            return job_id

    def cancel(self) -> None:
        """Drop the pending job and cancel the running one."""
        with self._cv:
            self._cancel_locked()

    def _cancel_locked(self) -> None:
        """``cancel`` with ``_cv`` already held: drop pending, cancel running, wake the worker."""
        if self._pending is not None:
            self.dropped += 1
            self._pending = None
        if self._running_token is not None:
            self._running_token.cancel()
        self._cv.notify_all()

    @property
    def busy(self) -> bool:
        with self._cv:
            return self._busy or self._pending is not None

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is pending or running. Returns False on timeout."""
        with self._cv:
            return self._cv.wait_for(lambda: not self._busy and self._pending is None, timeout)

    def close(self, timeout: float = 5.0) -> None:
        with self._cv:
            self._closed = True
            self._cancel_locked()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def set_deliver(self, deliver: Callable[[Any], None] | None) -> None:
        self._deliver = deliver

    # -- worker side --------------------------------------------------------------------------
    def _loop(self) -> None:
        if self._thread_init is not None:
            try:
                self._thread_init()
            except Exception:  # noqa: BLE001 - a failed tuning step must not kill the worker
                _log.exception("worker thread set-up failed (the worker runs on without it)")
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._pending is not None or self._closed)
                if self._closed:
                    self._busy = False
                    self._cv.notify_all()
                    return
                job_id, job = self._pending  # type: ignore[misc]
                self._pending = None
                token = CancelToken()
                self._running_token = token
                self._running_job = job
                self._running_id = job_id
                self._busy = True
            result = None
            try:
                result = self._fn(job_id, job, token)
            except Cancelled:
                result = None
            except BaseException:  # noqa: BLE001 - errors are values, never raised across threads
                result = self._on_error(job_id, job, traceback.format_exc(limit=-3))
            deliver = self._deliver
            if result is None:
                with self._cv:
                    self.cancelled += 1
            elif deliver is not None:
                try:
                    deliver(result)
                except Exception:  # noqa: BLE001 - a broken callback must not kill the worker
                    _log.exception("delivering result %s failed (a bug in the callback)", job_id)
                with self._cv:
                    self.completed += 1
            else:
                with self._cv:
                    self.completed += 1
            with self._cv:
                self._running_token = None
                self._running_job = None
                self._busy = False
                self._cv.notify_all()
