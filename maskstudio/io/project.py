"""MaskStudio project files (``*.msproj``): one zip holding everything a session needs.

Layout (``FORMAT_VERSION`` 2)::

    manifest.json          format, format_version, app_version, saved_at, names of the members,
                           original_size_hw, exemplar name and path, render settings
                           (:meth:`RenderSettings.to_json`), model identities
    mask.png               the painted mask, 8-bit label PNG (values 0..18)
    original.png           optional: the mask as opened (what "erase to original" restores)
    exemplar.png           optional: exemplar / source photo (RGB)
    exemplar_mask.png      optional: the exemplar's label mask
    latents/<name>.npy     optional float32 arrays (e.g. ``w_plus`` in the official [1,18,512] layout,
                           ``dmn_style`` a loaded DMN style code [1, dim])
    regions/<i>.png, regions/<i>_mask.png, regions/<i>.npy
                           optional per-region styles: manifest ``region_styles`` lists
                           {"classes", "region", "name", "image"?, "mask"?, "code"?} (an exemplar
                           image + mask, or a DMN style code [1, dim])
    history/<i>.png        optional undo history snapshots (label PNGs) + ``history`` names in manifest

Writes are atomic (``<file>.tmp`` then :func:`os.replace`). A file written by a newer format
version raises :class:`~maskstudio.errors.ProjectFileError` that says so. Qt-free.

Format 1 (before the typed settings) kept an untyped ``sliders`` dict in the manifest, with the
exemplar path inside it; such files still open: the dict is migrated with
:meth:`RenderSettings.from_legacy`.
"""
from __future__ import annotations

import io
import json
import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from maskstudio import __version__
from maskstudio.engine.render_settings import RenderSettings
from maskstudio.errors import ConfigError, ProjectFileError, file_error
from maskstudio.io.images import png_bytes as _png_bytes
from maskstudio.labels import NUM_CLASSES

FORMAT = "maskstudio-project"
FORMAT_VERSION = 2
SUFFIX = ".msproj"


@dataclass
class Project:
    """Everything one editing session needs to resume. Arrays are numpy, never tensors."""

    labels: np.ndarray                                  # uint8 [H,W], values 0..18
    original_labels: np.ndarray | None = None           # uint8 [H,W] mask as first opened
    original_size_hw: tuple[int, int] | None = None
    exemplar_name: str | None = None
    exemplar_image: np.ndarray | None = None            # uint8 [H,W,3]
    exemplar_mask: np.ndarray | None = None             # uint8 [H,W]
    render_settings: RenderSettings = field(default_factory=RenderSettings)
    exemplar_path: str | None = None                    # where the exemplar came from (informative)
    latents: dict[str, np.ndarray] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)  # role -> identity (id, sha256, path...)
    history: list[tuple[str, np.ndarray]] = field(default_factory=list)  # optional snapshots
    #: per-region styles: [{"classes": [class names], "region": str, "name": str,
    #: "image": uint8 [H,W,3] + "mask": uint8 [H,W] | None, or "code": float32 [1, dim]}]
    region_styles: list[dict[str, Any]] = field(default_factory=list)
    app_version: str = __version__


def _check_labels(path, name: str, arr: np.ndarray) -> np.ndarray:
    if arr.ndim != 2:
        raise file_error(ProjectFileError, path, f"{name} must be a one-channel label map, got shape {arr.shape}")
    arr = arr.astype(np.uint8, copy=False)
    if arr.size and int(arr.max()) >= NUM_CLASSES:
        raise file_error(ProjectFileError, path, f"{name} holds value {int(arr.max())}, not a class (0..{NUM_CLASSES - 1})")
    return arr


