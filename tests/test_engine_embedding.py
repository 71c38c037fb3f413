"""Image2StyleGAN(++) through the engine: the paper's loss when the VGG-16 is installed (and the
name of the loss for the panel), the noise stage rendered with its own maps, masked embedding,
progress and cancel. Small real networks (tests/engine_models.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import engine_models as em
from maskstudio.engine import Engine, Exemplar, RenderRequest
from maskstudio.engine.pipeline import _resize_t, to_uint8_image
from maskstudio.errors import RenderError
from maskstudio.settings import Settings

SIZE = 64


def _engine(d: Path) -> Engine:
    return Engine(Settings(device="cpu", models_dir=d, shipped_checkpoints=d / "none"),
                  style_size_px=SIZE, start_worker=False)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    from maskstudio.models.vgg import VGG16Config, VGG16Features

    plain = tmp_path_factory.mktemp("embed-plain")
    for d in (plain,):
        em.write_dmn(d)
        em.write_psp(d)
        em.write_stylegan(d)
    with_vgg = tmp_path_factory.mktemp("embed-vgg")
    em.write_dmn(with_vgg)
    em.write_psp(with_vgg)
    em.write_stylegan(with_vgg)
    cfg = VGG16Config(widths=(2, 3, 4, 5, 6))
    em._save(with_vgg, "vgg16_imagenet", em._seeded_net(VGG16Features, cfg, 9), "vgg16_features", cfg)
    return plain, with_vgg


@pytest.fixture(scope="module")
def request_():
    labels, image = em.face_inputs(SIZE)
    return RenderRequest(labels, Exemplar(image, labels), output="photo", size_px=SIZE)


def test_the_papers_loss_is_used_when_vgg16_is_installed(dirs, request_):
    plain, with_vgg = dirs
    a, b = _engine(plain), _engine(with_vgg)
    assert a.embedding_loss().startswith("pixel MSE only") and "vgg16_imagenet" in a.embedding_loss()
    assert b.embedding_loss().startswith("MSE + VGG-16 perceptual loss (conv1_1, conv1_2, conv3_2, conv4_2")
    # models made resident by renders (inside inference mode) still serve the optimisation
    assert b.render_sync(request_).ok
    with torch.inference_mode():
        assert b.models.load("vgg16_imagenet").module.features[0].weight.is_inference()
    ra, rb = a.embed_face(request_, 4), b.embed_face(request_, 4)
    assert (ra.loss, rb.loss) == ("mse", "mse+vgg16")
    assert ra.losses[0] < rb.losses[0]  # the same start, plus the perceptual term
    assert ra.wplus.shape == rb.wplus.shape == (1, em.N_LATENT, em.SG_DIM) and ra.noise is None
    w, cancelled = a.refine_embedding(request_, 4)
    assert not cancelled and np.array_equal(w, ra.wplus)
    a.close()
    b.close()


def test_noise_stage_result_renders_with_its_own_maps(dirs, request_):
    plain, _ = dirs
    eng = _engine(plain)
    seen = []
    res = eng.embed_face(request_, 3, noise_steps=4, progress=seen.append)
    assert [p.stage for p in seen] == ["wplus"] * 3 + ["noise"] * 4 and not res.cancelled
    gen = eng.photo_generator()
    assert res.noise is not None and len(res.noise) == gen.num_layers and len(res.noise_losses) == 4
    own = eng.render_sync(RenderRequest(request_.labels, request_.exemplar, output="photo", size_px=SIZE,
                                        latent=res.wplus, noise=res.noise))
    stored = eng.render_sync(RenderRequest(request_.labels, request_.exemplar, output="photo", size_px=SIZE,
                                           latent=res.wplus))
    assert own.ok and stored.ok and not np.array_equal(own.image, stored.image)
    with torch.inference_mode():
        img = gen.synthesis(torch.from_numpy(res.wplus), [torch.from_numpy(n) for n in res.noise],
                            randomize_noise=False)
    assert np.array_equal(own.image, to_uint8_image(_resize_t(img, SIZE)))  # (photo: resized, then clamped)
    with pytest.raises(RenderError, match="noise maps go with a given latent"):
        RenderRequest(request_.labels, request_.exemplar, output="photo", noise=res.noise)
    bad = eng.render_sync(RenderRequest(request_.labels, request_.exemplar, output="photo", size_px=SIZE,
                                        latent=res.wplus, noise=res.noise[:2]))
    assert not bad.ok and "needs" in bad.error
    # cancel: stops at once, the best so far comes back
    part = eng.embed_face(request_, 10, noise_steps=5, progress=lambda p: p.step >= 2)
    assert part.cancelled and len(part.losses) == 2 and part.noise is None
    eng.close()


def test_masked_embedding_through_the_engine(dirs, request_):
    plain, _ = dirs
    eng = _engine(plain)
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[:, : SIZE // 2] = 1
    whole = eng.embed_face(request_, 3)
    half = eng.embed_face(request_, 3, mask=mask)
    assert not np.array_equal(whole.wplus, half.wplus)
    small_mask = mask[::4, ::4]  # any size: resized to the target
    assert np.array_equal(eng.embed_face(request_, 3, mask=small_mask).wplus, half.wplus)
    eng.close()
