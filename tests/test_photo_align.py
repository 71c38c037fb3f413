"""Face finding and alignment on synthetic phone photos (maskstudio.photo.align)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

import photo_fixtures as pf
from maskstudio.errors import FaceError, MaskFileError, MaskStudioError
from maskstudio.photo.align import (Alignment, _compose, align_face, crop_landmarks, detect_faces,
                                    similarity_lstsq, warp_crop)
from maskstudio.photo.landmarks import MEAN_LANDMARKS_512, LandmarkError, landmarks_from_labels
from maskstudio.io.images import read_rgb_full


@pytest.fixture(scope="module")
def parser():
    import torch

    from maskstudio.settings import SHIPPED_CHECKPOINTS
    from maskstudio.training.common import load_parser

    torch.set_num_threads(2)
    return load_parser(SHIPPED_CHECKPOINTS / "face_parser.safetensors")


def test_similarity_lstsq_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 500, size=(5, 2))
    a = math.radians(17.0)
    m = 0.7 * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    dst = src @ m.T + [31.0, -12.0]
    fit = similarity_lstsq(src, dst)
    np.testing.assert_allclose(fit[:, :2], m, atol=1e-9)
    np.testing.assert_allclose(fit[:, 2], [31.0, -12.0], atol=1e-7)


def test_landmarks_of_the_sample_masks_are_near_the_training_means():
    for i in (1, 2, 3):
        _, lab = pf.gallery_face(i)
        lm = landmarks_from_labels(lab)
        assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # image-left first
        assert np.abs(lm - MEAN_LANDMARKS_512).max() < 40


def test_landmarks_are_found_by_position_even_with_swapped_eye_labels():
    _, lab = pf.gallery_face(1)
    swapped = lab.copy()
    swapped[lab == 4], swapped[lab == 5] = 5, 4
    np.testing.assert_allclose(landmarks_from_labels(swapped), landmarks_from_labels(lab))


def test_one_eye_is_a_landmark_error():
    _, lab = pf.gallery_face(1)
    one = lab.copy()
    one[lab == 4] = 1
    with pytest.raises(LandmarkError, match="eye"):
        landmarks_from_labels(one)
    assert issubclass(LandmarkError, FaceError) and issubclass(FaceError, MaskStudioError)


def _eye_errors(crop, lab, parser, rng, n):
    """Max eye distance (512² px): photo -> recovered crop vs aligning the crop itself."""
    eyes = landmarks_from_labels(lab)[:2]
    ref = align_face(crop, parser).crop_from_photo
    errs = []
    for _ in range(n):
        photo, photo_from_crop = pf.synthetic_photo(crop, rng)
        al = align_face(photo, parser)
        comp = _compose(al.crop_from_photo, photo_from_crop)
        errs.append(float(np.hypot(*(pf.apply(comp, eyes) - pf.apply(ref, eyes)).T).max()))
    return errs


def test_recovered_transform_undoes_the_known_one_on_generated_faces(parser):
    rng = np.random.default_rng(1)
    errs = []
    for i in (1, 4):
        crop, lab = pf.gallery_face(i)
        errs += _eye_errors(crop, lab, parser, rng, 3)
    assert max(errs) < 4.0, errs


def test_recovered_transform_undoes_the_known_one_on_real_faces(parser, shared_data):
    rng = np.random.default_rng(2)
    errs = []
    for stem in pf.real_stems(4):
        crop, lab = pf.real_face(stem)
        errs += _eye_errors(crop, lab, parser, rng, 2)
    assert np.median(errs) < 2.5 and max(errs) < 5.0, errs


def test_alignment_json_round_trip_and_crop_size(parser):
    crop, _ = pf.gallery_face(2)
    photo, _ = pf.synthetic_photo(crop, np.random.default_rng(3), angle_deg=12, scale=0.8)
    al = align_face(photo, parser, size=256)
    back = Alignment.from_json(al.to_json())
    np.testing.assert_allclose(back.crop_from_photo, al.crop_from_photo)
    assert back.photo_size == (photo.shape[1], photo.shape[0]) and back.crop_size == 256
    assert warp_crop(photo, al.crop_from_photo, 256).shape == (256, 256, 3)
    big = al.resized(512)
    # the same photo point lands on "the same" place: crop landmarks scale with the crop
    pts = pf.apply(big.crop_from_photo, al.landmarks)
    np.testing.assert_allclose(pts, (pf.apply(al.crop_from_photo, al.landmarks) + 0.5) * 2 - 0.5, atol=1e-9)
    assert abs(al.angle_deg - 12) < 3


def test_exif_rotated_jpeg_is_read_upright_and_aligned(parser, tmp_path):
    crop, lab = pf.gallery_face(3)
    photo, photo_from_crop = pf.synthetic_photo(crop, np.random.default_rng(4), angle_deg=-8, scale=0.7)
    # store it as a camera does: pixels rotated, EXIF orientation 6 (rotate 90° CW to display)
    stored = np.ascontiguousarray(np.rot90(photo, 1))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, quality=95, exif=exif.tobytes())
    upright = read_rgb_full(path)
    assert upright.shape == photo.shape
    assert np.abs(upright.astype(int) - photo.astype(int)).mean() < 3
    al = align_face(upright, parser)
    eyes = landmarks_from_labels(lab)[:2]
    ref = align_face(crop, parser).crop_from_photo
    got = pf.apply(_compose(al.crop_from_photo, photo_from_crop), eyes)
    assert np.hypot(*(got - pf.apply(ref, eyes)).T).max() < 4.0


def test_no_face_is_a_clear_error(parser, tmp_path):
    rng = np.random.default_rng(5)
    from maskstudio.bench.photo_align import synthetic_photo

    blank, _ = synthetic_photo(np.full((512, 512, 3), 128, np.uint8), rng)
    with pytest.raises(FaceError, match=r"^landscape\.jpg: no face found"):
        align_face(blank, parser, name="landscape.jpg")


def test_tiny_face_and_tiny_photo_are_clear_errors(parser):
    crop, _ = pf.gallery_face(1)
    photo, _ = pf.synthetic_photo(crop, np.random.default_rng(6), size_wh=(640, 480), angle_deg=0, scale=0.15)
    with pytest.raises(FaceError, match="too small|no face found"):
        align_face(photo, parser, name="tiny.jpg")
    with pytest.raises(FaceError, match="too small"):
        align_face(np.zeros((40, 60, 3), np.uint8), parser, name="icon.png")


def test_face_index_out_of_range_names_the_count(parser):
    crop, _ = pf.gallery_face(1)
    photo, _ = pf.synthetic_photo(crop, np.random.default_rng(7), angle_deg=0, scale=0.6)
    with pytest.raises(FaceError, match=r"face 5 asked for, but 1 face\(s\) found"):
        align_face(photo, parser, face=5)


def test_two_faces_largest_first_and_pickable(parser):
    a, _ = pf.gallery_face(1)
    b, _ = pf.gallery_face(5)
    rng = np.random.default_rng(8)
    canvas = pf.synthetic_photo(a, rng, size_wh=(1400, 700), angle_deg=0, scale=0.5)[0]
    # a second, larger face on the right half
    import cv2

    big = cv2.resize(b, (560, 560), interpolation=cv2.INTER_AREA)
    canvas[70:630, 780:1340] = big
    faces = detect_faces(canvas)
    assert len(faces) >= 2 and faces[0].area >= faces[1].area
    assert faces[0].centre[0] > 700 and faces[1].centre[0] < 700
    right = align_face(canvas, parser, face=0, faces=faces)
    left = align_face(canvas, parser, face=1, faces=faces)
    assert right.landmarks[:, 0].min() > 700 and left.landmarks[:, 0].max() < 700


@pytest.mark.parametrize("mode", ["RGBA", "L", "CMYK", "I;16"])
def test_read_photo_converts_modes(tmp_path, mode):
    crop, _ = pf.gallery_face(1)
    im = Image.fromarray(crop)
    if mode == "RGBA":
        im = im.convert("RGBA")
        path = tmp_path / "a.png"
    elif mode == "L":
        im = im.convert("L")
        path = tmp_path / "a.png"
    elif mode == "CMYK":
        im = im.convert("CMYK")
        path = tmp_path / "a.tiff"
    else:
        im = Image.fromarray((np.asarray(im.convert("L")).astype(np.uint16) * 257))
        path = tmp_path / "a.png"
    im.save(path)
    rgb = read_rgb_full(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (512, 512, 3)
    grey = np.asarray(Image.fromarray(crop).convert("L"), np.float64)
    assert np.abs(rgb.mean(2) - grey).mean() < 25


def test_read_photo_errors_name_the_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8not really a jpeg")
    with pytest.raises(MaskFileError, match="broken.jpg"):
        read_rgb_full(bad)
    with pytest.raises(MaskFileError, match="no such file"):
        read_rgb_full(tmp_path / "missing.jpg")
    Image.new("RGB", (300, 200)).save(tmp_path / "big.png")
    with pytest.raises(MaskFileError, match="big.png: image is 300x200"):
        read_rgb_full(tmp_path / "big.png", max_pixels=10_000)


def test_large_photo_is_detected_on_a_downscaled_copy(parser):
    crop, _ = pf.gallery_face(2)
    photo, photo_from_crop = pf.synthetic_photo(crop, np.random.default_rng(9), size_wh=(4000, 3000),
                                                angle_deg=5, scale=1.1)
    al = align_face(photo, parser)
    assert al.photo_size == (4000, 3000)
    lm_crop = crop_landmarks(512)
    # the crop's landmarks land near the photo's face
    centre = pf.apply(photo_from_crop, lm_crop).mean(0)
    assert np.hypot(*(al.landmarks.mean(0) - centre)) < 30
