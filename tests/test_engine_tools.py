"""Engine methods the UI's background jobs use: photo parsing, latent combinations, and the
Image2StyleGAN refinement after the generator already rendered in inference mode."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import engine_models as em
from maskstudio.engine import Engine, Exemplar, RenderRequest
from maskstudio.errors import RenderError
from maskstudio.models import latent_ops as ops
from maskstudio.models.face_parser import parse_image
from maskstudio.settings import Settings

SIZE = 64


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    d: Path = tmp_path_factory.mktemp("tool-models")
    em.write_dmn(d)
    em.write_parser(d)
    em.write_psp(d)
    em.write_stylegan(d)
    eng = Engine(Settings(device="cpu", models_dir=d, shipped_checkpoints=d / "none"), style_size_px=SIZE,
                 start_worker=False)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def inputs():
    labels, image = em.face_inputs(SIZE)
    return labels, Exemplar(image, labels, name="synthetic")


def test_parse_photo_is_the_parser_with_flip_tta(engine, inputs):
    _, ex = inputs
    photo = np.array(ex.image)
    labels = engine.parse_photo(photo)
    parser = engine.models.load(engine.models.first("parser").id).module
    with torch.inference_mode():
        expect = parse_image(parser, photo, flip_tta=True)
    assert labels.dtype == np.uint8 and labels.shape == photo.shape[:2]
    np.testing.assert_array_equal(labels, expect)


def test_parse_photo_without_parser_says_so(tmp_path, inputs):
    em.write_dmn(tmp_path)
    with Engine(Settings(device="cpu", models_dir=tmp_path, shipped_checkpoints=tmp_path / "none"),
                start_worker=False) as eng:
        with pytest.raises(RenderError, match="no face parser is installed"):
            eng.parse_photo(np.zeros((32, 32, 3), np.uint8))


def test_combine_latents_matches_latent_ops(engine):
    rng = np.random.default_rng(0)
    a, b, n = (rng.standard_normal((1, em.N_LATENT, em.SG_DIM)).astype(np.float32) for _ in range(3))
    ta, tb, tn = (torch.from_numpy(x) for x in (a, b, n))
    np.testing.assert_allclose(engine.combine_latents("morph", a, b, amount=0.25), ops.morph(tb, ta, 0.25).numpy())
    cross = engine.combine_latents("crossover", a, b)
    np.testing.assert_array_equal(cross[:, : em.N_LATENT // 2], a[:, : em.N_LATENT // 2])
    np.testing.assert_array_equal(cross[:, em.N_LATENT // 2:], b[:, em.N_LATENT // 2:])
    np.testing.assert_allclose(engine.combine_latents("expression", a, b, neutral=n),
                               ops.expression_transfer(tb, tn, ta, 1.0).numpy())
    with pytest.raises(RenderError, match="another generator"):
        engine.combine_latents("morph", a, b[:, :4])
    with pytest.raises(RenderError, match="no mask as opened"):
        engine.combine_latents("expression", a, b)
    with pytest.raises(RenderError, match="unknown latent combination"):
        engine.combine_latents("swap", a, b)


def test_refine_after_a_photo_render(engine, inputs):
    """The resident generator ran in inference mode first (as in the app): the refinement must
    still get gradients (it works on its own autograd copy) and leave the renders unchanged."""
    labels, ex = inputs
    req = RenderRequest(labels, ex, output="photo", size_px=SIZE)
    before = engine.render_sync(req)
    assert before.ok, before.error
    steps = []
    w, cancelled = engine.refine_embedding(req, steps=4, progress=lambda p: steps.append(p.loss) and False, lr=0.05)
    assert not cancelled and w.shape == (1, em.N_LATENT, em.SG_DIM) and len(steps) == 4
    again = engine.render_sync(RenderRequest(labels, ex, output="photo", size_px=SIZE))
    np.testing.assert_array_equal(again.image, before.image)
    shown = engine.render_sync(RenderRequest(labels, ex, output="photo", size_px=SIZE, latent=w))
    assert shown.ok and not np.array_equal(shown.image, before.image)
