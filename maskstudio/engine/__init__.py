"""The render engine: a Qt-free, cached, device-aware pipeline behind one worker thread.

Pipeline (stage names as in :data:`STAGES`; each runs only when its inputs changed)::

    exemplar image [+ mask | parse] --style--> style code (cached per exemplar)
    painted mask + style ------------face----> DMN face            output "face"
    face ----------------------------invert--> W+ (pSp W+/Z+ or AgileGAN Z+ -> mapping; cached per face)
    W+ + boundary offsets -----------edit----> edited W+
    edited W+ -----------------------photo---> StyleGAN2 image     output "photo"
    edited W+ + AgileParams ---------agile---> AgileGAN image      output "agile"
    edited W+ + DualParams ----------dual----> DualStyleGAN image  output "dual"

Sizes: ``RenderRequest.size_px`` is the output side. A DMN whose checkpoint declares
``meta.native_size_px`` (the shipped starter: 256) is style-encoded and run at most at that size
and its face upscaled; other DMNs run at the requested size (multiple of 32) and encode the
exemplar at 512 (official). Previews (``preview=True``) use ``Engine.preview_size_px``, adapted
to the measured latency (CPU target 100 ms, CUDA 30 ms).

Use from a GUI (never blocks; newest request wins; results come on the WORKER thread — marshal
them to the GUI thread yourself, e.g. with a queued Qt signal)::

    from maskstudio.engine import Engine, Exemplar, RenderRequest, RenderResult, AgileParams, DualParams
    engine = Engine(settings, callback=on_result)         # on_result(RenderResult), worker thread
    ex = Exemplar(image_rgb_uint8, labels_uint8_or_None, name="gallery/a")   # reuse this object
    rid = engine.submit(RenderRequest(doc.labels, ex, preview=True))          # during a stroke
    rid = engine.submit(RenderRequest(doc.labels, ex))                        # stroke ended
    engine.availability()   # {"face"|"photo"|"agile"|"dual"|"parse"|"edit": StageStatus(available, reason, models)}
    engine.styles()         # {"agile": [model ids], "dual": {model id: [code names by style id]}, "boundaries": [ids], ...}
    engine.cancel(); engine.wait_idle(timeout); engine.close()   # (also a context manager)

Latent tools (Image2StyleGAN morph / crossover / expression transfer) are the functions of
:mod:`maskstudio.models.latent_ops` on W+ arrays, offered on numpy arrays by
``Engine.combine_latents`` (with ``RenderResult.latent``, ``Engine.invert``,
``Engine.refine_embedding``); render their output with ``RenderRequest(labels, ex,
output="photo"|"agile"|"dual", latent=wplus)`` (edits still apply). A GUI never runs a model
itself: photo parsing is ``Engine.parse_photo``.

The user's render choices as one typed value: :class:`~maskstudio.engine.render_settings.RenderSettings`
(``settings.to_request(...)`` gives the RenderRequest keyword arguments).

Use from the CLI / tests: ``engine.render_sync(req) -> RenderResult`` (same pipeline, same
caches, runs in the calling thread; ``request_id`` 0).

Public names:

- :class:`Engine` (``maskstudio.engine.pipeline``): ``Engine(settings=None, *, models=None,
  device=None, precision="auto", compile=False, cuda_graphs=False, callback=None,
  preview_target_ms=None)``; ``submit``, ``render_sync``, ``set_callback``, ``cancel``,
  ``wait_idle``, ``close``, ``availability``, ``styles``, ``reload_models`` (after the model
  manager installed/removed something), ``clear_cache``, ``preload(roles=None)`` (make models
  resident now, in the calling thread; the DMN and parser are preloaded at construction),
  ``invert(req) -> W+``, ``embed_face(req, steps=200, *, noise_steps=0, mask=None,
  progress=None, lr=0.01) -> EmbeddingResult`` (Image2StyleGAN: MSE + VGG-16 perceptual loss
  when ``vgg16_imagenet`` is installed, else MSE — ``embedding_loss()`` says which;
  Image2StyleGAN++ noise stage and masked embedding; run it in a background thread;
  ``progress(EmbedProgress)`` returning True cancels), ``refine_embedding(req, steps=200,
  progress=None, lr=0.01) -> (W+, cancelled)`` (the same without noise/mask), ``combine_latents(kind, current, second, neutral=None,
  amount=0.5) -> W+``, ``parse_photo(rgb) -> labels``; attributes ``models`` (ModelSet),
  ``policy`` (DevicePolicy), ``stage_counts`` (collections.Counter of executed stages),
  ``preview_size_px`` (current adaptive preview side), ``worker`` (counters submitted, dropped,
  cancelled, completed).
- :class:`RenderRequest`, :class:`RenderResult`, :class:`Exemplar`, :class:`AgileParams`,
  :class:`DualParams`, :class:`StageStatus`, :data:`OUTPUTS`, :data:`STAGES` (``.types``).
- :class:`ModelSet` / :class:`ModelInfo` (``.models``): finds installed models in the shipped
  ``checkpoints/`` and in ``settings.models_dir`` (``<id>/<id>.json`` + ``.safetensors``).
- :class:`DevicePolicy` (``.device``): CUDA resident fp16/bf16/channels_last/compile design,
  CPU float32, out-of-memory → CPU fallback with a warning in ``RenderResult.warnings``.
- :class:`PreviewScheduler` (``.preview``): picks the preview side from measured latency.

Errors: a request that cannot be rendered gives ``RenderResult.error`` (one line, e.g.
"photo: unavailable: no StyleGAN2 generator installed (install one with the model manager)");
``render_sync`` returns the same value (it does not raise). Building a malformed
:class:`RenderRequest` raises :class:`~maskstudio.errors.RenderError` immediately.
"""
from __future__ import annotations

from maskstudio.engine.types import (
    DEFAULT_DUAL_TRUNCATION,
    DEFAULT_DUAL_WEIGHTS,
    OUTPUTS,
    STAGES,
    AgileParams,
    DualParams,
    EmbeddingResult,
    Exemplar,
    RenderRequest,
    RenderResult,
    StageStatus,
)

__all__ = [
    "DEFAULT_DUAL_TRUNCATION", "DEFAULT_DUAL_WEIGHTS", "OUTPUTS", "STAGES", "AgileParams", "DualParams",
    "EmbeddingResult", "Exemplar",
    "RenderRequest", "RenderResult", "StageStatus", "Engine", "ModelSet", "ModelInfo",
    "DevicePolicy", "PreviewScheduler",
]


def __getattr__(name: str):  # lazy: importing the value types does not import torch
    if name == "Engine":
        from maskstudio.engine.pipeline import Engine

        return Engine
    if name in ("ModelSet", "ModelInfo"):
        from maskstudio.engine import models

        return getattr(models, name)
    if name == "DevicePolicy":
        from maskstudio.engine.device import DevicePolicy

        return DevicePolicy
    if name == "PreviewScheduler":
        from maskstudio.engine.preview import PreviewScheduler

        return PreviewScheduler
    raise AttributeError(f"module 'maskstudio.engine' has no attribute {name!r}")
