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
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from maskstudio.errors import CheckpointError, ConfigError, file_error
from maskstudio.files import check_regular_file, refuse_html, sha256_file, verify_zip
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
#: Largest single array a restricted unpickler may allocate beyond the data in the file itself.
MAX_UNPICKLED_ARRAY_BYTES = 256 << 20


def _guard_bytes(nbytes: int, what: str) -> None:
    if nbytes > MAX_UNPICKLED_ARRAY_BYTES:
        raise pickle.UnpicklingError(f"{what} would allocate {nbytes} bytes (more than "
                                     f"{MAX_UNPICKLED_ARRAY_BYTES}); refused")


def _guarded_globals(real: dict[str, Any]) -> dict[str, Any]:
    """The numpy constructors of ``real`` wrapped so that a pickle cannot make them allocate a
    huge array or dtype (pickled arrays carry their data; only forged ones ask for more)."""
    out = dict(real)

    class _GuardedArray(np.ndarray):
        def __new__(cls, shape=(), dtype=float, *args, **kwargs):
            shp = (shape,) if isinstance(shape, int) else tuple(shape)
            _guard_bytes(int(np.prod([int(x) for x in shp], dtype=object)) * np.dtype(dtype).itemsize,
                         f"numpy.ndarray{shp}")
            return np.ndarray.__new__(np.ndarray, shape, dtype, *args, **kwargs)

    def dtype(*args, **kwargs):
        d = np.dtype(*args, **kwargs)
        _guard_bytes(d.itemsize, "numpy.dtype")
        return d

    out["numpy.ndarray"] = _GuardedArray
    out["numpy.dtype"] = dtype
    for name, fn in real.items():
        if name.endswith("._reconstruct"):
            def reconstruct(subtype, shape, dt, _fn=fn):
                shp = (shape,) if isinstance(shape, int) else tuple(shape)
                _guard_bytes(int(np.prod([int(x) for x in shp], dtype=object)) * np.dtype(dt).itemsize,
                             f"an array of shape {shp}")
                return _fn(np.ndarray if subtype is _GuardedArray else subtype, shape, dt)
            out[name] = reconstruct
    return out


_SAFE_NUMPY_GLOBALS = _guarded_globals(_NUMPY_GLOBALS)
#: extra globals a weights_only load may reconstruct (plain data only)
TORCH_ALLOWED_GLOBALS: dict[str, Any] = {**_NUMPY_GLOBALS, "argparse.Namespace": argparse.Namespace}


def _check_input(path: Path, what: str = "a checkpoint") -> None:
    """Refuse what cannot be a checkpoint before reading it: not a regular file (FIFO, device:
    they would hang), an HTML page saved instead of the file, a zip with a damaged member."""
    if not path.exists():
        raise _err(path, "file not found")
    check_regular_file(path, what.split(" ", 1)[-1], CheckpointError)
    refuse_html(path, what, CheckpointError)
    if zipfile.is_zipfile(path):
        verify_zip(path, CheckpointError)  # torch's own zip reader does not check CRC-32s


def _torch_load_safe(path: Path):
    _check_input(path)
    # torch checks the type of every object it builds against these: numpy.ndarray stays the
    # real class (a forged huge array then ends in MemoryError, reported below)
    allowed: list[Callable[..., Any] | tuple[Callable[..., Any], str]] = [
        (obj if name == "numpy.ndarray" else _SAFE_NUMPY_GLOBALS.get(name, obj), name)
        for name, obj in TORCH_ALLOWED_GLOBALS.items()]
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
        if "refused" in str(e) and "allocate" in str(e):
            raise _err(path, f"refusing to load: {e}") from e
        raise _err(path, "refusing to load: the pickle needs code or objects outside the safe "
                         f"allow-list{refused}; convert it with a trusted tool") from e
    except MemoryError as e:
        raise _err(path, "refusing to load: it asks for more memory than this machine has "
                         "(corrupt or forged file)") from e
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
        if qual in _SAFE_NUMPY_GLOBALS:
            return _SAFE_NUMPY_GLOBALS[qual]
        raise pickle.UnpicklingError(f"global {qual} is not allowed")


def load_exstyle_codes(path: "str | os.PathLike[str]") -> dict[str, torch.Tensor]:
    """DualStyleGAN ``exstyle_code.npy``: ``{style file name: float32 Tensor [1, n, 512]}``.

    The file is an ``np.save`` of a dict (a pickle): it is unpickled with an allow-list that only
    reconstructs numpy arrays — any other global (code) is refused with a CheckpointError.
    """
    path = Path(path)
    _check_input(path, "a style-code file")
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
    except MemoryError as e:
        raise _err(path, "refusing to load: it asks for more memory than this machine has") from e
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

def _same_shape(got: tuple[int, ...], want: tuple[int, ...]) -> bool:
    """Shapes match, or a 0-d entry was stored 1-D with one element (files saved before
    PyTorch 0.4, e.g. BatchNorm ``num_batches_tracked``; ``load_state_dict`` accepts those)."""
    return got == want or (want == () and got == (1,))


