"""The cached render pipeline and :class:`Engine` (pipeline + worker + preview scheduler).

Stage graph and cache keys (a stage runs only on a cache miss; ``Engine.stage_counts`` counts
executions)::

    parse   (exemplar.key, parser id)                          -> exemplar labels
    style   (exemplar.key, dmn id, style size)                 -> DMN style vector
    face    (mask hash, face size, style key)                  -> face [1,3,S,S] in [-1,1]
    invert  (face key, encoder id, input filter)               -> code (Z+ or W+) + its mapping
    edit    (invert key, Z/W edits)                            -> edited W+ [1,N,512]
    photo   (edit key, photo generator id, render resolution)  -> image
    agile   (edit key, style id, strength·morph, branch, res)  -> image
    dual    (edit key, style id, code, weights·morph, truncation, preserve_color, res) -> image

The exemplar style is encoded once (at the DMN's native size — checkpoint meta
``native_size_px``, 256 for the shipped starter — else 512, the official demo size; or the
engine's ``style_size_px``) and reused at every preview size: the DMN style code is a global
vector (global average pool), so a 256² preview and the 512² final render share one encoding.
A DMN with a declared native size generates at most at that size and the face is upscaled
(bilinear) for display, as its model card advises — better quality and much cheaper strokes.
The encoder reads the DMN's own output (not the upscaled copy), so a preview and a larger final
render of one mask share one latent. The encoder input is brought to the encoder's size as the
official scripts do: antialiased bilinear for pSp / AgileGAN, adaptive average pooling for
DualStyleGAN (:data:`ENCODER_FILTER`). Caches are small LRUs living on the
device (tensors stay resident); they are cleared when the device policy changes (OOM fallback)
or models are re-scanned.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from maskstudio.engine.device import DevicePolicy, is_oom
from maskstudio.engine.models import ModelSet
from maskstudio.engine.preview import SYNTHESIS_PREVIEW_SIZES, PreviewScheduler
from maskstudio.engine.types import (
    OUTPUTS,
    EmbeddingResult,
    Exemplar,
    RenderRequest,
    RenderResult,
    StageStatus,
    content_key,
)
from maskstudio.engine.worker import CancelToken, Cancelled, LatestWinsWorker
from maskstudio.errors import MaskStudioError, RenderError

__all__ = ["Engine", "StageCache", "to_uint8_image"]

STYLE_SIZE_PX = 512

_log = logging.getLogger(__name__)


class StageCache:
    """A tiny LRU: ``get(key)`` / ``put(key, value)``; keeps the last ``capacity`` entries."""

    def __init__(self, capacity: int = 4) -> None:
        self.capacity = capacity
        self._d: collections.OrderedDict[Any, Any] = collections.OrderedDict()

    def get(self, key: Any) -> Any:
        v = self._d.get(key)
        if v is not None:
            self._d.move_to_end(key)
        return v

    def put(self, key: Any, value: Any) -> None:
        self._d[key] = value
        self._d.move_to_end(key)
        while len(self._d) > self.capacity:
            self._d.popitem(last=False)

    def clear(self) -> None:
        self._d.clear()

    def __len__(self) -> int:
        return len(self._d)


def to_uint8_image(x: torch.Tensor) -> np.ndarray:
    """[1,3,H,W] in [-1,1] (any dtype/device) -> uint8 HxWx3 (official (x+1)·127.5, rounded)."""
    y = ((x[0].float().clamp(-1, 1) + 1.0) * 127.5).round_().to(torch.uint8)
    return y.permute(1, 2, 0).contiguous().cpu().numpy()


def _resize_labels(labels: np.ndarray, size: int) -> np.ndarray:
    if labels.shape == (size, size):
        return labels
    from PIL import Image

    return np.asarray(Image.fromarray(labels).resize((size, size), Image.Resampling.NEAREST))


def _resize_rgb(image: np.ndarray, size: int) -> np.ndarray:
    if image.shape[:2] == (size, size):
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BICUBIC))


def _face_size(size_px: int) -> int:
    return max(32, int(round(size_px / 32.0)) * 32)


def _active_edits(req) -> tuple[tuple[str, float], ...]:
    """The request's non-zero edits, sorted by name (part of the edit cache key)."""
    return tuple(sorted((k, v) for k, v in req.edits.items() if v != 0.0))


def _resize_t(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    down = x.shape[-1] > size
    return F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False,
                         antialias=down).to(x.dtype)


class _Ctx:
    """Per-render bookkeeping: stage timings, executed stages, cancellation."""

    def __init__(self, token: CancelToken | None, policy: DevicePolicy) -> None:
        self.token = token
        self.policy = policy
        self.stage_ms: dict[str, float] = {}
        self.stages_run: list[str] = []
        self.stage = ""
        self.synthesis_px: int | None = None  # the StyleGAN layer a render stopped at (None: no synthesis)

    def begin(self, stage: str) -> float:
        self.stage = stage
        if self.token is not None:
            self.token.check()
        return time.perf_counter()

    def end(self, stage: str, t0: float) -> None:
        self.policy.synchronize()
        self.stage_ms[stage] = self.stage_ms.get(stage, 0.0) + (time.perf_counter() - t0) * 1e3
        self.stages_run.append(stage)


