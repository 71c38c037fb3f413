"""MaskGAN Dense Mapping Network vs numbers computed by the official MaskGAN_demo netG.

Fixtures: ``maskgan_dmn`` (ngf 8, stored weights, 64²) and ``maskgan_dmn_full`` (ngf 64, the demo
configuration, weights rebuilt with fixture_weights.py, 128²). See shared/parity/README.md.
"""
from __future__ import annotations

import pytest
import torch

import parity_utils as pu
from maskstudio.errors import ConfigError
from maskstudio.models.dense_mapping import DenseMappingConfig, DenseMappingNetwork, one_hot

FIXTURES = {"maskgan_dmn": 8, "maskgan_dmn_full": 64}


def _net_for(name: str, dtype=torch.float32) -> DenseMappingNetwork:
    fx, spec = pu.load_fixture(name)
    assert fx["config"]["ngf"] == FIXTURES[name]
    cfg = DenseMappingConfig(ngf=fx["config"]["ngf"], n_downsample=fx["config"]["n_downsample_global"],
                             n_blocks=fx["config"]["n_blocks_global"], label_nc=fx["config"]["input_nc"],
                             output_nc=fx["config"]["output_nc"])
    with torch.device("meta"):  # no throw-away init of 90M parameters
        net = DenseMappingNetwork(cfg)
    sd = {k: v.to(dtype) for k, v in pu.fixture_state_dict(fx, name).items()}
    net.load_state_dict(sd, strict=True, assign=True)
    return net.eval()


def _run(net: DenseMappingNetwork, case: dict, dtype=torch.float32) -> dict[str, torch.Tensor]:
    i = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in case["inputs"].items()}
    with torch.no_grad():
        fea1, fea2 = net.encode_label(i["ref_label_onehot"])
        style = net.encode_style(i["ref_label_onehot"], i["ref_image"])
        image = net.generate(i["label_onehot"], style)
    return {"enc_label_fea1": fea1, "enc_label_fea2": fea2, "adain_params": style, "image": image}


@pytest.mark.parametrize("case_name", pu.case_params("maskgan_dmn"))
def test_parity_narrow(case_name):
    fx, spec = pu.load_fixture("maskgan_dmn")
    case = pu.get_case("maskgan_dmn", case_name)
    net = _net_for("maskgan_dmn")
    # the one-hot the official net received is exactly ours
    assert torch.equal(one_hot(case["inputs"]["label_map"]), case["inputs"]["label_onehot"])
    assert torch.equal(one_hot(case["inputs"]["ref_label_map"]), case["inputs"]["ref_label_onehot"])
    diffs = pu.compare_outputs("maskgan_dmn", case, _run(net, case), spec)
    assert set(diffs) == {"enc_label_fea1", "enc_label_fea2", "adain_params", "image"}
    # one-call forward is the two stages
    i = case["inputs"]
    with torch.no_grad():
        full = net(i["label_onehot"], i["ref_label_onehot"], i["ref_image"])
    pu.assert_close("maskgan_dmn", case_name, "image(forward)", full, case["outputs"]["image"],
                    pu.atol_for(spec, "image"))


@pytest.mark.parametrize("case_name", pu.case_params("maskgan_dmn"))
def test_parity_narrow_float64_sharper(case_name):
    """In float64 we must land within ~2x the official net's own f64-vs-f32 spread."""
    fx, spec = pu.load_fixture("maskgan_dmn")
    case = pu.get_case("maskgan_dmn", case_name)
    net = _net_for("maskgan_dmn", torch.float64)
    ours = _run(net, case, torch.float64)
    for out, ref in case["outputs"].items():
        spread = spec["numeric_spread_measured"][out]["max_abs_f64_minus_f32"]
        d = pu.max_abs_diff(ours[out], ref)
        assert d <= 2 * spread + 1e-7, f"{out}: f64 diff {d:.3g} vs official spread {spread:.3g}"


@pytest.mark.parametrize("case_name", pu.case_params("maskgan_dmn_full"))
def test_parity_full_size(case_name):
    fx, spec = pu.load_fixture("maskgan_dmn_full")
    case = pu.get_case("maskgan_dmn_full", case_name)
    net = _net_for("maskgan_dmn_full")
    pu.compare_outputs("maskgan_dmn_full", case, _run(net, case), spec)


def test_full_size_listing_equals_official():
    _, spec = pu.load_fixture("maskgan_dmn_full")
    with torch.device("meta"):
        net = DenseMappingNetwork(DenseMappingConfig())  # defaults = latest_net_G.pth
    pu.assert_listing(net, pu.key_listing(spec, "full_size_keys"), "DMN ngf=64")
    # the narrow fixture's spec carries the same full listing
    _, narrow_spec = pu.load_fixture("maskgan_dmn")
    pu.assert_listing(net, pu.key_listing(narrow_spec, "full_size_keys"), "DMN ngf=64")
    n_params = sum(p.numel() for p in net.parameters())
    assert len(net.state_dict()) == 94 and n_params == 89_702_595


def test_narrow_listing_equals_official():
    _, spec = pu.load_fixture("maskgan_dmn")
    with torch.device("meta"):
        net = DenseMappingNetwork(DenseMappingConfig(ngf=8))
    pu.assert_listing(net, pu.key_listing(spec, "narrow_keys"), "DMN ngf=8")


