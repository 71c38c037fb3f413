"""Exact, vectorised rasterisation of brush strokes and polygons (numpy only).

Coordinate convention (used by every tool of :class:`~maskstudio.mask.MaskDocument`):

* Points are continuous image coordinates ``(x, y)``: pixel ``(col, row)`` covers the square
  ``[col, col + 1) x [row, row + 1)``, so its **centre is ``(col + 0.5, row + 0.5)``**. A UI maps
  a widget position to image coordinates by scaling only (no half-pixel shift); the pixel under a
  point is ``(floor(x), floor(y))``.
* **Brush footprint** of a polyline ``p0 .. pn`` with diameter ``d``: every pixel whose centre lies
  within distance ``d / 2`` of the polyline (the union of the segment "capsules"), ties included
  — precisely ``dist(centre, polyline)**2 <= (d / 2)**2 + EPS_SQ`` — **plus** the pixel under each
  point. The extra pixel only matters for ``d < sqrt(2)`` (a 1 px brush on a pixel corner would
  otherwise paint nothing); for larger brushes it is inside the disk anyway.
* **Polygon footprint**: every pixel whose centre is inside the polygon by the even-odd rule with
  the classic crossing test (an edge counts for a scanline at ``yc`` when exactly one of its ends
  has ``y > yc``; the centre is inside when an odd number of crossings lie strictly right of it).

Both are computed as per-row spans (closed-form capsule/scanline intersections), so the cost is
proportional to the rows touched, not to the pixels times segments.
"""
from __future__ import annotations

import numpy as np

#: Tolerance on squared distances so that exact ties (centre exactly at d/2) are always painted,
#: independent of floating-point rounding.
EPS_SQ = 1e-6

BBox = tuple[int, int, int, int]  # half-open (y0, x0, y1, x1)

_INF = np.inf


def _segment_spans(ax, ay, bx, by, radius: float, height: int, width: int):
    """Row spans of capsules around segments A->B (arrays of equal length).

    Returns ``rows, c0, c1`` (int64 arrays, ``c1`` exclusive) clipped to the image; may be empty.
    """
    r_sq = radius * radius + EPS_SQ
    r_eff = np.sqrt(r_sq)
    ymin = np.minimum(ay, by) - r_eff
    ymax = np.maximum(ay, by) + r_eff
    # rows whose centre row+0.5 lies in [ymin, ymax]
    r0 = np.maximum(np.ceil(ymin - 0.5), 0).astype(np.int64)
    r1 = np.minimum(np.floor(ymax - 0.5), height - 1).astype(np.int64)
    counts = np.maximum(r1 - r0 + 1, 0)
    total = int(counts.sum())
    if total == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty
    seg = np.repeat(np.arange(len(ax)), counts)
    starts = np.cumsum(counts) - counts
    rows = r0[seg] + (np.arange(total) - starts[seg])
    yc = rows + 0.5
    sax, say, sbx, sby = ax[seg], ay[seg], bx[seg], by[seg]

    lo = np.full(total, _INF)
    hi = np.full(total, -_INF)
    with np.errstate(invalid="ignore", divide="ignore"):
        # end-point disks
        for px, py in ((sax, say), (sbx, sby)):
            h = yc - py
            q = r_sq - h * h
            ok = q >= 0
            s = np.sqrt(np.where(ok, q, 0.0))
            lo = np.where(ok, np.minimum(lo, px - s), lo)
            hi = np.where(ok, np.maximum(hi, px + s), hi)
        # the band between them (segments of non-zero length)
        dx = sbx - sax
        dy = sby - say
        l_sq = dx * dx + dy * dy
        h = yc - say
        hdy = h * dy
        hdx = h * dx
        # projection parameter 0 <= (u*dx + h*dy) <= L^2, u = x - ax
        nzx = dx != 0
        ta = np.where(nzx, -hdy / dx, -_INF)
        tb = np.where(nzx, (l_sq - hdy) / dx, _INF)
        t_lo = np.minimum(ta, tb)
        t_hi = np.maximum(ta, tb)
        t_ok = np.where(nzx, True, (hdy >= 0) & (hdy <= l_sq))
        # perpendicular distance |u*dy - h*dx| <= r * L
        rl = np.sqrt(r_sq * l_sq)
        nzy = dy != 0
        pa = np.where(nzy, (hdx - rl) / dy, -_INF)
        pb = np.where(nzy, (hdx + rl) / dy, _INF)
        p_lo = np.minimum(pa, pb)
        p_hi = np.maximum(pa, pb)
        p_ok = np.where(nzy, True, hdx * hdx <= r_sq * l_sq)
        b_lo = np.maximum(t_lo, p_lo)
        b_hi = np.minimum(t_hi, p_hi)
        band = (l_sq > 0) & t_ok & p_ok & (b_lo <= b_hi)
        lo = np.where(band, np.minimum(lo, sax + b_lo), lo)
        hi = np.where(band, np.maximum(hi, sax + b_hi), hi)
        # pixel centres col+0.5 in [lo, hi]
        c0 = np.ceil(lo - 0.5)
        c1 = np.floor(hi - 0.5) + 1
    valid = np.isfinite(lo) & np.isfinite(hi)
    c0 = np.clip(np.where(valid, c0, 0), 0, width).astype(np.int64)
    c1 = np.clip(np.where(valid, c1, 0), 0, width).astype(np.int64)
    keep = c1 > c0
    return rows[keep], c0[keep], c1[keep]


