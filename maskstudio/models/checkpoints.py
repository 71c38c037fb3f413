"""Checkpoint files: safe reading of the official pickles, and our own safetensors + JSON.

Reading official files (never full unpickling)::

    sd = load_official("latest_net_G.pth")       # OfficialCheckpoint: a dict[str, Tensor]
    sd.extras["latent_avg"], sd.layout, sd.path  # wrapper parts kept separately
    arch, config = detect_arch(sd)               # e.g. ("maskgan_dmn", {"ngf": 64, ...})
    model = load_official_model("latest_net_G.pth")   # LoadedModel, built + strictly loaded
    codes = load_exstyle_codes("refined_exstyle_code.npy")   # {name: Tensor [1,18,512]}

Layouts understood: a bare state_dict; ``{"g_ema": sd, "latent_avg": t, ...}`` (rosinality
StyleGAN2 / DualStyleGAN / AgileGAN; also training snapshots with ``g``/``d``/optimisers);
``{"state_dict": sd, "opts": dict, "latent_avg": t}`` (pSp / e4e / AgileGAN encoders).
Pickles are read with ``torch.load(map_location="cpu", weights_only=True)`` inside a small
allow-list (numpy arrays/scalars/dtypes and ``argparse.Namespace``, which appear in ``opts`` /
``args``); anything else is refused with a ``CheckpointError`` and no code runs.
DualStyleGAN exstyle ``.npy`` files (np.save of a dict) are read with a restricted unpickler
that only reconstructs numpy arrays.

Our own files: ``save_checkpoint(path, module, arch, config)`` writes ``<name>.safetensors`` and
``<name>.json`` (``format_version``, ``arch``, ``config``, ``dtype``, ``extras`` names, ``meta``,
``sha256`` of the safetensors file); ``load_checkpoint(path, device, dtype)`` builds the
network through :mod:`maskstudio.models.registry`, checks every key/shape, loads strictly and
returns a :class:`LoadedModel`. All problems raise ``CheckpointError("{path}: {problem}")``.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from maskstudio.errors import CheckpointError, ConfigError, file_error
from maskstudio.files import sha256_file
from maskstudio.models import registry

__all__ = [
    "FORMAT_VERSION", "OfficialCheckpoint", "LoadedModel", "load_official", "load_exstyle_codes",
    "check_state_dict", "detect_arch", "load_official_model", "save_checkpoint", "load_checkpoint",
    "parse_dtype", "sha256_file", "checkpoint_paths",
]

FORMAT_VERSION = 1
_EXTRA_PREFIX = "__extras__/"
_DTYPES = {
    "fp32": torch.float32, "float32": torch.float32, "float": torch.float32,
    "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}
_DTYPE_NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}
_WRAPPER_KEYS = ("g_ema", "state_dict", "model", "net", "generator")


def _err(path, problem: str) -> CheckpointError:
    return file_error(CheckpointError, path, problem)  # type: ignore[return-value]


def parse_dtype(dtype: "torch.dtype | str | None") -> torch.dtype | None:
    """torch dtype from ``torch.float16`` / ``"fp16"`` / ``"bfloat16"`` …; None stays None."""
    if dtype is None or isinstance(dtype, torch.dtype):
        if dtype is not None and dtype not in _DTYPE_NAMES:
            raise ConfigError(f"unsupported dtype {dtype} (use float32, float16 or bfloat16)")
        return dtype
    key = str(dtype).lower().replace("torch.", "")
    if key not in _DTYPES:
        raise ConfigError(f"unsupported dtype {dtype!r} (use fp32, fp16 or bf16)")
    return _DTYPES[key]


# ------------------------------------------------------------------ allow-listed unpickling

def _numpy_attr(names: list[str]):
    for qual in names:
        mod, _, attr = qual.rpartition(".")
        try:
            return getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError):
            continue
    return None


def _numpy_globals() -> dict[str, Any]:
    """Qualified names (numpy 1 and 2 spellings) -> objects needed to rebuild plain numpy data."""
    out: dict[str, Any] = {"numpy.dtype": np.dtype, "numpy.ndarray": np.ndarray}
    for attr, mods in (("_reconstruct", ("multiarray",)), ("scalar", ("multiarray",)),
                       ("_frombuffer", ("numeric",))):
        for m in mods:
            obj = _numpy_attr([f"numpy._core.{m}.{attr}", f"numpy.core.{m}.{attr}"])
            if obj is not None:
                out[f"numpy._core.{m}.{attr}"] = obj
                out[f"numpy.core.{m}.{attr}"] = obj
    try:
        import numpy.dtypes as npd

        for n in dir(npd):
            obj = getattr(npd, n)
            if n.endswith("DType") and isinstance(obj, type):
                out[f"numpy.dtypes.{n}"] = obj
    except ImportError:  # numpy < 1.25 has no numpy.dtypes
        pass
    return out


_NUMPY_GLOBALS = _numpy_globals()
#: extra globals a weights_only load may reconstruct (plain data only)
TORCH_ALLOWED_GLOBALS: dict[str, Any] = {**_NUMPY_GLOBALS, "argparse.Namespace": argparse.Namespace}


def _torch_load_safe(path: Path):
    allowed = [(obj, name) for name, obj in TORCH_ALLOWED_GLOBALS.items()]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        refused = ""
        try:
            names = [n for n in torch.serialization.get_unsafe_globals_in_checkpoint(path)
                     if n not in TORCH_ALLOWED_GLOBALS]
            if names:
                refused = f" (refused: {', '.join(names[:5])})"
        except Exception:  # noqa: BLE001 - only used to improve the message
            m = re.search(r"GLOBAL ([\w.]+)", str(e))
            refused = f" (refused: {m.group(1)})" if m else ""
        raise _err(path, "refusing to load: the pickle needs code or objects outside the safe "
                         f"allow-list{refused}; convert it with a trusted tool") from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError,
            AttributeError, TypeError, IndexError) as e:
        size = path.stat().st_size if path.exists() else 0
        raise _err(path, f"not a readable PyTorch checkpoint (truncated or corrupt? {size} bytes): "
                         f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e


class OfficialCheckpoint(dict):
    """The unwrapped state_dict (a plain ``dict[str, Tensor]``) plus where it came from.

    ``extras``: tensors and plain values that sat beside the weights (``latent_avg``, ``opts``,
    ``args``...). ``layout``: ``"state_dict"`` (bare), ``"g_ema"`` or ``"state_dict+opts"``…
    """

    def __init__(self, sd: Mapping[str, torch.Tensor], *, path: Path, layout: str,
                 extras: dict[str, Any] | None = None, ignored: list[str] | None = None):
        super().__init__(sd)
        self.path = path
        self.layout = layout
        self.extras = extras or {}
        self.ignored = ignored or []


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def load_official(path: "str | os.PathLike[str]") -> OfficialCheckpoint:
    """Read an official ``.pt``/``.pth`` safely and unwrap it to a state_dict (see module doc)."""
    path = Path(path)
    if not path.is_file():
        raise _err(path, "file not found")
    obj = _torch_load_safe(path)
    if _is_state_dict(obj):
        return OfficialCheckpoint(dict(obj), path=path, layout="state_dict")
    if not isinstance(obj, Mapping):
        raise _err(path, f"expected a state_dict or a dict wrapper, found {type(obj).__name__}")
    for key in _WRAPPER_KEYS:
        if key in obj and _is_state_dict(obj[key]):
            extras, ignored = {}, []
            for k, v in obj.items():
                if k == key:
                    continue
                if _is_state_dict(v) or (isinstance(v, Mapping) and "state" in v and "param_groups" in v):
                    ignored.append(str(k))  # other networks / optimiser states (g, d, g_optim...)
                else:
                    extras[str(k)] = v
            layout = key if key != "state_dict" else ("state_dict+opts" if "opts" in obj else "state_dict")
            return OfficialCheckpoint(dict(obj[key]), path=path, layout=layout, extras=extras, ignored=ignored)
    # bare state_dict with a few non-tensor entries is not an official layout we know
    raise _err(path, f"no state_dict found (top-level keys: {', '.join(map(str, list(obj)[:8]))})")


# ------------------------------------------------------------------ exstyle .npy (restricted)

class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        qual = f"{module}.{name}"
        if qual in _NUMPY_GLOBALS:
            return _NUMPY_GLOBALS[qual]
        raise pickle.UnpicklingError(f"global {qual} is not allowed")


def load_exstyle_codes(path: "str | os.PathLike[str]") -> dict[str, torch.Tensor]:
    """DualStyleGAN ``exstyle_code.npy``: ``{style file name: float32 Tensor [1, n, 512]}``.

    The file is an ``np.save`` of a dict (a pickle): it is unpickled with an allow-list that only
    reconstructs numpy arrays — any other global (code) is refused with a CheckpointError.
    """
    path = Path(path)
    if not path.is_file():
        raise _err(path, "file not found")
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            if dtype.hasobject:
                obj = _NumpyOnlyUnpickler(f).load()
            else:
                raise _err(path, f"holds a plain {dtype} array {shape}, not a dict of style codes")
    except CheckpointError:
        raise
    except pickle.UnpicklingError as e:
        raise _err(path, f"refusing to load: {e} (only numpy arrays may be rebuilt)") from e
    except (ValueError, EOFError, OSError, TypeError, AttributeError, IndexError) as e:
        raise _err(path, f"not a readable .npy style-code file: {type(e).__name__}: {e}") from e
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj.item()
    if not isinstance(obj, dict) or not obj:
        raise _err(path, f"expected a non-empty dict of style codes, found {type(obj).__name__}")
    out = {}
    for name, code in obj.items():
        arr = np.asarray(code)
        if not isinstance(name, str) or arr.dtype.kind != "f" or arr.ndim not in (2, 3) or arr.shape[-1] != 512:
            raise _err(path, f"entry {name!r}: expected float [1,n,512], got {arr.dtype} {arr.shape}")
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        out[name] = t if t.ndim == 3 else t.unsqueeze(0)
    return out


# ------------------------------------------------------------------ validation / detection

def check_state_dict(module: nn.Module, sd: Mapping[str, torch.Tensor], source: Any) -> None:
    """Raise CheckpointError ``"{source}: ..."`` unless ``sd`` has exactly ``module``'s keys/shapes."""
    want = module.state_dict()
    missing = [k for k in want if k not in sd]
    unexpected = [k for k in sd if k not in want]
    misshaped = [k for k in want if k in sd and tuple(sd[k].shape) != tuple(want[k].shape)]
    if not (missing or unexpected or misshaped):
        return
    parts = []
    if misshaped:
        k = misshaped[0]
        parts.append(f"{len(misshaped)} mis-shaped key(s), first {k!r}: file {tuple(sd[k].shape)} "
                     f"vs expected {tuple(want[k].shape)}")
    if missing:
        parts.append(f"{len(missing)} missing key(s), first {missing[0]!r}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s), first {unexpected[0]!r}")
    raise file_error(CheckpointError, source, f"does not match {type(module).__name__}: " + "; ".join(parts))


