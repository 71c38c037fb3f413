"""The editable mask: a uint8 label map with painting tools, class lock, mirror mode and undo.

No Qt, no torch: numpy (+ OpenCV's flood fill). Geometry conventions (pixel centres at
``+0.5``, exact brush/polygon footprints) are documented in :mod:`maskstudio.mask.raster`.

Rules every operation follows:

* **Class lock** — pixels whose class (before the operation) is in :attr:`MaskDocument.locked`
  are never changed, by any tool, on either side of the mirror.
* **Mirror mode** — with :attr:`MaskDocument.mirror` on, each operation is also applied mirrored
  about the vertical line ``x = mirror_axis_x`` (continuous coordinates; ``None`` = the image
  centre ``W / 2``, which maps pixel column ``c`` to ``W - 1 - c``), painting the mirrored class
  (:data:`maskstudio.labels.MIRROR_LUT`: ``l_eye`` <-> ``r_eye`` ...). About the centre the
  mirrored footprint is the exact column mirror (``c`` <-> ``W - 1 - c``) of the original one,
  so both sides match pixel for pixel; other axes rasterise the mirrored geometry. Where the original and the mirrored footprints overlap, the original wins. ``restore`` restores the loaded mask on both
  sides (no class swap: it puts back what was there).
* **Undo** — one step per operation (an interactive stroke from :meth:`begin_stroke` to
  :meth:`Stroke.end` is one step). A step stores the bbox of the changed pixels and the old/new
  patches of that bbox only. Steps are kept until their total size exceeds
  ``memory_budget_bytes``; then the oldest are dropped.
* **Change reports** — each operation returns the half-open bbox ``(y0, x0, y1, x1)`` of the
  pixels it changed (``None`` when nothing changed), bumps :attr:`revision` and calls every
  listener with that bbox. History listeners are called when the undo history or the dirty
  state changes.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from maskstudio import labels as L
from maskstudio.mask.raster import (
    BBox,
    bbox_union,
    mask_bbox,
    polygon_footprint,
    selection_footprint,
    stroke_footprint,
)

TOOLS = ("brush", "erase", "restore")
MIN_DIAMETER_PX = 1.0
MAX_DIAMETER_PX = 256.0
_RESTORE = -1  # target marker: take the pixel from the loaded original
_VOID = 255    # outside the image in the mirrored frame of a move (never lifted, never written)
_MIRROR_LUT256 = np.arange(256, dtype=np.uint8)
_MIRROR_LUT256[:L.NUM_CLASSES] = L.MIRROR_LUT

Listener = Callable[[BBox], None]


class _Step:
    __slots__ = ("name", "bbox", "old", "new")

    def __init__(self, name: str, bbox: BBox, old: np.ndarray, new: np.ndarray) -> None:
        self.name = name
        self.bbox = bbox
        self.old = old
        self.new = new

    @property
    def nbytes(self) -> int:
        return self.old.nbytes + self.new.nbytes + 128  # + object overhead, roughly


def _check_class(cls: int) -> int:
    if isinstance(cls, (bool, np.bool_)) or not isinstance(cls, (int, np.integer)):
        raise TypeError(f"class must be an int, got {cls!r}")
    if not 0 <= int(cls) < L.NUM_CLASSES:
        raise ValueError(f"class {cls} is not a class index (0..{L.NUM_CLASSES - 1})")
    return int(cls)


def _check_label_map(label_map: np.ndarray, what: str = "label map") -> np.ndarray:
    arr = np.asarray(label_map)
    if arr.ndim != 2:
        raise ValueError(f"{what} must be 2-D (H, W), got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{what} must hold integer class indices, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(f"{what} has values outside 0..{L.NUM_CLASSES - 1}")
        arr = arr.astype(np.uint8)
    if arr.size and int(arr.max()) >= L.NUM_CLASSES:
        raise ValueError(f"{what} has value {int(arr.max())}; classes are 0..{L.NUM_CLASSES - 1}")
    return arr


class Stroke:
    """One interactive stroke (press -> moves -> release); one undo step. See ``begin_stroke``."""

    def __init__(self, doc: "MaskDocument", tool: str, cls: int, diameter_px: float, name: str) -> None:
        self._doc = doc
        self.tool = tool
        self.cls = cls
        self.diameter_px = diameter_px
        self.name = name
        self.points: list[tuple[float, float]] = []
        self.bbox: BBox | None = None  # union of what this stroke changed so far
        self._before = doc._labels.copy()  # pre-stroke map: lock reference + undo patch source
        self._locked_lut = doc._locked_lut()
        self._mirror_axis = doc._axis() if doc.mirror else None
        self._primary = np.zeros(doc.shape, bool) if doc.mirror else None
        self._open = True

    @property
    def active(self) -> bool:
        return self._open

    def add_point(self, x: float, y: float) -> BBox | None:
        """Paint from the previous point to ``(x, y)`` (a dot for the first point).

        Returns the bbox of the pixels this segment changed, or ``None``. Once the stroke has
        ended (by :meth:`end`, or because another operation such as an undo ended it mid-drag),
        further points are ignored and ``None`` is returned.
        """
        if not self._open:
            return None
        x = float(x)
        y = float(y)
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"point ({x}, {y}) is not finite")
        seg = [self.points[-1], (x, y)] if self.points else [(x, y)]
        self.points.append((x, y))
        doc = self._doc
        changed = doc._paint_geometry(
            seg, self.diameter_px, self.tool, self.cls, self._mirror_axis,
            self._locked_lut, self._before, self._primary,
        )
        if changed is not None:
            self.bbox = bbox_union(self.bbox, changed)
            doc._changed(changed)
        return changed

    def add_points(self, points: Iterable[Sequence[float]]) -> BBox | None:
        """Several :meth:`add_point` calls; returns the union of their bboxes."""
        out = None
        for x, y in points:
            out = bbox_union(out, self.add_point(x, y))
        return out

    def end(self) -> BBox | None:
        """Close the stroke: it becomes one undo step. Returns the bbox of the whole stroke."""
        if not self._open:
            return self.bbox
        self._open = False
        doc = self._doc
        if doc._active is self:
            doc._active = None
        if self.bbox is not None:
            y0, x0, y1, x1 = self.bbox
            old = self._before[y0:y1, x0:x1]
            new = doc._labels[y0:y1, x0:x1]
            tight = mask_bbox(old != new, (y0, x0))
            if tight is None:  # painted and painted back within the stroke
                self.bbox = None
            else:
                self.bbox = tight
                ty0, tx0, ty1, tx1 = tight
                doc._push(self.name, tight, self._before[ty0:ty1, tx0:tx1].copy(),
                          doc._labels[ty0:ty1, tx0:tx1].copy())
        self._before = None
        self._primary = None
        return self.bbox

    def __enter__(self) -> "Stroke":
        return self

    def __exit__(self, *exc) -> None:
        self.end()


class MaskDocument:
    """A label map (uint8 H x W, class indices 0..18) with editing operations and undo."""

    def __init__(
        self,
        label_map: np.ndarray,
        *,
        original_size_hw: tuple[int, int] | None = None,
        memory_budget_bytes: int = 256 << 20,
    ) -> None:
        arr = _check_label_map(label_map)
        self._labels = np.array(arr, dtype=np.uint8, order="C", copy=True)
        self._original = self._labels.copy()
        self._original.setflags(write=False)
        if original_size_hw:
            oh, ow = original_size_hw
        else:
            oh, ow = self._labels.shape
        self.original_size_hw: tuple[int, int] = (int(oh), int(ow))
        self.memory_budget_bytes = int(memory_budget_bytes)
        self.locked: set[int] = set()
        self.mirror: bool = False
        self.mirror_axis_x: float | None = None
        self.revision: int = 0
        self._steps: list[_Step] = []
        self._index = 0  # number of applied steps
        self._nbytes = 0
        self._clean_index: int | None = 0
        self._listeners: list[Listener] = []
        self._history_listeners: list[Callable[[], None]] = []
        self._active: Stroke | None = None

    # ------------------------------------------------------------------ state
    @property
    def labels(self) -> np.ndarray:
        """The current label map (a read-only view; copy it to keep a snapshot)."""
        view = self._labels.view()
        view.flags.writeable = False
        return view

    @property
    def original(self) -> np.ndarray:
        """The label map as loaded (what ``restore`` paints back); read-only."""
        return self._original

    @property
    def shape(self) -> tuple[int, int]:
        h, w = self._labels.shape
        return h, w

    def class_counts(self) -> np.ndarray:
        """int64 [19]: pixels per class."""
        return np.bincount(self._labels.ravel(), minlength=L.NUM_CLASSES)

    def pick(self, x: float, y: float) -> int:
        """Eyedropper / class picker: the class of the pixel under ``(x, y)``. ValueError outside
        the image. Changes nothing, so it is no undo step."""
        col, row = math.floor(x), math.floor(y)
        h, w = self.shape
        if not (0 <= col < w and 0 <= row < h):
            raise ValueError(f"point ({x}, {y}) is outside the {w}x{h} mask")
        return int(self._labels[row, col])

    # ------------------------------------------------------------- listeners
    def add_listener(self, fn: Listener) -> None:
        """``fn(bbox)`` is called after every pixel change (ops, undo, redo)."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        self._listeners.remove(fn)

    def add_history_listener(self, fn: Callable[[], None]) -> None:
        """``fn()`` is called when the history, its index or the dirty state changes."""
        self._history_listeners.append(fn)

    def remove_history_listener(self, fn: Callable[[], None]) -> None:
        self._history_listeners.remove(fn)

    def _changed(self, bbox: BBox) -> None:
        self.revision += 1
        for fn in list(self._listeners):
            fn(bbox)

    def _history_changed(self) -> None:
        for fn in list(self._history_listeners):
            fn()

    # ---------------------------------------------------------------- history
    @property
    def history(self) -> list[str]:
        """Names of all steps (applied ones first ``history_index`` of them, then redoable)."""
        return [s.name for s in self._steps]

    @property
    def history_index(self) -> int:
        """Number of applied steps."""
        return self._index

    @property
    def history_nbytes(self) -> int:
        """Bytes held by the undo/redo steps."""
        return self._nbytes

    @property
    def can_undo(self) -> bool:
        return self._index > 0 or (self._active is not None and self._active.bbox is not None)

    @property
    def can_redo(self) -> bool:
        return self._index < len(self._steps)

    @property
    def dirty(self) -> bool:
        return self._clean_index != self._index or (
            self._active is not None and self._active.bbox is not None
        )

    def mark_clean(self) -> None:
        """The current state is the saved one."""
        self._finish_stroke()
        self._clean_index = self._index
        self._history_changed()

    def _push(self, name: str, bbox: BBox, old: np.ndarray, new: np.ndarray) -> None:
        # a new step discards the redo tail
        for step in self._steps[self._index:]:
            self._nbytes -= step.nbytes
        del self._steps[self._index:]
        if self._clean_index is not None and self._clean_index > self._index:
            self._clean_index = None  # the saved state can no longer be reached
        step = _Step(name, bbox, old, new)
        self._steps.append(step)
        self._nbytes += step.nbytes
        self._index += 1
        while self._nbytes > self.memory_budget_bytes and len(self._steps) > 1:
            dropped = self._steps.pop(0)
            self._nbytes -= dropped.nbytes
            self._index -= 1
            if self._clean_index is not None:
                self._clean_index = self._clean_index - 1 if self._clean_index > 0 else None
        self._history_changed()

    def undo(self) -> BBox | None:
        """Undo the last step (an active stroke is ended first). Returns the restored bbox."""
        self._finish_stroke()
        if self._index == 0:
            return None
        step = self._steps[self._index - 1]
        y0, x0, y1, x1 = step.bbox
        self._labels[y0:y1, x0:x1] = step.old
        self._index -= 1
        self._changed(step.bbox)
        self._history_changed()
        return step.bbox

    def redo(self) -> BBox | None:
        self._finish_stroke()
        if self._index >= len(self._steps):
            return None
        step = self._steps[self._index]
        y0, x0, y1, x1 = step.bbox
        self._labels[y0:y1, x0:x1] = step.new
        self._index += 1
        self._changed(step.bbox)
        self._history_changed()
        return step.bbox

    def history_snapshots(self, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
        """``(step name, map after that step)`` for the last ``limit`` applied steps (all when
        None), oldest first — rebuilt from the undo patches on a copy. The document is not
        touched (no undo/redo, no listener call, no revision bump), so this is safe during a
        stroke: an unfinished stroke is not a step, its pixels are left out."""
        n = self._index
        k = n if limit is None else max(0, min(n, int(limit)))
        if k == 0:
            return []
        active = self._active
        state = (active._before if active is not None and active._before is not None else self._labels).copy()
        snaps: list[tuple[str, np.ndarray]] = []
        for step in reversed(self._steps[n - k:n]):
            snaps.append((step.name, state.copy()))
            y0, x0, y1, x1 = step.bbox
            state[y0:y1, x0:x1] = step.old
        snaps.reverse()
        return snaps

    def clear_history(self) -> None:
        """Forget all steps (the current state stays; it is dirty unless it was clean)."""
        self._finish_stroke()
        was_clean = not self.dirty
        self._steps.clear()
        self._nbytes = 0
        self._index = 0
        self._clean_index = 0 if was_clean else None
        self._history_changed()

    # -------------------------------------------------------------- internals
    def _axis(self) -> float:
        return float(self.shape[1]) / 2.0 if self.mirror_axis_x is None else float(self.mirror_axis_x)

    def _mirrored(self, bbox: BBox | None, mask: np.ndarray | None, axis: float, raster, pts):
        """Footprint of the mirrored operation.

        About the image centre (``2 * axis == W``) this is the exact column mirror of
        ``(bbox, mask)`` — column ``c`` <-> ``W - 1 - c`` — so both sides are pixel-for-pixel
        symmetric (clipping is symmetric too). About any other axis the mirrored geometry
        ``pts`` is rasterised with ``raster(points)`` (parts outside the image on one side may
        land inside on the other).
        """
        two_a = 2.0 * axis
        if two_a != self.shape[1]:
            mpts = np.asarray(pts, np.float64).reshape(-1, 2).copy()
            mpts[:, 0] = two_a - mpts[:, 0]
            return raster(mpts)
        if bbox is None:
            return None, None
        assert mask is not None  # footprints are (None, None) or (bbox, mask)
        k = int(two_a)
        y0, x0, y1, x1 = bbox
        w = self.shape[1]
        mx0, mx1 = k - x1, k - x0  # mirrored columns [mx0, mx1), mask reversed
        flipped = mask[:, ::-1]
        cx0, cx1 = max(mx0, 0), min(mx1, w)
        if cx1 <= cx0:
            return None, None
        return (y0, cx0, y1, cx1), flipped[:, cx0 - mx0:cx1 - mx0]

    def _locked_lut(self) -> np.ndarray:
        lut = np.zeros(256, bool)
        for c in self.locked:
            lut[int(c)] = True
        return lut

    def _finish_stroke(self) -> None:
        if self._active is not None:
            self._active.end()

    def _targets(self, tool: str, cls: int) -> tuple[int, int]:
        if tool == "restore":
            return _RESTORE, _RESTORE
        return cls, int(L.MIRROR_LUT[cls])

    def _write(self, bbox: BBox, mask: np.ndarray, target: int, lock_ref: np.ndarray,
               locked_lut: np.ndarray, exclude: np.ndarray | None) -> BBox | None:
        """Set ``target`` where ``mask`` and the pixel's reference class is not locked."""
        y0, x0, y1, x1 = bbox
        region = self._labels[y0:y1, x0:x1]
        write = mask
        if locked_lut.any():
            write = write & ~locked_lut[lock_ref[y0:y1, x0:x1]]
        if exclude is not None:
            write = write & ~exclude[y0:y1, x0:x1]
        src = self._original[y0:y1, x0:x1] if target == _RESTORE else np.uint8(target)
        write = write & (region != src)
        np.copyto(region, src, where=write)
        return mask_bbox(write, (y0, x0))

    def _paint_geometry(self, points, diameter_px, tool, cls, mirror_axis, locked_lut,
                        lock_ref, primary_cover) -> BBox | None:
        """Brush footprint of ``points`` (+ its mirror) onto the map; returns the changed bbox.

        ``lock_ref``: the map whose classes decide the lock (the pre-operation map).
        ``primary_cover``: full-size bool map of everything the un-mirrored footprint covered so
        far in this operation (mirror mode only) — mirrored paint never lands there.
        """
        shape = self.shape
        target, mtarget = self._targets(tool, cls)
        bbox, mask = stroke_footprint(points, diameter_px, shape)
        changed = None
        if mirror_axis is not None:
            mbbox, mmask = self._mirrored(
                bbox, mask, mirror_axis, lambda p: stroke_footprint(p, diameter_px, shape), points)
            if bbox is not None:
                y0, x0, y1, x1 = bbox
                primary_cover[y0:y1, x0:x1] |= mask
            if mbbox is not None:
                changed = self._write(mbbox, mmask, mtarget, lock_ref, locked_lut, primary_cover)
        if bbox is not None:
            changed = bbox_union(changed, self._write(bbox, mask, target, lock_ref, locked_lut, None))
        return changed

    def _apply_masks(self, name: str, parts: list[tuple[BBox, np.ndarray, int]]) -> BBox | None:
        """One undoable operation from footprints (later parts win); lock by the pre-op map."""
        self._finish_stroke()
        parts = [p for p in parts if p[0] is not None]
        if not parts:
            return None
        union = None
        for b, _, _ in parts:
            union = bbox_union(union, b)
        uy0, ux0, uy1, ux1 = union  # type: ignore[misc]
        before = self._labels[uy0:uy1, ux0:ux1].copy()
        locked = self._locked_lut()[before] if self.locked else None
        for (y0, x0, y1, x1), mask, target in parts:
            region = self._labels[y0:y1, x0:x1]
            write = mask
            if locked is not None:
                write = mask & ~locked[y0 - uy0:y1 - uy0, x0 - ux0:x1 - ux0]
            src = self._original[y0:y1, x0:x1] if target == _RESTORE else target
            np.copyto(region, src, where=write)
        after = self._labels[uy0:uy1, ux0:ux1]
        tight = mask_bbox(before != after, (uy0, ux0))
        if tight is None:  # nothing changed (or a later part painted an earlier change back)
            return None
        ty0, tx0, ty1, tx1 = tight
        self._push(
            name, tight,
            before[ty0 - uy0:ty1 - uy0, tx0 - ux0:tx1 - ux0].copy(),
            self._labels[ty0:ty1, tx0:tx1].copy(),
        )
        self._changed(tight)
        return tight

    def _step_name(self, tool: str, cls: int | None, name: str | None) -> str:
        if name:
            return name
        if tool == "restore":
            return "Restore"
        label = L.DISPLAY_NAMES[cls] if cls is not None else ""
        return {"brush": "Brush", "erase": "Erase", "fill": "Fill", "polygon": "Polygon"}[tool] + (
            f" ({label})" if label else ""
        )

    def _check_tool(self, tool: str, cls: int | None) -> int:
        if tool not in TOOLS:
            raise ValueError(f"unknown tool {tool!r}; tools: {', '.join(TOOLS)}")
        if cls is None:
            if tool == "brush":
                raise ValueError("the brush needs a class")
            return L.BACKGROUND
        return _check_class(cls)

    @staticmethod
    def _check_diameter(diameter_px: float) -> float:
        d = float(diameter_px)
        if not (MIN_DIAMETER_PX <= d <= MAX_DIAMETER_PX):
            raise ValueError(
                f"brush diameter {diameter_px} px is outside {MIN_DIAMETER_PX:g}..{MAX_DIAMETER_PX:g} px"
            )
        return d

    # ------------------------------------------------------------ operations
    def begin_stroke(
        self,
        tool: str = "brush",
        cls: int | None = None,
        diameter_px: float = 10.0,
        name: str | None = None,
    ) -> Stroke:
        """Start an interactive stroke; feed it with ``add_point`` and close it with ``end``.

        ``tool``: ``"brush"`` paints ``cls``; ``"erase"`` paints ``cls`` (default background);
        ``"restore"`` paints back the mask as loaded (``cls`` ignored). Lock and mirror settings
        are read now and hold for the whole stroke. Another operation ends an active stroke.
        """
        cls_i = self._check_tool(tool, cls)
        d = self._check_diameter(diameter_px)
        self._finish_stroke()
        stroke = Stroke(self, tool, cls_i, d, self._step_name(tool, cls_i, name))
        self._active = stroke
        return stroke

    def stroke(
        self,
        points: Sequence[Sequence[float]] | np.ndarray,
        diameter_px: float,
        cls: int | None = None,
        tool: str = "brush",
        name: str | None = None,
    ) -> BBox | None:
        """A whole polyline stroke in one call (same pixels as ``begin_stroke`` + points)."""
        cls_i = self._check_tool(tool, cls)
        d = self._check_diameter(diameter_px)
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        if not np.all(np.isfinite(pts)):
            raise ValueError("stroke points must be finite")
        if len(pts) == 0:
            self._finish_stroke()
            return None
        target, mtarget = self._targets(tool, cls_i)
        bbox, mask = stroke_footprint(pts, d, self.shape)
        parts = []
        if self.mirror:
            raster = lambda p: stroke_footprint(p, d, self.shape)  # noqa: E731
            parts.append((*self._mirrored(bbox, mask, self._axis(), raster, pts), mtarget))
        parts.append((bbox, mask, target))
        return self._apply_masks(self._step_name(tool, cls_i, name), parts)

    def fill_polygon(self, points: Sequence[Sequence[float]] | np.ndarray, cls: int,
                     name: str | None = None) -> BBox | None:
        """Fill the pixels whose centre is inside the polygon (even-odd rule) with ``cls``."""
        cls_i = _check_class(cls)
        pts = np.asarray(points, np.float64).reshape(-1, 2)
        bbox, mask = polygon_footprint(pts, self.shape)
        parts = []
        if self.mirror:
            raster = lambda p: polygon_footprint(p, self.shape)  # noqa: E731
            parts.append((*self._mirrored(bbox, mask, self._axis(), raster, pts), int(L.MIRROR_LUT[cls_i])))
        parts.append((bbox, mask, cls_i))
        return self._apply_masks(self._step_name("polygon", cls_i, name), parts)

    def _region(self, x: float, y: float):
        """4-connected same-class region under ``(x, y)`` -> (bbox, mask) or (None, None)."""
        import cv2

        col, row = math.floor(x), math.floor(y)
        h, w = self.shape
        if not (0 <= col < w and 0 <= row < h):
            return None, None
        ff = np.zeros((h + 2, w + 2), np.uint8)
        flags = 4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8)
        _, _, _, rect = cv2.floodFill(self._labels, ff, (col, row), 0, 0, 0, flags)
        rx, ry, rw, rh = rect
        return (ry, rx, ry + rh, rx + rw), ff[ry + 1:ry + 1 + rh, rx + 1:rx + 1 + rw].view(bool)

    def flood_fill(self, x: float, y: float, cls: int, name: str | None = None) -> BBox | None:
        """Fill the 4-connected region of the class under ``(x, y)`` with ``cls``.

        Nothing happens outside the image, on a locked class or when the region already is ``cls``.
        """
        cls_i = _check_class(cls)
        parts = []
        if self.mirror:
            two_a = 2.0 * self._axis()
            # the mirrored seed: pixel column c <-> W - 1 - c about the centre
            mx = (two_a - 1 - math.floor(x) + 0.5) if two_a == self.shape[1] else two_a - float(x)
            parts.append((*self._region(mx, y), int(L.MIRROR_LUT[cls_i])))
        parts.append((*self._region(x, y), cls_i))
        return self._apply_masks(self._step_name("fill", cls_i, name), parts)

    def set_labels(self, label_map: np.ndarray, name: str = "Replace", *,
                   respect_lock: bool = True) -> BBox | None:
        """Replace the whole map as one undoable step (e.g. a template or a parser result).

        Locked classes keep their pixels unless ``respect_lock=False``. Same shape required.
        """
        arr = _check_label_map(label_map)
        if arr.shape != self.shape:
            raise ValueError(f"label map shape {arr.shape} differs from the document's {self.shape}")
        self._finish_stroke()
        before = self._labels.copy()
        write = before != arr
        if respect_lock:
            write &= ~self._locked_lut()[before]
        bbox = mask_bbox(write)
        if bbox is None:
            return None
        self._labels[write] = arr[write]
        y0, x0, y1, x1 = bbox
        self._push(name, bbox, before[y0:y1, x0:x1].copy(), self._labels[y0:y1, x0:x1].copy())
        self._changed(bbox)
        return bbox

    # --------------------------------------------------------------- selections
    def _selection(self, shape: str, corners: Sequence[float]) -> np.ndarray | None:
        if len(corners) != 4:
            raise ValueError(f"a selection needs two corners (x0, y0, x1, y1), got {corners!r}")
        bbox, mask = selection_footprint(shape, corners[0], corners[1], corners[2], corners[3], self.shape)
        if bbox is None:
            return None
        full = np.zeros(self.shape, bool)
        y0, x0, y1, x1 = bbox
        full[y0:y1, x0:x1] = mask
        return full

    @staticmethod
    def _surrounding(labels: np.ndarray, sel: np.ndarray, locked_lut: np.ndarray) -> int:
        """Most frequent class on the 1-px ring just outside ``sel`` (background if none)."""
        grown = sel.copy()
        grown[1:] |= sel[:-1]
        grown[:-1] |= sel[1:]
        grown[:, 1:] |= sel[:, :-1]
        grown[:, :-1] |= sel[:, 1:]
        ring = labels[grown & ~sel]
        ring = ring[ring != _VOID]
        if ring.size == 0:
            return L.BACKGROUND
        return int(np.bincount(ring, minlength=L.NUM_CLASSES).argmax())

    @classmethod
    def _moved(cls, labels: np.ndarray, sel: np.ndarray, dx: int, dy: int, copy: bool, fill: int | None,
               locked_lut: np.ndarray) -> np.ndarray:
        """``labels`` with the selected part moved / copied by ``(dx, dy)`` (no mirror)."""
        fill_c = cls._surrounding(labels, sel, locked_lut) if fill is None else fill
        lift = sel & ~locked_lut[labels] & (labels != fill_c)
        out = labels.copy()
        rows, cols = np.nonzero(lift)
        values = labels[rows, cols]
        if not copy:
            out[rows, cols] = fill_c
        h, w = labels.shape
        tr, tc = rows + dy, cols + dx
        inside = (tr >= 0) & (tr < h) & (tc >= 0) & (tc < w)
        tr, tc, values = tr[inside], tc[inside], values[inside]
        free = ~locked_lut[labels[tr, tc]]   # the lock is judged on the map before the move
        out[tr[free], tc[free]] = values[free]
        return out

    def lifted(self, shape: str, corners: Sequence[float], fill_cls: int | None = None):
        """What :meth:`move_selection` would pick up: ``(bbox, mask)`` of the selected pixels that
        are neither locked nor of the fill class (default: the class around the selection), or
        ``(None, None)``. For a UI's preview of the floating part."""
        sel = self._selection(shape, corners)
        if sel is None:
            return None, None
        lut = self._locked_lut()
        fill_c = self._surrounding(self._labels, sel, lut) if fill_cls is None else _check_class(fill_cls)
        lift = sel & ~lut[self._labels] & (self._labels != fill_c)
        bbox = mask_bbox(lift)
        if bbox is None:
            return None, None
        y0, x0, y1, x1 = bbox
        return bbox, lift[y0:y1, x0:x1]

    def move_selection(self, shape: str, corners: Sequence[float], dx: float, dy: float, *, copy: bool = False,
                       fill_cls: int | None = None, name: str | None = None) -> BBox | None:
        """Move (``copy=False``) or copy the part inside a rectangle / ellipse selection by
        ``(dx, dy)`` pixels (rounded); one undo step. Returns the changed bbox or ``None``.

        ``shape``: ``"rect"`` or ``"ellipse"``; ``corners``: ``(x0, y0, x1, y1)`` of its box in
        image coordinates (:func:`~maskstudio.mask.raster.selection_footprint`). Pixels of the
        *fill class* — ``fill_cls``, default the most frequent class just outside the selection
        (skin around an eye) — are transparent: they are not carried along, and a move leaves the
        fill class where the part was. So selecting an eye with a loose box and dragging it moves
        the eye over the skin, not a rectangle of skin. Locked classes are neither lifted nor
        overwritten; parts moved past the edge are dropped. With mirror mode the mirrored part
        moves the mirrored way (left/right classes swapped); where both touch a pixel, the
        original move wins.
        """
        dxi, dyi = int(round(float(dx))), int(round(float(dy)))
        fill = None if fill_cls is None else _check_class(fill_cls)
        self._finish_stroke()
        sel = self._selection(shape, corners)
        if sel is None or (dxi == 0 and dyi == 0):
            return None
        labels = self._labels
        lut = self._locked_lut()
        lut[_VOID] = True
        result = self._moved(labels, sel, dxi, dyi, copy, fill, lut)
        if self.mirror:
            h, w = self.shape
            k = int(round(2.0 * self._axis()))
            src = k - 1 - np.arange(w)              # image column shown at flipped column j
            valid = (src >= 0) & (src < w)
            flipped = np.full_like(labels, _VOID)
            flipped[:, valid] = _MIRROR_LUT256[labels[:, src[valid]]]
            fm = self._moved(flipped, sel, dxi, dyi, copy,
                             None if fill is None else int(L.MIRROR_LUT[fill]), lut)
            mirrored = labels.copy()
            mirrored[:, src[valid]] = _MIRROR_LUT256[fm[:, valid]]
            primary = result != labels
            result = np.where(primary, result, mirrored)
        bbox = mask_bbox(result != labels)
        if bbox is None:
            return None
        y0, x0, y1, x1 = bbox
        old = labels[y0:y1, x0:x1].copy()
        labels[y0:y1, x0:x1] = result[y0:y1, x0:x1]
        what = "Copy" if copy else "Move"
        self._push(name or f"{what} selection", bbox, old, labels[y0:y1, x0:x1].copy())
        self._changed(bbox)
        return bbox
