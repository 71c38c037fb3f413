"""AgileGAN DualGenerator: parity with the official network (``agilegan_generator`` fixture,
every case incl. the seeded random-noise call), full-size key conformance, the noise-index
quirk and the stream structure."""
from __future__ import annotations

import json
import re

import parity_utils as pu
import pytest
import torch

from maskstudio.errors import ConfigError, RenderError
from maskstudio.models.agilegan import AgileGANGenerator, AgileGeneratorConfig
from maskstudio.models.stylegan2 import StyleGAN2Config, StyleGAN2Generator

NAME = "agilegan_generator"


def _config(c: dict) -> AgileGeneratorConfig:
    return AgileGeneratorConfig(size=c["size"], style_dim=c["style_dim"], n_mlp=c["n_mlp"],
                                channel_multiplier=c["channel_multiplier"], lr_mlp=c["lr_mlp"],
                                channels=c["channels"])


@pytest.fixture(scope="module")
def model() -> AgileGANGenerator:
    return pu.fixture_module(NAME, lambda c: AgileGANGenerator(_config(c)))


def run_case(m: AgileGANGenerator, case: dict, generator=None) -> dict[str, torch.Tensor]:
    """The official call of one case (README: agilegan_generator section)."""
    inputs = case["inputs"]
    with torch.no_grad():
        if case["kind"] == "get_latent":
            return {"w": m.get_latent(inputs["z"])}
        kwargs = dict(case["kwargs"])
        if case.get("noise_input_names"):
            kwargs["noise"] = [inputs[n] for n in case["noise_input_names"]]
        if "truncation_latent" in inputs:
            kwargs["truncation_latent"] = inputs["truncation_latent"]
        ours: dict[str, torch.Tensor] = {}
        if case["kind"] == "forward_seeded":
            # the draws themselves: our documented draw order, from the same seed
            torch.manual_seed(case["seed"])
            order = m.noise_draw_order(inputs["wplus"].shape[0])
            assert [name for name, _ in order] == case["noise_call_modules"]
            for n, (_, shape) in enumerate(order):
                ours[f"drawn_noise_{n:02d}"] = torch.randn(shape)
            if generator is None:
                torch.manual_seed(case["seed"])
        else:
            assert case["kind"] == "forward", case["kind"]
        styles = [inputs[n] for n in case["style_input_names"]]
        a, b, latent = m(styles, return_latents=True, generator=generator, **kwargs)
        ours.update(imageA=a, imageB=b, latent=latent)
        return ours


@pytest.mark.parametrize("case_name", pu.case_params(NAME))
def test_parity(model, case_name):
    pu.compare_case(NAME, case_name, lambda case: run_case(model, case))


def test_seeded_case_with_explicit_generator(model):
    """A seeded torch.Generator reproduces the official global-seed draws."""
    _, spec = pu.load_fixture(NAME)
    case = pu.get_case(NAME, "e_wplus_random_noise_seeded")
    ours = run_case(model, case, generator=torch.Generator().manual_seed(case["seed"]))
    pu.compare_outputs(NAME, case, ours, spec, outputs=["imageA", "imageB", "latent"])


def test_narrow_listing_matches_official():
    fx, spec = pu.load_fixture(NAME)
    pu.assert_listing(AgileGANGenerator(_config(fx["config"])),
                      pu.key_listing(spec, "narrow_keys"), "narrow AgileGAN generator")


def test_full_size_listing_matches_official():
    _, spec = pu.load_fixture(NAME)
    m = pu.on_meta(lambda: AgileGANGenerator(AgileGeneratorConfig(size=1024)))
    listing = pu.key_listing(spec, "full_size_keys")
    assert len(listing) == 235
    pu.assert_listing(m, listing, "AgileGAN generator 1024")
    assert sum(p.numel() for p in m.parameters()) == 52_406_560


def test_stored_noise_needs_own_resolution_indexing(model):
    """Official indexing + stored buffers fails in the official code; we say why, clearly."""
    w = torch.randn(1, model.n_latent, 512, generator=torch.Generator().manual_seed(2))
    with torch.no_grad(), pytest.raises(RenderError, match="noise entry 1"):
        model([w], input_is_latent=True, randomize_noise=False)
        # (explicit full-resolution lists fail the same way)
    with torch.no_grad():
        a, b, _ = model([w], input_is_latent=True, randomize_noise=False,
                        official_noise_indexing=False)
    assert a.shape == b.shape == (1, 3, 128, 128)


