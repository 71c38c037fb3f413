"""LatestWinsWorker: a failing callback or set-up step is logged as a bug and the worker runs on."""
from __future__ import annotations

import logging

from maskstudio.engine.worker import LatestWinsWorker


def test_broken_callback_and_thread_init_are_logged_and_the_worker_keeps_going(caplog):
    delivered: list = []

    def deliver(result):
        if result == "boom":
            raise RuntimeError("callback bug")
        delivered.append(result)

    def init():
        raise ValueError("tuning failed")

    with caplog.at_level(logging.ERROR, logger="maskstudio.engine.worker"):
        w = LatestWinsWorker(lambda job_id, job, token: job, deliver, lambda job_id, job, tb: None, thread_init=init)
        try:
            w.submit("boom")
            assert w.wait_idle(10)
            w.submit("fine")
            assert w.wait_idle(10)
        finally:
            w.close()
    assert delivered == ["fine"] and w.completed == 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("set-up failed" in m for m in messages)
    assert any("delivering result" in m and r.exc_info for m, r in zip(messages, caplog.records))
