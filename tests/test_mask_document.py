"""MaskDocument: exact footprints (vs brute-force references), lock, mirror, undo, memory."""
from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from maskstudio import labels as L
from maskstudio.mask import MaskDocument, polygon_footprint, stroke_footprint
from maskstudio.mask.raster import EPS_SQ

H, W = 48, 64
SKIN, HAIR, L_EYE, R_EYE, CLOTH = (L.index_of(n) for n in ("skin", "hair", "l_eye", "r_eye", "cloth"))


# ----------------------------------------------------------------------------- references
def ref_stroke_mask(points, diameter, shape=(H, W)):
    """Brute force: pixel centres (c+0.5, r+0.5) within d/2 of any segment, + pixel under points."""
    pts = np.asarray(points, float).reshape(-1, 2)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    cx, cy = xx + 0.5, yy + 0.5
    best = np.full(shape, np.inf)
    segs = [(pts[0], pts[0])] if len(pts) == 1 else list(zip(pts[:-1], pts[1:]))
    for a, b in segs:
        d = b - a
        l2 = float(d @ d)
        t = np.zeros(shape) if l2 == 0 else np.clip(((cx - a[0]) * d[0] + (cy - a[1]) * d[1]) / l2, 0, 1)
        best = np.minimum(best, (cx - a[0] - t * d[0]) ** 2 + (cy - a[1] - t * d[1]) ** 2)
    m = best <= (diameter / 2) ** 2 + EPS_SQ
    for x, y in pts:
        if 0 <= x < w and 0 <= y < h:
            m[int(np.floor(y)), int(np.floor(x))] = True
    return m


def ref_polygon_mask(points, shape=(H, W)):
    """Brute force even-odd crossing test on every pixel centre."""
    pts = np.asarray(points, float)
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    px, py = xx + 0.5, yy + 0.5
    inside = np.zeros(shape, bool)
    for i in range(len(pts)):
        (xi, yi), (xj, yj) = pts[i], pts[(i + 1) % len(pts)]
        with np.errstate(divide="ignore", invalid="ignore"):
            inside ^= ((yi > py) != (yj > py)) & (px < (xj - xi) * (py - yi) / (yj - yi) + xi)
    return inside


def ref_flood_region(lab, col, row):
    """Plain BFS, 4-connected, same class."""
    h, w = lab.shape
    seen = np.zeros(lab.shape, bool)
    cls = lab[row, col]
    q = deque([(row, col)])
    seen[row, col] = True
    while q:
        r, c = q.popleft()
        for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            rr, cc = r + dr, c + dc
            if 0 <= rr < h and 0 <= cc < w and not seen[rr, cc] and lab[rr, cc] == cls:
                seen[rr, cc] = True
                q.append((rr, cc))
    return seen


def changed_bbox(a, b):
    ys, xs = np.nonzero(a != b)
    if ys.size == 0:
        return None
    return (int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1)


