"""StyleGAN2 generator: parity with the official rosinality generator (``stylegan2`` narrow and
``stylegan2_full256`` fixtures), full-size key conformance, config and noise/dtype behaviour."""
from __future__ import annotations

import json

import parity_utils as pu
import pytest
import torch

from maskstudio.errors import ConfigError, RenderError
from maskstudio.models.stylegan2 import StyleGAN2Config, StyleGAN2Generator, upfirdn2d

NARROW = "stylegan2"
FULL = "stylegan2_full256"


def _config(fx_config: dict) -> StyleGAN2Config:
    ch = fx_config["channels"] if isinstance(fx_config["channels"], dict) else None
    return StyleGAN2Config(size=fx_config["size"], style_dim=fx_config["style_dim"],
                           n_mlp=fx_config["n_mlp"],
                           channel_multiplier=fx_config["channel_multiplier"],
                           lr_mlp=fx_config["lr_mlp"], channels=ch)


def _generator(name: str) -> StyleGAN2Generator:
    return pu.fixture_module(name, lambda c: StyleGAN2Generator(_config(c)))


@pytest.fixture(scope="module")
def narrow() -> StyleGAN2Generator:
    return _generator(NARROW)


@pytest.fixture(scope="module")
def full256() -> StyleGAN2Generator:
    return _generator(FULL)


def run_case(g: StyleGAN2Generator, case: dict) -> dict[str, torch.Tensor]:
    """The official call of one fixture case (README: stylegan2 section)."""
    inputs = case["inputs"]
    with torch.no_grad():
        if case["kind"] == "get_latent":
            return {"w": g.get_latent(inputs["z"])}
        assert case["kind"] == "forward", case["kind"]
        kwargs = dict(case["kwargs"])
        styles = [inputs[n] for n in case["style_input_names"]]
        if case.get("noise_input_names"):
            kwargs["noise"] = [inputs[n] for n in case["noise_input_names"]]
        if "truncation_latent" in inputs:
            kwargs["truncation_latent"] = inputs["truncation_latent"]
        image, latent = g(styles, return_latents=True, **kwargs)
        return {"image": image, "latent": latent}


@pytest.mark.parametrize("case_name", pu.case_params(NARROW))
def test_parity_narrow(narrow, case_name):
    pu.compare_case(NARROW, case_name, lambda case: run_case(narrow, case))


@pytest.mark.parametrize("case_name", pu.case_params(FULL))
def test_parity_full256(full256, case_name):
    pu.compare_case(FULL, case_name, lambda case: run_case(full256, case))


def test_parity_narrow_float64_within_official_f32_spread(narrow):
    """In float64 we must sit within ~2x the official float64-vs-float32 spread."""
    _, spec = pu.load_fixture(NARROW)
    g = pu.module_copy(narrow)
    g.double()
    for name in ("a_z_trunc1", "d_mix_z_inject3_trunc07", "g_z_explicit_noise"):
        case = pu.get_case(NARROW, name)
        case64 = pu.case_with_inputs(case, torch.Tensor.double)
        ours = run_case(g, case64)
        bound = 2 * spec["numeric_spread_measured"]["image"]["max_abs_f64_minus_f32"]
        d = pu.max_abs_diff(ours["image"], case["outputs"]["image"])
        assert d <= bound, (name, d, bound)


def test_narrow_listing_matches_official():
    fx, spec = pu.load_fixture(NARROW)
    g = StyleGAN2Generator(_config(fx["config"]))
    pu.assert_listing(g, pu.key_listing(spec, "narrow_keys"), "narrow StyleGAN2")


@pytest.mark.parametrize("size", [256, 1024])
def test_full_size_listing_matches_official(size):
    _, spec = pu.load_fixture(NARROW)
    g = pu.on_meta(lambda: StyleGAN2Generator(StyleGAN2Config(size=size)))
    pu.assert_listing(g, pu.key_listing(spec, f"full_size_{size}_keys"), f"StyleGAN2-{size}")
    n_params = sum(p.numel() for p in g.parameters())
    assert n_params == {256: 30_034_338, 1024: 30_370_060}[size]
    assert g.n_latent == 2 * size.bit_length() - 4


# ----------------------------------------------------------------------------- behaviour


def test_config_json_round_trip_restores_int_channel_keys():
    cfg = StyleGAN2Config(size=32, channels={4: 8, 8: 8, 16: 4, 32: 4})
    back = StyleGAN2Config.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg and back.channels == {4: 8, 8: 8, 16: 4, 32: 4}
    assert StyleGAN2Config.from_dict(StyleGAN2Config(size=64).to_dict()).channel_map()[64] == 512


@pytest.mark.parametrize("bad", [dict(size=48), dict(size=32, channels={4: 8, 8: 8}),
                                 dict(size=32, channels={"a": 1})])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ConfigError):
        StyleGAN2Config(**bad)


def test_from_dict_rejects_unknown_field():
    with pytest.raises(ConfigError, match="unknown"):
        StyleGAN2Config.from_dict({"size": 32, "bogus": 1})


