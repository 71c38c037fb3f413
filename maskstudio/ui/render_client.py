"""Qt side of the render engine: submits requests, brings results to the GUI thread, tracks busy.

The engine calls back on its worker thread; :class:`RenderClient` re-emits the result through a
Qt signal (queued to the GUI thread), drops results older than the one already shown, and keeps
a busy flag for the indicator. Long helper jobs (photo parsing) run as background jobs
(:mod:`maskstudio.ui.jobs`); the model work itself is the engine's (:meth:`Engine.parse_photo`).
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, Signal

from maskstudio.io.latents import write_latent
from maskstudio.ui.jobs import JobContext, JobOutcome, JobRunner
from maskstudio.ui.sliders_dock import GroupStatus

log = logging.getLogger(__name__)


class RenderClient(QObject):
    resultReady = Signal(object)       # RenderResult, GUI thread, newest first-seen only
    busyChanged = Signal(bool)
    _fromWorker = Signal(object)

    def __init__(self, settings, engine=None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        if engine is None:
            from maskstudio.engine import Engine

            engine = Engine(settings)
        self.engine = engine
        self._latest_id = 0
        self._shown_id = 0
        self._busy = False
        self.jobs = JobRunner(self)
        self._fromWorker.connect(self._on_worker_result)
        engine.set_callback(self._fromWorker.emit)   # emitted on the worker thread -> queued
        self.delivered = 0

    # ------------------------------------------------------------------ requests
    def make_exemplar(self, image: np.ndarray, labels: np.ndarray | None, name: str = ""):
        from maskstudio.engine import Exemplar

        img = np.ascontiguousarray(image, dtype=np.uint8)
        lab = None if labels is None else np.ascontiguousarray(labels, dtype=np.uint8)
        return Exemplar(img, lab, name=name)

    def dual_codes(self, style: str) -> list[str]:
        """Style code names of the installed DualStyleGAN model ``style`` (empty when unknown)."""
        if not style:
            return []
        return list((self.engine.styles().get("dual") or {}).get(style) or [])

    def submit(self, labels: np.ndarray, exemplar, *, preview: bool = False, tag: Any = None, **kw) -> int:
        from maskstudio.engine import RenderRequest

        req = RenderRequest(np.asarray(labels), exemplar, preview=preview, tag=tag, **kw)
        rid = self.engine.submit(req)
        self._latest_id = rid
        self._set_busy(True)
        return rid

    def _on_worker_result(self, result) -> None:
        self.delivered += 1
        if result.request_id >= self._latest_id:
            self._set_busy(False)
        if result.request_id <= self._shown_id:
            return  # older than what is on screen
        if result.tag != "ref":
            self._shown_id = result.request_id
        self.resultReady.emit(result)

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busyChanged.emit(busy)

    @property
    def busy(self) -> bool:
        return self._busy

    def wait_idle(self, timeout: float | None = None) -> bool:
        return self.engine.wait_idle(timeout)

    def close(self) -> None:
        self.jobs.wait(5000)
        self.engine.set_callback(None)
        self.engine.close()

    # ------------------------------------------------------------------ models
    def rescan(self) -> None:
        self.engine.reload_models()

    def availability(self) -> dict:
        return self.engine.availability()

    def group_status(self) -> tuple[dict[str, GroupStatus], dict[str, tuple[bool, str]]]:
        av = self.engine.availability()
        st = self.engine.styles()

        def g(key: str, choices: list[str]) -> GroupStatus:
            s = av.get(key)
            if s is None:
                return GroupStatus(False, f"{key}: not provided by this engine")
            return GroupStatus(bool(s.available), s.reason, list(choices))

        groups = {
            "edit": g("edit", list(st.get("boundaries", []))),
            "agile": g("agile", list(st.get("agile", []))),
            "dual": g("dual", list(st.get("dual", {}))),
        }
        groups["dual"].codes = {k: list(v) for k, v in (st.get("dual") or {}).items()}
        groups["dual"].official_ids = dict(st.get("dual_official_ids") or {})
        groups["dmn_style"] = self.dmn_style_status(av)
        photo = av.get("photo")
        if photo is None or not photo.available:
            groups["tools"] = GroupStatus(False, f"Needs the StyleGAN chain: {photo.reason if photo else 'unavailable'}")
        else:
            groups["tools"] = GroupStatus(True, note=f"Refine loss: {self.engine.embedding_loss()}")
        morph_ok = groups["agile"].available or groups["dual"].available
        groups["morph"] = GroupStatus(morph_ok, "" if morph_ok else "Needs an AgileGAN or DualStyleGAN style model")
        outputs = {k: (bool(av[k].available), av[k].reason) for k in ("face", "photo", "agile", "dual") if k in av}
        return groups, outputs

    def dmn_style_status(self, av=None) -> GroupStatus:
        """The "Semantic (DMN style)" group: boundaries of the DMN style space for the active DMN."""
        av = av if av is not None else self.engine.availability()
        face = av.get("face")
        if face is None or not face.available:
            return GroupStatus(False, face.reason if face is not None else "no DMN installed")
        bounds = self.engine.dmn_boundaries()
        if not bounds:
            return GroupStatus(False, "No DMN style boundaries for this DMN "
                                      "(make them: maskstudio train boundaries --dmn W --data DIR)")
        tips = {}
        for name, b in bounds.items():
            ho = b.meta.get("held_out") or {}
            tips[name] = (f"{b.what}: move the DMN style code along the '{name}' boundary, in std units of the "
                          f"training codes (held-out R² {ho.get('r2', '?')}, accuracy {ho.get('accuracy', '?')})")
        order = sorted(bounds, key=lambda n: (n.split("_")[0] not in ("hair", "skin", "lip", "background"), n))
        return GroupStatus(True, "", order, tips=tips)

    def model_identities(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        try:
            for key, s in self.engine.availability().items():
                if s.available and s.models:
                    out[key] = list(s.models)
        except Exception as e:  # noqa: BLE001 - identities are informative only
            log.warning("model identities unavailable: %s", e)
        return out

    def describe(self) -> str:
        try:
            return f"{self.engine.policy.device} · " + ", ".join(
                f"{k} {'✓' if s.available else '✗'}" for k, s in self.engine.availability().items())
        except Exception:  # noqa: BLE001 - the About box must open anyway; the bug is logged
            log.exception("engine description failed")
            return "unknown"

    # ------------------------------------------------------------------ background jobs
    def run_in_thread(self, fn: Callable[[], Any], done: Callable[[Any, str | None], None],
                      name: str = "background job") -> JobContext:
        """Run ``fn()`` off the GUI thread; ``done(value, error)`` on the GUI thread (``value`` is
        None when ``error`` is set: a MaskStudioError's message, or a logged bug's one line)."""

        def finished(out: JobOutcome) -> None:
            done(out.value if out.ok else None, out.error)

        return self.jobs.start(name, lambda _ctx: fn(), finished)

    def parse_async(self, image: np.ndarray, done: Callable[[np.ndarray | None, str | None], None]) -> JobContext:
        """Parse a photo with the engine's face parser in the background; ``done(labels, error)``
        on the GUI thread (exactly one of them is None)."""
        img = np.ascontiguousarray(image, dtype=np.uint8)
        return self.run_in_thread(lambda: self.engine.parse_photo(img), done, "parse photo")

    # ------------------------------------------------------------------ latents
    @staticmethod
    def save_latent(path: str | os.PathLike[str], latent: np.ndarray) -> None:
        """W+ latent as ``.npy`` (official [1,18,512] float32 layout) or ``.pt`` (a tensor)."""
        write_latent(path, latent)
