"""Typed render settings: what the sliders, the CLI options and a project file say about a render.

:class:`RenderSettings` is the one place where the user's choices (output, semantic edits,
AgileGAN and DualStyleGAN parameters, morph amounts) live as values, and the one place they are
translated into :class:`~maskstudio.engine.types.RenderRequest` keyword arguments
(:meth:`RenderSettings.to_request`). It is immutable: change it with :meth:`RenderSettings.replace`
(or :func:`dataclasses.replace`), which validates again. No torch, no Qt (numpy-free even).

JSON form (:meth:`RenderSettings.to_json` / :meth:`RenderSettings.from_json`), as written into
project files under ``render_settings``::

    {"version": 1, "output": "photo", "edits": {"smile_w_boundary": 1.2},
     "agile": {"style": "", "strength": 1.0, "branch": "auto"},
     "dual": {"style": "", "code": null, "weights": [0.75, ..., 1.0], "truncation": 0.75,
              "preserve_color": false, "wplus": false},
     "face_morph": 0.0, "morph": 1.0,
     "style_edits": {"hair_lightness": 2.0}, "style_conditional": true}

Missing keys take their defaults and unknown keys are ignored, so the format is extended by
adding a field with a default here (and to ``to_json``/``from_json``); a value of the wrong type
or out of range raises :class:`~maskstudio.errors.ConfigError` saying which. The untyped slider
dict of project format 1 is read by :meth:`RenderSettings.from_legacy`.

Extending: new render choices (e.g. DMN style-boundary edits, a photo alignment for local
re-render) become new fields with defaults, each translated in :meth:`to_request`. Per-region
exemplar choices belong to the edit session (:class:`maskstudio.session.EditSession.region_styles`),
not here: they name exemplars, which are session state.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from maskstudio.engine.types import (
    DEFAULT_DUAL_TRUNCATION,
    DEFAULT_DUAL_WEIGHTS,
    DUAL_COLOUR_DEFAULT,
    DUAL_STRUCTURE_DEFAULT,
    DUAL_STRUCTURE_SLOTS,
    N_DUAL_WEIGHTS,
    OUTPUTS,
)
from maskstudio.errors import ConfigError

JSON_VERSION = 1
AGILE_BRANCHES = ("auto", "A", "B")

__all__ = [
    "AGILE_BRANCHES", "AgileSettings", "COLOUR_SLOTS", "DEFAULT_DUAL_WEIGHTS", "DUAL_COLOUR_DEFAULT",
    "DUAL_STRUCTURE_DEFAULT", "DualSettings", "N_DUAL_WEIGHTS", "RenderSettings", "STRUCTURE_SLOTS",
]

#: DualStyleGAN weight slots by role (indices into ``DualSettings.weights``).
STRUCTURE_SLOTS = range(0, DUAL_STRUCTURE_SLOTS)
COLOUR_SLOTS = range(DUAL_STRUCTURE_SLOTS, N_DUAL_WEIGHTS)


def _number(value: Any, what: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):   # numpy scalars are Real
        raise ConfigError(f"render settings: {what} must be a number, not {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ConfigError(f"render settings: {what} must be finite, not {v}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ConfigError(f"render settings: {what} must be in [{lo:g}, {hi:g}], not {v:g}")
    return v


def _text(value: Any, what: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"render settings: {what} must be a string, not {value!r}")
    return value


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"render settings: {what} must be an object, not {value!r}")
    return value


@dataclass(frozen=True)
class AgileSettings:
    """AgileGAN: ``style`` = model id of an installed AgileGAN generator ("" = none chosen yet),
    ``strength`` in [0, 1] (network blend photo -> style), ``branch`` "auto" | "A" | "B"."""

    style: str = ""
    strength: float = 1.0
    branch: str = "auto"

    def __post_init__(self) -> None:
        object.__setattr__(self, "style", _text(self.style, "agile style"))
        object.__setattr__(self, "strength", _number(self.strength, "agile strength", 0.0, 1.0))
        if self.branch not in AGILE_BRANCHES:
            raise ConfigError(f"render settings: agile branch must be auto, A or B, not {self.branch!r}")


@dataclass(frozen=True)
class DualSettings:
    """DualStyleGAN: ``style`` = model id of an installed DualStyleGAN ("" = none chosen yet),
    ``code`` = name (or index) of one of its extrinsic style codes (None: taken from the exemplar's
    name when it names a code, else the model's first), ``weights`` = one value per W+ slot
    (:data:`STRUCTURE_SLOTS` structure, :data:`COLOUR_SLOTS` colour; models with fewer rows use
    the first ones). The official transfer options: ``truncation`` of the intrinsic code in
    [0, 1] (0.75), ``preserve_color`` (keep the photo's colours), ``wplus`` (encode with the
    W+ pSp encoder instead of the Z+ one)."""

    style: str = ""
    code: str | None = None
    weights: tuple[float, ...] = DEFAULT_DUAL_WEIGHTS
    truncation: float = DEFAULT_DUAL_TRUNCATION
    preserve_color: bool = False
    wplus: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "style", _text(self.style, "dual style"))
        object.__setattr__(self, "code", _text(self.code, "dual code", optional=True) or None)
        if isinstance(self.weights, (str, bytes)) or not isinstance(self.weights, Sequence):
            raise ConfigError(f"render settings: dual weights must be a list of numbers, not {self.weights!r}")
        w = tuple(_number(x, f"dual weight {i}") for i, x in enumerate(self.weights))
        object.__setattr__(self, "weights", w or DEFAULT_DUAL_WEIGHTS)   # empty = official default
        object.__setattr__(self, "truncation", _number(self.truncation, "dual truncation", 0.0, 1.0))
        for name in ("preserve_color", "wplus"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"render settings: dual {name} must be true or false, not {getattr(self, name)!r}")

    def with_master(self, slots: range, value: float) -> DualSettings:
        """These settings with every weight of ``slots`` (structure or colour) set to ``value``."""
        w = list(self.weights) + [0.0] * max(0, slots.stop - len(self.weights))
        for k in slots:
            w[k] = float(value)
        return dataclasses.replace(self, weights=tuple(w))


@dataclass(frozen=True)
class RenderSettings:
    """The user's render choices (immutable, validated on construction).

    - ``output``: "face" (DMN), "photo" (StyleGAN2 + edits), "agile", "dual".
    - ``edits``: {boundary model id: offset} semantic edits (zero offsets are kept here, so the
      sliders come back where they were; :meth:`to_request` drops them).
    - ``agile`` / ``dual``: :class:`AgileSettings` / :class:`DualSettings`.
    - ``morph``: photo -> style amount in [0, 1] for the agile/dual outputs.
    - ``face_morph``: amount of the Image2StyleGAN morph to the 2nd face in [0, 1] (a tool
      parameter, not part of a render request; kept so a project reopens with it).
    - ``style_edits``: {DMN style boundary name: value in std units, ±3 on the sliders} — edits
      of the DMN's style code (every output: the DMN face feeds the StyleGAN chain too);
      ``style_conditional``: conditional manipulation (default on).
    """

    output: str = "face"
    edits: Mapping[str, float] = field(default_factory=dict)
    agile: AgileSettings = field(default_factory=AgileSettings)
    dual: DualSettings = field(default_factory=DualSettings)
    morph: float = 1.0
    face_morph: float = 0.0
    style_edits: Mapping[str, float] = field(default_factory=dict)
    style_conditional: bool = True

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ConfigError(f"render settings: unknown output {self.output!r} (one of {', '.join(OUTPUTS)})")
        edits = {str(_text(k, "edit name")): _number(v, f"edit {k!r}")
                 for k, v in _mapping(self.edits, "edits").items()}
        object.__setattr__(self, "edits", MappingProxyType(edits))
        if not isinstance(self.agile, AgileSettings):
            raise ConfigError(f"render settings: agile must be AgileSettings, not {self.agile!r}")
        if not isinstance(self.dual, DualSettings):
            raise ConfigError(f"render settings: dual must be DualSettings, not {self.dual!r}")
        object.__setattr__(self, "morph", _number(self.morph, "morph", 0.0, 1.0))
        object.__setattr__(self, "face_morph", _number(self.face_morph, "face morph", 0.0, 1.0))
        style_edits = {str(_text(k, "style edit name")): _number(v, f"style edit {k!r}", -10.0, 10.0)
                       for k, v in _mapping(self.style_edits, "style edits").items()}
        object.__setattr__(self, "style_edits", MappingProxyType(style_edits))
        if not isinstance(self.style_conditional, bool):
            raise ConfigError(f"render settings: style_conditional must be true or false, not {self.style_conditional!r}")

    def replace(self, **changes: Any) -> RenderSettings:
        """A copy with ``changes`` (validated)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ to the engine
    def to_request(self, *, exemplar_name: str = "", dual_codes: Sequence[str] = (),
                   size_px: int | None = None, want_latent: bool | None = None) -> dict[str, Any]:
        """Keyword arguments of :class:`~maskstudio.engine.types.RenderRequest` (all but the
        mask and the exemplar) for these settings.

        Only what the output uses is passed: edits for the StyleGAN outputs (zero offsets
        dropped), ``agile`` / ``dual`` for their outputs, ``morph`` for agile and dual.
        ``exemplar_name`` + ``dual_codes`` (the chosen DualStyleGAN model's code names): with no
        code chosen, an exemplar named like one of the codes selects it. ``want_latent``: default
        True for every StyleGAN output. ``size_px``: the render side (None: the mask's).
        """
        from maskstudio.engine.types import AgileParams, DualParams

        out = self.output
        kw: dict[str, Any] = {"output": out, "want_latent": out != "face" if want_latent is None else bool(want_latent)}
        if size_px is not None:
            kw["size_px"] = int(size_px)
        if out != "face":
            kw["edits"] = {k: v for k, v in self.edits.items() if v}
        if out == "agile":
            a = self.agile
            kw["agile"] = AgileParams(a.style, a.strength, a.branch)
        if out == "dual":
            d = self.dual
            code = d.code or (exemplar_name if exemplar_name and exemplar_name in dual_codes else None)
            kw["dual"] = DualParams(d.style, code, d.weights, truncation=d.truncation,
                                    preserve_color=d.preserve_color, wplus=d.wplus)
        if out in ("agile", "dual"):
            kw["morph"] = self.morph
        style_edits = {k: v for k, v in self.style_edits.items() if v}
        if style_edits:
            kw["style_edits"] = style_edits
        if not self.style_conditional:
            kw["style_conditional"] = False
        return kw

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (see the module docstring); :meth:`from_json` reads it back equal."""
        return {
            "version": JSON_VERSION,
            "output": self.output,
            "edits": dict(self.edits),
            "agile": {"style": self.agile.style, "strength": self.agile.strength, "branch": self.agile.branch},
            "dual": {"style": self.dual.style, "code": self.dual.code, "weights": list(self.dual.weights),
                     "truncation": self.dual.truncation, "preserve_color": self.dual.preserve_color,
                     "wplus": self.dual.wplus},
            "morph": self.morph,
            "face_morph": self.face_morph,
            "style_edits": dict(self.style_edits),
            "style_conditional": self.style_conditional,
        }

    @classmethod
    def from_json(cls, data: Any) -> RenderSettings:
        """Settings from :meth:`to_json` output. ConfigError naming the bad value otherwise;
        missing keys take defaults, unknown keys are ignored."""
        d = _mapping(data, "render settings")
        version = d.get("version", JSON_VERSION)
        if isinstance(version, bool) or not isinstance(version, int):
            raise ConfigError(f"render settings: version must be an integer, not {version!r}")
        if version > JSON_VERSION:
            raise ConfigError(f"render settings: version {version} is newer than this MaskStudio reads "
                              f"({JSON_VERSION}); please update MaskStudio")
        a = _mapping(d.get("agile"), "agile")
        du = _mapping(d.get("dual"), "dual")
        defaults = cls()
        return cls(
            output=d.get("output", defaults.output),
            edits=_mapping(d.get("edits"), "edits"),
            agile=AgileSettings(
                style=a.get("style") or "",
                strength=a.get("strength", defaults.agile.strength),
                branch=a.get("branch") or defaults.agile.branch,
            ),
            dual=DualSettings(style=du.get("style") or "", code=du.get("code") or None,
                              weights=du.get("weights") or (),
                              truncation=du.get("truncation", defaults.dual.truncation),
                              preserve_color=du.get("preserve_color", defaults.dual.preserve_color),
                              wplus=du.get("wplus", defaults.dual.wplus)),
            morph=d.get("morph", defaults.morph),
            face_morph=d.get("face_morph", defaults.face_morph),
            style_edits=_mapping(d.get("style_edits"), "style edits"),
            style_conditional=d.get("style_conditional", defaults.style_conditional),
        )

    @classmethod
    def from_legacy(cls, sliders: Any) -> RenderSettings:
        """Migrate the untyped slider dict of project format 1 (``{"output", "edits", "agile",
        "dual", "face_morph", "morph", "exemplar_path"}``; ``exemplar_path`` is session state,
        read by :func:`maskstudio.session.project.load_project`, and ignored here)."""
        d = dict(_mapping(sliders, "sliders"))
        d.pop("exemplar_path", None)
        d.pop("version", None)
        return cls.from_json(d)
