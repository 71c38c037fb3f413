"""DualStyleGAN: parity with the official network (``dualstylegan`` fixture, every case incl.
``map_exstyle``), full-size key conformance, config round trip and flag behaviour."""
from __future__ import annotations

import json

import parity_utils as pu
import pytest
import torch

from maskstudio.errors import ConfigError, RenderError
from maskstudio.models.dualstylegan import DualStyleGAN, DualStyleGANConfig

NAME = "dualstylegan"


def _config(c: dict) -> DualStyleGANConfig:
    return DualStyleGANConfig(size=c["size"], style_dim=c["style_dim"], n_mlp=c["n_mlp"],
                              channel_multiplier=c["channel_multiplier"], channels=c["channels"],
                              res_index=c["res_index"])


@pytest.fixture(scope="module")
def model() -> DualStyleGAN:
    return pu.fixture_module(NAME, lambda c: DualStyleGAN(_config(c)))


def run_case(m: DualStyleGAN, case: dict) -> dict[str, torch.Tensor]:
    """The official call of one case (README: dualstylegan section)."""
    inputs = case["inputs"]
    with torch.no_grad():
        if case["kind"] == "map_exstyle":
            return {"exstyle": m.map_exstyle(inputs["exstyle_zplus"])}
        assert case["kind"] == "forward", case["kind"]
        kwargs = dict(case["kwargs"])
        if "interp_weights" in inputs:
            kwargs["interp_weights"] = [float(x) for x in inputs["interp_weights"]]
        exstyle = inputs[case["exstyle_input"]] if case.get("exstyle_input") else None
        first, second = m([inputs[case["instyle_input"]]], exstyle, **kwargs)
    if kwargs.get("return_feat"):
        return {"feat_out": first, "feat_skip": second}
    return {"image": first, "latent": second}


@pytest.mark.parametrize("case_name", pu.case_params(NAME))
def test_parity(model, case_name):
    pu.compare_case(NAME, case_name, lambda case: run_case(model, case))


def test_narrow_listing_matches_official():
    fx, spec = pu.load_fixture(NAME)
    pu.assert_listing(DualStyleGAN(_config(fx["config"])), pu.key_listing(spec, "narrow_keys"),
                      "narrow DualStyleGAN")


def test_full_size_listing_matches_official():
    _, spec = pu.load_fixture(NAME)
    m = pu.on_meta(lambda: DualStyleGAN(DualStyleGANConfig(size=1024)))
    listing = pu.key_listing(spec, "full_size_keys")
    assert len(listing) == 253
    pu.assert_listing(m, listing, "DualStyleGAN-1024")
    assert sum(p.numel() for p in m.parameters()) == 74_176_268


def test_all_zero_weights_equal_use_res_false(model):
    """Official check: interp_weights all 0 gives exactly the intrinsic StyleGAN2 image."""
    a = run_case(model, pu.get_case(NAME, "zplus_d_all0"))["image"]
    b = run_case(model, pu.get_case(NAME, "zplus_use_res_false"))["image"]
    assert torch.equal(a, b)
    case = pu.get_case(NAME, "zplus_use_res_false")
    with torch.no_grad():
        plain, _ = model.generator([case["inputs"]["instyle"]], **{
            k: v for k, v in case["kwargs"].items() if k != "use_res"})
    assert torch.equal(plain, b)


def test_default_weights_and_errors(model):
    case = pu.get_case(NAME, "zplus_a_all1")
    inputs = case["inputs"]
    kwargs = {k: v for k, v in case["kwargs"].items()}
    with torch.no_grad():
        default, _ = model([inputs["instyle"]], inputs["exstyle"], **kwargs)
        as_tensor, _ = model([inputs["instyle"]], inputs["exstyle"],
                             interp_weights=torch.ones(10), **kwargs)
        with pytest.raises(RenderError, match="exstyles"):
            model([inputs["instyle"]], None, **kwargs)
        with pytest.raises(RenderError, match="interp_weights"):
            model([inputs["instyle"]], inputs["exstyle"], interp_weights=[1.0] * 3, **kwargs)
    assert torch.equal(default, as_tensor)
    assert pu.max_abs_diff(default, case["outputs"]["image"]) <= pu.atol_for(
        pu.load_fixture(NAME)[1], "image")


def test_config_round_trip_and_validation():
    cfg = DualStyleGANConfig(size=64, channels={4: 8, 8: 8, 16: 8, 32: 4, 64: 4}, res_index=6)
    back = DualStyleGANConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg
    with pytest.raises(ConfigError):
        DualStyleGANConfig(size=16, res_index=6)
    with pytest.raises(ConfigError):
        DualStyleGANConfig.from_dict({"size": 64, "twoRes": True})


def test_bfloat16_runs_close_to_float32(model):
    case = pu.get_case(NAME, "wplus_b_0.75x7")
    m = pu.module_copy(model)
    m.to(torch.bfloat16)
    ours = run_case(m, case)["image"]
    ref = case["outputs"]["image"]
    assert ours.dtype == torch.bfloat16
    assert (ours.float() - ref).abs().max() < 0.1 * ref.abs().max()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_parity_cuda_tf32_off(model, monkeypatch):
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    fx, spec = pu.load_fixture(NAME)
    m = pu.module_copy(model)
    m.cuda()
    for case in fx["cases"]:
        cuda_case = pu.case_with_inputs(case, torch.Tensor.cuda)
        pu.compare_outputs(f"{NAME}[cuda]", case, run_case(m, cuda_case), spec)
    m.half()
    case = pu.get_case(NAME, "zplus_b_0.75x7")
    ref = case["outputs"]["image"]
    cuda_case = pu.case_with_inputs(case, torch.Tensor.cuda)
    dev = pu.max_abs_diff(run_case(m, cuda_case)["image"].float(), ref)
    print(f"{NAME} fp16 on CUDA: max|fp16 - official fp32| = {dev:.3g}")
    assert dev < 0.05 * ref.abs().max().item()


def test_float64_within_official_f32_spread(model):
    """In float64 we must sit within ~2x the official float64-vs-float32 spread."""
    _, spec = pu.load_fixture(NAME)
    m = pu.module_copy(model)
    m.double()
    for name in ("zplus_c_random", "wplus_b_0.75x7"):
        case = pu.get_case(NAME, name)
        case64 = pu.case_with_inputs(case, torch.Tensor.double)
        d = pu.max_abs_diff(run_case(m, case64)["image"], case["outputs"]["image"])
        bound = 2 * spec["numeric_spread_measured"]["image"]["max_abs_f64_minus_f32"]
        assert d <= bound, (name, d, bound)
