"""Image2StyleGAN tools in the background: refine embedding (progress + cancel), morph between two
faces, layer crossover and expression transfer.

The maths lives in :mod:`maskstudio.models.latent_ops` (``morph``, ``crossover``,
``expression_transfer``) and the engine (``embed_face``: the Image2StyleGAN(++) embedding);
latents of the painted faces come from the engine (``want_latent``).
This module only sequences those calls on a ``QThread`` and renders the resulting W+ with the
installed photo StyleGAN2 (the same generator the engine uses for its "photo" output).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal

from maskstudio.errors import RenderError

REFINE_STEPS = 150


@dataclass
class ToolOutcome:
    name: str
    image: np.ndarray | None = None
    latent: np.ndarray | None = None
    error: str | None = None
    cancelled: bool = False
    latency_ms: float = 0.0


class _ToolThread(QThread):
    progress = Signal(int, str)
    done = Signal(object)

    def __init__(self, name: str, fn: Callable[["_ToolThread"], ToolOutcome], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._fn = fn
        self.cancel_event = threading.Event()

    def run(self) -> None:
        import time

        t0 = time.perf_counter()
        try:
            out = self._fn(self)
        except Exception as e:  # noqa: BLE001 - errors are values for the GUI thread
            out = ToolOutcome(self.name, error=str(e) or e.__class__.__name__)
        out.latency_ms = (time.perf_counter() - t0) * 1e3
        self.done.emit(out)


class LatentTools(QObject):
    """Runs one tool at a time. ``progress(percent, text)``; ``finished(ToolOutcome)``."""

    progress = Signal(int, str)
    finished = Signal(object)

    def __init__(self, engine, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self._job: _ToolThread | None = None
        self._running = False       # until the outcome is delivered (the QThread may still be exiting)
        self._old_jobs: list[_ToolThread] = []
        self.second_face: np.ndarray | None = None    # W+ of the "2nd face" (morph / crossover target)

    @property
    def busy(self) -> bool:
        return self._running

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel_event.set()

    def wait(self, ms: int = 30000) -> bool:
        return all(j.wait(ms) for j in [*self._old_jobs, *([self._job] if self._job else [])])

    def start(self, name: str, fn: Callable[[_ToolThread], ToolOutcome]) -> None:
        if self.busy:
            raise RenderError(f"{name}: another tool is still running (cancel it first)")
        job = _ToolThread(name, fn, self)
        job.progress.connect(self.progress)
        job.done.connect(self._done)
        if self._job is not None:
            self._old_jobs = [j for j in self._old_jobs if j.isRunning()] + [self._job]
        self._job = job
        self._running = True
        job.start()

    def _done(self, out: ToolOutcome) -> None:
        self._running = False
        self.finished.emit(out)

    # ------------------------------------------------------------------ model access
    def generator(self):
        """The photo StyleGAN2: an installed generator, else an encoder's decoder."""
        try:
            return self.engine.photo_generator()
        except RenderError:
            raise RenderError("no StyleGAN2 photo generator installed (Models…)") from None

    def face_latent(self, labels: np.ndarray, exemplar, **kw) -> tuple[np.ndarray, np.ndarray]:
        """(DMN face image, encoder W+) of a mask, via the engine (its caches apply)."""
        from maskstudio.engine import RenderRequest

        face = self.engine.render_sync(RenderRequest(np.asarray(labels), exemplar, output="face", **kw))
        if not face.ok:
            raise RenderError(face.error or "face render failed")
        photo = self.engine.render_sync(RenderRequest(np.asarray(labels), exemplar, output="photo", want_latent=True, **kw))
        if photo.latent is None:
            raise RenderError(photo.error or "no latent (install an encoder)")
        return face.image, np.asarray(photo.latent, dtype=np.float32)

    def render_w(self, wplus: np.ndarray) -> np.ndarray:
        import torch

        gen = self.generator()
        ref = next(gen.parameters())
        w = torch.from_numpy(np.ascontiguousarray(wplus, dtype=np.float32)).to(ref)
        with torch.inference_mode():
            out = gen([w], input_is_latent=True, randomize_noise=False)
            img = out[0] if isinstance(out, (tuple, list)) else out
            img = ((img[0].float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
        return np.ascontiguousarray(img)

    # ------------------------------------------------------------------ tools
    def refine(self, labels: np.ndarray, exemplar, steps: int = REFINE_STEPS, *, noise: bool = False,
               masked: bool = False, **kw) -> None:
        """Image2StyleGAN embedding of the painted face through the engine (``embed_face``: pixel
        MSE + VGG-16 perceptual loss when the VGG-16 is installed, else MSE), starting from the
        encoder's inversion. ``noise``: the Image2StyleGAN++ noise-map stage after W+ (half as
        many steps again); ``masked``: fit only the face (every class but background). Progress
        per step; cancel keeps the best result so far. The image is the photo render of the
        result (with its own noise maps)."""
        from maskstudio.engine import RenderRequest

        lab = np.asarray(labels)
        mask = (lab != 0) if masked else None

        def run(job: _ToolThread) -> ToolOutcome:
            job.progress.emit(0, "inverting the face…")

            def cb(p) -> bool:
                stage = "noise " if p.stage == "noise" else ""
                job.progress.emit(int(100 * p.fraction), f"{stage}step {p.step}/{p.steps} · loss {p.loss:.4f}")
                return job.cancel_event.is_set()

            req = RenderRequest(lab, exemplar, output="photo", **kw)
            res = self.engine.embed_face(req, steps, noise_steps=steps // 2 if noise else 0, mask=mask,
                                         progress=cb)
            shown = self.engine.render_sync(RenderRequest(lab, exemplar, output="photo", latent=res.wplus,
                                                          noise=res.noise, **kw))
            if not shown.ok:
                raise RenderError(shown.error or "render of the refined code failed")
            return ToolOutcome("refine", image=shown.image, latent=res.wplus, cancelled=res.cancelled)

        self.start("refine", run)

    def capture_second(self, labels: np.ndarray, exemplar, **kw) -> None:
        """Remember the W+ of the current face as the "2nd face" of morph / crossover / expression."""

        def run(job: _ToolThread) -> ToolOutcome:
            job.progress.emit(0, "inverting the face…")
            face, w = self.face_latent(labels, exemplar, **kw)
            self.second_face = w
            return ToolOutcome("second", image=None, latent=w)

        self.start("second", run)

    def combine(self, name: str, labels: np.ndarray, exemplar, original_labels: np.ndarray | None = None,
                amount: float = 0.5, **kw) -> None:
        """``morph`` (amount = share of the 2nd face), ``crossover`` (coarse rows from this face,
        fine rows from the 2nd) or ``expression`` (2nd face + (this face − the face as opened))."""
        if self.second_face is None:
            raise RenderError(f"{name}: set a 2nd face first (\"Use as 2nd face\")")
        b = self.second_face

        def run(job: _ToolThread) -> ToolOutcome:
            import torch

            from maskstudio.models import latent_ops as ops

            job.progress.emit(0, f"{name}…")
            _face, current = self.face_latent(labels, exemplar, **kw)
            a_t, b_t = torch.from_numpy(current), torch.from_numpy(np.asarray(b, np.float32))
            if a_t.shape != b_t.shape:
                raise RenderError(f"{name}: the 2nd face was captured with another generator; set it again")
            if name == "morph":
                w = ops.morph(b_t, a_t, float(amount))
            elif name == "crossover":
                w = ops.crossover(a_t, b_t, split=max(1, a_t.shape[1] // 2))
            elif name == "expression":
                if original_labels is None:
                    raise RenderError("expression transfer: no mask as opened")
                _f, neutral = self.face_latent(original_labels, exemplar, **kw)
                w = ops.expression_transfer(b_t, torch.from_numpy(neutral), a_t, 1.0)
            else:
                raise RenderError(f"unknown tool {name!r}")
            w = w.numpy()
            job.progress.emit(100, "done")
            return ToolOutcome(name, image=self.render_w(w), latent=w)

        self.start(name, run)
