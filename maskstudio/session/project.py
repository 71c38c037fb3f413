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

from maskstudio import __version__
from maskstudio.engine.render_settings import RenderSettings
from maskstudio.errors import ConfigError, MaskFileError, ProjectFileError, file_error
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
    # photo editing (issue 13): the source photo file as read, its alignment (the JSON of
    # maskstudio.photo.align.Alignment) and the crop's parsed (unedited) mask
    photo_file: bytes | None = None
    photo_name: str | None = None
    photo_alignment: dict | None = None
    photo_parsed: np.ndarray | None = None
    whole_face: bool = False


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
    if project.photo_file is not None:
        if project.photo_alignment is None or project.photo_parsed is None:
            raise file_error(ProjectFileError, path, "a source photo needs its alignment and parsed mask")
        suffix = Path(project.photo_name or "photo").suffix.lower()
        member = "photo/source" + (suffix if suffix.isascii() and suffix[1:].isalnum() else "")
        members[member] = bytes(project.photo_file)
        members["photo/parsed.png"] = _png_bytes(_check_labels(path, "parsed photo mask",
                                                               np.asarray(project.photo_parsed)))
        manifest["photo"] = {"file": member, "name": project.photo_name, "alignment": project.photo_alignment,
                             "parsed": "photo/parsed.png", "whole_face": bool(project.whole_face)}
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


# --------------------------------------------------------------------------- loading (hostile input)
#: What a project file may hold; everything is checked from the zip directory and the manifest
#: before a member is inflated or decoded. A refusal names the file and the field.
MAX_MANIFEST_BYTES = 4 << 20         # manifest.json, inflated
MAX_JSON_DEPTH = 32                  # nesting of the manifest
MAX_MEMBERS = 1000                   # zip entries
MAX_MEMBER_BYTES = 256 << 20         # one member, inflated
MAX_TOTAL_BYTES = 1 << 30            # all members, inflated
MAX_HISTORY = 500                    # undo snapshots (MaskStudio saves at most 50)
MAX_HISTORY_PIXELS = 256 << 20       # all snapshots together (they have the mask's size)
MAX_LATENTS = 32
MAX_LATENT_BYTES = 16 << 20          # one latent array
MAX_MODELS = 64                      # model identity entries
MAX_TEXT = 4096                      # names and paths


def _refuse(path, where: str, problem: str) -> ProjectFileError:
    return file_error(ProjectFileError, path, f"{where}: {problem}")  # type: ignore[return-value]


