"""Run Python's cyclic garbage collector only on the GUI thread.

With render/parse threads running, an automatic collection can start on any thread and free
Qt wrappers (widgets, pixmaps) there, which crashes Qt. While a window is open, automatic
collection is off and a GUI-thread timer collects whenever the allocation counts pass the usual
thresholds (the approach pyqtgraph documents for PyQt apps with threads).
"""
from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

_users = 0
_was_enabled = True


class MainThreadGC(QObject):
    def __init__(self, parent: QObject | None = None, interval_ms: int = 100) -> None:
        global _users, _was_enabled
        super().__init__(parent)
        if _users == 0:
            _was_enabled = gc.isenabled()
        _users += 1
        gc.disable()
        self._threshold = gc.get_threshold()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._timer.start()
        self._released = False

    def check(self) -> None:
        c0, c1, c2 = gc.get_count()
        t0, t1, t2 = self._threshold
        if c0 > t0:
            gen = 2 if c2 > t2 else (1 if c1 > t1 else 0)
            gc.collect(gen)

    def release(self) -> None:
        """The window closes: collect here, and give automatic collection back when no window is left."""
        global _users
        if self._released:
            return
        self._released = True
        self._timer.stop()
        _users -= 1
        gc.collect()
        if _users == 0 and _was_enabled:
            gc.enable()