def _indices(sd: Mapping[str, Any], pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in sd for m in [rx.match(k)] if m})


def _detect_stylegan2(sd: Mapping[str, torch.Tensor], prefix: str = "") -> dict[str, Any]:
    p = prefix
    n_rgb = len(_indices(sd, re.escape(p) + r"to_rgbs\.(\d+)\."))
    size = 2 ** (n_rgb + 2)
    style_idx = [i for i in _indices(sd, re.escape(p) + r"style\.(\d+)\.weight$")]
    style_dim = int(sd[f"{p}style.{style_idx[0]}.weight"].shape[0]) if style_idx else 512
    channels = {4: int(sd[f"{p}conv1.conv.weight"].shape[1])}
    for i in range(n_rgb):
        channels[2 ** (i + 3)] = int(sd[f"{p}convs.{2 * i}.conv.weight"].shape[1])
    cfg: dict[str, Any] = {"size": size, "style_dim": style_dim, "n_mlp": len(style_idx)}
    return _with_channels(cfg, channels)


def _with_channels(cfg: dict[str, Any], channels: dict[int, int]) -> dict[str, Any]:
    """Add ``channel_multiplier`` when ``channels`` is an official table, else ``channels``."""
    for cm in (2, 1, 4):
        table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm,
                 512: 32 * cm, 1024: 16 * cm}
        if all(table.get(r) == c for r, c in channels.items()):
            cfg["channel_multiplier"] = cm
            return cfg
    cfg["channels"] = channels
    return cfg


