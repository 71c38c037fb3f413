"""Image2StyleGAN tools in the background: refine embedding (progress + cancel), morph between two
faces, layer crossover and expression transfer.

All model work goes through the engine: latents of the painted faces come from
:meth:`Engine.invert`, the embedding from :meth:`Engine.embed_face` (Image2StyleGAN: pixel MSE +
VGG-16 perceptual loss when the VGG-16 is installed, else MSE; optional Image2StyleGAN++ noise
stage and masked embedding), the combinations from
:meth:`Engine.combine_latents`. This module only sequences those calls as background jobs
(:mod:`maskstudio.ui.jobs`) and hands the resulting W+ code back; the window renders it with an
ordinary engine request (``RenderRequest(..., latent=w)``), so a tool result is shown, and
superseded, like any other render.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal

from maskstudio.errors import RenderError
from maskstudio.ui.jobs import JobContext, JobOutcome, JobRunner

REFINE_STEPS = 150


@dataclass
class ToolOutcome:
    """A tool's result: ``latent`` W+ [1, N, 512] float32 (None on error), ``noise`` the optimised
    noise maps of a refine with the noise stage (else None), ``error`` one line."""

    name: str
    latent: np.ndarray | None = None
    noise: tuple[np.ndarray, ...] | None = None
    error: str | None = None
    cancelled: bool = False
    latency_ms: float = 0.0


class LatentTools(QObject):
    """Runs one tool at a time. ``progress(percent, text)``; ``finished(ToolOutcome)``."""

    progress = Signal(int, str)
    finished = Signal(object)

    def __init__(self, engine, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.engine = engine
        self.jobs = JobRunner(self)
        self.second_face: np.ndarray | None = None    # W+ of the "2nd face" (morph / crossover target)

    @property
    def busy(self) -> bool:
        return self.jobs.busy

    def cancel(self) -> None:
        self.jobs.cancel()

    def wait(self, ms: int = 30000) -> bool:
        return self.jobs.wait(ms)

    def _start(self, name: str, fn) -> None:
        def done(out: JobOutcome) -> None:
            value = out.value if out.ok else None
            latent, noise = value if isinstance(value, tuple) else (value, None)
            self.finished.emit(ToolOutcome(name, latent=latent, noise=noise, error=out.error,
                                           cancelled=out.cancelled, latency_ms=out.latency_ms))

        self.jobs.start(name, fn, done, lambda p: self.progress.emit(*p), exclusive=True)

    def _request(self, labels: np.ndarray, exemplar, **kw):
        from maskstudio.engine import RenderRequest

        return RenderRequest(np.asarray(labels), exemplar, output="photo", **kw)

    def face_latent(self, labels: np.ndarray, exemplar, **kw) -> np.ndarray:
        """Encoder W+ of a mask's DMN face, via the engine (its caches apply)."""
        return np.asarray(self.engine.invert(self._request(labels, exemplar, **kw)), dtype=np.float32)

    # ------------------------------------------------------------------ tools
    def refine(self, labels: np.ndarray, exemplar, steps: int = REFINE_STEPS, *, noise: bool = False,
               masked: bool = False, **kw) -> None:
        """Image2StyleGAN embedding of the painted face through the engine (``embed_face``),
        starting from the encoder's inversion. ``noise``: the Image2StyleGAN++ noise-map stage
        after W+ (half as many steps again); ``masked``: fit only the face (every class but
        background). Progress per step; cancel keeps the best result so far. The job's value is
        ``(W+, noise maps or None)``; the window renders it with an ordinary request."""
        req = self._request(labels, exemplar, **kw)
        mask = (np.asarray(labels) != 0) if masked else None

        def run(ctx: JobContext) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
            ctx.progress(0, "inverting the face…")

            def cb(p) -> bool:
                stage = "noise " if getattr(p, "stage", "") == "noise" else ""
                ctx.progress(int(100 * p.fraction), f"{stage}step {p.step}/{p.steps} · loss {p.loss:.4f}")
                return ctx.cancelled

            res = self.engine.embed_face(req, steps, noise_steps=steps // 2 if noise else 0, mask=mask,
                                         progress=cb)
            return np.asarray(res.wplus, dtype=np.float32), res.noise

        self._start("refine", run)

    def capture_second(self, labels: np.ndarray, exemplar, **kw) -> None:
        """Remember the W+ of the current face as the "2nd face" of morph / crossover / expression."""

        def run(ctx: JobContext) -> np.ndarray:
            ctx.progress(0, "inverting the face…")
            w = self.face_latent(labels, exemplar, **kw)
            self.second_face = w
            return w

        self._start("second", run)

    def combine(self, name: str, labels: np.ndarray, exemplar, original_labels: np.ndarray | None = None,
                amount: float = 0.5, **kw) -> None:
        """``morph`` (amount = share of the 2nd face), ``crossover`` (coarse rows from this face,
        fine rows from the 2nd) or ``expression`` (2nd face + (this face − the face as opened))."""
        if self.second_face is None:
            raise RenderError(f"{name}: set a 2nd face first (\"Use as 2nd face\")")
        second = self.second_face

        def run(ctx: JobContext) -> np.ndarray:
            ctx.progress(0, f"{name}…")
            current = self.face_latent(labels, exemplar, **kw)
            neutral = None
            if name == "expression" and original_labels is not None:
                neutral = self.face_latent(original_labels, exemplar, **kw)
            w = self.engine.combine_latents(name, current, second, neutral=neutral, amount=float(amount))
            ctx.progress(100, "done")
            return w

        self._start(name, run)
