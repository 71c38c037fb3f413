"""Architecture registry: name -> (config class, module class), imported lazily.

``build("maskgan_dmn", {"ngf": 16})`` gives a ready ``nn.Module``. Names are what our
checkpoint JSON files store in ``"arch"``. Modules are imported only when asked for, so a
missing or broken network module only affects its own architecture (clear ``ConfigError``).

Architecture detection for official state dicts is registered per model: each network module
decorates its own detector with ``@register_detector("<arch>")`` (a function ``sd -> config
dict``, or None when the keys are not its layout). :func:`detectors` imports the network
modules and returns what they registered; ``checkpoints.detect_arch`` runs them. Likewise a
module whose official file holds more than the network uses (torchvision's VGG-16 with its
classifier) registers ``@register_official_filter("<arch>")`` (``(sd, config) -> sd``), applied
by :func:`filter_official` before the strict key check.
"""
from __future__ import annotations

import dataclasses
import importlib
import re
from typing import Any, Callable, Mapping

from torch import nn

from maskstudio.errors import ConfigError

__all__ = ["ARCHITECTURES", "resolve", "make_config", "config_to_dict", "build", "arch_of",
           "register_detector", "detectors", "key_indices", "register_official_filter",
           "filter_official"]

_P = "maskstudio.models."

#: arch name -> ("module:ConfigClass", "module:ModuleClass")
ARCHITECTURES: dict[str, tuple[str, str]] = {
    "maskgan_dmn": (_P + "dense_mapping:DenseMappingConfig", _P + "dense_mapping:DenseMappingNetwork"),
    "stylegan2": (_P + "stylegan2:StyleGAN2Config", _P + "stylegan2:StyleGAN2Generator"),
    "dualstylegan": (_P + "dualstylegan:DualStyleGANConfig", _P + "dualstylegan:DualStyleGAN"),
    "agilegan_generator": (_P + "agilegan:AgileGeneratorConfig", _P + "agilegan:AgileGANGenerator"),
    "psp_encoder": (_P + "psp:PSPConfig", _P + "psp:PSPEncoderModel"),
    "agilegan_encoder": (_P + "agilegan_encoder:AgileEncoderConfig", _P + "agilegan_encoder:AgileEncoderModel"),
    "face_parser": (_P + "face_parser:FaceParserConfig", _P + "face_parser:FaceParser"),
    "vgg16_features": (_P + "vgg:VGG16Config", _P + "vgg:VGG16Features"),
}


def _import(arch: str, ref: str):
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name and module_name.startswith(e.name):  # the network module itself is missing
            raise ConfigError(f"architecture {arch!r} is not available: module {module_name} "
                              f"does not exist in this MaskStudio") from e
        raise ConfigError(f"architecture {arch!r}: importing {module_name} failed: {e}") from e
    except ImportError as e:
        raise ConfigError(f"architecture {arch!r}: importing {module_name} failed: {e}") from e
    try:
        return getattr(module, attr)
    except AttributeError as e:
        raise ConfigError(f"architecture {arch!r}: {module_name} has no {attr}") from e


def resolve(arch: str) -> tuple[type, type]:
    """``(ConfigClass, ModuleClass)`` for ``arch``; ConfigError for unknown/unavailable names."""
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown architecture {arch!r} (known: {', '.join(sorted(ARCHITECTURES))})")
    cfg_ref, mod_ref = ARCHITECTURES[arch]
    return _import(arch, cfg_ref), _import(arch, mod_ref)


def make_config(arch: str, config: Any = None):
    """Config object for ``arch`` from a dict (``from_dict``), an instance, or None (defaults)."""
    cfg_cls, _ = resolve(arch)
    if config is None:
        config = {}
    if isinstance(config, cfg_cls):
        return config
    if not isinstance(config, Mapping):
        raise ConfigError(f"{arch}: config must be a dict or {cfg_cls.__name__}, got {type(config).__name__}")
    try:
        if hasattr(cfg_cls, "from_dict"):
            return cfg_cls.from_dict(dict(config))
        return cfg_cls(**dict(config))
    except ConfigError:
        raise
    except (TypeError, ValueError, KeyError) as e:
        raise ConfigError(f"{arch}: invalid config {dict(config)!r}: {e}") from e