def _spans_to_mask(rows, c0, c1):
    """Union of row spans -> (bbox, bool mask of the bbox) or (None, None) when empty."""
    if rows.size == 0:
        return None, None
    y0 = int(rows.min())
    y1 = int(rows.max()) + 1
    x0 = int(c0.min())
    x1 = int(c1.max())
    w = x1 - x0
    n = (y1 - y0) * (w + 1)
    base = (rows - y0) * (w + 1)
    # +1 where a span starts, -1 after it ends; a running sum > 0 means "covered"
    diff = np.bincount(base + (c0 - x0), minlength=n)
    diff -= np.bincount(base + (c1 - x0), minlength=n)
    mask = np.cumsum(diff.reshape(y1 - y0, w + 1), axis=1)[:, :w] > 0
    return (y0, x0, y1, x1), mask


def _as_xy(points) -> tuple[np.ndarray, np.ndarray]:
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if not np.all(np.isfinite(pts)):
        raise ValueError("points must be finite numbers")
    return pts[:, 0], pts[:, 1]


def stroke_footprint(points, diameter_px: float, shape_hw: tuple[int, int]):
    """Footprint of a round brush along the polyline ``points`` ([N,2] of (x, y)).

    Returns ``(bbox, mask)``: the half-open bbox ``(y0, x0, y1, x1)`` and a bool array of the bbox
    shape, or ``(None, None)`` when nothing of it lies in the image.
    """
    height, width = shape_hw
    x, y = _as_xy(points)
    if x.size == 0:
        return None, None
    if x.size == 1:
        ax = bx = x
        ay = by = y
    else:
        ax, ay, bx, by = x[:-1], y[:-1], x[1:], y[1:]
    rows, c0, c1 = _segment_spans(ax, ay, bx, by, diameter_px / 2.0, height, width)
    # the pixel under each point (matters only for thin brushes)
    px = np.floor(x).astype(np.int64)
    py = np.floor(y).astype(np.int64)
    inside = (px >= 0) & (px < width) & (py >= 0) & (py < height)
    if inside.any():
        rows = np.concatenate([rows, py[inside]])
        c0 = np.concatenate([c0, px[inside]])
        c1 = np.concatenate([c1, px[inside] + 1])
    return _spans_to_mask(rows, c0, c1)