def _json_depth(obj: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON value (stops counting past ``limit``)."""
    depth, level = 0, [obj]
    while level and depth <= limit:
        depth += 1
        nxt: list[Any] = []
        for o in level:
            if isinstance(o, dict):
                nxt.extend(o.values())
            elif isinstance(o, list):
                nxt.extend(o)
        level = nxt
    return depth


def _opt_str(m: dict, key: str, path, *, member: bool = False) -> str | None:
    v = m.get(key)
    if v is None or (v == "" and not member):
        return None
    if not isinstance(v, str) or len(v) > MAX_TEXT:
        raise _refuse(path, f"manifest field {key!r}", f"must be a string of at most {MAX_TEXT} characters, "
                                                      f"not {type(v).__name__}")
    return v


def _size_hw(m: dict, key: str, path) -> tuple[int, int] | None:
    from maskstudio.io.images import MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE

    v = m.get(key)
    if v is None:
        return None
    if (not isinstance(v, (list, tuple)) or len(v) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in v)):
        raise _refuse(path, f"manifest field {key!r}", f"must be [height, width] (two integers), got {v!r:.60}")
    h, w = int(v[0]), int(v[1])
    if not (1 <= h <= MAX_IMAGE_SIDE and 1 <= w <= MAX_IMAGE_SIDE) or h * w > MAX_IMAGE_PIXELS:
        raise _refuse(path, f"manifest field {key!r}", f"size {h}x{w} is out of range (1..{MAX_IMAGE_SIDE} per side, "
                                                      f"at most {MAX_IMAGE_PIXELS // 1_000_000} megapixels)")
    return h, w


def _validate_manifest(m: Any, path, names: set[str]) -> dict[str, Any]:
    """Check the manifest's fields (types, ranges, counts, member names) before any use.
    Returns the normalised fields."""
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise file_error(ProjectFileError, path, "not a MaskStudio project (wrong manifest format)")
    version = m.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise file_error(ProjectFileError, path, "manifest has no integer format_version")
    if version > FORMAT_VERSION:
        raise file_error(
            ProjectFileError, path,
            f"written by a newer MaskStudio (project format {version}, app {str(m.get('app_version', '?'))[:40]}); "
            f"this version reads format {FORMAT_VERSION} and older — please update MaskStudio",
        )
    if version < 1:
        raise _refuse(path, "manifest field 'format_version'", f"{version} is not a project format")
    out: dict[str, Any] = {"version": version}

    def member(key: str, required: bool = False, default: str | None = None) -> str | None:
        name = _opt_str(m, key, path, member=True) or default
        if name is None:
            if required:
                raise _refuse(path, f"manifest field {key!r}", "is missing")
            return None
        if name not in names:
            raise file_error(ProjectFileError, path, f"member {name!r} named in the manifest is missing")
        return name

    out["mask"] = member("mask", required=True, default="mask.png")
    out["original"] = member("original")
    out["exemplar"] = member("exemplar")
    out["exemplar_mask"] = member("exemplar_mask")
    out["app_version"] = str(m.get("app_version", "?"))[:100]
    out["exemplar_name"] = _opt_str(m, "exemplar_name", path)
    out["original_size_hw"] = _size_hw(m, "original_size_hw", path)
    models = m.get("models") or {}
    if not isinstance(models, dict) or len(models) > MAX_MODELS:
        raise _refuse(path, "manifest field 'models'", f"must be an object with at most {MAX_MODELS} entries, "
                                                      f"not {type(models).__name__}")
    out["models"] = dict(models)
    latents = m.get("latents") or {}
    if not isinstance(latents, dict) or len(latents) > MAX_LATENTS:
        raise _refuse(path, "manifest field 'latents'", f"must be an object {{name: member}} with at most "
                                                       f"{MAX_LATENTS} entries, not {type(latents).__name__}")
    for name, mem in latents.items():
        if not isinstance(mem, str) or not name.replace("_", "").replace("-", "").isalnum():
            raise _refuse(path, f"manifest field 'latents' entry {name!r}", "must map an alphanumeric name to a member")
        if mem not in names:
            raise file_error(ProjectFileError, path, f"member {mem!r} named in the manifest is missing")
    out["latents"] = dict(latents)
    history = m.get("history") or []
    if not isinstance(history, list):
        raise _refuse(path, "manifest field 'history'", f"must be a list, not {type(history).__name__}")
    if len(history) > MAX_HISTORY:
        raise _refuse(path, "manifest field 'history'", f"{len(history)} steps (at most {MAX_HISTORY})")
    steps = []
    for i, entry in enumerate(history):
        if not isinstance(entry, dict) or not isinstance(entry.get("mask"), str):
            raise _refuse(path, f"manifest field 'history[{i}]'", "must be an object with a 'mask' member name")
        if entry["mask"] not in names:
            raise file_error(ProjectFileError, path, f"member {entry['mask']!r} named in the manifest is missing")
        steps.append((str(entry.get("name", ""))[:MAX_TEXT], entry["mask"]))
    out["history"] = steps
    for key in ("render_settings", "sliders"):
        if key in m and m[key] is not None and not isinstance(m[key], dict):
            raise _refuse(path, f"manifest field {key!r}", f"must be an object, not {type(m[key]).__name__}")
    return out


def _check_archive(zf: zipfile.ZipFile, path) -> dict[str, zipfile.ZipInfo]:
    """Refuse encrypted / unsupported members and oversized contents from the zip directory."""
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise file_error(ProjectFileError, path, f"{len(infos)} members in the archive (at most {MAX_MEMBERS})")
    total = 0
    for info in infos:
        where = f"member {info.filename!r}"
        if info.flag_bits & 0x1:
            raise _refuse(path, where, "is encrypted (MaskStudio projects never are)")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _refuse(path, where, f"uses an unsupported compression method ({info.compress_type})")
        if info.file_size > MAX_MEMBER_BYTES:
            raise _refuse(path, where, f"inflates to {info.file_size} bytes (at most {MAX_MEMBER_BYTES})")
        total += info.file_size
    if total > MAX_TOTAL_BYTES:
        raise file_error(ProjectFileError, path, f"members inflate to {total} bytes in all (at most {MAX_TOTAL_BYTES})")
    return {i.filename: i for i in infos}


def _read_member(zf: zipfile.ZipFile, path, member: str, limit: int = MAX_MEMBER_BYTES) -> bytes:
    import zlib

    try:
        with zf.open(member) as fh:
            data = fh.read(limit + 1)
    except KeyError as e:
        raise file_error(ProjectFileError, path, f"member {member!r} named in the manifest is missing") from e
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError, ValueError) as e:
        raise _refuse(path, f"member {member!r}", f"damaged ({type(e).__name__}: {e})") from e
    if len(data) > limit:
        raise _refuse(path, f"member {member!r}", f"larger than {limit} bytes")
    return data


def _member_size(zf: zipfile.ZipFile, path, field_name: str, member: str) -> tuple[int, int]:
    """(height, width) of a PNG member from its header."""
    from maskstudio.io.images import open_image
    from maskstudio.io.masks import MAX_PIXELS, MAX_SIDE

    data = _read_member(zf, path, member)
    try:
        with open_image(data, name=f"{os.fspath(path)}: {field_name} ({member})", max_pixels=MAX_PIXELS,
                        max_side=MAX_SIDE, what="mask") as im:
            return im.size[1], im.size[0]
    except MaskFileError as e:
        raise ProjectFileError(str(e)) from e


def _read_png(zf: zipfile.ZipFile, path, member: str, mode: str, *, field_name: str = "",
              expect_hw: tuple[int, int] | None = None) -> np.ndarray:
    """A PNG member through :func:`maskstudio.io.images.open_image` (header size checked first:
    label maps up to 8192 x 8192, the exemplar within the photo budget)."""
    from maskstudio.io.images import MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, open_image, oriented, exif_orientation
    from maskstudio.io.masks import MAX_PIXELS, MAX_SIDE

    where = f"{field_name or 'member'} ({member})"
    data = _read_member(zf, path, member)
    label = f"{os.fspath(path)}: {where}"
    if mode == "L":
        max_pixels, max_side, what = MAX_PIXELS, MAX_SIDE, "mask"
    else:
        max_pixels, max_side, what = MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, "image"
    try:
        with open_image(data, name=label, max_pixels=max_pixels, max_side=max_side, what=what) as im:
            if expect_hw is not None and (im.size[1], im.size[0]) != expect_hw:
                raise _refuse(path, where, f"is {im.size[0]}x{im.size[1]}, the mask is {expect_hw[1]}x{expect_hw[0]}")
            if mode == "L":
                if im.mode not in ("L", "P"):
                    raise _refuse(path, where, f"expected an 8-bit label PNG, got mode {im.mode}")
                im.load()
                return np.array(im)
            orientation = exif_orientation(im)
            im.load()
            return np.array(oriented(im.convert("RGB"), orientation))
    except MaskFileError as e:
        raise ProjectFileError(str(e)) from e


def load_project(path: str | os.PathLike[str]) -> Project:
    """Read a project file. Any problem raises :class:`ProjectFileError` naming the file (and
    the manifest field or member); limits: ``MAX_*`` above."""
    from maskstudio.files import check_regular_file, read_npy

    path = Path(path)
    if not (path.is_file() and path.stat().st_size == 0):  # an empty file is "not a zip" below
        check_regular_file(path, "project file", ProjectFileError)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise file_error(ProjectFileError, path, "not a MaskStudio project (not a zip archive)") from e
    with zf:
        infos = _check_archive(zf, path)
        if "manifest.json" not in infos:
            raise file_error(ProjectFileError, path, "not a MaskStudio project (no manifest.json)")
        raw = _read_member(zf, path, "manifest.json", MAX_MANIFEST_BYTES)
        try:
            manifest = json.loads(raw.decode("utf-8"))
        except RecursionError as e:
            raise _refuse(path, "manifest.json", f"nested too deeply (at most {MAX_JSON_DEPTH} levels)") from e
        except (ValueError, UnicodeDecodeError) as e:
            raise file_error(ProjectFileError, path, f"manifest.json is unreadable: {e}") from e
        if _json_depth(manifest, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
            raise _refuse(path, "manifest.json", f"nested too deeply (at most {MAX_JSON_DEPTH} levels)")
        fields = _validate_manifest(manifest, path, set(infos))
        mask_hw = _member_size(zf, path, "mask", fields["mask"])
        if fields["history"] and len(fields["history"]) * mask_hw[0] * mask_hw[1] > MAX_HISTORY_PIXELS:
            raise _refuse(path, "manifest field 'history'",
                          f"{len(fields['history'])} steps of {mask_hw[1]}x{mask_hw[0]} are more than "
                          f"{MAX_HISTORY_PIXELS // (1 << 20)} M pixels")
        labels = _check_labels(path, "mask", _read_png(zf, path, fields["mask"], "L", field_name="mask"))
        proj = Project(labels=labels, app_version=fields["app_version"])
        proj.original_size_hw = fields["original_size_hw"]
        if fields["original"]:
            proj.original_labels = _check_labels(path, "original mask", _read_png(
                zf, path, fields["original"], "L", field_name="original"))
        proj.exemplar_name = fields["exemplar_name"]
        if fields["exemplar"]:
            proj.exemplar_image = _read_png(zf, path, fields["exemplar"], "RGB", field_name="exemplar")
        if fields["exemplar_mask"]:
            proj.exemplar_mask = _check_labels(path, "exemplar mask", _read_png(
                zf, path, fields["exemplar_mask"], "L", field_name="exemplar_mask"))
        try:
            if "render_settings" in manifest:
                proj.render_settings = RenderSettings.from_json(manifest["render_settings"])
                ex_path = _opt_str(manifest, "exemplar_path", path)
            else:   # format 1: the untyped slider dict (with the exemplar path in it)
                sliders = manifest.get("sliders") or {}
                proj.render_settings = RenderSettings.from_legacy(sliders)
                ex_path = sliders.get("exemplar_path") if isinstance(sliders, dict) else None
        except ConfigError as e:
            raise file_error(ProjectFileError, path, str(e)) from e
        except (TypeError, ValueError, AttributeError, KeyError) as e:
            raise _refuse(path, "manifest field 'render_settings'", f"invalid ({type(e).__name__}: {e})") from e
        proj.exemplar_path = str(ex_path)[:MAX_TEXT] if ex_path else None
        proj.models = fields["models"]
        for name, member in fields["latents"].items():
            data = _read_member(zf, path, member, MAX_LATENT_BYTES + 4096)
            proj.latents[name] = read_npy(data, name=f"{os.fspath(path)}: latent {name!r} ({member})",
                                          error=ProjectFileError, max_bytes=MAX_LATENT_BYTES)
        for i, (step_name, member) in enumerate(fields["history"]):
            snap = _check_labels(path, f"history step {i}", _read_png(
                zf, path, member, "L", field_name=f"history[{i}]", expect_hw=mask_hw))
            proj.history.append((step_name, snap))
        photo = manifest.get("photo")
        if photo is not None:
            if not isinstance(photo, dict):
                raise _refuse(path, "manifest field 'photo'", f"must be an object, not {type(photo).__name__}")
            for key in ("file", "parsed"):
                if not isinstance(photo.get(key), str) or photo[key] not in infos:
                    raise _refuse(path, f"manifest field 'photo.{key}'", "must name a member of the archive")
            if not isinstance(photo.get("alignment"), dict):
                raise _refuse(path, "manifest field 'photo.alignment'", "must be an object")
            name = photo.get("name")
            if name is not None and not isinstance(name, str):
                raise _refuse(path, "manifest field 'photo.name'", "must be a string")
            proj.photo_file = _read_member(zf, path, photo["file"])
            proj.photo_name = name[:MAX_TEXT] if name else None
            proj.photo_alignment = dict(photo["alignment"])
            proj.photo_parsed = _check_labels(path, "parsed photo mask", _read_png(
                zf, path, photo["parsed"], "L", field_name="photo.parsed"))
            proj.whole_face = bool(photo.get("whole_face", False))
        from maskstudio.labels import NAMES

        region_groups = manifest.get("region_styles") or []
        if not isinstance(region_groups, list) or len(region_groups) > 64:
            raise _refuse(path, "manifest field 'region_styles'", "must be a list of at most 64 entries")
        for i, g in enumerate(region_groups):
            if not isinstance(g, dict):
                raise _refuse(path, f"manifest field 'region_styles[{i}]'", "must be an object")
            classes = [c for c in g.get("classes") or [] if c in NAMES]
            if not classes or len(classes) != len(g.get("classes") or []):
                raise file_error(ProjectFileError, path, f"region style {i}: bad classes {g.get('classes')!r}")
            r: dict[str, Any] = {"classes": classes, "region": str(g.get("region") or ""),
                                 "name": str(g.get("name") or "")}
            if g.get("code"):
                try:
                    r["code"] = read_npy(_read_member(zf, path, g["code"], MAX_LATENT_BYTES + 4096), name=f"{os.fspath(path)}: region style {i} ({g['code']})", error=ProjectFileError, max_bytes=MAX_LATENT_BYTES).astype(np.float32)
                except (KeyError, ValueError, OSError) as e:
                    raise file_error(ProjectFileError, path, f"region style {i} ({g['code']}) is unreadable: {e}") from e
            else:
                r["image"] = _read_png(zf, path, g["image"], "RGB")
                r["mask"] = (_check_labels(path, f"region style {i} mask", _read_png(zf, path, g["mask"], "L"))
                             if g.get("mask") else None)
            proj.region_styles.append(r)
    return proj
