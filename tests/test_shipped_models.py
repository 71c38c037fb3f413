"""The shipped starter weights and sample content: load, render, parse, cards, size budget."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from maskstudio.labels import index_of
from maskstudio.settings import RESOURCES, SHIPPED_CHECKPOINTS

PARSER = SHIPPED_CHECKPOINTS / "face_parser.safetensors"
DMN = SHIPPED_CHECKPOINTS / "dmn_starter.safetensors"
TEMPLATE = RESOURCES / "sample" / "template_mask.png"
GALLERY = RESOURCES / "gallery"


def _gallery_items() -> list[tuple]:
    items = sorted(p for p in GALLERY.glob("*.png") if not p.name.endswith(".mask.png"))
    return [(p, p.with_name(p.stem + ".mask.png")) for p in items]


@pytest.fixture(scope="module")
def parser():
    from maskstudio.training.common import load_parser

    return load_parser(PARSER, "cpu")


@pytest.fixture(scope="module")
def dmn():
    from maskstudio.training.common import load_dmn

    return load_dmn(DMN, "cpu")


def test_shipped_checkpoints_are_fp16_with_cards_and_within_budget():
    total = 0
    for name, arch in (("face_parser", "face_parser"), ("dmn_starter", "maskgan_dmn")):
        st = SHIPPED_CHECKPOINTS / f"{name}.safetensors"
        doc = json.loads((SHIPPED_CHECKPOINTS / f"{name}.json").read_text())
        assert doc["arch"] == arch and doc["dtype"] == "float16"
        card = (SHIPPED_CHECKPOINTS / f"{name}.md").read_text()
        for needle in ("CelebAMask-HQ", "non-commercial", "maskstudio train", "Date"):
            assert needle.lower() in card.lower(), f"{name}.md lacks {needle!r}"
        total += st.stat().st_size
    assert total <= 60 * 1000 * 1000


def test_parser_is_small(parser):
    from maskstudio.models.face_parser import count_parameters

    assert count_parameters(parser) <= 5_000_000


def test_template_mask_is_a_plausible_face():
    from maskstudio.io.masks import read_label_png

    m = read_label_png(TEMPLATE, resize=False).labels
    assert m.shape == (512, 512)
    present = set(np.unique(m).tolist())
    for name in ("background", "skin", "nose", "l_eye", "r_eye", "u_lip", "l_lip", "hair"):
        assert index_of(name) in present, name
    assert (m[:16, :16] == 0).all() and (m[:16, -16:] == 0).all()


def _render(dmn_pair, mask: np.ndarray, ref_mask: np.ndarray, ref_image: np.ndarray, size: int = 256) -> np.ndarray:
    import cv2

    from maskstudio.training.evaluate import render_batch

    G, _ = dmn_pair
    m = cv2.resize(mask, (size, size), interpolation=cv2.INTER_NEAREST)[None]
    rm = cv2.resize(ref_mask, (size, size), interpolation=cv2.INTER_NEAREST)[None]
    ri = cv2.resize(ref_image, (size, size), interpolation=cv2.INTER_AREA)[None]
    return render_batch(G, m, rm, ri)[0]


def test_dmn_renders_a_256_face_from_the_template_mask(dmn, parser):
    from maskstudio.io.masks import read_label_png
    from maskstudio.models.face_parser import parse_image

    template = read_label_png(TEMPLATE, resize=False).labels
    img_path, mask_path = _gallery_items()[0]
    ref_image = np.asarray(Image.open(img_path).convert("RGB"))
    ref_mask = read_label_png(mask_path, resize=False).labels
    out = _render(dmn, template, ref_mask, ref_image, 256)
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8
    assert out.std() > 10  # not a flat image
    parsed = parse_image(parser, out)
    skin = index_of("skin")
    t256 = np.asarray(Image.fromarray(template).resize((256, 256), Image.NEAREST))
    # the render's skin sits where the template puts skin
    inter = ((parsed == skin) & (t256 == skin)).sum()
    union = ((parsed == skin) | (t256 == skin)).sum()
    assert inter / union > 0.5


def test_parse_of_a_shipped_exemplar_is_a_plausible_mask(parser):
    from maskstudio.models.face_parser import parse_image

    items = _gallery_items()
    assert len(items) >= 2
    for img_path, _ in items:
        rgb = np.asarray(Image.open(img_path).convert("RGB"))
        lab = parse_image(parser, rgb)
        present = set(np.unique(lab).tolist())
        for name in ("skin", "nose"):
            assert index_of(name) in present, (img_path.name, name)
        assert {index_of("l_eye"), index_of("r_eye")} & present, img_path.name
        assert {index_of("u_lip"), index_of("l_lip"), index_of("mouth")} & present, img_path.name
        corners = np.concatenate([lab[:24, :24].ravel(), lab[:24, -24:].ravel()])
        assert (corners == 0).mean() > 0.8, img_path.name


def test_gallery_index_names_its_provenance():
    doc = json.loads((GALLERY / "index.json").read_text())
    names = {p.stem for p, _ in _gallery_items()}
    assert {item["name"] for item in doc["items"]} == names
    for item in doc["items"]:
        assert "aggregate" in item["mask_source"] and "Gaussian" in item["style_source"]
