"""maskstudio.io.images (the one RGB reader, PNG writing, sibling masks) and io.latents."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from maskstudio.errors import LatentFileError, MaskFileError
from maskstudio.io.images import (
    encode_png,
    is_exemplar_image,
    is_mask_sibling,
    read_rgb,
    read_rgb_full,
    sibling_mask,
    write_png,
)
from maskstudio.io.latents import write_latent


def _rgb(h=12, w=20, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_sibling_masks_both_spellings(tmp_path):
    a, b, c = tmp_path / "a.jpg", tmp_path / "b.png", tmp_path / "c.png"
    for p in (a, b, c):
        Image.fromarray(_rgb()).save(p)
    (tmp_path / "a.mask.png").write_bytes(encode_png(np.zeros((4, 4), np.uint8)))
    (tmp_path / "b_mask.png").write_bytes(encode_png(np.zeros((4, 4), np.uint8)))
    (tmp_path / "party_mask.png").write_bytes(encode_png(np.zeros((4, 4), np.uint8)))
    assert sibling_mask(a) == tmp_path / "a.mask.png"
    assert sibling_mask(b) == tmp_path / "b_mask.png"
    assert sibling_mask(c) is None
    # both spellings are masks, not exemplars; a lone *_mask.png (no image beside) is an image
    assert is_mask_sibling(tmp_path / "a.mask.png") and is_mask_sibling(tmp_path / "b_mask.png")
    assert not is_mask_sibling(tmp_path / "party_mask.png")
    listed = sorted(p.name for p in tmp_path.iterdir() if is_exemplar_image(p))
    assert listed == ["a.jpg", "b.png", "c.png", "party_mask.png"]


def test_gallery_uses_the_same_sibling_rule(tmp_path):
    pytest.importorskip("PySide6")
    from maskstudio.ui.gallery_dock import scan_folder

    Image.fromarray(_rgb()).save(tmp_path / "face.png")
    (tmp_path / "face_mask.png").write_bytes(encode_png(np.zeros((12, 20), np.uint8)))
    entries = scan_folder(tmp_path)
    assert [(e.name, e.mask_path) for e in entries] == [("face", tmp_path / "face_mask.png")]


def test_read_rgb_modes_and_resize(tmp_path):
    rgb = _rgb()
    Image.fromarray(rgb).save(tmp_path / "x.png")
    got = read_rgb(tmp_path / "x.png")
    assert got.dtype == np.uint8 and got.flags.writeable
    np.testing.assert_array_equal(got, rgb)
    Image.fromarray(rgb[..., 0]).save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_rgb(tmp_path / "g.png"), np.repeat(rgb[..., :1], 3, axis=2))
    assert read_rgb(tmp_path / "x.png", size=8).shape == (8, 8, 3)
    assert read_rgb(tmp_path / "x.png", size=32).shape == (32, 32, 3)


@pytest.mark.parametrize("kind", ["missing", "dir", "text", "truncated"])
def test_read_rgb_errors_name_the_file(tmp_path, kind):
    p = tmp_path / "bad.png"
    if kind == "dir":
        p.mkdir()
    elif kind == "text":
        p.write_text("hello")
    elif kind == "truncated":
        Image.fromarray(_rgb(64, 64)).save(p)
        p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(MaskFileError, match="bad.png"):
        read_rgb(p)


def test_write_png_atomic_and_errors(tmp_path):
    rgb = _rgb()
    out = write_png(tmp_path / "o.png", rgb)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), rgb)
    out = write_png(tmp_path / "sub" / "f.png", rgb[..., 0], fast=True, parents=True)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), rgb[..., 0])
    with pytest.raises(MaskFileError, match="does not exist"):
        write_png(tmp_path / "nope" / "o.png", rgb)
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_write_latent_npy_pt_and_shape(tmp_path):
    lat = np.random.default_rng(0).standard_normal((1, 18, 512)).astype(np.float32)
    p = write_latent(tmp_path / "w.npy", lat)
    np.testing.assert_array_equal(np.load(p), lat)
    p = write_latent(tmp_path / "w.pt", lat[0])
    assert torch.equal(torch.load(p, weights_only=True), torch.from_numpy(lat))
    assert write_latent(tmp_path / "w.bin", lat).name == "w.npy"
    assert write_latent(tmp_path / "d" / "w.npy", lat, parents=True).is_file()
    with pytest.raises(LatentFileError, match=r"bad.npy: latent must be \[1, n_latent, 512\]"):
        write_latent(tmp_path / "bad.npy", np.zeros((3, 4)))


# --------------------------------------------------------------------------- hostile / big inputs
def _chunk(kind: bytes, data: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(w: int, h: int, bit_depth: int = 8, color_type: int = 2, extra: bytes = b"") -> bytes:
    """A PNG whose IHDR claims ``w`` x ``h`` (the pixel data is a few bytes)."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", zlib.compress(b"\0" * 16))
            + _chunk(b"IEND", b""))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_honoured(tmp_path, orientation):
    from PIL import ImageOps

    a = np.zeros((20, 40, 3), np.uint8)
    a[:, :10] = 255
    a[:5] = (0, 0, 255)
    im = Image.fromarray(a)
    ex = im.getexif()
    ex[0x0112] = orientation
    p = tmp_path / "rot.png"
    im.save(p, exif=ex.tobytes())
    with Image.open(p) as ref:
        expect = np.asarray(ImageOps.exif_transpose(ref).convert("RGB"))
    got = read_rgb(p)
    np.testing.assert_array_equal(got, expect)
    from maskstudio.io.images import image_size_hw

    assert image_size_hw(p) == got.shape[:2]


