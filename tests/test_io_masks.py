"""Mask files: lossless round trips, palette snapping, part folders, resizing, bad files."""
from __future__ import annotations

import os
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from maskstudio import labels as L
from maskstudio.errors import MaskFileError
from maskstudio.io.masks import (
    SNAP_DISTANCE,
    WORKING_SIZE,
    colors_to_labels,
    read_color_png,
    read_label_png,
    read_mask,
    read_part_folder,
    resize_nearest,
    write_color_png,
    write_label_png,
    write_part_folder,
)


def random_labels(shape=(WORKING_SIZE, WORKING_SIZE), seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, L.NUM_CLASSES, (shape[0] // 4 + 1, shape[1] // 4 + 1))
    lab = np.kron(small, np.ones((4, 4), np.int64))[: shape[0], : shape[1]].astype(np.uint8)
    n = min(L.NUM_CLASSES, shape[0])
    lab[:n, 0] = np.arange(n)  # every class present (when there is room)
    return lab


def raises_file_error(path, *words):
    """pytest.raises(MaskFileError) whose message starts with the path and contains ``words``."""
    pattern = "^" + re.escape(os.fspath(path)) + ": " + "".join(f"(?=.*{re.escape(w)})" for w in words)
    return pytest.raises(MaskFileError, match=pattern)


# ----------------------------------------------------------------------------- round trips
def test_label_png_round_trip_mode_l_and_p(tmp_path):
    lab = random_labels()
    for palette, mode in ((False, "L"), (True, "P")):
        f = tmp_path / f"m_{mode}.png"
        write_label_png(f, lab, palette=palette)
        with Image.open(f) as im:
            assert im.mode == mode and im.size == (WORKING_SIZE, WORKING_SIZE)
            np.testing.assert_array_equal(np.asarray(im), lab)  # the raw values are the classes
        m = read_label_png(f)
        np.testing.assert_array_equal(m.labels, lab)
        assert m.labels.dtype == np.uint8 and m.original_size_hw == lab.shape
        assert m.source_format == "label"
        np.testing.assert_array_equal(read_mask(f).labels, lab)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m_L.png", "m_P.png"]  # no temp files left


def test_paletted_png_is_read_by_index_whatever_its_palette(tmp_path):
    lab = random_labels((40, 30))
    im = Image.frombytes("P", (30, 40), lab.tobytes())
    im.putpalette([(7 * i) % 256 for i in range(768)])  # some unrelated palette
    f = tmp_path / "p.png"
    im.save(f)
    m = read_mask(f, resize=False)
    np.testing.assert_array_equal(m.labels, lab)
    assert m.source_format == "label"


def test_color_png_round_trip_and_detection(tmp_path):
    lab = random_labels()
    f = tmp_path / "c.png"
    write_color_png(f, lab)
    with Image.open(f) as im:
        assert im.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(im), L.colorize(lab))
    for reader in (read_color_png, read_mask):
        m = reader(f)
        np.testing.assert_array_equal(m.labels, lab)
        assert m.source_format == "color"


def test_colours_near_the_palette_are_snapped(tmp_path):
    lab = random_labels((64, 64))
    rgb = L.colorize(lab).astype(np.int16)
    rng = np.random.default_rng(1)
    noise = rng.integers(-8, 9, rgb.shape)  # |noise| <= 8 per channel -> distance <= 13.9 < 20
    assert np.sqrt(3 * 8**2) <= SNAP_DISTANCE
    noisy = np.clip(rgb + noise, 0, 255).astype(np.uint8)
    f = tmp_path / "noisy.png"
    Image.fromarray(noisy).save(f)
    np.testing.assert_array_equal(read_color_png(f, resize=False).labels, lab)
    # RGBA: fully transparent pixels are background, opaque ones keep their colour
    rgba = np.dstack([L.colorize(lab), np.full(lab.shape, 255, np.uint8)])
    rgba[:10, :, 3] = 0
    rgba[:10, :, :3] = (255, 0, 255)  # junk colour under full transparency
    f2 = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(f2)
    expected = lab.copy()
    expected[:10] = 0
    np.testing.assert_array_equal(read_mask(f2, resize=False).labels, expected)


def test_foreign_colour_is_an_error_naming_colour_and_pixel(tmp_path):
    rgb = L.colorize(np.full((20, 30), L.index_of("skin"), np.uint8))
    rgb[7, 11] = (10, 120, 240)
    rgb[15, 2] = (10, 120, 240)
    f = tmp_path / "foreign.png"
    Image.fromarray(rgb).save(f)
    for reader in (read_color_png, read_mask):
        with raises_file_error(f, "(10, 120, 240)", "x=11, y=7", "2 pixel(s)") as e:
            reader(f)
        assert "Traceback" not in str(e.value)
    with pytest.raises(MaskFileError, match="not a palette colour"):
        colors_to_labels(rgb)


def test_label_map_saved_as_rgb_is_read_as_labels(tmp_path):
    lab = random_labels((32, 32))
    f = tmp_path / "gray_rgb.png"
    Image.fromarray(np.dstack([lab] * 3)).save(f)
    m = read_mask(f, resize=False)
    assert m.source_format == "label"
    np.testing.assert_array_equal(m.labels, lab)
    np.testing.assert_array_equal(read_label_png(f, resize=False).labels, lab)


# ----------------------------------------------------------------------------- sizes
@pytest.mark.parametrize("shape", [(256, 256), (300, 200), (512, 512), (37, 511), (1, 1)])
def test_any_size_goes_to_working_size_and_back_losslessly(tmp_path, shape):
    lab = random_labels(shape, seed=shape[0])
    src = tmp_path / "small.png"
    write_label_png(src, lab)
    m = read_mask(src)
    assert m.labels.shape == (WORKING_SIZE, WORKING_SIZE) and m.original_size_hw == shape
    for fmt, writer in (("label", write_label_png), ("color", write_color_png)):
        out = tmp_path / f"back_{fmt}.png"
        writer(out, m.labels, m.original_size_hw)
        back = read_mask(out, resize=False)
        assert back.labels.shape == shape
        np.testing.assert_array_equal(back.labels, lab)


def test_nearest_neighbour_downsizing_samples_pixel_centres(tmp_path):
    big = np.kron(random_labels((512, 512), seed=3), np.ones((2, 2), np.uint8))  # 1024, 2x2 blocks
    f = tmp_path / "big.png"
    write_label_png(f, big)
    m = read_mask(f)
    assert m.original_size_hw == (1024, 1024)
    np.testing.assert_array_equal(m.labels, big[1::2, 1::2])
    np.testing.assert_array_equal(m.labels, big[::2, ::2])
    # resize_nearest: destination i takes source floor((i + 0.5) * src / dst)
    src = np.arange(10, dtype=np.uint8)[None, :].repeat(3, 0) % 19
    out = resize_nearest(src, (3, 4))
    np.testing.assert_array_equal(out[0], [src[0, int((i + 0.5) * 10 / 4)] for i in range(4)])


# ----------------------------------------------------------------------------- part folders
def _save_part(folder: Path, image_id: int, part: str, mask: np.ndarray, mode="L"):
    img = Image.fromarray((mask * 255).astype(np.uint8))
    if mode == "RGB":
        img = img.convert("RGB")
    elif mode == "1":
        img = img.convert("1")
    img.save(folder / f"{image_id:05d}_{part}.png")


def test_part_folder_merges_later_classes_over_earlier(tmp_path):
    h, w = 64, 48
    yy, xx = np.mgrid[0:h, 0:w]
    skin = (yy - 32) ** 2 + (xx - 24) ** 2 < 20**2
    hair = yy < 24  # overlaps the skin: hair (13) comes after skin (1) and wins
    l_eye = (np.abs(yy - 30) < 3) & (np.abs(xx - 30) < 4)
    nose = (np.abs(yy - 30) < 6) & (np.abs(xx - 24) < 2)
    _save_part(tmp_path, 7, "skin", skin, "RGB")
    _save_part(tmp_path, 7, "hair", hair, "1")
    _save_part(tmp_path, 7, "l_eye", l_eye)
    _save_part(tmp_path, 7, "nose", nose)
    expected = np.zeros((h, w), np.uint8)
    for cls, m in sorted([(1, skin), (13, hair), (4, l_eye), (2, nose)]):
        expected[m] = cls
    m = read_part_folder(tmp_path, resize=False)
    np.testing.assert_array_equal(m.labels, expected)
    assert m.source_format == "parts" and m.original_size_hw == (h, w)
    big = read_mask(tmp_path)  # a directory reads as a part folder
    assert big.labels.shape == (WORKING_SIZE, WORKING_SIZE)
    np.testing.assert_array_equal(resize_nearest(big.labels, (h, w)), expected)


def test_part_folder_official_layout_ids_and_errors(tmp_path):
    lab = random_labels((32, 32), seed=5)
    for image_id, sub in ((3, "0"), (2001, "1")):  # the official layout: sub-folders by id range
        (tmp_path / sub).mkdir()
        written = write_part_folder(tmp_path / sub, lab, image_id)
        assert all(re.fullmatch(r"\d{5}_[a-z_]+\.png", p.name) for p in written)
    with raises_file_error(tmp_path, "2 faces", "3", "2001"):
        read_part_folder(tmp_path)
    np.testing.assert_array_equal(read_part_folder(tmp_path, 2001, resize=False).labels, lab)
    np.testing.assert_array_equal(read_mask(tmp_path, image_id=3, resize=False).labels, lab)
    with raises_file_error(tmp_path, "00042"):
        read_part_folder(tmp_path, 42)

    empty = tmp_path / "empty"
    empty.mkdir()
    with raises_file_error(empty, "no CelebAMask-HQ part files"):
        read_mask(empty)

    odd = tmp_path / "odd"
    odd.mkdir()
    _save_part(odd, 0, "skin", np.ones((8, 8)))
    _save_part(odd, 0, "beard", np.ones((8, 8)))
    with raises_file_error(odd / "00000_beard.png", "unknown part 'beard'"):
        read_part_folder(odd)

    sizes = tmp_path / "sizes"
    sizes.mkdir()
    _save_part(sizes, 0, "skin", np.ones((8, 8)))
    _save_part(sizes, 0, "hair", np.ones((9, 8)))
    with raises_file_error(sizes / "00000_hair.png", "8x9", "00000_skin.png is 8x8"):
        read_part_folder(sizes)


# ----------------------------------------------------------------------------- bad files
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def huge_png(path: Path, w=20000, h=20000):
    """A valid PNG header claiming w x h 8-bit grey pixels, with a small deflate stream."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    comp = zlib.compressobj()
    row = b"\x00" + bytes(w)
    body = comp.compress(row * 8) + comp.flush(zlib.Z_SYNC_FLUSH)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", body)
                     + _png_chunk(b"IEND", b""))


def test_bad_files_give_a_clear_mask_file_error(tmp_path):
    good = tmp_path / "good.png"
    write_label_png(good, random_labels((64, 64)))
    data = good.read_bytes()

    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(data[: len(data) // 2])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    folder = tmp_path / "folder.png"
    folder.mkdir()
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture\n" * 20)
    missing = tmp_path / "missing.png"
    values = tmp_path / "values.png"
    bad = np.zeros((16, 16), np.uint8)
    bad[3, 5] = 23
    bad[9, 9] = 200
    Image.fromarray(bad).save(values)
    huge = tmp_path / "huge.png"
    huge_png(huge)
    assert huge.stat().st_size < 100_000

    cases = [
        (truncated, ("truncated or corrupt",)),
        (empty, ("empty file (0 bytes)",)),
        (text, ("not an image file",)),
        (missing, ("no such file",)),
        (values, ("value 23 at pixel (x=5, y=3)", "0..18", "2 pixel(s)")),
        (huge, ("20000x20000", "8192x8192")),
    ]
    for path, words in cases:
        for reader in (read_mask, read_label_png):
            with raises_file_error(path, *words):
                reader(path)
    with raises_file_error(folder, "is a directory"):
        read_label_png(folder)
    with raises_file_error(folder, "is a directory"):
        read_color_png(folder)
    with raises_file_error(folder, "no CelebAMask-HQ part files"):
        read_mask(folder)
    with raises_file_error(good, "not a colour PNG"):
        read_color_png(good)
    rgb = tmp_path / "rgb.png"
    write_color_png(rgb, random_labels((16, 16)))
    with raises_file_error(rgb, "not a label PNG"):
        read_label_png(rgb)


def test_writes_are_atomic_and_report_bad_destinations(tmp_path):
    lab = random_labels((16, 16))
    f = tmp_path / "m.png"
    write_label_png(f, lab)
    before = f.read_bytes()
    with raises_file_error(tmp_path / "nope" / "m.png", "does not exist"):
        write_label_png(tmp_path / "nope" / "m.png", lab)
    (tmp_path / "dir.png").mkdir()
    with raises_file_error(tmp_path / "dir.png", "is a directory"):
        write_color_png(tmp_path / "dir.png", lab)
    with pytest.raises(ValueError):
        write_label_png(f, np.full((4, 4), 19))  # a programming error, file untouched
    assert f.read_bytes() == before
    write_color_png(f, lab)  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.png", "m.png"]
    np.testing.assert_array_equal(read_mask(f, resize=False).labels, lab)


# ----------------------------------------------------------------------------- real masks
def test_all_shared_masks_round_trip_label_color_label(shared_data, tmp_path):
    files = sorted((shared_data / "celebamask_pairs" / "masks").glob("*.png"))
    assert len(files) >= 900
    color = tmp_path / "c.png"
    label = tmp_path / "l.png"
    for i, f in enumerate(files):
        m = read_label_png(f, resize=False)  # mode P files: read by index
        write_color_png(color, m.labels)
        c = read_mask(color, resize=False)
        assert c.source_format == "color"
        assert c.labels.tobytes() == m.labels.tobytes(), f.name
        if i % 30 == 0:  # the label writer is format-independent; sample it
            write_label_png(label, c.labels)
            assert read_label_png(label, resize=False).labels.tobytes() == m.labels.tobytes()