def save_project(path: str | os.PathLike[str], project: Project) -> Path:
    """Write ``project`` to ``path`` atomically. Returns the path written."""
    path = Path(path)
    labels = _check_labels(path, "mask", np.asarray(project.labels))
    members: dict[str, bytes] = {"mask.png": _png_bytes(labels)}
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "app_version": project.app_version,
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mask": "mask.png",
        "size_hw": list(labels.shape),
        "original_size_hw": list(project.original_size_hw) if project.original_size_hw else None,
        "exemplar_name": project.exemplar_name,
        "exemplar_path": None if project.exemplar_path is None else str(project.exemplar_path),
        "render_settings": project.render_settings.to_json(),
        "models": project.models,
        "latents": {},
        "history": [],
    }
    if project.original_labels is not None:
        members["original.png"] = _png_bytes(_check_labels(path, "original mask", np.asarray(project.original_labels)))
        manifest["original"] = "original.png"
    if project.exemplar_image is not None:
        img = np.asarray(project.exemplar_image, dtype=np.uint8)
        if img.ndim != 3 or img.shape[2] != 3:
            raise file_error(ProjectFileError, path, f"exemplar image must be RGB [H,W,3], got shape {img.shape}")
        members["exemplar.png"] = _png_bytes(img)
        manifest["exemplar"] = "exemplar.png"
    if project.exemplar_mask is not None:
        members["exemplar_mask.png"] = _png_bytes(_check_labels(path, "exemplar mask", np.asarray(project.exemplar_mask)))
        manifest["exemplar_mask"] = "exemplar_mask.png"
    for name, arr in project.latents.items():
        if not name.replace("_", "").replace("-", "").isalnum():
            raise file_error(ProjectFileError, path, f"latent name {name!r} must be alphanumeric")
        buf = io.BytesIO()
        np.save(buf, np.asarray(arr), allow_pickle=False)
        member = f"latents/{name}.npy"
        members[member] = buf.getvalue()
        manifest["latents"][name] = member
    from maskstudio.labels import NAMES

    regions = []
    for i, g in enumerate(project.region_styles):
        classes = [str(c) for c in g.get("classes") or []]
        bad = [c for c in classes if c not in NAMES]
        if not classes or bad:
            raise file_error(ProjectFileError, path, f"region style {i}: unknown classes {bad or classes}")
        entry: dict[str, Any] = {"classes": classes, "region": str(g.get("region") or ""), "name": str(g.get("name") or "")}
        if g.get("code") is not None:
            buf = io.BytesIO()
            np.save(buf, np.asarray(g["code"], np.float32), allow_pickle=False)
            members[f"regions/{i}.npy"] = buf.getvalue()
            entry["code"] = f"regions/{i}.npy"
        else:
            img = np.asarray(g["image"], np.uint8)
            if img.ndim != 3 or img.shape[2] != 3:
                raise file_error(ProjectFileError, path, f"region style {i}: image must be RGB [H,W,3], got {img.shape}")
            members[f"regions/{i}.png"] = _png_bytes(img)
            entry["image"] = f"regions/{i}.png"
            if g.get("mask") is not None:
                members[f"regions/{i}_mask.png"] = _png_bytes(_check_labels(path, f"region style {i} mask",
                                                                            np.asarray(g["mask"])))
                entry["mask"] = f"regions/{i}_mask.png"
        regions.append(entry)
    if regions:
        manifest["region_styles"] = regions
    for i, (step_name, snap) in enumerate(project.history):
        member = f"history/{i:04d}.png"
        members[member] = _png_bytes(_check_labels(path, f"history step {i}", np.asarray(snap)))
        manifest["history"].append({"name": step_name, "mask": member})
    try:
        manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise file_error(ProjectFileError, path, f"model identities are not JSON: {e}") from e

    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("manifest.json", manifest_bytes)
            for member, data in members.items():
                # PNG / npy: PNG is already compressed; npy compresses well.
                zf.writestr(member, data, compress_type=zipfile.ZIP_STORED if member.endswith(".png") else zipfile.ZIP_DEFLATED)
        os.replace(tmp, path)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise file_error(ProjectFileError, path, f"cannot write: {e.strerror or e}") from e
    return path


def _read_png(zf: zipfile.ZipFile, path, member: str, mode: str) -> np.ndarray:
    try:
        data = zf.read(member)
    except KeyError as e:
        raise file_error(ProjectFileError, path, f"member {member!r} named in the manifest is missing") from e
    try:
        with Image.open(io.BytesIO(data)) as im:
            if mode == "L" and im.mode not in ("L", "P"):
                raise ValueError(f"expected an 8-bit label PNG, got mode {im.mode}")
            return np.array(im if mode == "L" else im.convert("RGB"))
    except (OSError, ValueError) as e:
        raise file_error(ProjectFileError, path, f"member {member!r} is not a valid image: {e}") from e


