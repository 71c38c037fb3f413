"""Plain value types of the engine: what a caller asks for and what comes back.

No torch here (numpy only), so a UI can build requests cheaply. Every request/exemplar is
immutable; arrays are copied and frozen (``writeable=False``) when the object is built, so the
caller may keep painting into its own buffers while the worker renders a snapshot.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from maskstudio.errors import RenderError
from maskstudio.labels import NUM_CLASSES

#: Outputs a request can ask for, in pipeline order.
OUTPUTS: tuple[str, ...] = ("face", "photo", "agile", "dual")

#: Stage names (keys of ``Engine.stage_counts`` / ``RenderResult.stages_run``), in pipeline order.
STAGES: tuple[str, ...] = (
    "parse",    # exemplar without a mask -> face parser -> labels
    "style",    # DMN encode_style(exemplar onehot, exemplar image) -> style vector
    "face",     # DMN generate(painted mask onehot, style) -> face
    "invert",   # face -> encoder (pSp W+ / AgileGAN Z+ -> mapping) -> W+
    "edit",     # W+ + semantic boundary offsets -> edited W+
    "photo",    # StyleGAN2 synthesis of the edited W+
    "agile",    # AgileGAN stylised generator (branch A/B, strength = network blend)
    "dual",     # DualStyleGAN (intrinsic = edited W+, extrinsic = style code, 18 weights)
)


#: Regions a per-region style is chosen for (app menu, ``render --region-style``): name -> classes.
REGIONS: dict[str, tuple[str, ...]] = {
    "hair": ("hair",),
    "skin": ("skin", "nose", "l_ear", "r_ear", "neck"),
    "lips": ("u_lip", "l_lip"),
    "eyes": ("l_eye", "r_eye"),
    "brows": ("l_brow", "r_brow"),
    "background": ("background",),
    "cloth": ("cloth",),
    "hat": ("hat",),
}


def _frozen_copy(a: np.ndarray) -> np.ndarray:
    b = np.array(a, copy=True, order="C")
    b.setflags(write=False)
    return b


def content_key(*arrays: np.ndarray) -> str:
    """Short content hash of arrays (shape + dtype + bytes). ~0.3 ms per 512² RGB image."""
    h = hashlib.blake2b(digest_size=12)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(repr((a.shape, a.dtype.str)).encode())
        h.update(a.data.cast("B"))
    return h.hexdigest()


def check_labels(labels: np.ndarray, what: str = "mask") -> None:
    if not isinstance(labels, np.ndarray) or labels.ndim != 2 or labels.dtype != np.uint8:
        got = getattr(labels, "shape", type(labels).__name__), getattr(labels, "dtype", "")
        raise RenderError(f"{what}: expected a uint8 HxW class map, got {got}")
    if labels.size and int(labels.max()) >= NUM_CLASSES:
        raise RenderError(f"{what}: value {int(labels.max())} is not a class (0..{NUM_CLASSES - 1})")


@dataclass(frozen=True, eq=False)
class Exemplar:
    """The style reference of the DMN: a face image and (optionally) its class map.

    ``image``: uint8 HxWx3 RGB. ``labels``: uint8 HxW (values 0..18) or None — then the engine
    parses the image with the installed face parser (stage ``parse``), or reports a RenderError
    asking for a mask when no face parser is installed. ``key`` identifies the exemplar in the
    engine caches; left empty it is a content hash of image + labels (computed once, here).
    """

    image: np.ndarray
    labels: np.ndarray | None = None
    name: str = ""
    key: str = ""

    def __post_init__(self) -> None:
        img = self.image
        if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            got = getattr(img, "shape", type(img).__name__), getattr(img, "dtype", "")
            raise RenderError(f"exemplar {self.name or ''}: expected a uint8 HxWx3 RGB image, got {got}")
        object.__setattr__(self, "image", _frozen_copy(img))
        if self.labels is not None:
            check_labels(self.labels, f"exemplar mask {self.name}".strip())
            object.__setattr__(self, "labels", _frozen_copy(self.labels))
        if not self.key:
            arrays = [self.image] + ([self.labels] if self.labels is not None else [])
            object.__setattr__(self, "key", content_key(*arrays))


@dataclass(frozen=True, eq=False)
class StyleCode:
    """A DMN style code given directly (a loaded style latent file) instead of an exemplar.

    ``code``: float [dim] (or [1, dim]) — the AdaIN parameter vector ``encode_style`` returns.
    ``dmn_sha256``: the DMN the code belongs to (None = unknown; then only the length is checked).
    ``key``: cache identity; left empty it is a content hash of the code.
    """

    code: np.ndarray
    name: str = ""
    dmn_sha256: str | None = None
    key: str = ""

    def __post_init__(self) -> None:
        c = np.asarray(self.code, dtype=np.float32)
        if c.ndim == 2 and c.shape[0] == 1:
            c = c[0]
        if c.ndim != 1 or c.size == 0 or not np.isfinite(c).all():
            raise RenderError(f"style code {self.name}: expected a finite [dim] vector, got shape {list(c.shape)}")
        object.__setattr__(self, "code", _frozen_copy(c))
        if not self.key:
            object.__setattr__(self, "key", "code:" + content_key(self.code))


def _region_map(value: Any) -> Mapping[int, Any]:
    """{class name or index: Exemplar | StyleCode} -> read-only {class index: source}."""
    from maskstudio.labels import NAMES

    out: dict[int, Any] = {}
    items = value.items() if isinstance(value, Mapping) else value
    for k, src in items:
        if isinstance(k, str) and k in NAMES:
            idx = NAMES.index(k)
        elif isinstance(k, (int, np.integer)) and 0 <= int(k) < NUM_CLASSES:
            idx = int(k)
        else:
            raise RenderError(f"request: region style for unknown class {k!r} (one of {', '.join(NAMES)})")
        if not isinstance(src, (Exemplar, StyleCode)):
            raise RenderError(f"request: region style for {NAMES[idx]} must be an Exemplar or StyleCode")
        out[idx] = src
    return MappingProxyType(out)


@dataclass(frozen=True)
class AgileParams:
    """AgileGAN stylisation. ``style``: model id of an installed ``agilegan_generator``.

    ``strength`` in [0, 1]: network interpolation from the photo StyleGAN2 (0) to the stylised
    generator (1) — every layer's weights are ``(1-s)·photo + s·style`` (the generator was
    fine-tuned from the photo one, so the blend is meaningful; Toonify-style network blending).
    It needs a photo generator with matching layers (the encoder's ``decoder`` or an installed
    StyleGAN2); strength 1 does not. Noise: the stored noise maps (deterministic; the official
    inference draws fresh noise per call), blended like the weights, so strength 0 reproduces
    the photo output exactly. ``branch``: "A" (used for female faces), "B" (male), or
    "auto" = A unless the latent's projection on an installed ``Male`` boundary is positive.
    """

    style: str
    strength: float = 1.0
    branch: str = "auto"

    def __post_init__(self) -> None:
        if self.branch not in ("auto", "A", "B"):
            raise RenderError(f"agile branch must be auto, A or B, not {self.branch!r}")
        if not 0.0 <= float(self.strength) <= 1.0:
            raise RenderError(f"agile strength must be in [0, 1], not {self.strength}")


#: DualStyleGAN weight slots (one per W+ row at 1024 px): the first ``DUAL_STRUCTURE_SLOTS`` are
#: structure (ModRes), the rest colour. Defaults: the official 0.75 structure, 1 colour. The one
#: home of these numbers (sliders dock, CLI and :mod:`maskstudio.engine.render_settings` read them).
N_DUAL_WEIGHTS = 18
DUAL_STRUCTURE_SLOTS = 7
DUAL_STRUCTURE_DEFAULT = 0.75
DUAL_COLOUR_DEFAULT = 1.0
#: Official DualStyleGAN default weight vector: structure 0.75 on the 7 coarse, colour 1 on the 11 fine.
DEFAULT_DUAL_WEIGHTS: tuple[float, ...] = ((DUAL_STRUCTURE_DEFAULT,) * DUAL_STRUCTURE_SLOTS
                                           + (DUAL_COLOUR_DEFAULT,) * (N_DUAL_WEIGHTS - DUAL_STRUCTURE_SLOTS))


#: Official DualStyleGAN ``--truncation`` default (intrinsic code pulled 25 % toward 0).
DEFAULT_DUAL_TRUNCATION = 0.75


@dataclass(frozen=True)
class DualParams:
    """DualStyleGAN. ``style``: model id of an installed ``dualstylegan``; ``code``: the name of
    one of its extrinsic style codes or its style id (decimal: the position in the style file's
    own order, the official ``--style_id``); None = the official default id 53 (the first code
    for installs from before the file order was kept). ``weights``: one entry per latent slot
    (18 at 1024): k < 7 structure (ModRes), k >= 7 colour blend. ``truncation``: of the
    intrinsic code toward 0 (official ``--truncation``, 0.75). ``preserve_color``: keep the
    photo's colours (official ``--preserve_color``: the colour layers' extrinsic code is the
    intrinsic one). ``wplus``: encode with a W+ pSp encoder (official ``--wplus``,
    ``encoder_wplus.pt``) instead of the Z+ one."""

    style: str
    code: str | None = None
    weights: tuple[float, ...] = DEFAULT_DUAL_WEIGHTS
    truncation: float = DEFAULT_DUAL_TRUNCATION
    preserve_color: bool = False
    wplus: bool = False

    def __post_init__(self) -> None:
        w = tuple(float(x) for x in self.weights)
        object.__setattr__(self, "weights", w or DEFAULT_DUAL_WEIGHTS)  # empty = official default
        if not 0.0 <= float(self.truncation) <= 1.0:
            raise RenderError(f"dual truncation must be in [0, 1], not {self.truncation}")
        object.__setattr__(self, "truncation", float(self.truncation))
        object.__setattr__(self, "preserve_color", bool(self.preserve_color))
        object.__setattr__(self, "wplus", bool(self.wplus))


@dataclass(frozen=True, eq=False)
class RenderRequest:
    """One render. Build a new one per change; the engine never mutates it.

    - ``labels``: the painted mask, uint8 HxW class map (copied and frozen here).
    - ``exemplar``: the DMN style reference (reuse the same Exemplar object across requests:
      its ``key`` drives the style-encoding cache).
    - ``output``: "face" (DMN), "photo" (StyleGAN2 edit), "agile", "dual".
    - ``size_px``: side of the output; None = the mask's side (512 for documents). DMN sizes are
      rounded to a multiple of 32.
    - ``preview``: an interaction is in progress — the engine renders at an adaptive reduced size
      chosen from measured latency (``Engine.preview_size_px``), the final request (preview False)
      renders ``size_px``.
    - ``edits``: {boundary model id: offset} semantic edits (InterFaceGAN rule per boundary kind).
    - ``agile`` / ``dual``: parameters of those outputs (required when ``output`` names them).
    - ``morph``: photo→style amount in [0, 1] for agile/dual: it scales the stylisation in
      latent/weight space (agile strength × morph; dual weights × morph), never pixels.
    - ``latent``: a W+ code [1, n_latent, 512] to render instead of inverting the DMN face
      (an Image2StyleGAN refined embedding, a morph/crossover/expression transfer of codes — see
      :mod:`maskstudio.models.latent_ops` — or a loaded .npy). Edits apply on top. Not for
      output "face".
    - ``noise``: with ``latent``, the photo generator's noise maps to use instead of its stored
      ones (one [1, 1, r, r] array per layer: an Image2StyleGAN++ embedding's,
      :meth:`Engine.embed_face`). Only the photo output reads them (the agile / dual generators
      keep their stored maps).
    - ``want_latent``: return the (edited) W+ latent [1, n_latent, 512] float32 in the result.
    - ``tag``: anything; returned unchanged in the result.
    - ``style_edits``: {DMN style boundary name: value in std units} — InterFaceGAN edits of the
      DMN style code (the exemplar's encoding is cached; only the generator re-runs), see
      :mod:`maskstudio.engine.dmn_style`. ``style_conditional`` (default on): each edit direction
      is made orthogonal to the other boundaries of the set (conditional manipulation).
    - ``style``: a :class:`StyleCode` used as the main style instead of encoding ``exemplar``.
    - ``region_styles``: {class name or index: Exemplar | StyleCode} — per-region styles: the
      face is also generated with each extra style and composited inside those classes
      (feathered); one extra generator pass per distinct extra style (cached).
    - ``want_style``: return the final DMN style codes (edits applied) in ``RenderResult.style_latent``.
    """

    labels: np.ndarray
    exemplar: Exemplar
    output: str = "face"
    size_px: int | None = None
    preview: bool = False
    edits: Mapping[str, float] = field(default_factory=dict)
    agile: AgileParams | None = None
    dual: DualParams | None = None
    morph: float = 1.0
    want_latent: bool = False
    tag: Any = None
    latent: np.ndarray | None = None
    noise: tuple[np.ndarray, ...] | None = None

    style_edits: Mapping[str, float] = field(default_factory=dict)
    style_conditional: bool = True
    style: StyleCode | None = None
    region_styles: Mapping[Any, Any] = field(default_factory=dict)
    want_style: bool = False

    def __post_init__(self) -> None:
        check_labels(self.labels, "mask")
        if self.noise is not None:
            if self.latent is None:
                raise RenderError("request: noise maps go with a given latent (an Image2StyleGAN++ embedding)")
            maps = []
            for i, n in enumerate(self.noise):
                a = np.asarray(n, dtype=np.float32)
                if a.ndim != 4 or a.shape[:2] != (1, 1) or not np.isfinite(a).all():
                    raise RenderError(f"request: noise map {i} must be a finite [1, 1, H, W] array, got {a.shape}")
                maps.append(_frozen_copy(a))
            object.__setattr__(self, "noise", tuple(maps))
        if self.style is not None and not isinstance(self.style, StyleCode):
            raise RenderError("request: style must be a StyleCode (a loaded DMN style latent)")
        se = {str(k): float(v) for k, v in dict(self.style_edits).items()}
        bad = [k for k, v in se.items() if not np.isfinite(v)]
        if bad:
            raise RenderError(f"request: style edit {bad[0]!r} is not a finite number")
        object.__setattr__(self, "style_edits", MappingProxyType(se))
        object.__setattr__(self, "region_styles", _region_map(self.region_styles))
        if self.latent is not None:
            lat = np.asarray(self.latent, dtype=np.float32)
            if lat.ndim == 2:
                lat = lat[None]
            if lat.ndim != 3 or lat.shape[0] != 1 or not np.isfinite(lat).all():
                raise RenderError(f"request: latent must be a finite W+ code [1, N, D], got {lat.shape}")
            if self.output == "face":
                raise RenderError("request: a latent cannot be rendered as output 'face' (the DMN makes faces "
                                  "from masks); use photo, agile or dual")
            object.__setattr__(self, "latent", _frozen_copy(lat))
        object.__setattr__(self, "labels", _frozen_copy(self.labels))
        if not isinstance(self.exemplar, Exemplar):
            raise RenderError("request: exemplar must be an Exemplar")
        if self.output not in OUTPUTS:
            raise RenderError(f"request: unknown output {self.output!r} (one of {', '.join(OUTPUTS)})")
        if self.output == "agile" and self.agile is None:
            raise RenderError("request: output 'agile' needs agile=AgileParams(style, ...)")
        if self.output == "dual" and self.dual is None:
            raise RenderError("request: output 'dual' needs dual=DualParams(style, ...)")
        if self.size_px is not None and not 32 <= int(self.size_px) <= 4096:
            raise RenderError(f"request: size_px must be in 32..4096, not {self.size_px}")
        if not 0.0 <= float(self.morph) <= 1.0:
            raise RenderError(f"request: morph must be in [0, 1], not {self.morph}")
        object.__setattr__(self, "edits", MappingProxyType({str(k): float(v) for k, v in dict(self.edits).items()}))
        object.__setattr__(self, "_mask_key", None)

    @property
    def mask_key(self) -> str:
        """Content hash of ``labels`` (computed once)."""
        k = self.__dict__.get("_mask_key")
        if k is None:
            k = content_key(self.labels)
            object.__setattr__(self, "_mask_key", k)
        return k


@dataclass
class RenderResult:
    """What a render produced. Errors are values: ``error`` is a one-line message (the image is
    None) — the worker never raises across threads.

    - ``request_id``: the id ``Engine.submit`` returned (0 for ``render_sync``).
    - ``image``: uint8 HxWx3 RGB or None. ``size_px``: its side. ``preview``: rendered reduced.
    - ``stage``: the stage that produced ``image`` (or the stage that failed).
    - ``latency_ms``: wall time of the render; ``stage_ms``: per stage that ran.
    - ``stages_run``: the stages actually executed (cache misses), in order.
    - ``latent``: W+ float32 [1, n_latent, 512] when requested and computed.
    - ``warnings``: e.g. the CUDA out-of-memory fallback to CPU.
    - ``device``: where it ran ("cpu", "cuda:0"), ``dtype``: "float32" / "float16" / "bfloat16".
    - ``synthesis_px``: the StyleGAN layer the photo synthesis stopped at (reduced for previews;
      None when the output has no photo synthesis).
    - ``style_latent``: the DMN style codes float32 [R, dim] when ``want_style`` (row 0 the main
      style, then one row per extra region style), ``style_rows``: the class names of each row.
    """

    request_id: int
    image: np.ndarray | None = None
    error: str | None = None
    stage: str = ""
    latency_ms: float = 0.0
    size_px: int = 0
    preview: bool = False
    output: str = "face"
    stage_ms: dict[str, float] = field(default_factory=dict)
    stages_run: list[str] = field(default_factory=list)
    latent: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)
    device: str = "cpu"
    dtype: str = "float32"
    tag: Any = None
    synthesis_px: int | None = None
    style_latent: np.ndarray | None = None
    style_rows: tuple[tuple[str, ...], ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None and self.image is not None


@dataclass
class EmbeddingResult:
    """An Image2StyleGAN(++) embedding (:meth:`Engine.embed_face`): ``wplus`` float32
    [1, N, 512]; ``noise``: the optimised noise maps (noise stage) or None; ``cancelled``;
    ``loss``: "mse+vgg16" (the paper's loss) or "mse"; per-step ``losses`` (W+ stage) and
    ``noise_losses``."""

    wplus: np.ndarray
    noise: tuple[np.ndarray, ...] | None = None
    cancelled: bool = False
    loss: str = "mse"
    losses: list[float] = field(default_factory=list)
    noise_losses: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class StageStatus:
    """Whether a stage/output can run, and if not, why (shown as a one-line hint in the UI)."""

    available: bool
    reason: str = ""
    models: tuple[str, ...] = ()
