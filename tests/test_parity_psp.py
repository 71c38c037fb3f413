"""pSp GradualStyleEncoder (IR-SE-50) vs the official numbers in ``$MASKSTUDIO_PARITY_DIR/psp_encoder``.

The fixture holds no weights: the whole official module (encoder + StyleGAN2-1024 decoder, 792 keys,
~300M parameters) is rebuilt with ``fixture_weights.py`` once per test module and loaded strictly.
"""
from __future__ import annotations

import pytest
import torch

import parity_utils as pu
from maskstudio.errors import ConfigError
from maskstudio.models.psp import GradualStyleEncoder, PSPConfig, PSPEncoderModel, prepare_input

FIXTURE = "psp_encoder"
FULL_PARAMS = 297_506_764  # official_formats.md section 3


@pytest.fixture(scope="module")
def official():
    """(model in eval mode with the fixture's official weights, fixture dict, spec dict)."""
    yield from pu.official_module(FIXTURE, PSPEncoderModel)  # meta build: no init of 300M parameters


def test_full_size_listing_matches_official():
    _, spec = pu.load_fixture(FIXTURE)
    model = pu.on_meta(PSPEncoderModel)
    pu.assert_listing(model, pu.key_listing(spec), "PSPEncoderModel")
    assert sum(p.numel() for p in model.parameters()) == FULL_PARAMS
    # latent_avg is not a state-dict entry (official files store it beside the state dict)
    assert "latent_avg" not in model.state_dict()


@pytest.mark.parametrize("case_name", pu.case_params(FIXTURE))
def test_parity(official, case_name):
    model, _, spec = official
    case = pu.get_case(FIXTURE, case_name)
    with torch.no_grad():
        codes = model.encode(case["inputs"]["x"])
    pu.compare_outputs(FIXTURE, case, {"codes": codes}, spec)


def test_parity_float64_is_sharper(official):
    """In float64 the difference to the official float32 numbers is float32 rounding only."""
    model, _, spec = official
    case = pu.get_case(FIXTURE, pu.load_fixture(FIXTURE)[0]["cases"][0]["name"])
    bound = 2.5 * spec["tolerance_report"]["codes"]["f64_vs_f32"]
    try:
        model.encoder.double()
        with torch.no_grad():  # first sample only (time)
            codes = model.encode(case["inputs"]["x"][:1].double())
    finally:
        model.encoder.float()  # float32 -> float64 -> float32 is exact
    pu.assert_close(FIXTURE, case["name"], "codes_float64", codes, case["outputs"]["codes"][:1], bound)


# ------------------------------------------------------------------ tiny configs (fast)

TINY = dict(n_styles=6, input_size=64, units=(1, 2, 2, 1), depths=(16, 32, 48, 64),
            coarse_ind=2, middle_ind=4,
            decoder={"size": 16, "style_dim": 64, "n_mlp": 2, "channels": {4: 8, 8: 8, 16: 8}})


def test_tiny_config_shapes_round_trip_and_wplus_identity():
    torch.manual_seed(0)
    cfg = PSPConfig(**TINY, latent_space="wplus")
    assert PSPConfig.from_dict(cfg.to_dict()) == cfg
    model = PSPEncoderModel(cfg).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        codes = model(x)
        single = model(x[1:])
    assert codes.shape == (2, 6, 64)
    torch.testing.assert_close(codes[1:], single, rtol=1e-5, atol=1e-5)  # samples independent
    assert model.to_wplus(codes) is codes
    # the decoder accepts the codes as W+
    img, _ = model.decoder([codes], input_is_latent=True, randomize_noise=False)
    assert img.shape == (2, 3, 16, 16)


