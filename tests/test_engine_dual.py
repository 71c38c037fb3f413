"""DualStyleGAN through the engine as the official transfer script does it (issue 18): style ids
in the style file's own order, the encoder input filter, the encoder fed from the DMN's own
output, preserve_color, truncation and W+ encoders. Small real networks (tests/engine_models.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import engine_models as em
from maskstudio.engine import DualParams, Engine, Exemplar, RenderRequest
from maskstudio.engine.pipeline import _Ctx, _resize_t, encoder_input, to_uint8_image
from maskstudio.settings import Settings

SIZE = 64
FILE_ORDER = ["zeta.png", "alpha.png", "mid.png"]  # not sorted, as os.listdir gives them


def write_dual(models_dir: Path, mid: str, names: list[str], meta=None, seed: int = 5) -> None:
    from maskstudio.models.dualstylegan import DualStyleGAN, DualStyleGANConfig, style_code_key

    cfg = DualStyleGANConfig.from_dict({**em.SG_CFG, "res_index": 4})
    net = em._seeded_net(DualStyleGAN, cfg, seed)
    g = torch.Generator().manual_seed(seed)
    codes = {style_code_key(n): torch.randn(1, em.N_LATENT, em.SG_DIM, generator=g) for n in names}
    em._save(models_dir, mid, net, "dualstylegan", cfg, extras=codes, meta=meta)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    from maskstudio.models.dualstylegan import style_code_extras

    d = tmp_path_factory.mktemp("dual-models")
    em.write_dmn(d, meta={"native_size_px": 32})
    em.write_psp(d)
    em.write_psp(d, "psp_wplus_tiny", seed=3, latent_space="wplus")
    _, meta = style_code_extras({n: torch.zeros(1, em.N_LATENT, em.SG_DIM) for n in FILE_ORDER})
    write_dual(d, "dual_file_order", FILE_ORDER, meta=meta)
    write_dual(d, "dual_old_install", FILE_ORDER, meta={"exstyle_names": sorted(FILE_ORDER)})
    many = [f"s{i:03d}.png" for i in range(60)][::-1]
    _, meta = style_code_extras({n: torch.zeros(1, em.N_LATENT, em.SG_DIM) for n in many})
    write_dual(d, "dual_many", many, meta=meta, seed=6)
    return d


@pytest.fixture(scope="module")
def engine(models_dir):
    settings = Settings(device="cpu", models_dir=models_dir, shipped_checkpoints=models_dir / "none")
    eng = Engine(settings, start_worker=False)
    yield eng
    eng.close()


@pytest.fixture(scope="module")
def inputs():
    labels, image = em.face_inputs(SIZE)
    return labels, Exemplar(image, labels, name="synthetic")


def render(engine, inputs, size=SIZE, **dual):
    labels, ex = inputs
    style = dual.pop("style", "dual_file_order")
    r = engine.render_sync(RenderRequest(labels, ex, output="dual", size_px=size, want_latent=True,
                                         dual=DualParams(style, **dual)))
    assert r.ok, r.error
    return r


def test_style_ids_follow_the_style_files_own_order(engine, inputs):
    styles = engine.styles()
    assert styles["dual"]["dual_file_order"] == FILE_ORDER  # ids 0, 1, 2 = the file's order
    assert styles["dual"]["dual_old_install"] == sorted(FILE_ORDER)  # before the order was kept
    assert styles["dual_official_ids"] == {"dual_file_order": True, "dual_old_install": False, "dual_many": True}
    assert styles["dual_default"]["dual_many"] == 53
    codes = Engine.style_codes(engine.models.load("dual_file_order"))
    assert list(codes) == FILE_ORDER
    by_id, by_name = render(engine, inputs, code="0"), render(engine, inputs, code="zeta.png")
    assert np.array_equal(by_id.image, by_name.image)
    assert not np.array_equal(render(engine, inputs, code="1").image, by_id.image)
    assert np.array_equal(render(engine, inputs, code="1").image, render(engine, inputs, code="alpha.png").image)
    # no code: the official default id 53 when there are that many codes, else the first
    assert np.array_equal(render(engine, inputs).image, by_id.image)
    many = engine.styles()["dual"]["dual_many"]
    assert many[53] == "s006.png"
    assert np.array_equal(render(engine, inputs, style="dual_many").image,
                          render(engine, inputs, style="dual_many", code="s006.png").image)


def test_dual_encoder_input_is_adaptive_average_pooling(inputs, tmp_path):
    face = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert torch.equal(encoder_input(face, 64, "avgpool"), F.adaptive_avg_pool2d(face, 64))
    assert not torch.allclose(encoder_input(face, 64, "bilinear"), F.adaptive_avg_pool2d(face, 64), atol=1e-3)
    # through the engine: a DMN without a native size makes a 128 px face for a 128 px render;
    # the DualStyleGAN path pools it to the pSp input (64), as style_transfer.py does
    d = tmp_path / "no-native"
    em.write_dmn(d)
    em.write_psp(d)
    write_dual(d, "dual_x", FILE_ORDER)
    eng = Engine(Settings(device="cpu", models_dir=d, shipped_checkpoints=d / "none"), start_worker=False)
    labels, ex = inputs
    big_labels = np.kron(labels, np.ones((2, 2), np.uint8))
    req = RenderRequest(big_labels, ex, output="dual", size_px=128, want_latent=True, dual=DualParams("dual_x"))
    r = eng.render_sync(req)
    assert r.ok, r.error
    with torch.inference_mode():
        native, _ = eng._native_face(req, 128, _Ctx(None, eng.policy))
        assert native.shape[-1] == 128
        psp = eng.models.load("psp_tiny").module
        pooled = psp.to_wplus(psp(F.adaptive_avg_pool2d(native.float(), 64)))
        resized = psp.to_wplus(psp(_resize_t(native.float(), 64)))
    torch.testing.assert_close(torch.from_numpy(r.latent), pooled.float(), rtol=0, atol=1e-6)
    assert not torch.allclose(torch.from_numpy(r.latent), resized.float(), atol=1e-4)
    eng.close()


def test_the_encoder_reads_the_dmns_native_output(engine, inputs):
    labels, ex = inputs
    # preview-size and final renders of a native-32 DMN share one face, so one latent
    small = engine.render_sync(RenderRequest(labels, ex, output="dual", size_px=32, want_latent=True,
                                             dual=DualParams("dual_file_order")))
    large = engine.render_sync(RenderRequest(labels, ex, output="dual", size_px=128, want_latent=True,
                                             dual=DualParams("dual_file_order")))
    assert small.ok and large.ok
    assert np.array_equal(small.latent, large.latent)
    face = engine.render_sync(RenderRequest(labels, ex, output="face", size_px=128))
    assert face.ok and face.image.shape == (128, 128, 3)  # the face output is still upscaled


def _expected(engine, r, style="dual_file_order", code="zeta.png", truncation=0.75, preserve=False):
    from maskstudio.engine.types import DEFAULT_DUAL_WEIGHTS

    resident = engine.models.load(style)
    net = resident.module
    with torch.inference_mode():
        w = torch.from_numpy(r.latent)
        ext = net.map_exstyle(Engine.style_codes(resident)[code])
        if preserve:
            ext = net.preserve_color(ext, w)
        img, _ = net([w], ext, input_is_latent=True, truncation=truncation, truncation_latent=0,
                     randomize_noise=False, use_res=True, interp_weights=list(DEFAULT_DUAL_WEIGHTS[:net.n_latent]))
    return to_uint8_image(_resize_t(img.clamp(-1, 1), SIZE))


def test_truncation_reaches_the_generator(engine, inputs):
    default = render(engine, inputs, code="0")
    assert np.array_equal(default.image, _expected(engine, default, truncation=0.75))
    half = render(engine, inputs, code="0", truncation=0.5)
    assert np.array_equal(half.image, _expected(engine, half, truncation=0.5))
    assert not np.array_equal(half.image, default.image)
    with pytest.raises(Exception, match="truncation must be in"):
        DualParams("dual_file_order", truncation=1.5)


def test_preserve_color_keeps_the_colour_layers_codes(engine, inputs):
    net = engine.models.load("dual_file_order").module
    ext = torch.randn(1, net.n_latent, em.SG_DIM)
    ins = torch.randn(1, net.n_latent, em.SG_DIM)
    kept = net.preserve_color(ext, ins)
    j = net.res_index + 1
    assert torch.equal(kept[:, j:], ins[:, j:]) and torch.equal(kept[:, :j], ext[:, :j])
    r = render(engine, inputs, code="0", preserve_color=True)
    assert np.array_equal(r.image, _expected(engine, r, preserve=True))
    assert not np.array_equal(r.image, render(engine, inputs, code="0").image)


def test_wplus_uses_a_w_plus_encoder(engine, inputs, tmp_path):
    labels, ex = inputs
    z = render(engine, inputs, code="0")
    wp = render(engine, inputs, code="0", wplus=True)
    req = RenderRequest(labels, ex, output="dual", size_px=SIZE, dual=DualParams("dual_file_order"))
    with torch.inference_mode():
        native, _ = engine._native_face(req, SIZE, _Ctx(None, engine.policy))
        enc = engine.models.load("psp_wplus_tiny").module
        code = enc(encoder_input(native.float(), 64, "avgpool"))  # W+ directly, no mapping
    torch.testing.assert_close(torch.from_numpy(wp.latent), code.float(), rtol=0, atol=1e-6)
    assert not np.array_equal(z.latent, wp.latent)
    # without a W+ encoder installed: a clear message
    d = tmp_path / "no-wplus"
    em.write_dmn(d)
    em.write_psp(d)
    write_dual(d, "dual_x", FILE_ORDER)
    eng = Engine(Settings(device="cpu", models_dir=d, shipped_checkpoints=d / "none"), start_worker=False)
    r = eng.render_sync(RenderRequest(labels, ex, output="dual", size_px=SIZE, dual=DualParams("dual_x", wplus=True)))
    assert not r.ok and "needs a W+ pSp encoder" in r.error
    eng.close()