def _detect_encoder(sd: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    body = _indices(sd, r"encoder\.body\.(\d+)\.res_layer\.1\.weight$")
    depths_per_unit = [int(sd[f"encoder.body.{i}.res_layer.1.weight"].shape[0]) for i in body]
    units, depths = [], []
    for d in depths_per_unit:
        if depths and depths[-1] == d:
            units[-1] += 1
        else:
            depths.append(d)
            units.append(1)
    styles = _indices(sd, r"encoder\.styles\.(\d+)\.linear\.weight$")
    n_convs = [len(_indices(sd, rf"encoder\.styles\.{i}\.convs\.(\d+)\.weight$")) for i in styles]
    groups = sorted(set(n_convs))
    cfg: dict[str, Any] = {"n_styles": len(styles), "units": units, "depths": depths,
                           "input_nc": int(sd["encoder.input_layer.0.weight"].shape[1])}
    if len(groups) >= 2:
        cfg["coarse_ind"] = n_convs.count(groups[0])
        cfg["middle_ind"] = cfg["coarse_ind"] + n_convs.count(groups[1])
    if groups:
        # the coarsest head reduces the stride-16 map to 1x1 with one stride-2 conv per halving
        cfg["input_size"] = 16 * 2 ** groups[0]
    cfg["decoder"] = _detect_stylegan2(sd, "decoder.") if "decoder.conv1.conv.weight" in sd else None
    return cfg


def detect_arch(sd: Mapping[str, torch.Tensor], source: Any = "<state_dict>") -> tuple[str, dict[str, Any]]:
    """Guess ``(arch, config dict)`` of an official state_dict from its key names and shapes.

    Fully detected: ``maskgan_dmn``, ``stylegan2``, ``psp_encoder``, ``agilegan_encoder``.
    ``dualstylegan`` / ``agilegan_generator`` give their generator settings (best effort).
    The result should still be verified with :func:`check_state_dict` after building.
    """
    try:
        if "enc_style.model_last.1.weight" in sd and "model.1.weight" in sd:
            blocks = _indices(sd, r"model\.(\d+)\.conv_block\.")
            last = max(_indices(sd, r"model\.(\d+)\.weight$"))
            w = sd["model.1.weight"]
            return "maskgan_dmn", {"ngf": int(w.shape[0]), "n_downsample": (blocks[0] - 4) // 3,
                                   "n_blocks": len(blocks), "label_nc": int(w.shape[1]),
                                   "output_nc": int(sd[f"model.{last}.weight"].shape[0])}
        if any(k.startswith("encoder.body.") for k in sd):
            arch = "agilegan_encoder" if "encoder.fc_mu.weight" in sd else "psp_encoder"
            return arch, _detect_encoder(sd)
        if "generator.conv1.conv.weight" in sd and any(k.startswith("res.") for k in sd):
            cfg = _detect_stylegan2(sd, "generator.")
            modres = _indices(sd, r"res\.(\d+)\.conv\.0\.weight$")
            cfg["res_index"] = (max(modres) if modres else -1)
            return "dualstylegan", cfg
        if "convsA.0.conv.weight" in sd and "conv1.conv.weight" in sd:
            n_ab = len(_indices(sd, r"to_rgbsA\.(\d+)\."))
            n_c = len(_indices(sd, r"to_rgbsC\.(\d+)\."))
            style_idx = _indices(sd, r"style\.(\d+)\.weight$")
            channels = {4: int(sd["conv1.conv.weight"].shape[1])}
            for i in range(n_ab):
                channels[2 ** (i + 3)] = int(sd[f"convsA.{2 * i}.conv.weight"].shape[1])
            for i in range(n_c):
                channels[2 ** (i + 3 + n_ab)] = int(sd[f"convsC.{2 * i}.conv.weight"].shape[1])
            cfg = {"size": 2 ** (n_ab + n_c + 2), "style_dim": int(sd["style.1.weight"].shape[0]),
                   "n_mlp": len(style_idx)}
            return "agilegan_generator", _with_channels(cfg, channels)
        if "conv1.conv.weight" in sd and "input.input" in sd:
            return "stylegan2", _detect_stylegan2(sd)
    except (KeyError, IndexError, ValueError) as e:
        raise file_error(CheckpointError, source, f"cannot work out the architecture: {e!r}") from e
    first = ", ".join(list(sd)[:4])
    raise file_error(CheckpointError, source, f"unknown architecture (first keys: {first})")


@dataclass
class LoadedModel:
    """A network ready to run: ``module`` (eval mode) and how it was described."""

    module: nn.Module
    arch: str
    config: dict[str, Any]
    extras: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def _owned(t: torch.Tensor, device) -> torch.Tensor:
    """``t`` on ``device`` in its own 64-byte-aligned storage.

    Tensors read from a safetensors buffer can sit at odd offsets; CPU kernels then take other
    code paths and results differ in the last bits (and run slower), so such tensors are copied.
    """
    t = t.to(device)
    if t.data_ptr() % 64 or t.storage_offset() or t.untyped_storage().nbytes() != t.nbytes:
        t = t.clone(memory_format=torch.contiguous_format)
    return t


def _build_and_load(arch: str, config: Any, sd: Mapping[str, torch.Tensor], source: Any,
                    device, dtype) -> tuple[nn.Module, dict[str, Any]]:
    try:
        cfg = registry.make_config(arch, config)
        with torch.device("meta"):
            module = registry.build(arch, cfg)
    except ConfigError as e:
        raise file_error(CheckpointError, source, f"cannot build {arch}: {e}") from e
    check_state_dict(module, sd, source)
    entries = {n for n, _ in module.named_parameters()} | {n for n, _ in module.named_buffers()}
    if entries <= set(sd):  # every tensor comes from the file: skip the random init
        module.load_state_dict({k: _owned(v, device) for k, v in sd.items()}, strict=True, assign=True)
    else:  # non-persistent buffers need a real construction
        module = registry.build(arch, cfg)
        module.load_state_dict(sd, strict=True)
    module = module.to(device=device, dtype=dtype) if dtype is not None else module.to(device)
    return module.eval(), registry.config_to_dict(cfg)


def load_official_model(path: "str | os.PathLike[str]", device: "str | torch.device" = "cpu",
                        dtype: "torch.dtype | str | None" = torch.float32, arch: str | None = None,
                        config: Mapping[str, Any] | None = None) -> LoadedModel:
    """Read an official file, detect (or take) its architecture, build and load it strictly."""
    sd = load_official(path)
    if arch is None:
        arch, detected = detect_arch(sd, sd.path)
        config = {**detected, **(config or {})}
    dtype = parse_dtype(dtype)
    module, cfg = _build_and_load(arch, config, sd, sd.path, device, dtype)
    extras = {k: (v.to(device=device, dtype=dtype or v.dtype) if isinstance(v, torch.Tensor) and v.is_floating_point() else v)
              for k, v in sd.extras.items()}
    return LoadedModel(module, arch, cfg, extras, {"source_layout": sd.layout}, Path(path))


# ------------------------------------------------------------------ our own format

def checkpoint_paths(path: "str | os.PathLike[str]") -> tuple[Path, Path]:
    """``(<name>.safetensors, <name>.json)`` for ``<name>``, ``<name>.safetensors`` or ``.json``."""
    p = Path(path)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".safetensors"), p.with_name(p.name + ".json")