def check_state_dict(module: nn.Module, sd: Mapping[str, torch.Tensor], source: Any) -> None:
    """Raise CheckpointError ``"{source}: ..."`` unless ``sd`` has exactly ``module``'s keys/shapes."""
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise file_error(CheckpointError, source, f"{len(bad)} value(s) are not tensors, first {bad[0]!r}")
    want = module.state_dict()
    missing = [k for k in want if k not in sd]
    unexpected = [k for k in sd if k not in want]
    misshaped = [k for k in want if k in sd and not _same_shape(tuple(sd[k].shape), tuple(want[k].shape))]
    # weights must be real floating point (official files never store int / complex / bool
    # weights); only integer buffers (BatchNorm num_batches_tracked) may be integers
    mistyped = [k for k in want if k in sd and k not in misshaped
                and ((want[k].is_floating_point() and not sd[k].is_floating_point())
                     or sd[k].is_complex() or sd[k].dtype == torch.bool)]
    if not (missing or unexpected or misshaped or mistyped):
        return
    parts = []
    if mistyped:
        k = mistyped[0]
        parts.append(f"{len(mistyped)} key(s) of the wrong type, first {k!r}: file {str(sd[k].dtype)[6:]} vs "
                     f"expected {'floating point' if want[k].is_floating_point() else str(want[k].dtype)[6:]}")
    if misshaped:
        k = misshaped[0]
        parts.append(f"{len(misshaped)} mis-shaped key(s), first {k!r}: file {tuple(sd[k].shape)} "
                     f"vs expected {tuple(want[k].shape)}")
    if missing:
        parts.append(f"{len(missing)} missing key(s), first {missing[0]!r}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s), first {unexpected[0]!r}")
    raise file_error(CheckpointError, source, f"does not match {type(module).__name__}: " + "; ".join(parts))


def detect_arch(sd: Mapping[str, torch.Tensor], source: Any = "<state_dict>") -> tuple[str, dict[str, Any]]:
    """Guess ``(arch, config dict)`` of an official state_dict from its key names and shapes.

    Each network module registers its own detector (:func:`registry.register_detector`); exactly
    one must recognise the listing. Fully detected: ``maskgan_dmn``, ``stylegan2``,
    ``psp_encoder``, ``agilegan_encoder``; ``dualstylegan`` / ``agilegan_generator`` give their
    generator settings (best effort). Verify with :func:`check_state_dict` after building.
    """
    found, failed = registry.detectors()
    matches: list[tuple[str, dict[str, Any]]] = []
    try:
        for arch, detect in found.items():
            cfg = detect(sd)
            if cfg is not None:
                matches.append((arch, cfg))
    except (KeyError, IndexError, ValueError) as e:
        raise file_error(CheckpointError, source, f"cannot work out the architecture: {e!r}") from e
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise file_error(CheckpointError, source, "ambiguous architecture: the keys fit "
                         + " and ".join(a for a, _ in matches))
    first = ", ".join(list(sd)[:4])
    note = f"; not checked: {', '.join(sorted(failed))} (module unavailable)" if failed else ""
    raise file_error(CheckpointError, source, f"unknown architecture (first keys: {first}){note}")


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


_SIZE_WORDS = ("channel", "ngf", "ndf", "_nc", "nc_", "dim", "size", "width")


def _check_config_sizes(config: Any, source: Any, where: str = "config") -> None:
    """Channel counts, widths and sizes in a config must be positive integers (a zero would
    divide by zero while building, a negative one fails deep inside torch)."""
    if not isinstance(config, Mapping):
        return
    for k, v in config.items():
        key = str(k)
        if isinstance(v, Mapping):
            if key == "channels":
                for r, c in v.items():
                    if not isinstance(c, int) or isinstance(c, bool) or c <= 0:
                        raise file_error(CheckpointError, source, f"{where}.channels[{r!r}] must be a positive "
                                                                  f"integer, got {c!r}")
            else:
                _check_config_sizes(v, source, f"{where}.{key}")
        elif (isinstance(v, (int, float)) and not isinstance(v, bool)
              and (key.endswith("nc") or any(w in key for w in _SIZE_WORDS)) and v <= 0):
            raise file_error(CheckpointError, source, f"{where}.{key} must be positive, got {v!r}")


def _build_and_load(arch: str, config: Any, sd: Mapping[str, torch.Tensor], source: Any,
                    device, dtype) -> tuple[nn.Module, dict[str, Any]]:
    _check_config_sizes(config, source)
    try:
        cfg = registry.make_config(arch, config)
        with torch.device("meta"):
            module = registry.build(arch, cfg)
    except ConfigError as e:
        raise file_error(CheckpointError, source, f"cannot build {arch}: {e}") from e
    except (ArithmeticError, ValueError, TypeError, RuntimeError, KeyError, IndexError) as e:
        raise file_error(CheckpointError, source, f"cannot build {arch} from its config "
                                                  f"({type(e).__name__}: {e})") from e
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
    module, cfg = _build_and_load(arch, config, registry.filter_official(arch, sd, config), sd.path,
                                  device, dtype)
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
        seen.add((t.untyped_storage().data_ptr(), int(t.storage_offset())))
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
    if not json_path.exists():
        raise _err(json_path, "file not found (every .safetensors needs its .json config)")
    check_regular_file(json_path, "checkpoint config", CheckpointError)
    if json_path.stat().st_size > 16 << 20:
        raise _err(json_path, f"checkpoint config is {json_path.stat().st_size} bytes (more than 16 MB)")
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, OSError, RecursionError) as e:
        raise _err(json_path, f"not valid JSON: {type(e).__name__}: {e}") from e
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
    if not st_path.exists():
        raise _err(st_path, "file not found")
    check_regular_file(st_path, "checkpoint", CheckpointError)
    refuse_html(st_path, "a checkpoint", CheckpointError)
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
