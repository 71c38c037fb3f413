"""Selection tools of the mask document: rectangle / ellipse selection moved or copied (one undo
step each), and the class picker. Headless (no Qt)."""
from __future__ import annotations

import numpy as np
import pytest

from maskstudio import labels as L
from maskstudio.mask import MaskDocument, selection_footprint

SKIN, L_EYE, R_EYE, HAIR = 1, 4, 5, 13


def face() -> np.ndarray:
    """64x64: background, a skin block, a left eye (subject's left = image right) and a right eye."""
    m = np.zeros((64, 64), np.uint8)
    m[8:56, 8:56] = SKIN
    m[20:24, 40:46] = L_EYE      # image right
    m[20:24, 18:24] = R_EYE      # image left, the exact column mirror of the left eye
    return m


def test_selection_footprints_follow_pixel_centres():
    bbox, mask = selection_footprint("rect", 2.4, 3.6, 5.5, 6.0, (10, 10))
    # centres 2.5, 3.5, 4.5 in x; 4.5, 5.5 in y
    assert bbox == (4, 2, 6, 5) and mask.all()
    bbox2, _ = selection_footprint("rect", 5.5, 6.0, 2.4, 3.6, (10, 10))   # corners in any order
    assert bbox2 == bbox
    eb, em = selection_footprint("ellipse", 0, 0, 8, 8, (10, 10))
    assert eb == (0, 0, 8, 8) and em.sum() < 64 and np.array_equal(em, em[::-1, ::-1]) and em[4, 4]
    assert not em[0, 0]
    assert selection_footprint("rect", 3.1, 3.1, 3.4, 9, (10, 10)) == (None, None)   # no centre inside
    assert selection_footprint("rect", -5, -5, 100, 100, (10, 10))[0] == (0, 0, 10, 10)   # clipped
    with pytest.raises(ValueError, match="unknown selection shape"):
        selection_footprint("lasso", 0, 0, 1, 1, (10, 10))


def test_move_an_eye_is_one_undo_step():
    start = face()
    doc = MaskDocument(start)
    # a loose box around the left eye: the skin inside it is transparent (not carried along)
    bbox = doc.move_selection("rect", (37, 16, 50, 28), 3, 5)
    expect = start.copy()
    expect[20:24, 40:46] = SKIN
    expect[25:29, 43:49] = L_EYE
    assert np.array_equal(doc.labels, expect)
    assert bbox == (20, 40, 29, 49)
    assert doc.history == ["Move selection"] and doc.dirty
    assert doc.undo() == bbox
    assert np.array_equal(doc.labels, start) and not doc.dirty
    doc.redo()
    assert np.array_equal(doc.labels, expect)


def test_copy_keeps_the_source_and_ellipse_selects_inside():
    start = face()
    doc = MaskDocument(start)
    doc.move_selection("ellipse", (38, 17, 48, 27), 0, 12, copy=True)
    assert (doc.labels[20:24, 40:46] == L_EYE).all()
    assert (doc.labels[32:36, 40:46] == L_EYE).all()
    assert doc.history == ["Copy selection"]
    assert np.count_nonzero(doc.labels == L_EYE) == 2 * 24


def test_explicit_fill_class_and_edges():
    start = face()
    doc = MaskDocument(start)
    doc.move_selection("rect", (40, 20, 46, 24), 0, -100, fill_cls=HAIR)   # moved off the image: dropped
    assert (doc.labels[20:24, 40:46] == HAIR).all() and not (doc.labels == L_EYE).any()
    assert doc.move_selection("rect", (0, 0, 0, 0), 3, 3) is None           # empty selection
    assert doc.move_selection("rect", (37, 16, 50, 28), 0.2, -0.3) is None  # rounds to no move
    assert doc.history == ["Move selection"]


def test_lock_is_respected_on_both_ends():
    start = face()
    start[30:34, 40:46] = HAIR
    doc = MaskDocument(start)
    doc.locked = {HAIR}
    doc.move_selection("rect", (37, 16, 50, 28), 0, 12)   # the eye lands on locked hair
    assert (doc.labels[30:34, 40:46] == HAIR).all()
    assert (doc.labels[20:24, 40:46] == SKIN).all()      # the eye itself was lifted
    doc2 = MaskDocument(start)
    doc2.locked = {L_EYE}
    assert doc2.move_selection("rect", (37, 16, 50, 28), 0, 5) is None     # a locked part stays


def test_mirror_moves_the_other_eye_the_mirrored_way():
    start = face()
    assert np.array_equal(L.flip_labels(start), start)    # symmetric start
    doc = MaskDocument(start)
    doc.mirror = True
    doc.move_selection("rect", (37, 16, 50, 28), 3, 2)    # subject's left eye: right and down
    out = np.array(doc.labels)
    assert np.array_equal(L.flip_labels(out), out)        # still symmetric
    assert (out[22:26, 43:49] == L_EYE).all() and (out[22:26, 15:21] == R_EYE).all()
    assert doc.history == ["Move selection"]
    doc.undo()
    assert np.array_equal(doc.labels, start)


def test_lifted_is_what_moves():
    doc = MaskDocument(face())
    bbox, mask = doc.lifted("rect", (37, 16, 50, 28))
    assert bbox == (20, 40, 24, 46) and mask.all()
    assert doc.lifted("rect", (10, 40, 14, 44)) == (None, None)   # only skin: nothing to carry


def test_pick_reads_the_class_and_changes_nothing():
    doc = MaskDocument(face())
    assert doc.pick(42.5, 21.0) == L_EYE and doc.pick(0, 0) == 0
    assert doc.history == [] and doc.revision == 0
    with pytest.raises(ValueError, match="outside"):
        doc.pick(64, 3)