# -- behaviour that needs no fixture --------------------------------------------------------

@pytest.mark.parametrize("ngf,n_down,n_blocks,size", [(8, 4, 4, 64), (16, 4, 4, 32), (32, 3, 2, 64), (4, 2, 1, 32)])
def test_any_width_runs_and_stages_compose(ngf, n_down, n_blocks, size):
    torch.manual_seed(0)
    cfg = DenseMappingConfig(ngf=ngf, n_downsample=n_down, n_blocks=n_blocks)
    net = DenseMappingNetwork(cfg).eval()
    lm = torch.randint(0, 19, (2, size, size))
    ref = torch.randint(0, 19, (2, size, size))
    img = torch.rand(2, 3, size, size) * 2 - 1
    with torch.no_grad():
        style = net.encode_style(one_hot(ref), img)
        assert style.shape == (2, cfg.num_adain_params, 1, 1)
        out = net.generate(one_hot(lm), style)
        assert out.shape == (2, 3, size, size)
        assert out.abs().max() <= 1
        torch.testing.assert_close(net(one_hot(lm), one_hot(ref), img), out, rtol=0, atol=0)
        # a cached single style broadcasts over a batch, and samples are independent
        one = net.generate(one_hot(lm), style[:1])
        torch.testing.assert_close(one[0], out[0], rtol=0, atol=2e-5)
        torch.testing.assert_close(net.generate(one_hot(lm[1:]), style[1:])[0], out[1], rtol=0, atol=2e-5)


def test_style_layout_official_is_256_ngf():
    assert DenseMappingConfig(ngf=8).num_adain_params == 2048
    assert DenseMappingConfig(ngf=64).num_adain_params == 16384
    assert DenseMappingConfig(ngf=16).num_adain_params == 256 * 16


def test_bad_inputs_raise_config_error():
    net = DenseMappingNetwork(DenseMappingConfig(ngf=4, n_downsample=2, n_blocks=1)).eval()
    with pytest.raises(ConfigError, match="divisible by 32"):
        net.encode_style(one_hot(torch.zeros(1, 48, 48, dtype=torch.long)), torch.zeros(1, 3, 48, 48))
    with pytest.raises(ConfigError, match="values"):
        net.generate(one_hot(torch.zeros(1, 32, 32, dtype=torch.long)), torch.zeros(1, 5))
    with pytest.raises(ConfigError, match="0..18"):
        one_hot(torch.full((1, 4, 4), 19))
    with pytest.raises(ConfigError):
        DenseMappingConfig(ngf=0)
    with pytest.raises(ConfigError, match="unknown"):
        DenseMappingConfig.from_dict({"ngf": 8, "bogus": 1})
    cfg = DenseMappingConfig(ngf=16)
    assert DenseMappingConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_close_to_float32(dtype):
    torch.manual_seed(1)
    net = DenseMappingNetwork(DenseMappingConfig(ngf=8)).eval()
    lm, ref = torch.randint(0, 19, (1, 32, 32)), torch.randint(0, 19, (1, 32, 32))
    img = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        want = net(one_hot(lm), one_hot(ref), img)
        got = net.to(dtype)(one_hot(lm, dtype=dtype), one_hot(ref, dtype=dtype), img.to(dtype))
    assert got.dtype == dtype
    assert (got.float() - want).abs().max() < 0.1


# -- the shared helpers' skip/fail contract (issue 3) -------------------------------------------

def test_parity_helpers_skip_when_absent_and_fail_when_broken(tmp_path, monkeypatch):
    monkeypatch.setenv(pu.DIR_ENV, str(tmp_path))
    with pytest.raises(pytest.skip.Exception, match="absent"):
        pu.load_fixture("maskgan_dmn")
    [param] = pu.case_params("maskgan_dmn")
    assert any(m.name == "skip" for m in param.marks)
    (tmp_path / "maskgan_dmn").mkdir()
    (tmp_path / "maskgan_dmn" / "fixture.pt").write_bytes(b"not a checkpoint")
    (tmp_path / "maskgan_dmn" / "spec.json").write_text("{}")
    with pytest.raises(pytest.fail.Exception, match="present but cannot be loaded"):
        pu.load_fixture("maskgan_dmn")
    [param] = pu.case_params("maskgan_dmn")
    assert not param.marks  # a broken fixture is run (and fails), never skipped


def test_parity_helpers_measure_and_report(tmp_path, monkeypatch):
    report = tmp_path / "report.jsonl"
    monkeypatch.setenv(pu.REPORT_ENV, str(report))
    a = torch.zeros(2, 3)
    assert pu.assert_close("demo", "c1", "out", a + 1e-6, a, 1e-5) == pytest.approx(1e-6)
    with pytest.raises(AssertionError, match="demo/c2/out: max"):
        pu.assert_close("demo", "c2", "out", a + 1e-3, a, 1e-5)
    with pytest.raises(AssertionError, match="shape"):
        pu.assert_close("demo", "c3", "out", torch.zeros(3, 2), a, 1.0)
    summary = pu.summarize_report(report)
    assert summary["demo"]["out"]["worst"] == float("inf")
    assert pu.atol_for({"suggested_atol": {"drawn_noise_*": 1e-6}}, "drawn_noise_07") == 1e-6