class Engine:
    """See :mod:`maskstudio.engine` for the API overview."""

    def __init__(
        self,
        settings=None,
        *,
        models: ModelSet | None = None,
        device: str | None = None,
        precision: str = "auto",
        compile: bool = False,
        cuda_graphs: bool = False,
        callback: Callable[[RenderResult], None] | None = None,
        preview_target_ms: float | None = None,
        synthesis_target_ms: float | None = None,
        style_size_px: int | None = None,
        start_worker: bool = True,
        preload: tuple[str, ...] = ("dmn", "parser"),
    ) -> None:
        if settings is None:
            from maskstudio.settings import Settings

            settings = Settings.from_env()
        self.settings = settings
        default_device: str = getattr(settings, "device", "auto")
        self.policy = DevicePolicy(device or default_device, precision=precision,
                                   compile=compile, cuda_graphs=cuda_graphs)
        self.models = models if models is not None else ModelSet.from_settings(settings, policy=self.policy)
        self.models.set_policy(self.policy)
        target = preview_target_ms if preview_target_ms is not None else (30.0 if self.policy.is_cuda else 100.0)
        self.preview = PreviewScheduler(target, initial_px=512 if self.policy.is_cuda else 256)
        # StyleGAN-side previews (a latent slider drag) stop synthesis at a reduced layer and upscale;
        # which layer is chosen from the measured synthesis time, like the DMN preview side. On CPU
        # a 1024 generator's layers up to 64² (all 512 channels) cost ~0.4 s on 2 cores, so there it
        # settles at 32-64²; the release renders at full resolution.
        s_target = synthesis_target_ms if synthesis_target_ms is not None else (30.0 if self.policy.is_cuda else 250.0)
        self.synthesis_preview = PreviewScheduler(s_target, sizes=SYNTHESIS_PREVIEW_SIZES,
                                                  initial_px=256 if self.policy.is_cuda else 64)
        self.style_size_px = None if style_size_px is None else int(style_size_px)
        self.stage_counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.RLock()
        self._caches = {name: StageCache(cap) for name, cap in (
            ("parse", 8), ("style", 8), ("face", 8), ("invert", 4), ("edit", 4),
            ("photo", 4), ("agile", 4), ("dual", 4), ("blend", 2), ("direction", 64))}
        self._callback = callback
        from maskstudio.engine.dmn_style import BoundaryIndex

        self.dmn_boundary_index = BoundaryIndex(self.models.roots)
        self.preload(preload)
        self.worker: LatestWinsWorker | None = None
        if start_worker:
            threads = torch.get_num_threads()
            self.worker = LatestWinsWorker(self._run_job, self._deliver, self._error_result,
                                           cancellable=lambda req: not req.preview,
                                           thread_init=lambda: _init_worker_thread(threads))

    # -- public API ---------------------------------------------------------------------------
    def set_callback(self, callback: Callable[[RenderResult], None] | None) -> None:
        self._callback = callback

    def submit(self, request: RenderRequest) -> int:
        """Queue ``request`` (never blocks). Returns its id; the result goes to the callback."""
        if self.worker is None:
            raise RenderError("engine was created without a worker (start_worker=False)")
        return self.worker.submit(request)

    def render_sync(self, request: RenderRequest) -> RenderResult:
        """Render in the calling thread (same pipeline and caches). Never raises for render errors."""
        return self._run_job(0, request, None)

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def wait_idle(self, timeout: float | None = None) -> bool:
        return True if self.worker is None else self.worker.wait_idle(timeout)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def preload(self, roles: tuple[str, ...] | None = None) -> list[str]:
        """Load (make resident) the preferred model of each role now, in the calling thread.

        The engine does this for the DMN and the face parser when it is constructed (the GUI
        constructs it on its main thread): in measurements on this project's shared 2-core VM
        (glibc), DMN strokes rendered on the worker thread took 3-4x longer (400-800 ms instead
        of 110-170 ms at 256², starter size) when the weights had been materialised on the worker
        thread itself. The cause looks like allocator (malloc arena / page-fault) behaviour and
        was not pinned down; loading up front avoided it in every run. Errors are left for
        render time (they become error results there). Returns the ids loaded.
        """
        from maskstudio.engine.models import ROLE_ARCHS

        loaded = []
        for role in roles if roles is not None else tuple(ROLE_ARCHS):
            cands = self.models.role(role)
            targets = cands[:1] if role in ("dmn", "parser", "stylegan", "perceptual") else cands
            for m in targets:
                try:
                    self.models.load(m.id)
                    loaded.append(m.id)
                except Exception as e:  # noqa: BLE001 - reported again when a render needs the model
                    _log.debug("preload of %s failed: %s", m.id, e)
        return loaded

    @property
    def preview_size_px(self) -> int:
        return self.preview.size_px

    def clear_cache(self) -> None:
        with self._lock:
            for c in self._caches.values():
                c.clear()

    def reload_models(self) -> None:
        """Re-scan the model folders (after installing/removing models) and drop caches."""
        with self._lock:
            self.models.scan()
            self.dmn_boundary_index.rescan()
            self.clear_cache()
        self.preload(("dmn", "parser"))

    # -- photo parsing and Image2StyleGAN latent tools (the UI's background jobs call these) ---
    #: latent combinations of :meth:`combine_latents`
    COMBINE_KINDS = ("morph", "crossover", "expression")

    def parse_photo(self, image: np.ndarray) -> np.ndarray:
        """The installed face parser over a photo (flip test-time augmentation): uint8 HxW class
        map at the photo's size. :class:`RenderError` when no face parser is installed. Call
        from a background thread (it takes a few hundred ms on CPU)."""
        parser = self.models.first("parser")
        if parser is None:
            raise RenderError("no face parser is installed (Models…); open a mask file instead")
        from maskstudio.models.face_parser import parse_image

        module = self.models.load(parser.id).module
        with self.policy.inference():
            labels = parse_image(module, np.ascontiguousarray(image, dtype=np.uint8), flip_tta=True)
        return np.ascontiguousarray(labels, dtype=np.uint8)

    def combine_latents(self, kind: str, current: np.ndarray, second: np.ndarray, *,
                        neutral: np.ndarray | None = None, amount: float = 0.5) -> np.ndarray:
        """Image2StyleGAN combinations of W+ codes [1, N, D] (float32 out):

        - ``"morph"``: ``amount`` of the way from ``current`` to ``second`` (0 = current).
        - ``"crossover"``: coarse rows (the first half) from ``current``, fine rows from ``second``.
        - ``"expression"``: ``second + (current - neutral)`` — what changed since ``neutral``
          (the face as opened), applied to the second face.

        :class:`RenderError` for unknown kinds or codes of different shapes (e.g. captured with
        another generator)."""
        from maskstudio.models import latent_ops as ops

        if kind not in self.COMBINE_KINDS:
            raise RenderError(f"unknown latent combination {kind!r} (one of {', '.join(self.COMBINE_KINDS)})")
        a = torch.from_numpy(np.ascontiguousarray(current, dtype=np.float32))
        b = torch.from_numpy(np.ascontiguousarray(second, dtype=np.float32))
        if a.shape != b.shape or a.dim() != 3:
            raise RenderError(f"{kind}: the 2nd face was captured with another generator; set it again")
        if kind == "morph":
            w = ops.morph(b, a, float(amount))
        elif kind == "crossover":
            w = ops.crossover(a, b, split=max(1, a.shape[1] // 2))
        else:
            if neutral is None:
                raise RenderError("expression transfer: no mask as opened")
            n = torch.from_numpy(np.ascontiguousarray(neutral, dtype=np.float32))
            if n.shape != a.shape:
                raise RenderError("expression transfer: the face as opened has another latent shape")
            w = ops.expression_transfer(b, n, a, 1.0)
        return np.ascontiguousarray(w.numpy(), dtype=np.float32)

    # -- availability -------------------------------------------------------------------------
    def _photo_generator_id(self) -> tuple[str, str] | None:
        """(model id, where) of the photo StyleGAN2: an installed stylegan2, else an encoder's decoder."""
        g = self.models.first("stylegan")
        if g is not None:
            return g.id, "module"
        for enc in self.models.role("encoder"):
            if enc.config.get("decoder"):
                return enc.id, "decoder"
        return None

    def availability(self) -> dict[str, StageStatus]:
        """Per output ("face", "photo", "agile", "dual") and helper stage ("parse", "edit")."""
        m = self.models
        dmn = m.first("dmn")
        parser = m.first("parser")
        enc = m.role("encoder")
        out: dict[str, StageStatus] = {}
        out["parse"] = (StageStatus(True, "", (parser.id,)) if parser else
                        StageStatus(False, "no face parser installed: give the exemplar's mask"))
        out["face"] = (StageStatus(True, "", (dmn.id,)) if dmn else
                       StageStatus(False, "no MaskGAN DMN installed (checkpoints/dmn_starter or the model manager)"))
        need_face = "" if dmn else "needs the DMN; "
        photo = self._photo_generator_id()
        if not enc:
            lat = StageStatus(False, need_face + "no encoder installed (pSp or AgileGAN encoder; model manager)")
        elif photo is None:
            lat = StageStatus(False, need_face + "no StyleGAN2 photo generator installed")
        else:
            lat = StageStatus(bool(dmn), need_face.rstrip("; "), (self._encoder_for("photo").id, photo[0]))
        out["photo"] = lat
        nb = len(m.boundaries)
        out["edit"] = (StageStatus(lat.available and nb > 0, "" if nb else "no semantic boundaries installed",
                                   tuple(sorted(m.boundaries))) if lat.available else lat)
        agile = m.role("agile")
        out["agile"] = (StageStatus(False, "no AgileGAN style generator installed (model manager)") if not agile
                        else StageStatus(bool(dmn and enc), "" if dmn and enc else
                                         need_face + ("" if enc else "no encoder installed"),
                                         tuple(a.id for a in agile)))
        dual = m.role("dual")
        out["dual"] = (StageStatus(False, "no DualStyleGAN installed (model manager)") if not dual
                       else StageStatus(bool(dmn and enc), "" if dmn and enc else
                                        need_face + ("" if enc else "no encoder installed"),
                                        tuple(d.id for d in dual)))
        return out

    def styles(self) -> dict[str, Any]:
        """What the sliders can offer: AgileGAN style ids; DualStyleGAN ids with their style code
        names in style-id order (``dual``), whether those ids are the official ``--style_id``s
        (``dual_official_ids``: False for installs from before the file order was kept) and the
        default id (``dual_default``); boundary ids (keys of ``RenderRequest.edits``)."""
        from maskstudio.models.dualstylegan import default_style_id, official_order, style_names

        dual: dict[str, list[str]] = {}
        official: dict[str, bool] = {}
        default: dict[str, int] = {}
        for d in self.models.role("dual"):  # names from the JSON: no 300 MB load on the GUI thread
            dual[d.id] = style_names(d.extras, d.meta)
            official[d.id] = official_order(d.meta)
            default[d.id] = default_style_id(len(dual[d.id]), official[d.id]) if dual[d.id] else 0
        return {"agile": [a.id for a in self.models.role("agile")], "dual": dual,
                "dual_official_ids": official, "dual_default": default,
                "boundaries": sorted(self.models.boundaries),
                "dmn_boundaries": sorted(self.dmn_boundaries())}

    # -- worker plumbing ----------------------------------------------------------------------
    def _deliver(self, result: RenderResult) -> None:
        cb = self._callback
        if cb is not None:
            cb(result)

    def _error_result(self, request_id: int, request: Any, text: str) -> RenderResult:
        last = text.strip().splitlines()[-1] if text.strip() else "unknown error"
        return RenderResult(request_id, error=f"internal error: {last}",
                            tag=getattr(request, "tag", None))

    def _run_job(self, request_id: int, req: RenderRequest, token: CancelToken | None) -> RenderResult:
        with self._lock:
            t0 = time.perf_counter()
            full = int(req.size_px or req.labels.shape[0])
            size = min(self.preview.size_px, full) if req.preview else full
            res = RenderResult(request_id, size_px=size, preview=req.preview, output=req.output, tag=req.tag)
            for attempt in range(2):
                ctx = _Ctx(token, self.policy)
                try:
                    image, latent = self._render(req, size, ctx)
                    res.image = image
                    res.latent = latent
                    if req.want_style:
                        res.style_latent, res.style_rows = self._style_export(req, ctx)
                    res.error = None
                    res.stage = ctx.stage
                    break
                except Cancelled:
                    raise
                except Exception as e:  # noqa: BLE001 - errors are values
                    if attempt == 0 and is_oom(e) and self.policy.can_fall_back:
                        res.warnings.append(self.policy.fall_back_to_cpu(f"stage {ctx.stage}"))
                        self.models.unload_all()
                        self.clear_cache()
                        continue
                    res.stage = ctx.stage
                    res.error = self._message(ctx.stage, e)
                    break
                finally:
                    res.stage_ms.update(ctx.stage_ms)
                    res.synthesis_px = ctx.synthesis_px
                    res.stages_run.extend(ctx.stages_run)
                    self.stage_counts.update(ctx.stages_run)
            res.latency_ms = (time.perf_counter() - t0) * 1e3
            res.device = str(self.policy.device)
            res.dtype = str(self.policy.dtype_for("maskgan_dmn")).replace("torch.", "")
            if req.preview and res.ok:
                self.preview.set_max(full)
                self.preview.record(size, res.latency_ms)
            return res

    @staticmethod
    def _message(stage: str, e: BaseException) -> str:
        if isinstance(e, MaskStudioError):
            text = str(e)
        elif is_oom(e):
            text = f"out of memory ({e}); try a smaller --size or close other programs"
        else:
            text = f"internal error: {type(e).__name__}: {e}"
        text = " ".join(text.split())
        return f"{stage}: {text}" if stage and not text.startswith(stage + ":") else text

    # -- stages -------------------------------------------------------------------------------
    def _render(self, req: RenderRequest, size: int, ctx: _Ctx) -> tuple[np.ndarray, np.ndarray | None]:
        status = self.availability()[req.output]
        if not status.available and req.latent is None:  # a given latent needs only the generator
            ctx.stage = req.output
            raise RenderError(f"unavailable: {status.reason}")
        with self.policy.inference():
            if req.latent is not None:
                wplus, edit_key = self._given_latent(req, ctx)
            else:
                native, native_key = self._native_face(req, size, ctx)
                if req.output == "face" and not req.want_latent:
                    return to_uint8_image(_resize_t(native, size)), None
                # the encoder reads the DMN's own output (not a copy upscaled to the render size)
                wplus, edit_key = self._edited_latent(req, native, native_key, ctx)
            latent = wplus.float().cpu().numpy().copy() if req.want_latent else None
            if req.output == "face":
                return to_uint8_image(_resize_t(native, size)), latent
            if req.output == "photo":
                image = self._photo(req, wplus, edit_key, size, ctx)
            elif req.output == "agile":
                image = self._agile(req, wplus, edit_key, size, ctx)
            else:
                image = self._dual(req, wplus, edit_key, size, ctx)
            return to_uint8_image(image), latent

    # encoder preference per output: AgileGAN uses its own VAE encoder, DualStyleGAN the pSp one
    _ENCODER_PREF = {"face": ("psp_encoder", "agilegan_encoder"), "photo": ("psp_encoder", "agilegan_encoder"),
                     "agile": ("agilegan_encoder", "psp_encoder"), "dual": ("psp_encoder", "agilegan_encoder")}

    def _encoder_for(self, output: str, wplus: bool = False):
        """The encoder for ``output``. DualStyleGAN: the Z+ pSp encoder (official ``encoder.pt``)
        when installed; ``wplus`` (the official ``--wplus``) requires a W+ pSp encoder."""
        encs = self.models.role("encoder")
        if output == "dual":
            space = "wplus" if wplus else "zplus"
            same = [m for m in encs if m.arch == "psp_encoder" and m.config.get("latent_space", "zplus") == space]
            if same:
                return same[0]
            if wplus:
                raise RenderError("unavailable: --wplus needs a W+ pSp encoder (psp_encoder_wplus, "
                                  "the official encoder_wplus.pt; model manager)")
        for arch in self._ENCODER_PREF[output]:
            for m in encs:
                if m.arch == arch:
                    return m
        raise RenderError("unavailable: no encoder installed (pSp or AgileGAN encoder; model manager)")

    def _invert(self, req: RenderRequest, face: torch.Tensor, face_key: tuple, ctx: _Ctx):
        """face -> (code [1,N,D], space "zplus"|"wplus", encoder info). Cached per face, encoder
        and input filter (:func:`encoder_input`)."""
        enc = self._encoder_for(req.output, bool(req.output == "dual" and req.dual is not None and req.dual.wplus))
        n_in = int(enc.config.get("input_size", 256))
        # the filter matters only when the face is resized (same size: photo and dual share one)
        filt = ENCODER_FILTER[req.output] if tuple(face.shape[-2:]) != (n_in, n_in) else "none"
        key = (face_key, enc.id, filt)
        hit = self._caches["invert"].get(key)
        if hit is not None:
            return hit, key
        t0 = ctx.begin("invert")
        model = self.models.load(enc.id).module
        x = self.policy.tensor(encoder_input(face.float(), n_in, filt), enc.arch)
        if enc.arch == "agilegan_encoder":
            code, space = model.encode_mu(x), "zplus"  # inference uses mu (official)
        else:
            code, space = model(x), str(enc.config.get("latent_space", "zplus"))
        ctx.end("invert", t0)
        out = (code, space, enc)
        self._caches["invert"].put(key, out)
        return out, key

    def _mapping(self, enc) -> torch.nn.Module:
        """Z -> W mapping for Z+ codes: the encoder's decoder mapping, else the photo generator's."""
        model = self.models.load(enc.id).module
        if getattr(model, "has_decoder", False):
            return model.decoder.style
        g = self.models.first("stylegan")
        if g is None:
            raise RenderError(f"encoder {enc.id} gives Z+ codes but has no decoder mapping and no "
                              "StyleGAN2 generator is installed")
        return self.models.load(g.id).module.style

    def _direction(self, name: str, n_latent: int, dim: int = 512):
        from maskstudio.models.latent_ops import load_direction

        info = self.models.boundaries.get(name)
        if info is None:
            by_short = [b for b in self.models.boundaries.values()
                        if b.id.split("/")[-1] in (name, f"boundary_{name}", f"{name}_w_boundary")]
            if len(by_short) != 1:
                known = ", ".join(sorted(self.models.boundaries)) or "none installed"
                raise RenderError(f"unknown boundary {name!r} (installed: {known})")
            info = by_short[0]
        key = (info.id, str(info.path), n_latent, dim)
        hit = self._caches["direction"].get(key)
        if hit is None:
            hit = load_direction(info.path, dim=dim, n_latent=n_latent)
            self._caches["direction"].put(key, hit)
        return hit

    def _cached_edit(self, key: tuple, ctx: _Ctx, compute: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, tuple]:
        """The edit cache's W+ code for ``key``, else ``compute()`` timed as the "edit" stage."""
        hit = self._caches["edit"].get(key)
        if hit is not None:
            return hit, key
        t0 = ctx.begin("edit")
        w = compute()
        ctx.end("edit", t0)
        self._caches["edit"].put(key, w)
        return w, key

    @staticmethod
    def _apply_w_edits(w: torch.Tensor, dirs: list) -> torch.Tensor:
        """Apply the W/W+-space directions of ``dirs`` ((direction, slider value) pairs) in order."""
        from maskstudio.models.latent_ops import edit_w

        for d, v in dirs:
            if d.space != "z":
                w = edit_w(w, d.vector, v)
        return w

    def _edited_latent(self, req: RenderRequest, face: torch.Tensor, face_key: tuple, ctx: _Ctx):
        """Invert (cached), then Z edits (on Z+ rows) -> mapping -> W/W+ edits. Returns W+ float32."""
        (code, space, enc), inv_key = self._invert(req, face, face_key, ctx)
        edits = _active_edits(req)

        def compute() -> torch.Tensor:
            from maskstudio.models.latent_ops import edit_w

            dirs = [(self._direction(name, code.shape[1], code.shape[2]), v) for name, v in edits]
            z = code.float()
            for d, v in dirs:
                if d.space == "z":
                    if space != "zplus":
                        raise RenderError(f"boundary {d.name!r} is a Z-space boundary but the encoder "
                                          f"{enc.id} gives W+ codes; use a W-space direction")
                    # slider value = signed offset from the current distance to the hyperplane
                    z = edit_w(z, d.vector, v)
            if space == "zplus":
                from maskstudio.models.stylegan2 import map_rows

                mapping = self._mapping(enc)
                p = next(mapping.parameters())
                z = map_rows(mapping, z.to(p.dtype)).float()
            return self._apply_w_edits(z, dirs)

        return self._cached_edit((inv_key, edits), ctx, compute)

    def _given_latent(self, req: RenderRequest, ctx: _Ctx) -> tuple[torch.Tensor, tuple]:
        """A W+ code from the request (no DMN, no inversion) + W/W+ edits."""
        assert req.latent is not None
        edits = _active_edits(req)

        def compute() -> torch.Tensor:
            w = torch.from_numpy(np.array(req.latent)).to(self.policy.device)
            dirs = [(self._direction(name, w.shape[1], w.shape[2]), v) for name, v in edits]
            for d, _v in dirs:
                if d.space == "z":
                    raise RenderError(f"boundary {d.name!r} is a Z-space boundary; a given W+ latent "
                                      "can only take W-space directions")
            return self._apply_w_edits(w, dirs)

        return self._cached_edit((("latent", content_key(req.latent)), edits), ctx, compute)

    # -- Image2StyleGAN refinement --------------------------------------------------------------
    def invert(self, request: RenderRequest) -> np.ndarray:
        """The encoder's W+ code of the request's DMN face (no edits), float32 [1, N, 512]."""
        from dataclasses import replace

        req = replace(request, edits={}, want_latent=True,
                      output=request.output if request.output != "face" else "photo")
        res = self.render_sync(req)
        if res.latent is None:
            raise RenderError(res.error or "no latent computed")
        return res.latent

    def embedding_loss(self) -> str:
        """What the Image2StyleGAN embedding optimises, in words (the panel shows it): the paper's
        pixel MSE + VGG-16 perceptual loss when the ImageNet VGG-16 is installed, else MSE alone."""
        vgg = self.models.first("perceptual")
        if vgg is not None:
            return f"MSE + VGG-16 perceptual loss (conv1_1, conv1_2, conv3_2, conv4_2; {vgg.id})"
        return "pixel MSE only (install vgg16_imagenet for the paper's VGG-16 perceptual loss)"

    def embed_face(self, request: RenderRequest, steps: int = 200, *, noise_steps: int = 0,
                   mask: np.ndarray | None = None,
                   progress: Callable[[Any], bool | None] | None = None,
                   lr: float = 0.01, noise_lr: float = 0.05) -> EmbeddingResult:
        """Image2StyleGAN(++) embedding of the request's DMN face into the photo StyleGAN2.

        Starts from the encoder inversion (or the mean latent when no encoder is installed) and
        optimises W+ with Adam for ``steps`` steps on pixel MSE + the VGG-16 perceptual loss
        (conv1_1, conv1_2, conv3_2, conv4_2) when the torchvision ImageNet VGG-16 is installed
        (registry ``vgg16_imagenet``), else on pixel MSE alone (:meth:`embedding_loss`).
        ``noise_steps`` > 0 adds the Image2StyleGAN++ noise-map stage (W+ kept, the noise maps
        optimised on the pixel loss); ``mask`` (HxW, nonzero = fit, any size) fits that region
        only. The target is the DMN's own output (its native size). ``progress(EmbedProgress)``
        is called after each step; returning True cancels (the best result so far is returned).
        Run it from a background thread: the live renderer is not blocked (only the
        face/inversion lookups take the engine lock). Render the result with
        ``RenderRequest(..., output="photo", latent=res.wplus, noise=res.noise)``.
        """
        from dataclasses import replace

        from maskstudio.models.latent_ops import embed

        with self._lock:
            face_req = replace(request, output="face", edits={}, want_latent=False, latent=None,
                               noise=None, preview=False)
            ctx = _Ctx(None, self.policy)
            size = int(request.size_px or request.labels.shape[0])
            with self.policy.inference():
                face, _ = self._native_face(face_req, size, ctx)
            face = face.float().clone()  # outside inference mode: a normal tensor autograd may save
            gen = self._autograd_copy(self._photo_generator()[1])
            init = None
            if self.models.role("encoder"):
                init = torch.from_numpy(self.invert(replace(request, noise=None)))
            vgg_info = self.models.first("perceptual")
            vgg = self._autograd_copy(self.models.load(vgg_info.id).module) if vgg_info is not None else None
        p = next(gen.parameters())
        if vgg is not None:
            vgg = vgg.to(device=p.device, dtype=p.dtype)
        m = None if mask is None else torch.from_numpy((np.asarray(mask) != 0).astype(np.float32))
        result = embed(gen, face.to(device=p.device, dtype=p.dtype), steps, callback=progress, lr=lr,
                       init_wplus=None if init is None else init.to(device=p.device, dtype=p.dtype),
                       feature_net=vgg, mask=m, noise_steps=noise_steps, noise_lr=noise_lr)
        noise = None
        if result.noise is not None:
            noise = tuple(n.detach().float().cpu().numpy().copy() for n in result.noise)
        return EmbeddingResult(result.wplus.float().cpu().numpy(), noise, bool(result.cancelled),
                               "mse+vgg16" if vgg is not None else "mse",
                               list(result.losses), list(result.noise_losses))

    def _autograd_copy(self, module: torch.nn.Module) -> torch.nn.Module:
        """A copy of a resident module whose tensors autograd may save: resident modules are
        often loaded inside inference mode, and inference tensors cannot be saved for backward.
        Weights frozen (no gradients); cached per resident module."""
        import copy

        copies = self.__dict__.setdefault("_grad_copies", {})
        hit = copies.get(id(module))
        if hit is not None and hit[0] is module:
            return hit[1]
        with torch.inference_mode(False):
            g = copy.deepcopy(module)
            for m in g.modules():
                for name, t in list(m._parameters.items()):
                    if t is not None:
                        m._parameters[name] = torch.nn.Parameter(t.detach().clone(), requires_grad=False)
                for name, b in list(m._buffers.items()):
                    if b is not None:
                        m._buffers[name] = b.detach().clone()
        if len(copies) > 4:
            copies.clear()
        copies[id(module)] = (module, g)
        return g

    def refine_embedding(self, request: RenderRequest, steps: int = 200, *,
                         progress: Callable[[Any], bool | None] | None = None,
                         lr: float = 0.01) -> tuple[np.ndarray, bool]:
        """:meth:`embed_face` without the noise stage or a mask: ``(wplus [1,N,512] float32,
        cancelled)``; render it with ``RenderRequest(..., latent=wplus)``."""
        res = self.embed_face(request, steps, progress=progress, lr=lr)
        return res.wplus, res.cancelled

    def photo_generator(self):
        """The photo StyleGAN2 module (an installed generator, else an encoder's decoder), loaded
        on the engine's device; :class:`RenderError` when none is installed."""
        return self._photo_generator()[1]

    def _photo_generator(self):
        pid = self._photo_generator_id()
        if pid is None:
            raise RenderError("unavailable: no StyleGAN2 photo generator installed")
        mid, where = pid
        module = self.models.load(mid).module
        return mid, (module if where == "module" else module.decoder)

    def _render_res(self, gen_size: int, size: int, preview: bool) -> int:
        """Synthesis resolution: full for final renders; for previews the smallest power of two
        >= the preview size (the ToRGB skip image at that resolution is a valid low-res render),
        at most what :attr:`synthesis_preview` measured to fit its time target."""
        if not preview:
            return gen_size
        r = 8
        while r < size and r < gen_size:
            r *= 2
        return min(r, gen_size, max(8, self.synthesis_preview.size_px))

    def _photo(self, req: RenderRequest, wplus: torch.Tensor, edit_key: tuple, size: int, ctx: _Ctx):
        mid, gen = self._photo_generator()
        res = self._render_res(int(gen.size), size, req.preview)
        noise_key = None if req.noise is None else content_key(*req.noise)
        key = (edit_key, mid, res, size, noise_key)
        ctx.synthesis_px = res
        hit = self._caches["photo"].get(key)
        if hit is not None:
            return hit
        if wplus.shape[1] != gen.n_latent:
            raise RenderError(f"latent has {wplus.shape[1]} rows, generator {mid} needs {gen.n_latent}")
        t0 = ctx.begin("photo")
        p = next(gen.parameters())
        noise = None
        if req.noise is not None:  # an Image2StyleGAN++ embedding's own maps (else the stored ones)
            if len(req.noise) != gen.num_layers:
                raise RenderError(f"request has {len(req.noise)} noise maps, generator {mid} needs {gen.num_layers}")
            noise = [torch.from_numpy(np.array(n)).to(device=p.device, dtype=p.dtype) for n in req.noise]
        t_syn = time.perf_counter()
        img = gen.synthesis(wplus.to(device=p.device, dtype=p.dtype), noise, randomize_noise=False, max_res=res,
                            check=ctx.token.check if ctx.token is not None else None)
        if req.preview:
            self.policy.synchronize()
            self.synthesis_preview.set_max(int(gen.size))
            self.synthesis_preview.record(res, (time.perf_counter() - t_syn) * 1e3)
        img = _resize_t(img, size)
        ctx.end("photo", t0)
        self._caches["photo"].put(key, img)
        return img

    def _agile_params(self, agile_id: str, strength: float) -> dict[str, torch.Tensor] | None:
        """Parameters and noise maps (1-s)·photo + s·style for the AgileGAN generator (None when s == 1)."""
        if strength >= 1.0:
            return None
        photo = self._photo_generator_id()
        if photo is None:
            raise RenderError("AgileGAN strength < 1 blends with the photo StyleGAN2, and none is installed")
        key = (agile_id, photo[0], strength)
        hit = self._caches["blend"].get(key)
        if hit is not None:
            return hit
        from maskstudio.models.agilegan import blend_with_photo

        _, gen = self._photo_generator()
        out = blend_with_photo(self.models.load(agile_id).module, gen, strength,
                               style_name=f"AgileGAN {agile_id!r}", photo_name=f"the photo generator {photo[0]!r}")
        self._caches["blend"].put(key, out)
        return out

    def _style_model(self, model_id: str, arch: str, kind: str):
        """The installed model ``model_id``; RenderError unless its arch is ``arch`` (``kind``:
        what that arch is called in the message)."""
        info = self.models.get(model_id)
        if info.arch != arch:
            raise RenderError(f"model {model_id!r} is a {info.arch}, not {kind}")
        return info

    def _agile(self, req: RenderRequest, wplus: torch.Tensor, edit_key: tuple, size: int, ctx: _Ctx):
        p = req.agile
        assert p is not None
        info = self._style_model(p.style, "agilegan_generator", "an AgileGAN style generator")
        strength = round(float(p.strength) * float(req.morph), 2)  # blends cached per 0.01 step
        branch = self._agile_branch_for(req, edit_key)
        key = (edit_key, info.id, strength, branch, size)
        hit = self._caches["agile"].get(key)
        if hit is not None:
            return hit
        net = self.models.load(info.id).module
        if wplus.shape[1] != net.n_latent:
            raise RenderError(f"latent has {wplus.shape[1]} rows, AgileGAN {info.id} needs {net.n_latent}")
        t0 = ctx.begin("agile")
        params = self._agile_params(info.id, strength)
        dt = next(net.parameters())
        img_a, img_b = net.render_stored_noise(wplus.to(device=dt.device, dtype=dt.dtype), params)
        img = _resize_t((img_a if branch == "A" else img_b).clamp(-1, 1), size)
        ctx.end("agile", t0)
        self._caches["agile"].put(key, img)
        return img

    def _agile_branch_for(self, req: RenderRequest, edit_key: tuple) -> str:
        """A/B as asked; "auto": B when the Z+ code lies on the positive side of an installed
        ``Male`` Z boundary (mean over rows), else A (the official default for female faces)."""
        assert req.agile is not None
        if req.agile.branch != "auto":
            return req.agile.branch
        male = [b for b in self.models.boundaries.values()
                if b.space == "z" and b.id.split("/")[-1].lower() in ("male", "boundary_male")]
        inv = self._caches["invert"].get(edit_key[0])
        if not male or inv is None or inv[1] != "zplus":
            return "A"
        d = self._direction(male[0].id, inv[0].shape[1], inv[0].shape[2])
        z = inv[0].float()
        score = float((z * d.vector.to(z.device).reshape(1, 1, -1)).sum(-1).mean())
        return "B" if score > 0 else "A"

    @staticmethod
    def style_codes(resident) -> dict[str, torch.Tensor]:
        """Extrinsic style codes (Z+ [1,N,D]) of a resident DualStyleGAN, by style name in style-id
        order (stored as its ``exstyle_code.<name>`` extra tensors; see models/dualstylegan.py)."""
        from maskstudio.models.dualstylegan import style_codes_from_extras

        mod = resident.module
        return style_codes_from_extras(resident.extras, int(mod.n_latent), int(mod.cfg.style_dim),
                                       f"DualStyleGAN {resident.info.id!r}", meta=resident.info.meta)

    def _dual(self, req: RenderRequest, wplus: torch.Tensor, edit_key: tuple, size: int, ctx: _Ctx):
        p = req.dual
        assert p is not None
        from maskstudio.models.dualstylegan import official_order, pick_style_code

        info = self._style_model(p.style, "dualstylegan", "a DualStyleGAN")
        resident = self.models.load(info.id)
        net = resident.module
        codes = self.style_codes(resident)
        if not codes:
            raise RenderError(f"DualStyleGAN {info.id!r} has no extrinsic style codes installed")
        code_name = pick_style_code(codes, p.code, f"DualStyleGAN {info.id!r}", official=official_order(info.meta))
        n = int(net.n_latent)
        if len(p.weights) < n:
            raise RenderError(f"DualStyleGAN {info.id!r} needs {n} weights, got {len(p.weights)}")
        t = float(req.morph)
        weights = tuple(round(w * t, 6) for w in p.weights[:n])  # morph scales the stylisation
        trunc = 1.0 - (1.0 - p.truncation) * t  # toward 0 (official 0.75); morph 0 = the plain photo
        key = (edit_key, info.id, code_name, weights, trunc, p.preserve_color, size)
        hit = self._caches["dual"].get(key)
        if hit is not None:
            return hit
        if wplus.shape[1] != n:
            raise RenderError(f"latent has {wplus.shape[1]} rows, DualStyleGAN {info.id} needs {n}")
        t0 = ctx.begin("dual")
        dt = next(net.parameters())
        w = wplus.to(device=dt.device, dtype=dt.dtype)
        ext = net.map_exstyle(codes[code_name].to(device=dt.device, dtype=dt.dtype))
        if p.preserve_color:
            ext = net.preserve_color(ext, w)
        img, _ = net([w], ext, input_is_latent=True, truncation=trunc, truncation_latent=0,
                     randomize_noise=False, use_res=True, interp_weights=list(weights))
        img = _resize_t(img.clamp(-1, 1), size)
        ctx.end("dual", t0)
        self._caches["dual"].put(key, img)
        return img

    def _exemplar_labels(self, ex: Exemplar, ctx: _Ctx) -> np.ndarray:
        if ex.labels is not None:
            return ex.labels
        parser = self.models.first("parser")
        if parser is None:
            ctx.stage = "parse"
            raise RenderError(f"exemplar {ex.name or ex.key}: has no mask and no face parser is installed; "
                              "give the exemplar's mask (--exemplar-mask / a sibling .mask.png)")
        key = (ex.key, parser.id)
        hit = self._caches["parse"].get(key)
        if hit is not None:
            return hit
        t0 = ctx.begin("parse")
        from maskstudio.models.face_parser import parse_image

        # once per exemplar (cached): flip test-time augmentation is worth its second pass
        # (held-out mean F1 0.750 -> 0.760 with the shipped parser)
        labels = parse_image(self.models.load(parser.id).module, np.array(ex.image), flip_tta=True)
        labels.setflags(write=False)
        ctx.end("parse", t0)
        self._caches["parse"].put(key, labels)
        return labels

    def _style(self, ex: Exemplar, ctx: _Ctx) -> tuple[torch.Tensor, tuple]:
        """Style code of the exemplar ``ex`` (encoded by the DMN, cached) and its cache key."""
        dmn = self.models.first("dmn")
        assert dmn is not None
        s = self.style_size_for(dmn)
        key = (ex.key, dmn.id, s, self.policy.generation)
        hit = self._caches["style"].get(key)
        if hit is not None:
            return hit, key
        labels = self._exemplar_labels(ex, ctx)
        t0 = ctx.begin("style")
        from maskstudio.models.dense_mapping import one_hot

        net = self.models.load(dmn.id).module
        lab = torch.from_numpy(np.array(_resize_labels(labels, s))).to(self.policy.device)
        ref_onehot = self.policy.tensor(one_hot(lab[None]), dmn.arch)
        img = torch.from_numpy(np.array(_resize_rgb(ex.image, s))).permute(2, 0, 1)[None]
        ref_image = self.policy.tensor((img.float() / 255.0 - 0.5) / 0.5, dmn.arch)
        style = net.encode_style(ref_onehot, ref_image)
        ctx.end("style", t0)
        self._caches["style"].put(key, style)
        return style, key

    @staticmethod
    def native_size_for(dmn) -> int | None:
        """The DMN's declared native resolution (checkpoint meta ``native_size_px``; the shipped
        starter: 256). Faces are generated at most at this size and upscaled."""
        v = dmn.meta.get("native_size_px") if dmn is not None else None
        try:
            return int(v) if v else None
        except (TypeError, ValueError):
            return None

    def style_size_for(self, dmn) -> int:
        """Side at which the exemplar is style-encoded: the engine's ``style_size_px`` when given,
        else the DMN's native size, else 512 (the official demo)."""
        if self.style_size_px is not None:
            return self.style_size_px
        return _face_size(self.native_size_for(dmn) or STYLE_SIZE_PX)

    def _native_face(self, req: RenderRequest, size: int, ctx: _Ctx) -> tuple[torch.Tensor, tuple]:
        """The DMN face for a ``size`` render, at the side the DMN generates it (at most its
        native size; upscale with ``_resize_t`` for display), and its cache key."""
        dmn = self.models.first("dmn")
        assert dmn is not None
        native = self.native_size_for(dmn)
        fs = _face_size(size if native is None else min(size, native))
        mask_key = req.mask_key
        style, style_key = self._dmn_style(req, ctx)  # exemplar/given code + DMN style edits
        key = (mask_key, fs, style_key)
        face = self._caches["face"].get(key)
        if face is None:
            t0 = ctx.begin("face")
            from maskstudio.models.dense_mapping import one_hot

            net = self.models.load(dmn.id).module
            lab = torch.from_numpy(np.array(_resize_labels(req.labels, fs))).to(self.policy.device)
            onehot = self.policy.tensor(one_hot(lab[None]), dmn.arch)
            face = net.generate(onehot, style)
            ctx.end("face", t0)
            self._caches["face"].put(key, face)
        if req.region_styles:  # per-region styles: one more (cached) pass per extra style, composited
            face, key = self._region_faces(req, fs, face, key, ctx)
        return face, key

    # -- DMN style space: semantic boundaries, given codes, per-region styles ------------------
    def _dmn_dim(self, dmn) -> int | None:
        from maskstudio.models.dense_mapping import DenseMappingConfig

        try:
            return DenseMappingConfig.from_dict(dmn.config).num_adain_params if dmn.config else \
                int(self.models.load(dmn.id).module.num_adain_params)
        except MaskStudioError:
            return None

    def dmn_boundaries(self) -> dict[str, Any]:
        """Style boundaries (:class:`maskstudio.io.style_files.DMNBoundary`) usable with the
        current DMN, by name (``RenderRequest.style_edits`` keys)."""
        dmn = self.models.first("dmn")
        if dmn is None:
            return {}
        return self.dmn_boundary_index.for_dmn(dmn, self._dmn_dim(dmn))[0]

    def dmn_sha256(self) -> str | None:
        dmn = self.models.first("dmn")
        return None if dmn is None else self.dmn_boundary_index.sha_of(dmn)

    def _source_style(self, src, ctx: _Ctx) -> tuple[torch.Tensor, tuple]:
        """Unedited style code [1, D, 1, 1] of an Exemplar (encoded, cached) or a StyleCode."""
        from maskstudio.engine.types import StyleCode

        if not isinstance(src, StyleCode):
            return self._style(src, ctx)
        dmn = self.models.first("dmn")
        assert dmn is not None
        dim = self._dmn_dim(dmn)
        if dim is not None and src.code.size != dim:
            raise RenderError(f"style code {src.name or ''} has {src.code.size} values; DMN {dmn.id} needs {dim}")
        sha = self.dmn_sha256()
        if src.dmn_sha256 and sha and src.dmn_sha256 != sha:
            raise RenderError(f"style code {src.name or ''} belongs to another DMN (sha256 {src.dmn_sha256[:12]}…), "
                              f"not {dmn.id} ({sha[:12]}…)")
        key = (src.key, dmn.id, self.policy.generation)
        hit = self._caches["style"].get(key)
        if hit is None:
            hit = self.policy.tensor(torch.from_numpy(np.array(src.code)).reshape(1, -1, 1, 1), dmn.arch)
            self._caches["style"].put(key, hit)
        return hit, key

    def _edit_style(self, req: RenderRequest, style: torch.Tensor, key: tuple) -> tuple[torch.Tensor, tuple]:
        from maskstudio.engine.dmn_style import edit_code, edit_directions

        edits = tuple(sorted((k, v) for k, v in req.style_edits.items() if v != 0.0))
        if not edits:
            return style, key
        bounds = self.dmn_boundaries()
        unknown = [k for k, _ in edits if k not in bounds]
        if unknown:
            known = ", ".join(sorted(bounds)) or "none for this DMN"
            raise RenderError(f"unknown DMN style boundary {unknown[0]!r} (available: {known})")
        cond = bool(req.style_conditional)
        dkey = ("dmn_dirs", tuple(sorted((n, str(b.path)) for n, b in bounds.items())), tuple(k for k, _ in edits), cond)
        offsets = self._caches["direction"].get(dkey)
        if offsets is None:
            offsets = edit_directions(bounds, [k for k, _ in edits], cond)
            self._caches["direction"].put(dkey, offsets)
        return edit_code(style, offsets, edits), key + (("style_edits", edits, cond),)

    def _dmn_style(self, req: RenderRequest, ctx: _Ctx) -> tuple[torch.Tensor, tuple]:
        """The main style: ``req.style`` (a given code) or the exemplar's encoding, edited."""
        style, key = self._source_style(req.style, ctx) if req.style is not None else self._style(req.exemplar, ctx)
        return self._edit_style(req, style, key)

    def _region_faces(self, req: RenderRequest, fs: int, face: torch.Tensor, key: tuple, ctx: _Ctx):
        """Composite the per-region styles' faces into ``face`` (all at side ``fs``)."""
        from maskstudio.engine.dmn_style import composite, feather_alpha, region_groups
        from maskstudio.models.dense_mapping import one_hot

        dmn = self.models.first("dmn")
        assert dmn is not None
        groups = region_groups(req.region_styles)
        full_key = key + (("regions", tuple((src.key, cls) for src, cls in groups)),)
        hit = self._caches["face"].get(full_key)
        if hit is not None:
            return hit, full_key
        net = self.models.load(dmn.id).module
        onehot = None
        layers = []
        for src, classes in groups:
            style, skey = self._edit_style(req, *self._source_style(src, ctx))
            fkey = (req.mask_key, fs, skey)
            img = self._caches["face"].get(fkey)
            if img is None:
                t0 = ctx.begin("face")
                if onehot is None:
                    lab = torch.from_numpy(np.array(_resize_labels(req.labels, fs))).to(self.policy.device)
                    onehot = self.policy.tensor(one_hot(lab[None]), dmn.arch)
                img = net.generate(onehot, style)
                ctx.end("face", t0)
                self._caches["face"].put(fkey, img)
            layers.append((img, feather_alpha(req.labels, classes, fs, img.device)))
        out = composite(face, layers)
        self._caches["face"].put(full_key, out)
        return out, full_key

    def _style_export(self, req: RenderRequest, ctx: _Ctx) -> tuple[np.ndarray, tuple[tuple[str, ...], ...]]:
        from maskstudio.engine.dmn_style import region_groups, row_names

        rows = [self._dmn_style(req, ctx)[0]]
        names: list[tuple[str, ...]] = [()]
        for src, classes in region_groups(req.region_styles):
            rows.append(self._edit_style(req, *self._source_style(src, ctx))[0])
            names.append(row_names(classes))
        codes = torch.cat([r.reshape(1, -1).float() for r in rows]).cpu().numpy().copy()
        return codes, tuple(names)

    def style_code(self, request: RenderRequest) -> tuple[np.ndarray, tuple[tuple[str, ...], ...]]:
        """The request's final DMN style codes (edits and per-region choices applied) without
        generating: float32 [R, D] (row 0 main, then one per extra style) and each row's classes.
        Raises :class:`RenderError` (e.g. no DMN, unknown boundary)."""
        with self._lock:
            if self.models.first("dmn") is None:
                raise RenderError("no MaskGAN DMN installed")
            ctx = _Ctx(None, self.policy)
            with self.policy.inference():
                return self._style_export(request, ctx)


#: how each output's encoder input is brought to the encoder's size: the official scripts resize
#: with PIL bilinear for pSp/AgileGAN (antialiased bilinear here) and shrink with
#: ``F.adaptive_avg_pool2d`` for DualStyleGAN (``style_transfer.py``)
ENCODER_FILTER = {"face": "bilinear", "photo": "bilinear", "agile": "bilinear", "dual": "avgpool"}


def encoder_input(face: torch.Tensor, size: int, filt: str = "bilinear") -> torch.Tensor:
    """``face`` [B,3,H,W] brought to ``size``² for an encoder: ``"avgpool"`` = adaptive average
    pooling when shrinking (bilinear when enlarging), ``"bilinear"`` = antialiased bilinear."""
    if filt == "avgpool":
        from maskstudio.models.psp import prepare_input

        return prepare_input(face, size)
    return _resize_t(face, size)  # "bilinear" (and "none": already at size)


def _init_worker_thread(threads: int) -> None:
    """OpenMP's thread count is a per-thread setting: a new thread starts from the process
    default (all cores), not from ``torch.set_num_threads`` of the thread that configured torch.
    Measured here (2 cores, loaded machine): a worker left at the default burnt 3-4x the CPU time
    per DMN stroke of one set explicitly."""
    torch.set_num_threads(threads)


assert set(OUTPUTS) == {"face", "photo", "agile", "dual"}