def load_project(path: str | os.PathLike[str]) -> Project:
    """Read a project file. Any problem raises :class:`ProjectFileError` naming the file."""
    path = Path(path)
    if not path.exists():
        raise file_error(ProjectFileError, path, "no such file")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise file_error(ProjectFileError, path, "not a MaskStudio project (not a zip archive)") from e
    with zf:
        try:
            manifest = json.loads(zf.read("manifest.json").decode("utf-8"))
        except KeyError as e:
            raise file_error(ProjectFileError, path, "not a MaskStudio project (no manifest.json)") from e
        except (ValueError, UnicodeDecodeError, zipfile.BadZipFile, OSError) as e:
            raise file_error(ProjectFileError, path, f"manifest.json is unreadable: {e}") from e
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise file_error(ProjectFileError, path, "not a MaskStudio project (wrong manifest format)")
        version = manifest.get("format_version")
        if not isinstance(version, int):
            raise file_error(ProjectFileError, path, "manifest has no integer format_version")
        if version > FORMAT_VERSION:
            raise file_error(
                ProjectFileError, path,
                f"written by a newer MaskStudio (project format {version}, app {manifest.get('app_version', '?')}); "
                f"this version reads format {FORMAT_VERSION} and older — please update MaskStudio",
            )
        try:
            labels = _check_labels(path, "mask", _read_png(zf, path, manifest.get("mask", "mask.png"), "L"))
            proj = Project(labels=labels, app_version=str(manifest.get("app_version", "?")))
            osz = manifest.get("original_size_hw")
            proj.original_size_hw = (int(osz[0]), int(osz[1])) if osz else None
            if manifest.get("original"):
                proj.original_labels = _check_labels(path, "original mask", _read_png(zf, path, manifest["original"], "L"))
            proj.exemplar_name = manifest.get("exemplar_name")
            if manifest.get("exemplar"):
                proj.exemplar_image = _read_png(zf, path, manifest["exemplar"], "RGB")
            if manifest.get("exemplar_mask"):
                proj.exemplar_mask = _check_labels(path, "exemplar mask", _read_png(zf, path, manifest["exemplar_mask"], "L"))
            try:
                if "render_settings" in manifest:
                    proj.render_settings = RenderSettings.from_json(manifest["render_settings"])
                    ex_path = manifest.get("exemplar_path")
                else:   # format 1: the untyped slider dict (with the exemplar path in it)
                    sliders = manifest.get("sliders") or {}
                    proj.render_settings = RenderSettings.from_legacy(sliders)
                    ex_path = sliders.get("exemplar_path") if isinstance(sliders, dict) else None
            except ConfigError as e:
                raise file_error(ProjectFileError, path, str(e)) from e
            proj.exemplar_path = str(ex_path) if ex_path else None
            proj.models = dict(manifest.get("models") or {})
            for name, member in (manifest.get("latents") or {}).items():
                try:
                    proj.latents[name] = np.load(io.BytesIO(zf.read(member)), allow_pickle=False)
                except (KeyError, ValueError, OSError) as e:
                    raise file_error(ProjectFileError, path, f"latent {name!r} ({member}) is unreadable: {e}") from e
            from maskstudio.labels import NAMES

            for i, g in enumerate(manifest.get("region_styles") or []):
                classes = [c for c in g.get("classes") or [] if c in NAMES]
                if not classes or len(classes) != len(g.get("classes") or []):
                    raise file_error(ProjectFileError, path, f"region style {i}: bad classes {g.get('classes')!r}")
                r: dict[str, Any] = {"classes": classes, "region": str(g.get("region") or ""),
                                     "name": str(g.get("name") or "")}
                if g.get("code"):
                    try:
                        r["code"] = np.load(io.BytesIO(zf.read(g["code"])), allow_pickle=False).astype(np.float32)
                    except (KeyError, ValueError, OSError) as e:
                        raise file_error(ProjectFileError, path, f"region style {i} ({g['code']}) is unreadable: {e}") from e
                else:
                    r["image"] = _read_png(zf, path, g["image"], "RGB")
                    r["mask"] = (_check_labels(path, f"region style {i} mask", _read_png(zf, path, g["mask"], "L"))
                                 if g.get("mask") else None)
                proj.region_styles.append(r)
            for entry in manifest.get("history") or []:
                snap = _check_labels(path, "history step", _read_png(zf, path, entry["mask"], "L"))
                proj.history.append((str(entry.get("name", "")), snap))
        except (zipfile.BadZipFile, KeyError, TypeError, IndexError) as e:
            raise file_error(ProjectFileError, path, f"damaged project: {e}") from e
        except OSError as e:  # e.g. CRC errors in a truncated archive
            raise file_error(ProjectFileError, path, f"damaged project: {e}") from e
    return proj