def _stream_as_stylegan2(m: AgileGANGenerator, stream: str) -> StyleGAN2Generator:
    """A plain StyleGAN2 made of the shared trunk + one stream + the C stage."""
    g = StyleGAN2Generator(StyleGAN2Config(size=m.size, channels=m.channels)).eval()
    n_ab = len(m.to_rgbsA)
    sd = {}
    for k, v in m.state_dict().items():
        if k.startswith(("convsA", "convsB", "to_rgbsA", "to_rgbsB")) and \
                not k.startswith((f"convs{stream}.", f"to_rgbs{stream}.")):
            continue
        k = re.sub(rf"^convs{stream}\.", "convs.", k)
        k = re.sub(rf"^to_rgbs{stream}\.", "to_rgbs.", k)
        k = re.sub(r"^convsC\.(\d+)", lambda mt: f"convs.{int(mt.group(1)) + 2 * n_ab}", k)
        k = re.sub(r"^to_rgbsC\.(\d+)", lambda mt: f"to_rgbs.{int(mt.group(1)) + n_ab}", k)
        sd[k] = v
    g.load_state_dict(sd, strict=True)
    return g


def test_streams_are_stylegan2_generators_with_shared_c_stage(model):
    """With own-resolution noise indexing each stream is exactly a StyleGAN2 forward."""
    z = torch.randn(2, 512, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        a, b, _ = model([z], randomize_noise=False, official_noise_indexing=False)
        ga, _ = _stream_as_stylegan2(model, "A")([z], randomize_noise=False)
        gb, _ = _stream_as_stylegan2(model, "B")([z], randomize_noise=False)
    assert (a - ga).abs().max() < 1e-5
    assert (b - gb).abs().max() < 1e-5
    assert (a - b).abs().max() > 0.1


def test_bfloat16_runs_close_to_float32(model):
    case = pu.get_case(NAME, "a_wplus")
    m = pu.module_copy(model)
    m.to(torch.bfloat16)
    ours = run_case(m, case)
    for out in ("imageA", "imageB"):
        ref = case["outputs"][out]
        assert ours[out].dtype == torch.bfloat16
        assert (ours[out].float() - ref).abs().max() < 0.1 * ref.abs().max()


def test_config_round_trip_and_validation():
    cfg = AgileGeneratorConfig(size=128, channels={4: 8, 8: 8, 16: 8, 32: 8, 64: 4, 128: 4})
    assert AgileGeneratorConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError):
        AgileGeneratorConfig(size=100)
    with pytest.raises(ConfigError):
        AgileGeneratorConfig.from_dict({"size": 128, "bogus": 0})


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_parity_cuda_tf32_off(model, monkeypatch):
    """Every case on CUDA; the seeded case draws from a CPU generator (same noise anywhere)."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    fx, spec = pu.load_fixture(NAME)
    m = pu.module_copy(model)
    m.cuda()
    for case in fx["cases"]:
        cuda_case = pu.case_with_inputs(case, torch.Tensor.cuda)
        gen = torch.Generator().manual_seed(case["seed"]) if "seed" in case else None
        pu.compare_outputs(f"{NAME}[cuda]", case, run_case(m, cuda_case, generator=gen), spec)
    m.half()
    case = pu.get_case(NAME, "a_wplus")
    cuda_case = pu.case_with_inputs(case, torch.Tensor.cuda)
    ours = run_case(m, cuda_case)
    for out in ("imageA", "imageB"):
        ref = case["outputs"][out]
        dev = pu.max_abs_diff(ours[out].float(), ref)
        print(f"{NAME} {out} fp16 on CUDA: max|fp16 - official fp32| = {dev:.3g}")
        assert dev < 0.05 * ref.abs().max().item()


def test_float64_within_official_f32_spread(model):
    """In float64 we must sit within ~2x the official float64-vs-float32 spread."""
    _, spec = pu.load_fixture(NAME)
    m = pu.module_copy(model)
    m.double()
    case = pu.get_case(NAME, "b_z")
    case64 = pu.case_with_inputs(case, torch.Tensor.double)
    ours = run_case(m, case64)
    for out in ("imageA", "imageB"):
        d = pu.max_abs_diff(ours[out], case["outputs"][out])
        bound = 2 * spec["numeric_spread_measured"][out]["max_abs_f64_minus_f32"]
        assert d <= bound, (out, d, bound)
