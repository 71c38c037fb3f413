"""The model registry: every model MaskStudio knows (``checkpoints/registry.json``). Qt-free, torch-free.

The registry is shipped, readable JSON (``{"format": 1, "models": [...]}``): for each model its
role (:mod:`maskstudio.roles`), arch + architecture config, official source URLs, licence as
published by the authors, expected file layout, SHA-256 where known (``null`` otherwise).
Shipped starter weights (``checkpoints/dmn_starter.*``, ``checkpoints/face_parser.*``) are
entries with ``"shipped": true``; they are never copied into the models folder.

:func:`load_registry` validates every field and raises ``ConfigError("{registry}: ...")``
naming the entry and the field; :func:`record_shipped_hashes` is the maintainers' tool that
writes the shipped files' SHA-256 and sizes back into it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from maskstudio.errors import CheckpointError, ConfigError, file_error
from maskstudio.files import atomic_write, sha256_file
from maskstudio.roles import ROLE_ARCH, ROLES
from maskstudio.settings import SHIPPED_CHECKPOINTS

__all__ = ["REGISTRY_PATH", "ROLES", "LAYOUTS", "FILE_KINDS", "RegistryFile", "RegistryEntry",
           "load_registry", "record_shipped_hashes"]

REGISTRY_PATH = SHIPPED_CHECKPOINTS / "registry.json"

LAYOUTS = ("bare_state_dict", "g_ema", "state_dict_opts", "exstyle_codes", "torch_tensor",
           "npy_direction", "maskstudio_safetensors", "maskstudio_json", "dmn_boundary_json")
FILE_KINDS = ("weights", "config", "style_codes", "direction")


@dataclass(frozen=True)
class RegistryFile:
    """One file of an entry, as published by its authors."""

    name: str
    kind: str  # weights | config | style_codes | direction
    layout: str
    urls: tuple[str, ...] = ()
    sha256: str | None = None
    size_bytes: int | None = None
    optional: bool = False


@dataclass(frozen=True)
class RegistryEntry:
    """One model MaskStudio knows (``checkpoints/registry.json`` ``models[]``)."""

    id: str
    title: str
    role: str
    arch: str | None
    config: dict[str, Any] | None
    shipped: bool
    files: tuple[RegistryFile, ...]
    source: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    licence: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    expected: dict[str, int] | None = field(default=None, compare=False, hash=False)
    notes: str = ""

    @property
    def is_boundary_set(self) -> bool:
        return self.role == "boundary-set"

    @property
    def downloadable(self) -> bool:
        """Every required file has at least one URL."""
        req = [f for f in self.files if not f.optional]
        return bool(req) and all(f.urls for f in req)

    @property
    def licence_name(self) -> str:
        return str(self.licence.get("name") or "unknown")

    @property
    def page(self) -> str:
        return str(self.source.get("download_page") or self.source.get("page") or "unknown")

    @property
    def known_size(self) -> int | None:
        sizes = [f.size_bytes for f in self.files]
        return None if not sizes or any(s is None for s in sizes) else int(sum(sizes))  # type: ignore[arg-type]


def _req(d: Mapping[str, Any], key: str, types, where: str, path: Path):
    if key not in d:
        raise file_error(ConfigError, path, f"{where}: missing field {key!r}")
    v = d[key]
    if not isinstance(v, types):
        raise file_error(ConfigError, path, f"{where}: field {key!r} has the wrong type ({type(v).__name__})")
    return v


def _parse_entry(d: Any, path: Path, index: int) -> RegistryEntry:
    where = f"models[{index}]"
    if not isinstance(d, dict):
        raise file_error(ConfigError, path, f"{where} is not an object")
    mid = _req(d, "id", str, where, path)
    where = f"model {mid!r}"
    if not mid or any(c in mid for c in "/\\:") or mid.startswith("."):
        raise file_error(ConfigError, path, f"{where}: id must be a plain folder name")
    role = _req(d, "role", str, where, path)
    if role not in ROLES:
        raise file_error(ConfigError, path, f"{where}: unknown role {role!r} (known: {', '.join(ROLES)})")
    arch = d.get("arch")
    if ROLE_ARCH[role] != arch:
        raise file_error(ConfigError, path, f"{where}: role {role!r} needs arch {ROLE_ARCH[role]!r}, got {arch!r}")
    config = d.get("config")
    if config is not None and not isinstance(config, dict):
        raise file_error(ConfigError, path, f"{where}: config must be an object or null")
    shipped = bool(d.get("shipped", False))
    if not shipped and not role == "boundary-set" and config is None:
        raise file_error(ConfigError, path, f"{where}: an installable model needs an architecture config")
    files = []
    for j, fd in enumerate(_req(d, "files", list, where, path)):
        fw = f"{where} files[{j}]"
        if not isinstance(fd, dict):
            raise file_error(ConfigError, path, f"{fw} is not an object")
        name = _req(fd, "name", str, fw, path)
        kind = _req(fd, "kind", str, fw, path)
        layout = _req(fd, "layout", str, fw, path)
        if kind not in FILE_KINDS:
            raise file_error(ConfigError, path, f"{fw}: unknown kind {kind!r}")
        if layout not in LAYOUTS:
            raise file_error(ConfigError, path, f"{fw}: unknown layout {layout!r}")
        sha = fd.get("sha256")
        if sha is not None and (not isinstance(sha, str) or len(sha) != 64
                                or any(c not in "0123456789abcdef" for c in sha)):
            raise file_error(ConfigError, path, f"{fw}: sha256 must be 64 lowercase hex digits or null")
        urls = fd.get("urls") or []
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise file_error(ConfigError, path, f"{fw}: urls must be a list of strings")
        size = fd.get("size_bytes")
        if size is not None and (not isinstance(size, int) or size < 0):
            raise file_error(ConfigError, path, f"{fw}: size_bytes must be a non-negative integer or null")
        files.append(RegistryFile(name, kind, layout, tuple(urls), sha, size, bool(fd.get("optional", False))))
    if role != "boundary-set" and not shipped and sum(f.kind == "weights" for f in files) != 1:
        raise file_error(ConfigError, path, f"{where}: needs exactly one weights file")
    return RegistryEntry(
        id=mid, title=str(d.get("title") or mid), role=role, arch=arch, config=config, shipped=shipped,
        files=tuple(files), source=dict(d.get("source") or {}), licence=dict(d.get("licence") or {}),
        expected=d.get("expected"), notes=str(d.get("notes") or ""))


def load_registry(path: str | os.PathLike[str] | None = None) -> dict[str, RegistryEntry]:
    """Read and validate the registry (``checkpoints/registry.json`` by default), keyed by id."""
    p = Path(path) if path is not None else REGISTRY_PATH
    try:
        with open(p, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError as e:
        raise file_error(ConfigError, p, "model registry not found") from e
    except (OSError, ValueError) as e:
        raise file_error(ConfigError, p, f"unreadable model registry ({e})") from e
    if not isinstance(data, dict) or not isinstance(data.get("models"), list):
        raise file_error(ConfigError, p, "model registry must be an object with a 'models' list")
    if data.get("format") != 1:
        raise file_error(ConfigError, p, f"unsupported registry format {data.get('format')!r} (expected 1)")
    out: dict[str, RegistryEntry] = {}
    for i, d in enumerate(data["models"]):
        entry = _parse_entry(d, p, i)
        if entry.id in out:
            raise file_error(ConfigError, p, f"duplicate model id {entry.id!r}")
        out[entry.id] = entry
    return out


def record_shipped_hashes(registry_path: str | os.PathLike[str] | None = None,
                          shipped_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Maintainers: write SHA-256 and size of every shipped file into the registry (after
    retraining the starter models). Returns the names whose record changed."""
    p = Path(registry_path) if registry_path is not None else REGISTRY_PATH
    root = Path(shipped_dir) if shipped_dir is not None else SHIPPED_CHECKPOINTS
    load_registry(p)  # validate first
    data = json.loads(p.read_text(encoding="utf-8"))
    changed = []
    for m in data["models"]:
        if not m.get("shipped"):
            continue
        for f in m["files"]:
            fp = root / f["name"]
            if not fp.is_file():
                raise file_error(CheckpointError, fp, "shipped file is missing")
            digest, size = sha256_file(fp), fp.stat().st_size
            if f.get("sha256") != digest or f.get("size_bytes") != size:
                f["sha256"], f["size_bytes"] = digest, size
                changed.append(f["name"])
    if changed:
        atomic_write(p, (json.dumps(data, indent=2) + "\n").encode("utf-8"), error=ConfigError)
    return changed
