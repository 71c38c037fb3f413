"""The one background-job helper: values, expected errors, bugs (logged), cancel, one tool at a time."""
from __future__ import annotations

import logging
import threading

import pytest

from maskstudio.errors import MaskFileError, RenderError
from maskstudio.ui.jobs import JobRunner

TIMEOUT_MS = 10_000


@pytest.fixture(autouse=True)
def gui_thread_gc(qapp):
    """As in the app (MainWindow does this): cyclic garbage collection only on the GUI thread, so
    a collection started by a job thread never frees Qt objects there."""
    from maskstudio.ui.gc_guard import MainThreadGC

    guard = MainThreadGC()
    yield
    guard.release()


def run_one(qtbot, runner, fn, **kw):
    got = []
    runner.start("job", fn, got.append, **kw)
    qtbot.waitUntil(lambda: bool(got), timeout=TIMEOUT_MS)
    assert runner.wait(TIMEOUT_MS)
    return got[0]


def test_value_comes_back_on_the_gui_thread(qtbot, qapp):
    runner = JobRunner()
    worker_thread = []

    def fn(ctx):
        worker_thread.append(threading.current_thread())
        return 41 + 1

    out = run_one(qtbot, runner, fn)
    assert out.ok and out.value == 42 and not out.cancelled and not out.bug and out.latency_ms >= 0
    assert worker_thread[0] is not threading.main_thread()


def test_expected_error_is_a_value_and_not_logged_as_a_bug(qtbot, qapp, caplog):
    def fn(ctx):
        raise MaskFileError("/x/face.png: not a readable image")

    with caplog.at_level(logging.ERROR, logger="maskstudio.ui.jobs"):
        out = run_one(qtbot, JobRunner(), fn)
    assert out.error == "/x/face.png: not a readable image" and not out.bug and out.value is None
    assert not caplog.records


def test_bug_is_logged_with_traceback_and_reported(qtbot, qapp, caplog):
    def fn(ctx):
        return {}["missing"]

    with caplog.at_level(logging.ERROR, logger="maskstudio.ui.jobs"):
        out = run_one(qtbot, JobRunner(), fn)
    assert out.bug and out.error.startswith("Unexpected error (KeyError)")
    rec = [r for r in caplog.records if "background job 'job' failed" in r.getMessage()]
    assert rec and rec[0].exc_info is not None and rec[0].exc_info[0] is KeyError


def test_progress_and_cancel(qtbot, qapp):
    runner = JobRunner()
    reports, got = [], []
    started = threading.Event()

    def fn(ctx):
        ctx.progress(10, "working")
        started.set()
        while not ctx.cancelled:
            ctx.cancel_event.wait(0.01)
        return "best so far"

    runner.start("long", fn, got.append, reports.append, exclusive=True)
    assert runner.busy
    with pytest.raises(RenderError, match="long is still running"):
        runner.start("other", lambda ctx: None, exclusive=True)
    assert started.wait(5)
    qtbot.waitUntil(lambda: reports == [(10, "working")], timeout=TIMEOUT_MS)
    runner.cancel()
    qtbot.waitUntil(lambda: bool(got), timeout=TIMEOUT_MS)
    assert got[0].cancelled and got[0].value == "best so far" and got[0].ok
    assert not runner.busy
    assert runner.wait(TIMEOUT_MS)


def test_cancel_exception_counts_as_cancelled(qtbot, qapp):
    class Stop(Exception):
        pass

    def fn(ctx):
        raise Stop("download cancelled")

    out = run_one(qtbot, JobRunner(), fn, cancel_exceptions=(Stop,))
    assert out.cancelled and out.error == "download cancelled" and not out.bug