def test_big_photos_shrink_while_decoding_and_full_reads_keep_size(tmp_path):
    from maskstudio.io.images import PHOTO_MAX_SIDE, read_rgb_full

    big = np.random.default_rng(0).integers(0, 256, (600, 5000, 3), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "wide.jpg", quality=90)
    Image.fromarray(big).save(tmp_path / "wide.png")
    for name in ("wide.jpg", "wide.png"):
        got = read_rgb(tmp_path / name)
        assert max(got.shape[:2]) == PHOTO_MAX_SIDE and abs(got.shape[0] / got.shape[1] - 600 / 5000) < 0.01
        assert read_rgb_full(tmp_path / name).shape == (600, 5000, 3)
    assert read_rgb(tmp_path / "wide.png", max_side=100).shape == (12, 100, 3)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "CMYK", "I;16", "1", "I", "F"])
def test_read_rgb_converts_every_mode(tmp_path, mode):
    rgb = _rgb(16, 16)
    im = Image.fromarray(rgb)
    if mode == "I;16":
        im = Image.fromarray((rgb[..., 0].astype(np.uint16) * 257))
    elif mode in ("I", "F"):
        im = Image.fromarray(rgb[..., 0]).convert(mode)
    else:
        im = im.convert(mode)
    p = tmp_path / ("x.tif" if mode in ("CMYK", "I", "F") else "x.png")
    im.save(p)
    got = read_rgb(p)
    assert got.shape == (16, 16, 3) and got.dtype == np.uint8
    if mode in ("I;16", "I", "F", "LA"):
        np.testing.assert_array_equal(got[..., 0], rgb[..., 0] if mode != "LA" else np.asarray(im.convert("L")))


@pytest.mark.parametrize("case", ["png60000", "gif60000", "png1bit30000", "ztxt64mb", "fifo", "devzero",
                                  "zero-size", "truncated"])
def test_hostile_images_are_refused_cleanly(tmp_path, case):
    import os
    import struct
    import zlib

    p = tmp_path / f"{case}.img"
    if case == "png60000":
        p.write_bytes(png_header_only(60000, 60000))
    elif case == "gif60000":
        p.write_bytes(b"GIF89a" + struct.pack("<HH", 60000, 60000) + b"\0\0\0,\0\0\0\0"
                      + struct.pack("<HH", 60000, 60000) + b"\0\x02\x02D\x01\0;")
    elif case == "png1bit30000":
        p.write_bytes(png_header_only(30000, 30000, bit_depth=1, color_type=0))
    elif case == "ztxt64mb":
        p.write_bytes(png_header_only(4, 4, extra=_chunk(b"zTXt", b"k\0\0" + zlib.compress(b"a" * (64 << 20)))))
    elif case == "fifo":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(p)
    elif case == "devzero":
        if not Path("/dev/zero").exists():
            pytest.skip("no /dev/zero")
        p = Path("/dev/zero")
    elif case == "zero-size":
        p.write_bytes(png_header_only(0, 10))
    elif case == "truncated":
        Image.fromarray(_rgb(256, 256)).save(p, format="PNG")
        p.write_bytes(p.read_bytes()[:4000])
    with pytest.raises(MaskFileError, match=str(p.name)) as ei:
        read_rgb(p)
    msg = str(ei.value)
    assert "Traceback" not in msg and "\n" not in msg
    if case.startswith(("png6", "gif", "png1")):
        assert "largest accepted" in msg



def test_transparency_is_composited_on_white_and_bytes_read_like_the_file(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:4, :, :3] = (200, 10, 10)
    rgba[:4, :, 3] = 255          # top half opaque red, bottom half fully transparent black
    p = tmp_path / "cutout.png"
    Image.fromarray(rgba, "RGBA").save(p)
    got = read_rgb(p)
    np.testing.assert_array_equal(got[:4], np.broadcast_to(np.array([200, 10, 10], np.uint8), (4, 8, 3)))
    assert (got[4:] == 255).all()
    np.testing.assert_array_equal(read_rgb_full(p, data=p.read_bytes()), got)
    with pytest.raises(MaskFileError, match="named.png"):
        read_rgb_full("named.png", data=b"not an image at all")
