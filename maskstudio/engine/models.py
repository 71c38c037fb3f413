"""Which models are installed, and loading them once (resident) under the device policy.

Two roots are scanned for checkpoint configs (``<name>.json`` beside ``<name>.safetensors``, as
written by :func:`maskstudio.models.checkpoints.save_checkpoint`):

1. ``settings.models_dir`` — what the model manager installed: ``<models_dir>/<id>/<id>.json``
   (a flat ``<models_dir>/<id>.json`` is accepted too);
2. the shipped ``checkpoints/`` folder (``dmn_starter``, ``face_parser``).

A JSON that is not a checkpoint config (no known ``arch``) is skipped and listed in
:attr:`ModelSet.skipped` with the reason; so is one whose weights file is missing. Ids are the
file stems; a user-installed model shadows a shipped one with the same id. For single-model
roles (DMN, face parser, encoder, photo generator) a user-installed model is preferred over a
shipped one (the user chose it), then the newest file; :meth:`ModelSet.select` overrides.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from maskstudio.errors import CheckpointError, RenderError, file_error
from maskstudio.files import check_regular_file
from maskstudio.roles import DIRECTION_SUFFIXES, ROLE_ARCHS  # engine role -> architectures (one table)

__all__ = ["ModelInfo", "ModelSet", "ROLE_ARCHS", "BOUNDARY_EXTS"]

KNOWN_ARCHS = frozenset(a for archs in ROLE_ARCHS.values() for a in archs)
BOUNDARY_EXTS = DIRECTION_SUFFIXES


@dataclass(frozen=True)
class ModelInfo:
    """One installed checkpoint. ``path``: the ``.json`` file; weights beside it."""

    id: str
    arch: str
    path: Path
    source: str  # "user" | "shipped"
    config: dict = field(default_factory=dict, compare=False, hash=False)
    meta: dict = field(default_factory=dict, compare=False, hash=False)
    mtime: float = 0.0
    extras: tuple[str, ...] = ()  # names of the extra tensors (from the JSON; no weights loaded)

    @property
    def weights_path(self) -> Path:
        return self.path.with_suffix(".safetensors")

    @property
    def title(self) -> str:
        return str(self.meta.get("title") or self.meta.get("name") or self.id)


@dataclass(frozen=True)
class BoundaryInfo:
    """A semantic direction file installed in the models dir (InterFaceGAN .npy, e4e .pt)."""

    id: str
    path: Path
    source: str
    space: str  # "z" | "w"


@dataclass
class Resident:
    """A loaded model kept on the device."""

    info: ModelInfo
    module: Any
    extras: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)


_NOT_CONFIGS = frozenset({"install.json", "registry.json"})
_DMN_BOUNDARIES = "dmn_boundaries"  # maskstudio.io.style_files.BOUNDARY_FOLDER (DMN style space)


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _set_latent_avg(module: Any, extras: dict[str, Any]) -> None:
    """``module.set_latent_avg(extras["latent_avg"])`` where both exist (pSp encoders)."""
    if "latent_avg" not in extras:
        return
    setter = getattr(module, "set_latent_avg", None)
    if setter is not None:
        setter(extras["latent_avg"])


def _read_config(path: Path) -> dict[str, Any]:
    check_regular_file(path, "checkpoint config", CheckpointError)  # a FIFO here would hang the scan
    if path.stat().st_size > 16 << 20:
        raise file_error(CheckpointError, path, "checkpoint config larger than 16 MB")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError, RecursionError) as e:
        raise file_error(CheckpointError, path, f"unreadable checkpoint config ({e})") from e
    if not isinstance(data, dict):
        raise file_error(CheckpointError, path, "checkpoint config is not a JSON object")
    return data


class ModelSet:
    """Installed models + a resident cache of loaded modules (loaded lazily, once)."""

    def __init__(self, roots: Sequence[tuple[Path, str]] = (), *, policy=None) -> None:
        self.roots = [(Path(p), str(src)) for p, src in roots]
        self._policy = policy
        self._lock = threading.RLock()
        self._loaded: dict[str, Any] = {}
        self._loaded_gen = -1
        self._selected: dict[str, str] = {}
        self._memory: dict[str, tuple[ModelInfo, Any, dict]] = {}
        self.models: dict[str, ModelInfo] = {}
        self.boundaries: dict[str, BoundaryInfo] = {}
        self.skipped: list[tuple[Path, str]] = []
        self.scan()

    @classmethod
    def from_settings(cls, settings, *, policy=None) -> "ModelSet":
        return cls([(Path(settings.models_dir), "user"), (Path(settings.shipped_checkpoints), "shipped")],
                   policy=policy)

    def set_policy(self, policy) -> None:
        with self._lock:
            self._policy = policy
            self._loaded.clear()

    # -- discovery ----------------------------------------------------------------------------
    @staticmethod
    def _candidates(root: Path) -> Iterable[Path]:
        if not root.is_dir():
            return []
        out = list(root.glob("*.json")) + list(root.glob("*/*.json"))
        return sorted(p for p in out if not _hidden(p, root) and p.name not in _NOT_CONFIGS
                      and p.parent.name != _DMN_BOUNDARIES)

    def scan(self) -> None:
        """(Re)read both roots. Loaded modules of models that still exist unchanged stay resident."""
        models: dict[str, ModelInfo] = {}
        boundaries: dict[str, BoundaryInfo] = {}
        skipped: list[tuple[Path, str]] = []
        for root, source in self.roots:
            for path in self._candidates(root):
                try:
                    data = _read_config(path)
                except CheckpointError as e:
                    skipped.append((path, str(e)))
                    continue
                arch = data.get("arch")
                if arch not in KNOWN_ARCHS:
                    skipped.append((path, f"not a checkpoint config (arch {arch!r})"))
                    continue
                if not path.with_suffix(".safetensors").is_file():
                    skipped.append((path, "weights file missing"))
                    continue
                mid = path.stem
                if mid in models:  # first root wins (user shadows shipped)
                    continue
                cfg_doc, meta_doc = data.get("config"), data.get("meta")
                cfg = cfg_doc if isinstance(cfg_doc, dict) else {}
                meta = meta_doc if isinstance(meta_doc, dict) else {}
                extras = tuple(str(x) for x in data.get("extras", []) if isinstance(x, str))
                models[mid] = ModelInfo(mid, arch, path, source, cfg, meta, path.stat().st_mtime, extras)
            if source == "user" and root.is_dir():
                # boundary sets: <models_dir>/<set id>/<name>.npy|.pt (maskstudio.io.store layout)
                for p in sorted(list(root.glob("*")) + list(root.glob("*/*"))):
                    if (p.suffix.lower() in BOUNDARY_EXTS and p.is_file() and not _hidden(p, root)
                            and p.parent.name != _DMN_BOUNDARIES):  # DMN style boundaries: engine.dmn_style
                        bid = p.stem if p.stem not in boundaries else f"{p.parent.name}/{p.stem}"
                        space = "w" if p.stem.endswith("_w_boundary") or p.suffix != ".npy" else "z"
                        boundaries[bid] = BoundaryInfo(bid, p, source, space)
        with self._lock:
            for mid, (info, _, _) in self._memory.items():
                models[mid] = info
            old = self.models
            self.models, self.boundaries, self.skipped = models, boundaries, skipped
            for mid in list(self._loaded):
                if mid not in models or old.get(mid) != models[mid]:
                    del self._loaded[mid]
            for role, mid in list(self._selected.items()):
                if mid not in models:
                    del self._selected[role]

    # -- queries ------------------------------------------------------------------------------
    def get(self, model_id: str) -> ModelInfo:
        try:
            return self.models[model_id]
        except KeyError:
            raise RenderError(f"model {model_id!r} is not installed") from None

    def by_arch(self, *archs: str) -> list[ModelInfo]:
        return sorted((m for m in self.models.values() if m.arch in archs), key=lambda m: m.id)

    def role(self, role: str) -> list[ModelInfo]:
        """Models for ``role`` in preference order (user before shipped, newest first)."""
        cands = [m for m in self.models.values() if m.arch in ROLE_ARCHS[role]]
        rank = {"memory": 0, "user": 1, "shipped": 2}
        cands.sort(key=lambda m: (rank.get(m.source, 3), -m.mtime, m.id))
        sel = self._selected.get(role)
        if sel is not None:
            cands.sort(key=lambda m: m.id != sel)
        return cands

    def first(self, role: str, arch: str | None = None) -> ModelInfo | None:
        for m in self.role(role):
            if arch is None or m.arch == arch:
                return m
        return None

    def select(self, role: str, model_id: str | None) -> None:
        """Prefer ``model_id`` for ``role`` (None: back to the automatic choice)."""
        with self._lock:
            if model_id is None:
                self._selected.pop(role, None)
                return
            info = self.get(model_id)
            if info.arch not in ROLE_ARCHS[role]:
                raise RenderError(f"model {model_id!r} ({info.arch}) cannot serve as {role}")
            self._selected[role] = model_id

    # -- loading ------------------------------------------------------------------------------
    def load(self, model_id: str):
        """The resident, policy-prepared module of ``model_id`` (loaded on first use).

        Returns a :class:`Resident`: ``module`` moved to the policy device/dtype, eval mode,
        frozen; ``extras``: the checkpoint's extra tensors (e.g. ``latent_avg``, style codes).
        """
        from maskstudio.engine.device import DevicePolicy

        with self._lock:
            if self._policy is None:
                self._policy = DevicePolicy("cpu")
            policy = self._policy
            if self._loaded_gen != policy.generation:
                self._loaded.clear()
                self._loaded_gen = policy.generation
            hit = self._loaded.get(model_id)
            if hit is not None:
                return hit
            info = self.get(model_id)
            if model_id in self._memory:
                _, module, extras = self._memory[model_id]
                res = Resident(info=info, module=policy.prepare(module, info.arch), extras=dict(extras),
                               config=dict(info.config))
                self._loaded[model_id] = res
                return res
            from maskstudio.models.checkpoints import load_checkpoint

            import torch

            loaded = load_checkpoint(info.weights_path, device="cpu", dtype=torch.float32)
            extras = dict(getattr(loaded, "extras", None) or {})
            module = loaded.module
            _set_latent_avg(module, extras)  # pSp: part of the official file, not the state dict
            module = policy.prepare(module, info.arch)
            _set_latent_avg(module, extras)  # again, on the policy device/dtype
            res = Resident(info=info, module=module,
                           extras=extras,
                           config=dict(getattr(loaded, "config", None) or info.config))
            self._loaded[model_id] = res
            return res

    def add_module(self, model_id: str, arch: str, module: Any, config: dict | None = None,
                   extras: dict | None = None, meta: dict | None = None) -> ModelInfo:
        """Register a network built in memory (benchmarks, experiments) as an installed model.

        It is preferred over files for its role, prepared by the policy on first use (moved in
        place: an out-of-memory fallback moves it back to CPU float32 rather than re-reading it).
        """
        if arch not in KNOWN_ARCHS:
            raise RenderError(f"unknown architecture {arch!r}")
        import time

        info = ModelInfo(model_id, arch, Path(f"<memory>/{model_id}.json"), "memory", dict(config or {}),
                         dict(meta or {}), time.time(), tuple(sorted(extras or {})))
        with self._lock:
            self._memory[model_id] = (info, module, dict(extras or {}))
            self.models[model_id] = info
            self._loaded.pop(model_id, None)
        return info

    def unload_all(self) -> None:
        with self._lock:
            self._loaded.clear()

    @property
    def loaded_ids(self) -> list[str]:
        with self._lock:
            return sorted(self._loaded)
