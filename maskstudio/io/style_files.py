"""Files of the DMN's style space: semantic boundaries and style latents (numpy + JSON, no pickle).

**Boundaries** (InterFaceGAN's layout): ``<folder>/<attribute>.npy`` — float32 ``[1, dim]``, unit
norm, the normal of a linear boundary in the style-code space of one DMN — with a sidecar
``<attribute>.json``::

    {"format": "maskstudio_dmn_boundary", "version": 1, "attribute": "hair_lightness",
     "measurement": "...", "space": "dmn_style", "dim": 4096,
     "std": 1.23,                 # std of the training codes' projections on the normal
     "mean": 0.45,                # mean projection (the code's centre along the normal)
     "attribute_per_std": 9.1,    # predicted attribute change per +1 std (attribute units)
     "held_out": {"r2": .., "accuracy": .., "n": ..}, "dmn": {"id": .., "sha256": ..}, ...}

The shipped set lives in ``checkpoints/dmn_boundaries/``; ones a user fits for their own DMN in
``<models_dir>/dmn_boundaries/``. :func:`find_boundaries` reads both (the user's shadow).

**Style latents**: ``<name>.npy`` — float32 ``[R, dim]``: row 0 the main style code, rows 1.. the
codes of per-region styles — with ``<name>.json``::

    {"format": "maskstudio_dmn_style", "version": 1, "dim": 4096,
     "dmn": {"id": "dmn_starter", "sha256": "..."},
     "rows": [{"classes": []}, {"classes": ["hair"], "source": "B.png"}],
     "edits": {"hair_lightness": 2.0}, "conditional": true}   # already applied (informative)
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from maskstudio.errors import LatentFileError, file_error
from maskstudio.labels import NAMES

__all__ = ["DMNBoundary", "StyleLatent", "BOUNDARY_FORMAT", "STYLE_FORMAT", "BOUNDARY_FOLDER",
           "read_boundary", "write_boundary", "find_boundaries", "read_style_latent", "write_style_latent"]

BOUNDARY_FORMAT = "maskstudio_dmn_boundary"
STYLE_FORMAT = "maskstudio_dmn_style"
BOUNDARY_FOLDER = "dmn_boundaries"
_UNIT_TOL = 1e-3


@dataclass(frozen=True, eq=False)
class DMNBoundary:
    """One boundary: ``normal`` float32 [dim] (unit norm, read-only) + its sidecar ``meta``."""

    name: str
    normal: np.ndarray
    meta: Mapping[str, Any]
    path: Path
    source: str = "shipped"

    @property
    def dim(self) -> int:
        return int(self.normal.shape[0])

    @property
    def std(self) -> float:
        return float(self.meta["std"])

    @property
    def dmn_sha256(self) -> str | None:
        d = self.meta.get("dmn") or {}
        return d.get("sha256") if isinstance(d, dict) else None

    @property
    def what(self) -> str:
        return str(self.meta.get("what") or self.name.replace("_", " "))


@dataclass(frozen=True, eq=False)
class StyleLatent:
    """A style latent file's content: ``codes`` float32 [R, dim]; ``rows[i]`` = class names of row i
    (row 0: ``()``, the main style)."""

    codes: np.ndarray
    rows: tuple[tuple[str, ...], ...]
    meta: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def dim(self) -> int:
        return int(self.codes.shape[1])

    @property
    def dmn_sha256(self) -> str | None:
        d = self.meta.get("dmn") or {}
        return d.get("sha256") if isinstance(d, dict) else None


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise file_error(LatentFileError, path, f"cannot write: {e.strerror or e}") from e


def _save_npy(path: Path, arr: np.ndarray) -> None:
    def w(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(arr, dtype=np.float32), allow_pickle=False)
    _atomic_write(path, w)


def _save_json(path: Path, doc: Mapping[str, Any]) -> None:
    _atomic_write(path, lambda tmp: tmp.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8"))


def _load_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except FileNotFoundError as e:
        raise file_error(LatentFileError, path, "file not found") from e
    except (OSError, ValueError, EOFError) as e:
        raise file_error(LatentFileError, path, f"not a numpy .npy array file ({e})") from e
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise file_error(LatentFileError, path, f"expected a float array, got {getattr(arr, 'dtype', type(arr))}")
    return arr


def _load_json(path: Path, fmt: str) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise file_error(LatentFileError, path, "sidecar JSON not found (it describes the .npy beside it)") from e
    except (OSError, ValueError) as e:
        raise file_error(LatentFileError, path, f"unreadable JSON ({e})") from e
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise file_error(LatentFileError, path, f"not a {fmt} file (format {doc.get('format') if isinstance(doc, dict) else None!r})")
    return doc


# ----------------------------------------------------------------------------- boundaries

def write_boundary(folder: "str | os.PathLike[str]", name: str, normal: np.ndarray, meta: Mapping[str, Any]) -> Path:
    """Write ``<folder>/<name>.npy`` ([1, dim] float32, normalised here) + ``<name>.json``."""
    n = np.asarray(normal, np.float64).reshape(-1)
    norm = float(np.linalg.norm(n))
    if not np.isfinite(norm) or norm == 0:
        raise LatentFileError(f"boundary {name}: the normal is zero or not finite")
    folder = Path(folder)
    npy = folder / f"{name}.npy"
    doc = {"format": BOUNDARY_FORMAT, "version": 1, "attribute": name, "space": "dmn_style", "dim": int(n.size)}
    doc.update({k: v for k, v in meta.items() if k not in doc})
    _save_npy(npy, (n / norm)[None].astype(np.float32))
    _save_json(npy.with_suffix(".json"), doc)
    return npy


def read_boundary(path: "str | os.PathLike[str]", source: str = "shipped") -> DMNBoundary:
    """Read a boundary from its ``.npy`` (or ``.json``) path; errors name the file and the problem."""
    p = Path(path)
    npy, js = p.with_suffix(".npy"), p.with_suffix(".json")
    meta = _load_json(js, BOUNDARY_FORMAT)
    arr = _load_npy(npy)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1:
        raise file_error(LatentFileError, npy, f"boundary must be [1, dim], got {list(arr.shape)}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise file_error(LatentFileError, npy, "boundary has non-finite values")
    norm = float(np.linalg.norm(arr))
    if abs(norm - 1.0) > _UNIT_TOL:
        raise file_error(LatentFileError, npy, f"boundary is not unit norm (|n| = {norm:.4g})")
    if int(meta.get("dim", arr.size)) != arr.size:
        raise file_error(LatentFileError, js, f"says dim {meta.get('dim')}, the .npy has {arr.size}")
    std = meta.get("std")
    if not isinstance(std, (int, float)) or not np.isfinite(std) or std <= 0:
        raise file_error(LatentFileError, js, f"field 'std' must be a positive number, got {std!r}")
    arr.setflags(write=False)
    return DMNBoundary(str(meta.get("attribute") or npy.stem), arr, dict(meta), npy, source)


def find_boundaries(roots: Iterable[tuple["str | os.PathLike[str]", str]]) -> tuple[dict[str, DMNBoundary], list[tuple[Path, str]]]:
    """Boundaries in ``<root>/dmn_boundaries/*.json`` for each (root, source); the first root wins
    per name. Returns (boundaries by name, [(path, problem)] of files that could not be read)."""
    found: dict[str, DMNBoundary] = {}
    skipped: list[tuple[Path, str]] = []
    for root, source in roots:
        folder = Path(root) / BOUNDARY_FOLDER
        if not folder.is_dir():
            continue
        for js in sorted(folder.glob("*.json")):
            try:
                b = read_boundary(js, source)
            except LatentFileError as e:
                skipped.append((js, str(e)))
                continue
            found.setdefault(b.name, b)
    return found, skipped


# ----------------------------------------------------------------------------- style latents

def _class_names(classes: Sequence[Any], where: Path) -> tuple[str, ...]:
    out = []
    for c in classes:
        if isinstance(c, int) and 0 <= c < len(NAMES):
            out.append(NAMES[c])
        elif isinstance(c, str) and c in NAMES:
            out.append(c)
        else:
            raise file_error(LatentFileError, where, f"unknown class {c!r} in 'rows'")
    return tuple(out)


def write_style_latent(path: "str | os.PathLike[str]", codes: np.ndarray,
                       rows: Sequence[Sequence[str]] = ((),), meta: Mapping[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``<path>.npy`` ([R, dim] float32) + ``<path>.json``; returns both paths."""
    npy = Path(path)
    if npy.suffix.lower() != ".npy":
        npy = npy.with_name(npy.name + ".npy") if npy.suffix.lower() != ".json" else npy.with_suffix(".npy")
    c = np.asarray(codes, np.float32)
    if c.ndim == 1:
        c = c[None]
    if c.ndim != 2 or len(rows) != c.shape[0] or not np.isfinite(c).all():
        raise file_error(LatentFileError, npy, f"style codes must be finite [R, dim] with R = {len(rows)} rows, "
                                               f"got {list(c.shape)}")
    doc = {"format": STYLE_FORMAT, "version": 1, "dim": int(c.shape[1]),
           "rows": [{"classes": list(_class_names(r, npy))} for r in rows]}
    for k, v in (meta or {}).items():
        doc.setdefault(k, v)
    _save_npy(npy, c)
    _save_json(npy.with_suffix(".json"), doc)
    return npy, npy.with_suffix(".json")


def read_style_latent(path: "str | os.PathLike[str]") -> StyleLatent:
    """Read a style latent (the ``.npy`` or its ``.json``)."""
    p = Path(path)
    npy, js = p.with_suffix(".npy"), p.with_suffix(".json")
    meta = _load_json(js, STYLE_FORMAT)
    arr = _load_npy(npy)
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim == 3 and arr.shape[0] == 1 and arr.shape[1] > 1 and arr.shape[2] in (512,):
        raise file_error(LatentFileError, npy, f"is a StyleGAN W+ latent {list(arr.shape)}, not a DMN style code")
    if arr.ndim != 2 or arr.shape[0] < 1:
        raise file_error(LatentFileError, npy, f"style latent must be [R, dim], got {list(arr.shape)}")
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise file_error(LatentFileError, npy, "style latent has non-finite values")
    rows_doc = meta.get("rows", [{"classes": []}])
    if not isinstance(rows_doc, list) or len(rows_doc) != arr.shape[0]:
        raise file_error(LatentFileError, js, f"'rows' must list {arr.shape[0]} rows (one per code in the .npy)")
    rows = []
    for i, r in enumerate(rows_doc):
        classes = r.get("classes") if isinstance(r, dict) else None
        if not isinstance(classes, list):
            raise file_error(LatentFileError, js, f"rows[{i}] needs a 'classes' list")
        rows.append(_class_names(classes, js))
    if rows[0]:
        raise file_error(LatentFileError, js, "rows[0] is the main style and must have no classes")
    dim = int(arr.shape[1])
    if int(meta.get("dim", dim)) != dim:
        raise file_error(LatentFileError, js, f"says dim {meta.get('dim')}, the .npy has {arr.shape[1]}")
    arr.setflags(write=False)
    return StyleLatent(arr, tuple(rows), dict(meta), npy)