def test_stored_noise_equals_explicit_buffer_list(narrow):
    z = torch.randn(2, 512, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a, _ = narrow([z], randomize_noise=False)
        noise = [getattr(narrow.noises, f"noise_{i}") for i in range(narrow.num_layers)]
        b, _ = narrow([z], noise=noise)
        c, _ = narrow([z], noise=[n.expand(2, -1, -1, -1) for n in noise])
    assert torch.equal(a, b)
    assert (a - c).abs().max() < 1e-5


def test_random_noise_uses_given_generator(narrow):
    z = torch.randn(1, 512, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        a, _ = narrow([z], generator=torch.Generator().manual_seed(9))
        b, _ = narrow([z], generator=torch.Generator().manual_seed(9))
        c, _ = narrow([z], generator=torch.Generator().manual_seed(10))
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3


def test_mixing_without_inject_index_and_wplus_shape_checks(narrow):
    z = torch.randn(2, 512, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        _, latent = narrow([z, -z], return_latents=True, randomize_noise=False)
        w = narrow.get_latent(z)
        k = int((latent[0] - w[0]).abs().sum(-1).gt(0).nonzero()[0])
        assert 1 <= k <= narrow.n_latent - 1
        with pytest.raises(RenderError, match="rows"):
            narrow([torch.zeros(1, 5, 512)], input_is_latent=True)
        with pytest.raises(RenderError, match="truncation_latent"):
            narrow([z], truncation=0.5)


def test_mean_latent_shape_and_truncation_to_it(narrow):
    with torch.no_grad():
        mean = narrow.mean_latent(256, generator=torch.Generator().manual_seed(0))
        assert mean.shape == (1, 512)
        z = torch.randn(1, 512)
        _, lat = narrow([z], truncation=0.0, truncation_latent=mean, return_latents=True,
                        randomize_noise=False)
    assert torch.allclose(lat, mean.expand(1, narrow.n_latent, 512))


@pytest.mark.parametrize("dtype,tol", [(torch.bfloat16, 0.6), (torch.float16, 0.05)])
def test_half_precision_runs_close_to_float32(narrow, dtype, tol):
    case = pu.get_case(NARROW, "a_z_trunc1")
    g = pu.module_copy(narrow)
    g.to(dtype)
    with torch.no_grad():
        image, latent = g([case["inputs"]["z"]], randomize_noise=False, return_latents=True)
    assert image.dtype == dtype and latent.dtype == dtype
    ref = case["outputs"]["image"]
    err = (image.float() - ref).abs().max().item()
    assert err < tol * ref.abs().max().item(), err


def _upfirdn2d_direct(x, k, up, down, pad):
    """The definition: zero insertion, pad/crop, true convolution, keep every down-th sample."""
    n, c, h, w = x.shape
    u = torch.zeros(n, c, h * up, w * up, dtype=x.dtype)
    u[:, :, ::up, ::up] = x
    p0, p1 = pad
    v = torch.nn.functional.pad(u, (max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)))
    hh, ww = v.shape[-2:]
    v = v[:, :, max(-p0, 0): hh - max(-p1, 0), max(-p0, 0): ww - max(-p1, 0)]
    kh, kw = k.shape
    oh, ow = v.shape[-2] - kh + 1, v.shape[-1] - kw + 1
    out = torch.zeros(n, c, oh, ow, dtype=x.dtype)
    kf = torch.flip(k, (0, 1))
    for i in range(kh):
        for j in range(kw):
            out += v[:, :, i:i + oh, j:j + ow] * kf[i, j]
    return out[:, :, ::down, ::down]


@pytest.mark.parametrize("ksize", [3, 4])
@pytest.mark.parametrize("up,down", [(1, 1), (2, 1), (1, 2), (2, 2), (3, 1)])
def test_upfirdn2d_matches_direct_definition(ksize, up, down):
    """Random (non-symmetric) kernels, every pad pair in -1..3, both the transposed-conv fast
    path and the generic path."""
    g = torch.Generator().manual_seed(ksize * 10 + up * 3 + down)
    x = torch.randn(2, 3, 7, 7, generator=g, dtype=torch.float64)
    k = torch.randn(ksize, ksize, generator=g, dtype=torch.float64)
    for p0 in range(-1, 4):
        for p1 in range(-1, 4):
            ref = _upfirdn2d_direct(x, k, up, down, (p0, p1))
            out = upfirdn2d(x, k, up=up, down=down, pad=(p0, p1))
            assert out.shape == ref.shape, (p0, p1)
            assert torch.allclose(out, ref), (p0, p1)

def on_device(case: dict, device) -> dict:
    return pu.case_with_inputs(case, lambda v: v.to(device))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", [NARROW, FULL])
def test_parity_cuda_tf32_off(name, monkeypatch):
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    fx, spec = pu.load_fixture(name)
    g = _generator(name).cuda()
    for case in fx["cases"]:
        pu.compare_outputs(f"{name}[cuda]", case, run_case(g, on_device(case, "cuda")), spec)
    g.half()
    case = fx["cases"][0]
    ref = case["outputs"]["image"]
    dev = pu.max_abs_diff(run_case(g, on_device(case, "cuda"))["image"].float(), ref)
    print(f"{name} fp16 on CUDA: max|fp16 - official fp32| = {dev:.3g} (max|value| "
          f"{ref.abs().max().item():.3g})")
    assert dev < 0.05 * ref.abs().max().item()