def polygon_footprint(points, shape_hw: tuple[int, int]):
    """Pixels whose centre is inside the polygon ``points`` (even-odd rule); see module doc."""
    height, width = shape_hw
    x, y = _as_xy(points)
    if x.size < 3:
        return None, None
    r0 = max(int(np.ceil(y.min() - 0.5)), 0)
    r1 = min(int(np.floor(y.max() - 0.5)), height - 1)
    cx0 = max(int(np.ceil(x.min() - 0.5)), 0)
    cx1 = min(int(np.floor(x.max() - 0.5)), width - 1)
    if r1 < r0 or cx1 < cx0:
        return None, None
    xi, yi = x, y
    xj, yj = np.roll(x, -1), np.roll(y, -1)
    yc = (np.arange(r0, r1 + 1, dtype=np.float64) + 0.5)[:, None]
    cross = (yi > yc) != (yj > yc)
    rr, ee = np.nonzero(cross)
    if rr.size == 0:
        return None, None
    ycr = yc[rr, 0]
    xcross = (xj[ee] - xi[ee]) * (ycr - yi[ee]) / (yj[ee] - yi[ee]) + xi[ee]
    # centre col+0.5 is right of (or on) the crossing  <=>  col >= ceil(xcross - 0.5)
    w = cx1 - cx0 + 1
    col = np.clip(np.ceil(xcross - 0.5), cx0, cx1 + 1).astype(np.int64) - cx0
    toggles = np.bincount(rr * (w + 1) + col, minlength=(r1 - r0 + 1) * (w + 1))
    parity = np.cumsum(toggles.reshape(r1 - r0 + 1, w + 1), axis=1)[:, :w] & 1
    mask = parity.astype(bool)
    if not mask.any():
        return None, None
    return (r0, cx0, r1 + 1, cx1 + 1), mask


def mask_bbox(mask: np.ndarray, offset: tuple[int, int] = (0, 0)) -> BBox | None:
    """Tight half-open bbox of the True pixels of ``mask`` (shifted by ``offset`` (y, x))."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    oy, ox = offset
    return (oy + int(rows[0]), ox + int(cols[0]), oy + int(rows[-1]) + 1, ox + int(cols[-1]) + 1)


def bbox_union(a: BBox | None, b: BBox | None) -> BBox | None:
    """Smallest bbox containing both (``None`` is the empty bbox)."""
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


SELECTION_SHAPES = ("rect", "ellipse")


def selection_footprint(shape: str, x0: float, y0: float, x1: float, y1: float, shape_hw: tuple[int, int]):
    """Pixels of a rectangle / ellipse selection spanned by two corners (any order).

    ``rect``: pixels whose centre lies in ``[min x, max x) x [min y, max y)``. ``ellipse``: the
    ellipse inscribed in that box, centres inside or on it. Returns ``(bbox, mask)`` clipped to
    the image, or ``(None, None)`` when no pixel is selected.
    """
    if shape not in SELECTION_SHAPES:
        raise ValueError(f"unknown selection shape {shape!r}; shapes: {', '.join(SELECTION_SHAPES)}")
    xs = sorted((float(x0), float(x1)))
    ys = sorted((float(y0), float(y1)))
    if not all(np.isfinite(v) for v in xs + ys):
        raise ValueError("selection corners must be finite")
    h, w = shape_hw
    c0 = max(int(np.ceil(xs[0] - 0.5)), 0)
    c1 = min(int(np.ceil(xs[1] - 0.5)), w)
    r0 = max(int(np.ceil(ys[0] - 0.5)), 0)
    r1 = min(int(np.ceil(ys[1] - 0.5)), h)
    if c1 <= c0 or r1 <= r0:
        return None, None
    mask = np.ones((r1 - r0, c1 - c0), bool)
    if shape == "ellipse":
        cx, cy = (xs[0] + xs[1]) / 2, (ys[0] + ys[1]) / 2
        rx, ry = (xs[1] - xs[0]) / 2, (ys[1] - ys[0]) / 2
        u = ((np.arange(c0, c1) + 0.5 - cx) / rx) ** 2
        v = ((np.arange(r0, r1) + 0.5 - cy) / ry) ** 2
        mask = (v[:, None] + u[None, :]) <= 1.0 + 1e-9
    return _tight(mask, r0, c0)


def _tight(mask: np.ndarray, r0: int, c0: int):
    bbox = mask_bbox(mask, (r0, c0))
    if bbox is None:
        return None, None
    y0, x0, y1, x1 = bbox
    return bbox, mask[y0 - r0:y1 - r0, x0 - c0:x1 - c0]