def random_map(rng, shape=(H, W), classes=(0, 1, 13, 17)):
    """Blocky map with several classes (so strokes change some pixels and not others)."""
    small = rng.choice(classes, size=(shape[0] // 8 + 1, shape[1] // 8 + 1))
    return np.kron(small, np.ones((8, 8), np.uint8))[: shape[0], : shape[1]].astype(np.uint8)


# ----------------------------------------------------------------------------- footprints
@pytest.mark.parametrize("seed", range(4))
def test_stroke_covers_exactly_the_reference_disk_rasterisation(seed):
    rng = np.random.default_rng(seed)
    for k in range(60):
        n = int(rng.integers(1, 7))
        if k % 3 == 0:  # half-pixel grid: exact ties on the disk boundary are included
            pts = rng.integers(-6, 2 * W + 6, (n, 2)) / 2.0
        else:  # arbitrary sub-pixel positions, partly outside the image
            pts = rng.uniform(-8, W + 8, (n, 2))
        d = float(rng.choice([1.0, 1.5, 2.0, 3.0, 5.5, 8.0, 17.0, 40.0])) if k % 2 else float(rng.uniform(1, 30))
        base = random_map(rng)
        doc = MaskDocument(base)
        bbox = doc.stroke(pts, d, HAIR)
        expected = np.where(ref_stroke_mask(pts, d), HAIR, base)
        np.testing.assert_array_equal(doc.labels, expected, err_msg=f"points={pts.tolist()} d={d}")
        assert bbox == changed_bbox(base, expected)


def test_footprint_function_matches_reference_for_long_strokes():
    rng = np.random.default_rng(7)
    pts = np.cumsum(rng.normal(0, 6, (120, 2)), axis=0) + (W / 2, H / 2)
    for d in (1.0, 2.5, 12.0, 40.0):
        bbox, m = stroke_footprint(pts, d, (H, W))
        full = np.zeros((H, W), bool)
        y0, x0, y1, x1 = bbox
        full[y0:y1, x0:x1] = m
        np.testing.assert_array_equal(full, ref_stroke_mask(pts, d))


def test_thin_brush_on_a_pixel_corner_still_paints_the_pixel_under_the_point():
    doc = MaskDocument(np.zeros((H, W), np.uint8))
    assert doc.stroke([(10.0, 12.0)], 1.0, SKIN) == (12, 10, 13, 11)
    assert doc.labels.sum() == SKIN


def test_fast_stroke_leaves_no_gaps():
    import cv2

    doc = MaskDocument(np.zeros((H, W), np.uint8))
    s = doc.begin_stroke("brush", SKIN, 1.0)
    for x, y in [(1.2, 40.7), (62.9, 3.1), (5.5, 2.5)]:  # two huge jumps between events
        s.add_point(x, y)
    s.end()
    painted = (doc.labels == SKIN).astype(np.uint8)
    n, _ = cv2.connectedComponents(painted, connectivity=8)
    assert n == 2  # background + one connected stroke
    np.testing.assert_array_equal(painted.astype(bool), ref_stroke_mask([(1.2, 40.7), (62.9, 3.1), (5.5, 2.5)], 1.0))


def test_polygon_fill_matches_reference_even_odd():
    rng = np.random.default_rng(3)
    for k in range(80):
        n = int(rng.integers(3, 9))
        pts = rng.integers(-6, 2 * W + 6, (n, 2)) / 2.0 if k % 2 else rng.uniform(-10, W + 10, (n, 2))
        base = random_map(rng)
        doc = MaskDocument(base)
        bbox = doc.fill_polygon(pts, CLOTH)
        expected = np.where(ref_polygon_mask(pts), CLOTH, base)
        np.testing.assert_array_equal(doc.labels, expected, err_msg=str(pts.tolist()))
        assert bbox == changed_bbox(base, expected)
    assert polygon_footprint([(0, 0), (5, 5)], (H, W)) == (None, None)


def test_flood_fill_is_4_connected_same_class_region():
    rng = np.random.default_rng(5)
    for _ in range(20):
        base = (rng.random((H, W)) < 0.45).astype(np.uint8) * SKIN  # diagonal-only links abound
        doc = MaskDocument(base)
        col, row = int(rng.integers(W)), int(rng.integers(H))
        target = HAIR
        bbox = doc.flood_fill(col + 0.7, row + 0.2, target)
        expected = np.where(ref_flood_region(base, col, row), target, base)
        np.testing.assert_array_equal(doc.labels, expected)
        assert bbox == changed_bbox(base, expected)
    doc = MaskDocument(np.zeros((H, W), np.uint8))
    assert doc.flood_fill(-1, 3, SKIN) is None and doc.flood_fill(3, 3, 0) is None
    assert doc.history == []


def test_pick_and_bounds():
    base = np.zeros((H, W), np.uint8)
    base[5, 7] = L_EYE
    doc = MaskDocument(base)
    assert doc.pick(7.99, 5.0) == L_EYE and doc.pick(8.0, 5.0) == 0
    with pytest.raises(ValueError):
        doc.pick(W, 0)
    with pytest.raises(ValueError):
        doc.pick(-0.1, 0)


def test_invalid_arguments_are_refused():
    doc = MaskDocument(np.zeros((H, W), np.uint8))
    for d in (0.5, 0.0, 257.0, float("nan")):
        with pytest.raises(ValueError):
            doc.stroke([(1, 1)], d, SKIN)
    with pytest.raises(ValueError):
        doc.begin_stroke("brush", 19, 5)
    with pytest.raises(ValueError):
        doc.begin_stroke("smudge", 1, 5)
    with pytest.raises(ValueError):
        doc.stroke([(1, float("inf"))], 5, SKIN)
    with pytest.raises(ValueError):
        MaskDocument(np.full((4, 4), 19, np.uint8))
    with pytest.raises(ValueError):
        doc.set_labels(np.zeros((H + 1, W), np.uint8))
    assert not doc.labels.flags.writeable
    with pytest.raises(ValueError):
        doc.labels[0, 0] = 1


# ----------------------------------------------------------------------------- tools
def test_interactive_stroke_is_identical_to_one_call_and_one_undo_step():
    rng = np.random.default_rng(11)
    pts = rng.uniform(-4, W + 4, (25, 2))
    base = random_map(rng)
    for mirror in (False, True):
        for tool, cls in (("brush", L_EYE), ("erase", None), ("erase", HAIR), ("restore", None)):
            a, b = MaskDocument(base), MaskDocument(base)
            for d in (a, b):
                d.locked = {17}
                d.mirror = mirror
                d.fill_polygon([(0, 0), (W, 0), (W, H / 2), (0, H / 2)], CLOTH)  # something to restore
            a.stroke(pts, 7.5, cls, tool=tool)
            s = b.begin_stroke(tool, cls, 7.5)
            bboxes = [s.add_point(x, y) for x, y in pts]
            total = s.end()
            np.testing.assert_array_equal(a.labels, b.labels, err_msg=f"{tool} {cls} mirror={mirror}")
            assert b.history_index == 2 and len(b.history) == 2
            union = None
            for bb in bboxes:
                if bb is not None:
                    union = bb if union is None else (min(union[0], bb[0]), min(union[1], bb[1]),
                                                      max(union[2], bb[2]), max(union[3], bb[3]))
            before = b.labels.copy()
            assert b.undo() == total
            assert total is None or union is not None
            b.redo()
            np.testing.assert_array_equal(b.labels, before)


def test_eraser_paints_background_by_default_or_a_chosen_class():
    base = np.full((H, W), SKIN, np.uint8)
    doc = MaskDocument(base)
    doc.stroke([(10, 10), (30, 10)], 6, tool="erase")
    expect = np.where(ref_stroke_mask([(10, 10), (30, 10)], 6), 0, base)
    np.testing.assert_array_equal(doc.labels, expect)
    doc.stroke([(10, 30), (30, 30)], 6, HAIR, tool="erase")
    expect = np.where(ref_stroke_mask([(10, 30), (30, 30)], 6), HAIR, expect)
    np.testing.assert_array_equal(doc.labels, expect)
    assert doc.history == ["Erase (Background)", "Erase (Hair)"]


def test_restore_eraser_brings_back_the_loaded_mask():
    rng = np.random.default_rng(2)
    base = random_map(rng)
    doc = MaskDocument(base)
    doc.fill_polygon([(0, 0), (W, 0), (W, H), (0, H)], CLOTH)
    assert (doc.labels == CLOTH).all()
    pts = [(5, 5), (50, 40)]
    doc.stroke(pts, 9, tool="restore")
    foot = ref_stroke_mask(pts, 9)
    np.testing.assert_array_equal(doc.labels, np.where(foot, base, CLOTH))
    np.testing.assert_array_equal(doc.original, base)  # the original never changes
    assert doc.history[-1] == "Restore"


def test_class_lock_is_honoured_by_every_operation():
    rng = np.random.default_rng(4)
    base = random_map(rng, classes=(0, SKIN, HAIR))
    locked_px = base == SKIN
    everything = [(-1, -1), (W + 1, -1), (W + 1, H + 1), (-1, H + 1)]
    ops = [
        lambda d: d.stroke([(0, 0), (W, H), (0, H), (W, 0)], 90, CLOTH),
        lambda d: d.stroke([(0, H / 2), (W, H / 2)], 60, tool="erase"),
        lambda d: d.fill_polygon(everything, CLOTH),
        lambda d: d.set_labels(np.full((H, W), CLOTH, np.uint8)),
    ]
    for mirror in (False, True):
        for op in ops:
            doc = MaskDocument(base)
            doc.mirror = mirror
            doc.locked = {SKIN}
            op(doc)
            np.testing.assert_array_equal(doc.labels[locked_px], SKIN)
            rest = doc.labels[~locked_px]
            assert (rest == CLOTH).all() or (rest == 0).all()  # everything else was painted
    doc = MaskDocument(base)
    doc.locked = {SKIN}
    r, c = np.argwhere(locked_px)[0]
    assert doc.flood_fill(c + 0.5, r + 0.5, CLOTH) is None  # a locked region is not filled
    # restore: locked pixels stay too
    doc = MaskDocument(base)
    doc.set_labels(np.full((H, W), CLOTH, np.uint8))
    doc.locked = {CLOTH}
    assert doc.stroke([(0, 0), (W, H)], 200, tool="restore") is None
    # painting *with* a locked class is allowed; it just cannot be overwritten afterwards
    doc = MaskDocument(np.zeros((H, W), np.uint8))
    doc.locked = {HAIR}
    doc.stroke([(5, 5)], 5, HAIR)
    painted = doc.labels.copy()
    doc.stroke([(5, 5)], 9, SKIN)
    assert (doc.labels[painted == HAIR] == HAIR).all()
    # set_labels can override the lock when asked
    doc.set_labels(np.zeros((H, W), np.uint8), respect_lock=False)
    assert not doc.labels.any()


# ----------------------------------------------------------------------------- mirror
def test_mirror_paints_the_mirrored_footprint_with_swapped_classes():
    base = np.zeros((H, W), np.uint8)
    pts = [(5.3, 7.1), (20.2, 18.9), (12.0, 30.5)]  # left half only
    for cls, mcls in ((L_EYE, R_EYE), (R_EYE, L_EYE), (L.index_of("l_brow"), L.index_of("r_brow")),
                      (L.index_of("l_ear"), L.index_of("r_ear")), (SKIN, SKIN)):
        doc = MaskDocument(base)
        doc.mirror = True
        doc.stroke(pts, 6, cls)
        foot = ref_stroke_mask(pts, 6)
        expected = np.where(foot, cls, 0)
        expected = np.where(foot[:, ::-1], mcls, expected)  # default axis W/2: column c -> W-1-c
        np.testing.assert_array_equal(doc.labels, expected)
        assert doc.undo() == (0, 0, 0, 0) or not doc.labels.any()
    # L.flip_labels of the one-sided stroke equals the mirrored half exactly
    one = MaskDocument(base)
    one.stroke(pts, 6, L_EYE)
    both = MaskDocument(base)
    both.mirror = True
    both.stroke(pts, 6, L_EYE)
    np.testing.assert_array_equal(both.labels, np.maximum(one.labels, L.flip_labels(one.labels)))


def test_mirror_about_a_custom_axis_and_other_tools():
    base = np.zeros((H, W), np.uint8)
    doc = MaskDocument(base)
    doc.mirror, doc.mirror_axis_x = True, 20.0  # column c <-> 39 - c
    pts = [(3.5, 3.5), (10.5, 20.5)]
    doc.stroke(pts, 4, L_EYE)
    foot = ref_stroke_mask(pts, 4)
    mirrored = np.zeros_like(foot)
    cols = 39 - np.arange(W)
    ok = (cols >= 0) & (cols < W)
    mirrored[:, cols[ok]] = foot[:, np.arange(W)[ok]]
    np.testing.assert_array_equal(doc.labels, np.where(foot, L_EYE, np.where(mirrored, R_EYE, 0)))
    # a stroke partly left of the image: its mirror about x=20 lands inside
    doc = MaskDocument(base)
    doc.mirror, doc.mirror_axis_x = True, 20.0
    out = [(-6.0, 10.0), (-2.0, 12.0)]
    doc.stroke(out, 6, L_EYE)
    np.testing.assert_array_equal(doc.labels, np.where(
        ref_stroke_mask(out, 6), L_EYE, np.where(ref_stroke_mask([(46.0, 10.0), (42.0, 12.0)], 6), R_EYE, 0)))
    assert (doc.labels == R_EYE).sum() > 20
    # an axis between pixel edges/centres: the mirrored geometry is rasterised
    doc = MaskDocument(base)
    doc.mirror, doc.mirror_axis_x = True, 30.3
    doc.stroke(pts, 4, L_EYE)
    mpts = [(60.6 - x, y) for x, y in pts]
    np.testing.assert_array_equal(
        doc.labels, np.where(foot, L_EYE, np.where(ref_stroke_mask(mpts, 4), R_EYE, 0)))
    # polygon fill mirrors too
    doc = MaskDocument(base)
    doc.mirror = True
    tri = [(2, 2), (20, 4), (8, 30)]
    doc.fill_polygon(tri, L_EYE)
    poly = ref_polygon_mask(tri)
    np.testing.assert_array_equal(doc.labels, np.where(poly, L_EYE, np.where(poly[:, ::-1], R_EYE, 0)))
    # flood fill mirrors its seed: two separate regions, both filled
    lab = np.zeros((H, W), np.uint8)
    lab[10:20, 5:15] = SKIN
    lab[10:20, W - 15:W - 5] = SKIN
    doc = MaskDocument(lab)
    doc.mirror = True
    doc.flood_fill(7, 12, L_EYE)
    assert (doc.labels[10:20, 5:15] == L_EYE).all() and (doc.labels[10:20, W - 15:W - 5] == R_EYE).all()
    assert len(doc.history) == 1


def test_mirror_overlap_on_the_axis_keeps_the_painted_class():
    doc = MaskDocument(np.zeros((H, W), np.uint8))
    doc.mirror = True
    pts = [(W / 2 - 3.3, 10.2), (W / 2 + 1.7, 30.6)]  # crosses the axis
    doc.stroke(pts, 8, L_EYE)
    foot = ref_stroke_mask(pts, 8)
    expected = np.where(foot, L_EYE, np.where(foot[:, ::-1], R_EYE, 0))
    np.testing.assert_array_equal(doc.labels, expected)


# ----------------------------------------------------------------------------- undo / redo
def test_undo_redo_restore_byte_identical_maps():
    rng = np.random.default_rng(9)
    base = random_map(rng)
    doc = MaskDocument(base)
    states = [doc.labels.copy()]
    for k in range(30):
        doc.mirror = bool(k % 3 == 0)
        doc.locked = {HAIR} if k % 4 == 0 else set()
        kind = k % 5
        if kind == 0:
            bbox = doc.stroke(rng.uniform(0, W, (6, 2)), float(rng.uniform(1, 20)), int(rng.integers(19)))
        elif kind == 1:
            s = doc.begin_stroke("erase", None, float(rng.uniform(1, 15)))
            s.add_points(rng.uniform(0, W, (8, 2)))
            bbox = s.end()
        elif kind == 2:
            bbox = doc.flood_fill(*rng.uniform(0, H, 2), int(rng.integers(19)))
        elif kind == 3:
            bbox = doc.fill_polygon(rng.uniform(0, W, (5, 2)), int(rng.integers(19)))
        else:
            bbox = doc.stroke(rng.uniform(0, W, (3, 2)), 9.0, tool="restore")
        assert bbox == changed_bbox(states[-1], doc.labels)
        if bbox is not None:
            states.append(doc.labels.copy())
    assert doc.history_index == len(states) - 1
    for i in range(len(states) - 2, -1, -1):
        doc.undo()
        assert doc.labels.tobytes() == states[i].tobytes()
    assert not doc.can_undo and doc.undo() is None and not doc.dirty
    for i in range(1, len(states)):
        doc.redo()
        assert doc.labels.tobytes() == states[i].tobytes()
    assert not doc.can_redo and doc.redo() is None


def test_history_dirty_state_and_listeners():
    doc = MaskDocument(np.zeros((H, W), np.uint8))
    seen, hist = [], []
    doc.add_listener(seen.append)
    doc.add_history_listener(lambda: hist.append(doc.history_index))
    assert not doc.dirty and doc.revision == 0
    s = doc.begin_stroke("brush", SKIN, 5)
    b1 = s.add_point(10, 10)
    b2 = s.add_point(20, 10)
    assert seen == [b1, b2] and doc.dirty and doc.can_undo
    assert s.end() == (min(b1[0], b2[0]), min(b1[1], b2[1]), max(b1[2], b2[2]), max(b1[3], b2[3]))
    assert doc.history == ["Brush (Skin)"] and doc.history_index == 1 and hist == [1]
    doc.mark_clean()
    assert not doc.dirty
    doc.fill_polygon([(0, 0), (10, 0), (0, 10)], HAIR, name="Triangle")
    assert doc.dirty and doc.history == ["Brush (Skin)", "Triangle"]
    doc.undo()
    assert not doc.dirty and doc.can_redo
    doc.undo()
    assert doc.dirty
    rev = doc.revision
    doc.stroke([(3, 3)], 3, CLOTH)  # discards the redo tail, and with it the saved state
    assert doc.history == ["Brush (Cloth)"] and not doc.can_redo and doc.dirty and doc.revision == rev + 1
    doc.undo()
    assert doc.dirty  # the saved state is gone for good
    n = len(seen)
    assert doc.stroke([(-50, -50)], 3, SKIN) is None  # nothing changed: no step, no call
    assert len(seen) == n and doc.history_index == 0
    doc.remove_listener(seen.append)
    doc.redo()
    assert len(seen) == n


def test_an_active_stroke_is_ended_by_other_operations():
    doc = MaskDocument(np.zeros((H, W), np.uint8))
    s = doc.begin_stroke("brush", SKIN, 5)
    s.add_point(10, 10)
    doc.undo()  # ends the stroke (one step) and undoes it
    assert not s.active and not doc.labels.any() and doc.can_redo
    assert s.add_point(30, 30) is None and not doc.labels.any()  # a drag after Ctrl+Z: ignored
    assert s.end() is not None and doc.history_index == 0  # ending again changes nothing
    with doc.begin_stroke("brush", HAIR, 3) as s2:
        s2.add_point(1, 1)
    assert doc.history == ["Brush (Hair)"]


def test_undo_steps_store_only_the_changed_region_and_stay_small():
    doc = MaskDocument(np.zeros((512, 512), np.uint8))
    rng = np.random.default_rng(0)
    for k in range(1000):
        x, y = rng.uniform(10, 500, 2)
        doc.stroke([(x, y), (x + 3, y + 2)], 8, 1 + k % 18)
    assert doc.history_index == 1000
    held = 0
    for step in doc._steps:
        for patch in (step.old, step.new):
            # own small buffers: not views that keep a larger array alive
            assert patch.base is None or patch.base.nbytes == patch.nbytes
            held += patch.nbytes
        assert step.old.shape == step.new.shape and step.old.size <= 14 * 14
    # two ~11x13 patches per step; a full copy per step would be 512 KiB each (500 MB total)
    assert held < 1000 * 400
    assert doc.history_nbytes < 1000 * 600


def test_memory_budget_drops_the_oldest_steps():
    doc = MaskDocument(np.zeros((H, W), np.uint8), memory_budget_bytes=4000)
    states = [doc.labels.copy()]
    for k in range(40):
        doc.stroke([(k % W + 0.5, (3 * k) % H + 0.5)], 6, 1 + k % 18)
        states.append(doc.labels.copy())
    assert doc.history_nbytes <= 4000 and 1 < len(doc.history) < 40
    kept = doc.history_index
    for i in range(kept):
        doc.undo()
        assert doc.labels.tobytes() == states[40 - i - 1].tobytes()
    assert not doc.can_undo and doc.dirty  # the loaded state is out of reach now


def test_set_labels_is_one_undoable_step():
    rng = np.random.default_rng(1)
    a, b = random_map(rng), random_map(rng)
    doc = MaskDocument(a)
    assert doc.set_labels(b, name="Template") == changed_bbox(a, b)
    np.testing.assert_array_equal(doc.labels, b)
    assert doc.history == ["Template"]
    doc.undo()
    np.testing.assert_array_equal(doc.labels, a)
    assert doc.set_labels(a) is None
    assert doc.class_counts().sum() == H * W