def save_checkpoint(path: "str | os.PathLike[str]", module: nn.Module, arch: str, config: Any,
                    extra_tensors: Mapping[str, torch.Tensor] | None = None,
                    meta: Mapping[str, Any] | None = None,
                    dtype: "torch.dtype | str | None" = None) -> tuple[Path, Path]:
    """Write ``<name>.safetensors`` + ``<name>.json``; returns both paths.

    ``config``: the module's config (object or dict); ``extra_tensors``: e.g. ``latent_avg``;
    ``meta``: JSON-able notes (training data, licence…); ``dtype``: cast floating tensors.
    """
    from safetensors.torch import save_file

    st_path, json_path = checkpoint_paths(path)
    if arch not in registry.ARCHITECTURES:
        raise ConfigError(f"unknown architecture {arch!r}")
    dtype = parse_dtype(dtype)
    cfg_dict = registry.config_to_dict(config)
    tensors: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, int]] = set()

    def put(name: str, t: torch.Tensor) -> None:
        t = t.detach().to("cpu")
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        t = t.contiguous()
        key = (t.untyped_storage().data_ptr(), t.storage_offset())
        if t.numel() and key in seen:  # safetensors refuses shared storage
            t = t.clone()
        seen.add((t.untyped_storage().data_ptr(), t.storage_offset()))
        tensors[name] = t

    for k, v in module.state_dict().items():
        put(k, v)
    extras = dict(extra_tensors or {})
    for k, v in extras.items():
        if not isinstance(v, torch.Tensor):
            raise ConfigError(f"extra {k!r} is not a tensor")
        put(_EXTRA_PREFIX + k, v)
    used = {t.dtype for t in tensors.values() if t.is_floating_point()}
    dtype_name = _DTYPE_NAMES.get(dtype) if dtype else (
        _DTYPE_NAMES.get(next(iter(used))) if len(used) == 1 else "mixed")
    st_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = st_path.with_name(st_path.name + ".tmp")
    try:
        save_file(tensors, str(tmp), metadata={"format": "pt", "arch": arch})
        os.replace(tmp, st_path)
    except Exception as e:
        tmp.unlink(missing_ok=True)
        raise _err(st_path, f"cannot write checkpoint: {e}") from e
    doc = {"format_version": FORMAT_VERSION, "arch": arch, "config": cfg_dict, "dtype": dtype_name,
           "extras": sorted(extras), "meta": dict(meta or {}), "sha256": sha256_file(st_path),
           "n_tensors": len(tensors)}
    tmp_json = json_path.with_name(json_path.name + ".tmp")
    with open(tmp_json, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, sort_keys=False, default=str)
        f.write("\n")
    os.replace(tmp_json, json_path)
    return st_path, json_path


