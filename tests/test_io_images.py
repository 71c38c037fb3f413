"""maskstudio.io.images (the one RGB reader, PNG writing, sibling masks) and io.latents."""
from __future__ import annotations

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