def test_tiny_style_head_pool_counts_follow_input_size():
    enc = GradualStyleEncoder(n_styles=6, input_size=64, units=(1, 1, 1, 1), depths=(16, 16, 32, 32),
                              coarse_ind=2, middle_ind=4)
    # 64 px input: c3 is 4x4 (2 convs), p2 8x8 (3), p1 16x16 (4); two modules (conv, lrelu) each
    assert [len(s.convs) // 2 for s in enc.styles] == [2, 2, 3, 3, 4, 4]


def test_config_errors():
    with pytest.raises(ConfigError):
        PSPConfig(latent_space="z")
    with pytest.raises(ConfigError):
        PSPConfig(input_size=100)
    with pytest.raises(ConfigError):
        PSPConfig.from_dict({"n_styles": 18, "bogus": 1})
    with pytest.raises(ConfigError, match="style_dim"):
        PSPEncoderModel(PSPConfig(**{**TINY, "decoder": {"size": 16, "style_dim": 16, "n_mlp": 2,
                                                         "channels": {4: 8, 8: 8, 16: 8}}}))
    model = PSPEncoderModel(PSPConfig(**TINY))
    with pytest.raises(ConfigError, match="latent_avg"):
        model.set_latent_avg(torch.zeros(5, 64))


def test_tiny_latent_avg_added_and_zplus_rows_mapped():
    torch.manual_seed(1)
    model = PSPEncoderModel(PSPConfig(**TINY)).eval()  # latent_space "zplus"
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    avg = torch.linspace(-1, 1, 6 * 64).reshape(6, 64)
    with torch.no_grad():
        raw = model.encode(x)
        assert torch.equal(model(x), raw)  # no latent_avg set
        model.set_latent_avg(avg[None])  # [1, n, D] accepted too
        shifted = model(x)
        model.cfg.start_from_latent_avg = False
        unshifted = model(x)
        model.cfg.start_from_latent_avg = True
        model.set_latent_avg(None)
        wplus = model.to_wplus(shifted)
        rows = torch.stack([model.decoder.get_latent(shifted[:, i]) for i in range(6)], dim=1)
    torch.testing.assert_close(shifted, raw + avg, rtol=0, atol=1e-6)
    assert torch.equal(unshifted, raw)
    torch.testing.assert_close(wplus, rows, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(wplus, shifted)


def test_tiny_official_layout_to_safetensors_round_trip(tmp_path):
    """{state_dict, opts, latent_avg} (the official encoder.pt layout) -> ours -> same codes."""
    from maskstudio.models.checkpoints import load_checkpoint, load_official_model, save_checkpoint

    torch.manual_seed(2)
    model = PSPEncoderModel(PSPConfig(**TINY)).eval()
    avg = torch.randn(6, 64)
    model.set_latent_avg(avg)
    torch.save({"state_dict": model.state_dict(), "opts": {"start_from_latent_avg": True},
                "latent_avg": avg}, tmp_path / "encoder.pt")
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        ref = model(x)
    # the input size is not visible in the keys: give it (256 px is the default)
    official = load_official_model(tmp_path / "encoder.pt", config={"input_size": 64})
    assert official.arch == "psp_encoder"
    official.module.set_latent_avg(official.extras["latent_avg"])
    with torch.no_grad():
        assert torch.equal(official.module(x), ref)
    save_checkpoint(tmp_path / "psp", official.module, "psp_encoder", official.config,
                    extra_tensors={"latent_avg": official.extras["latent_avg"]})
    ours = load_checkpoint(tmp_path / "psp")
    ours.module.set_latent_avg(ours.extras["latent_avg"])
    assert isinstance(ours.module, PSPEncoderModel) and ours.module.cfg == model.cfg
    with torch.no_grad():
        assert torch.equal(ours.module(x), ref)


def test_prepare_input_pools_large_images():
    img = torch.arange(16.0).reshape(1, 1, 4, 4).expand(1, 3, 4, 4)
    out = prepare_input(img, size=2)
    # 2x2 block means: [[0,1,4,5] -> 2.5, [2,3,6,7] -> 4.5, ...]
    assert torch.equal(out[0, 0], torch.tensor([[2.5, 4.5], [10.5, 12.5]]))
    assert prepare_input(img, size=4) is img
    assert prepare_input(img, size=8).shape == (1, 3, 8, 8)
    with pytest.raises(ValueError):
        prepare_input(torch.zeros(3, 4, 4))
