"""Local re-render, paste-back and the photo CLI (align, render --photo) end to end."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

import photo_fixtures as pf
from maskstudio.cli.main import main
from maskstudio.errors import RenderError
from maskstudio.photo.blend import edit_region, feather_alpha, local_rerender
from maskstudio.photo.paste import edge_feather, paste_back


@pytest.fixture(scope="module")
def engine():
    import torch

    from maskstudio.engine.pipeline import Engine
    from maskstudio.settings import Settings

    torch.set_num_threads(2)
    eng = Engine(Settings.from_env(device="cpu"), start_worker=False)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def parser(engine):
    from maskstudio.photo.edit import parser_module

    return parser_module(engine.models)


def _brow_edit(labels: np.ndarray) -> np.ndarray:
    """Thicker brows: grow both brow classes 5 px into the skin."""
    e = labels.copy()
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (11, 11))
    for c in (6, 7):
        grown = cv2.dilate((labels == c).astype(np.uint8), k) > 0
        e[grown & (labels == 1)] = c
    assert (e != labels).sum() > 200
    return e


def test_feather_alpha_is_one_on_changes_and_zero_outside_the_region():
    parsed = np.zeros((64, 64), np.uint8)
    edited = parsed.copy()
    edited[30:34, 20:40] = 13
    changed, region = edit_region(parsed, edited, 6)
    a = feather_alpha(changed, 6)
    assert (a[changed] == 1).all()
    assert (a[~region] == 0).all()
    assert 0 < a[region & ~changed].mean() < 1
    with pytest.raises(RenderError, match="differ in size"):
        edit_region(parsed, edited[:10], 3)


@pytest.mark.parametrize("method", ["feather", "poisson"])
def test_local_rerender_changes_only_the_dilated_region(method):
    crop, lab = pf.gallery_face(1)
    other, _ = pf.gallery_face(2)  # stands in for a DMN render: every pixel differs
    edited = _brow_edit(lab)
    lb = local_rerender(crop, lab, edited, other, margin_px=10, method=method)
    diff = (lb.image != crop).any(2)
    assert diff.any() and not (diff & ~lb.region).any()
    none = local_rerender(crop, lab, lab, other, method=method)
    assert none.empty and np.array_equal(none.image, crop)


def test_edge_feather_and_paste_back_leave_pixels_outside_bit_identical():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, size=(700, 900, 3), dtype=np.uint8)
    m = np.array([[0.9, 0.2, -300.0], [-0.2, 0.9, -60.0]])  # crop_from_photo
    crop = np.full((256, 256, 3), 200, np.uint8)
    f = edge_feather(256, 8)
    assert f[0].max() == 0 and f[128, 128] == 1
    out = paste_back(photo, crop, m)
    footprint = cv2.warpAffine(np.ones((256, 256), np.uint8), m, (900, 700),
                               flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP) > 0
    grown = cv2.dilate(footprint.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    changed = (out != photo).any(2)
    assert changed.sum() > 0.5 * footprint.sum()
    assert not (changed & ~grown).any()
    # zero alpha: nothing changes at all
    assert np.array_equal(paste_back(photo, crop, m, np.zeros((256, 256), np.float32)), photo)


def _photo_of(crop, seed=0, **kw):
    return pf.synthetic_photo(crop, np.random.default_rng(seed), jpeg=True, **kw)


def test_unedited_round_trip_returns_the_photo(engine, parser, tmp_path):
    from maskstudio.photo.edit import open_photo, render_edit

    crop, _ = pf.gallery_face(4)
    photo, _, data = _photo_of(crop, 1, angle_deg=-14, scale=0.7)
    path = tmp_path / "phone.jpg"
    path.write_bytes(data)
    src = open_photo(path, parser)
    assert np.array_equal(src.image, photo)
    res = render_edit(engine, src, src.parsed.copy())
    assert np.array_equal(res.full, photo)
    assert engine.stage_counts["face"] == 0  # nothing was re-synthesised


def test_an_edit_changes_only_pixels_inside_the_dilated_edited_region(engine, parser, tmp_path):
    from maskstudio.photo.edit import open_photo, render_edit

    crop, _ = pf.gallery_face(3)
    photo, _, data = _photo_of(crop, 2, angle_deg=9, scale=0.9)
    path = tmp_path / "phone.jpg"
    path.write_bytes(data)
    src = open_photo(path, parser)
    edited = _brow_edit(src.parsed)
    res = render_edit(engine, src, edited)
    crop_changed = (res.crop != src.crop).any(2)
    _, region = edit_region(src.parsed, edited, 12)
    assert crop_changed.any() and not (crop_changed & ~region).any()
    # in the photo: only inside the region warped back (plus 2 px of interpolation)
    m = src.alignment.crop_from_photo
    h, w = photo.shape[:2]
    back = cv2.warpAffine(region.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    back = cv2.dilate(back, np.ones((5, 5), np.uint8)) > 0
    changed = (res.full != photo).any(2)
    assert changed.sum() > 100 and not (changed & ~back).any()
    # whole-face: the crop's whole footprint changes, the rest of the photo does not
    whole = render_edit(engine, src, edited, whole_face=True)
    wchanged = (whole.full != photo).any(2)
    foot = cv2.warpAffine(np.ones((512, 512), np.uint8), m, (w, h), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    foot = cv2.dilate(foot, np.ones((5, 5), np.uint8)) > 0
    assert wchanged.sum() > changed.sum() and not (wchanged & ~foot).any()


def test_a_512_crop_opened_as_is_is_edited_locally(engine, parser):
    from maskstudio.photo.edit import render_edit, source_from_crop

    crop, lab = pf.gallery_face(5)
    src = source_from_crop(crop, parsed=lab)
    edited = _brow_edit(lab)
    res = render_edit(engine, src, edited)
    assert res.full.shape == crop.shape
    _, region = edit_region(lab, edited, 12)
    ch = (res.full != crop).any(2)
    assert ch.any() and not (ch & ~region).any()


def test_cli_align_then_parse_then_render_round_trip(tmp_path, capsys):
    crop, _ = pf.gallery_face(6)
    photo, photo_from_crop, data = _photo_of(crop, 3, size_wh=(1200, 900), angle_deg=15, scale=0.6)
    p = tmp_path / "phone.jpg"
    p.write_bytes(data)
    out_crop, meta = tmp_path / "crop.png", tmp_path / "meta.json"
    assert main(["align", str(p), "-o", str(out_crop), "--json", str(meta)]) == 0
    d = json.loads(meta.read_text())
    assert d["photo_size"] == [1200, 900] and d["crop_size"] == 512
    assert np.asarray(d["crop_from_photo"]).shape == (2, 3) and len(d["face_box"]) == 4
    assert set(d["landmarks"]) == {"eye_image_left", "eye_image_right", "nose", "mouth_image_left",
                                   "mouth_image_right"}
    assert Image.open(out_crop).size == (512, 512)
    masks = tmp_path / "masks"
    assert main(["parse", str(out_crop), "-o", str(masks)]) == 0
    mask = masks / "crop.png"
    out = tmp_path / "out.png"
    assert main(["render", "--photo", str(p), "--mask", str(mask), "-o", str(out)]) == 0
    assert np.array_equal(np.asarray(Image.open(out)), photo)
    # an edit through the CLI changes the photo near the face only
    lab = np.asarray(Image.open(mask))
    Image.fromarray(_brow_edit(lab)).save(tmp_path / "edited.png")
    out2, crop2 = tmp_path / "out2.png", tmp_path / "crop2.png"
    assert main(["render", "--photo", str(p), "--mask", str(tmp_path / "edited.png"), "-o", str(out2),
                 "--save-crop", str(crop2)]) == 0
    got = np.asarray(Image.open(out2))
    assert got.shape == photo.shape and (got != photo).any()
    assert Image.open(crop2).size == (512, 512)
    capsys.readouterr()


def test_cli_errors_are_one_line(tmp_path, capsys):
    from maskstudio.bench.photo_align import synthetic_photo

    blank, _, data = synthetic_photo(np.full((512, 512, 3), 90, np.uint8), np.random.default_rng(4), jpeg=True)
    p = tmp_path / "wall.jpg"
    p.write_bytes(data)
    assert main(["align", str(p), "-o", str(tmp_path / "c.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "wall.jpg: no face found" in err[0]
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "m.png")
    assert main(["render", "--mask", str(tmp_path / "m.png"), "-o", str(tmp_path / "o.png")]) == 2
    assert "--exemplar is required" in capsys.readouterr().err
    assert main(["render", "--photo", str(p), "--mask", str(tmp_path / "m.png"), "-o", str(tmp_path / "o.png"),
                 "--edit", "age=1"]) == 2
    assert "not supported" in capsys.readouterr().err


def test_photo_source_rebuilds_from_what_a_project_stores(parser, tmp_path):
    from maskstudio.photo.edit import PhotoSource, open_photo

    crop, _ = pf.gallery_face(2)
    photo, _, data = _photo_of(crop, 5, angle_deg=6, scale=0.8)
    path = tmp_path / "p.jpg"
    path.write_bytes(data)
    src = open_photo(path, parser)
    assert src.file_bytes == data
    back = PhotoSource.from_saved(src.file_bytes, src.name, json.loads(json.dumps(src.alignment.to_json())),
                                  src.parsed)
    assert np.array_equal(back.image, src.image) and np.array_equal(back.parsed, src.parsed)
    assert np.abs(back.crop.astype(int) - src.crop.astype(int)).max() <= 1
    with pytest.raises(RenderError, match="parsed mask"):
        PhotoSource.from_saved(src.file_bytes, src.name, src.alignment.to_json(), src.parsed[:10])