def config_to_dict(config: Any) -> dict[str, Any]:
    """JSON-friendly dict of a config object (``to_dict`` or dataclass fields)."""
    if isinstance(config, Mapping):
        return dict(config)
    if hasattr(config, "to_dict"):
        return dict(config.to_dict())
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    raise ConfigError(f"cannot turn {type(config).__name__} into a config dict")


def build(arch: str, config: Any = None) -> nn.Module:
    """Instantiate ``arch`` with ``config`` (dict, config object or None for defaults)."""
    _, mod_cls = resolve(arch)
    cfg = make_config(arch, config)
    try:
        return mod_cls(cfg)
    except ConfigError:
        raise
    except (TypeError, ValueError, KeyError) as e:
        raise ConfigError(f"{arch}: cannot build with config {config_to_dict(cfg)!r}: {e}") from e


def arch_of(module: nn.Module) -> str | None:
    """Registry name of ``module``'s class (exact class match), or None. Imports nothing new."""
    import sys

    for arch, (_, mod_ref) in ARCHITECTURES.items():
        module_name, _, attr = mod_ref.partition(":")
        mod = sys.modules.get(module_name)
        if mod is not None and getattr(mod, attr, None) is type(module):
            return arch
    return None


# ------------------------------------------------------------------ detection (per model)

#: ``sd -> config dict`` (None: not this architecture). May raise KeyError/IndexError/ValueError
#: on a damaged listing of its own layout.
Detector = Callable[[Mapping[str, Any]], "dict[str, Any] | None"]
_DETECTORS: dict[str, Detector] = {}


def register_detector(arch: str) -> Callable[[Detector], Detector]:
    """Decorator a network module puts on its own detector for ``arch``."""
    if arch not in ARCHITECTURES:
        raise ConfigError(f"cannot register a detector for unknown architecture {arch!r}")

    def deco(fn: Detector) -> Detector:
        _DETECTORS[arch] = fn
        return fn

    return deco


def detectors() -> tuple[dict[str, Detector], dict[str, str]]:
    """``({arch: detector}, {arch: why its module could not be imported})``, in
    :data:`ARCHITECTURES` order; importing the network modules registers their detectors."""
    failed: dict[str, str] = {}
    for arch, (_, mod_ref) in ARCHITECTURES.items():
        try:
            _import(arch, mod_ref)
        except ConfigError as e:
            failed[arch] = str(e)
    return {a: _DETECTORS[a] for a in ARCHITECTURES if a in _DETECTORS}, failed


def key_indices(sd: Mapping[str, Any], pattern: str) -> list[int]:
    """Sorted distinct integers captured by group 1 of ``pattern`` (matched at the key start)."""
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in sd for m in [rx.match(k)] if m})


OfficialFilter = Callable[[Mapping[str, Any], "Mapping[str, Any] | None"], "dict[str, Any]"]
_FILTERS: dict[str, OfficialFilter] = {}


def register_official_filter(arch: str) -> Callable[[OfficialFilter], OfficialFilter]:
    """Decorator a network module puts on the function that drops the parts of its official
    file it does not use (timm's ``checkpoint_filter_fn`` idea)."""
    if arch not in ARCHITECTURES:
        raise ConfigError(f"cannot register a filter for unknown architecture {arch!r}")

    def deco(fn: OfficialFilter) -> OfficialFilter:
        _FILTERS[arch] = fn
        return fn

    return deco


def filter_official(arch: str, sd: Mapping[str, Any], config: Mapping[str, Any] | None = None) -> Any:
    """``sd`` without the entries ``arch``'s module says its official file carries unused
    (unchanged when it registered no filter)."""
    if arch in ARCHITECTURES:
        _import(arch, ARCHITECTURES[arch][1])  # registers the module's filter
    fn = _FILTERS.get(arch)
    return sd if fn is None else fn(sd, config)
