"""Progressive rendering: pick the preview side from measured latency.

While a stroke is in progress the engine renders at :attr:`PreviewScheduler.size_px`; the final
render (stroke ended) uses the full size. After every preview render :meth:`record` feeds the
measured wall time back. The rule, with hysteresis so the size does not flicker:

- slower than the target → one size step down;
- predicted latency of the next size up (cost ∝ pixels: ``latency·(next/cur)²``, averaged with
  an earlier measurement of that size, which so decays) within 85 % of the target → one step up.

Latencies are smoothed per size with an exponential moving average (``alpha``), so one slow
frame (GC, another process) does not shrink the preview. Sizes are multiples of 32 (the DMN
needs spatial sizes divisible by 32).
"""
from __future__ import annotations

import threading

__all__ = ["PreviewScheduler", "PREVIEW_SIZES", "SYNTHESIS_PREVIEW_SIZES"]

PREVIEW_SIZES: tuple[int, ...] = (96, 128, 160, 192, 224, 256, 320, 384, 448, 512)
#: the StyleGAN layers a latent preview may stop at (each has a ToRGB skip image)
SYNTHESIS_PREVIEW_SIZES: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024)


class PreviewScheduler:
    def __init__(
        self,
        target_ms: float = 100.0,
        *,
        sizes: tuple[int, ...] = PREVIEW_SIZES,
        initial_px: int = 256,
        alpha: float = 0.5,
        max_px: int | None = None,
    ) -> None:
        self.target_ms = float(target_ms)
        self.sizes = tuple(sorted({int(s) for s in sizes}))
        self.alpha = float(alpha)
        self._lock = threading.Lock()
        self._ema: dict[int, float] = {}
        self._max_px = max_px
        self._i = self._index_at_most(initial_px)

    def _allowed(self) -> list[int]:
        if self._max_px is None:
            return list(self.sizes)
        return [s for s in self.sizes if s <= self._max_px] or [self.sizes[0]]

    def _index_at_most(self, px: int) -> int:
        allowed = self._allowed()
        best = 0
        for i, s in enumerate(allowed):
            if s <= px:
                best = i
        return best

    @property
    def size_px(self) -> int:
        with self._lock:
            allowed = self._allowed()
            return allowed[min(self._i, len(allowed) - 1)]

    def set_max(self, max_px: int | None) -> None:
        """Never preview above ``max_px`` (the full render size)."""
        with self._lock:
            cur = self._allowed()[min(self._i, len(self._allowed()) - 1)]
            self._max_px = max_px
            self._i = self._index_at_most(cur)

    def estimate_ms(self, size_px: int) -> float | None:
        with self._lock:
            return self._ema.get(int(size_px))

    def record(self, size_px: int, latency_ms: float) -> int:
        """Feed one measured preview latency; returns the size to use next."""
        with self._lock:
            size_px = int(size_px)
            old = self._ema.get(size_px)
            ema = latency_ms if old is None else self.alpha * latency_ms + (1 - self.alpha) * old
            self._ema[size_px] = ema
            allowed = self._allowed()
            i = min(self._i, len(allowed) - 1)
            if allowed[i] != size_px:  # a late result of another size: only update the estimate
                return allowed[i]
            if ema > self.target_ms and i > 0:
                i -= 1
            elif i + 1 < len(allowed):
                nxt = allowed[i + 1]
                scaled = ema * (nxt / size_px) ** 2
                old_next = self._ema.get(nxt)
                # an old measurement of the larger size decays toward the scaled prediction, so
                # one slow frame there does not block growing forever
                predicted = scaled if old_next is None else 0.5 * old_next + 0.5 * scaled
                if old_next is not None:
                    self._ema[nxt] = predicted
                if predicted <= 0.85 * self.target_ms:
                    i += 1
            self._i = i
            return allowed[i]