def read_checkpoint_json(path: "str | os.PathLike[str]") -> dict[str, Any]:
    """The JSON description of one of our checkpoints (validated), without loading weights."""
    _, json_path = checkpoint_paths(path)
    if not json_path.is_file():
        raise _err(json_path, "file not found (every .safetensors needs its .json config)")
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, OSError) as e:
        raise _err(json_path, f"not valid JSON: {e}") from e
    if not isinstance(doc, dict):
        raise _err(json_path, "expected a JSON object")
    if doc.get("format_version") != FORMAT_VERSION:
        raise _err(json_path, f"unsupported format_version {doc.get('format_version')!r} (expected {FORMAT_VERSION})")
    for key, typ in (("arch", str), ("config", dict)):
        if not isinstance(doc.get(key), typ):
            raise _err(json_path, f"field {key!r} is missing or not a {typ.__name__}")
    return doc


def load_checkpoint(path: "str | os.PathLike[str]", device: "str | torch.device" = "cpu",
                    dtype: "torch.dtype | str | None" = torch.float32, verify: bool = True) -> LoadedModel:
    """Load ``<name>.safetensors`` + ``<name>.json``: build, check keys/shapes, load strictly, cast.

    ``dtype`` float32/float16/bfloat16 (or None: keep stored); ``verify`` checks the sha256.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    st_path, json_path = checkpoint_paths(path)
    doc = read_checkpoint_json(path)
    if not st_path.is_file():
        raise _err(st_path, "file not found")
    if verify and doc.get("sha256") and sha256_file(st_path) != doc["sha256"]:
        raise _err(st_path, f"sha256 differs from {json_path.name} (truncated or modified file)")
    try:
        tensors = load_file(str(st_path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise _err(st_path, f"not a readable safetensors file (truncated or corrupt?): {e}") from e
    sd = {k: v for k, v in tensors.items() if not k.startswith(_EXTRA_PREFIX)}
    extras = {k[len(_EXTRA_PREFIX):]: v for k, v in tensors.items() if k.startswith(_EXTRA_PREFIX)}
    missing_extras = sorted(set(doc.get("extras", [])) - set(extras))
    if missing_extras:
        raise _err(st_path, f"extra tensor(s) {missing_extras} listed in {json_path.name} are missing")
    dtype = parse_dtype(dtype)
    module, cfg = _build_and_load(doc["arch"], doc["config"], sd, st_path, device, dtype)
    extras = {k: (v.to(device=device, dtype=dtype) if dtype is not None and v.is_floating_point() else v.to(device))
              for k, v in extras.items()}
    return LoadedModel(module, doc["arch"], cfg, extras, dict(doc.get("meta") or {}), st_path)
