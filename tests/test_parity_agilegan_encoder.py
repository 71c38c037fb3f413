"""AgileGAN VAE encoder vs the official numbers in ``$MASKSTUDIO_PARITY_DIR/agilegan_encoder``.

Whole official ``EncoderModel`` (encoder + fc_mu/fc_var + StyleGAN2-1024 decoder, 796 keys) is
rebuilt with ``fixture_weights.py`` once per module and loaded strictly.
"""
from __future__ import annotations

import pytest
import torch

import parity_utils as pu
from maskstudio.errors import ConfigError
from maskstudio.models.agilegan_encoder import AgileEncoderConfig, AgileEncoderModel

FIXTURE = "agilegan_encoder"
FULL_PARAMS = 298_032_076  # official_formats.md section 4


@pytest.fixture(scope="module")
def official():
    """(model in eval mode with the fixture's official weights, fixture dict, spec dict)."""
    yield from pu.official_module(FIXTURE, AgileEncoderModel)  # meta build: no init of 300M parameters


def test_full_size_listing_matches_official():
    _, spec = pu.load_fixture(FIXTURE)
    model = pu.on_meta(AgileEncoderModel)
    pu.assert_listing(model, pu.key_listing(spec), "AgileEncoderModel")
    assert sum(p.numel() for p in model.parameters()) == FULL_PARAMS


@pytest.mark.parametrize("case_name", pu.case_params(FIXTURE))
def test_parity(official, case_name):
    """The official forward right after ``torch.manual_seed(seed)``; eps is drawn inside."""
    model, _, spec = official
    case = pu.get_case(FIXTURE, case_name)
    with torch.no_grad():
        torch.manual_seed(case["seed"])
        sample, logvar, mu, eps = model.encode(case["inputs"]["x"])
        wplus = model.to_wplus(mu)
    ours = {"mu": mu, "logvar": logvar, "sample": sample, "eps": eps, "wplus_decoder_style": wplus}
    pu.compare_outputs(FIXTURE, case, ours, spec)


# ------------------------------------------------------------------ tiny configs (fast)

TINY = dict(n_styles=6, input_size=64, units=(1, 1, 1, 1), depths=(16, 32, 48, 64),
            coarse_ind=2, middle_ind=4,
            decoder={"size": 16, "style_dim": 64, "n_mlp": 2, "channels": {4: 8, 8: 8, 16: 8}})


def test_tiny_sample_rule_generator_and_wplus():
    torch.manual_seed(0)
    cfg = AgileEncoderConfig(**TINY)
    assert AgileEncoderConfig.from_dict(cfg.to_dict()) == cfg
    model = AgileEncoderModel(cfg).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        a = model.encode(x, generator=torch.Generator().manual_seed(5))
        b = model.encode(x, generator=torch.Generator().manual_seed(5))
        c = model.encode(x, generator=torch.Generator().manual_seed(6))
        mu_only = model.encode_mu(x)
        wplus = model.to_wplus(a.mu)
        img, _ = model.decoder([wplus], input_is_latent=True, randomize_noise=False)
    assert a.mu.shape == a.logvar.shape == a.sample.shape == (2, 6, 64)
    assert torch.equal(a.sample, b.sample) and not torch.equal(a.sample, c.sample)
    assert torch.equal(mu_only, a.mu)
    torch.testing.assert_close(a.sample, a.eps * torch.exp(0.5 * a.logvar) + a.mu, rtol=0, atol=0)
    # fc_mu / fc_var are one shared linear map applied to every row
    codes = model.encoder.__class__.__mro__[1].forward(model.encoder, x).detach()
    torch.testing.assert_close(a.mu[:, 3], model.encoder.fc_mu(codes[:, 3]).detach())
    torch.testing.assert_close(wplus[:, 4], model.decoder.get_latent(a.mu[:, 4]))
    assert img.shape == (2, 3, 16, 16)
    # forward: the official tuple order (sample, logvar, mu); a given eps is used as is
    e = torch.randn(2, 6, 64)
    with torch.no_grad():
        sample, logvar, mu = model(x, eps=e)
    assert torch.equal(mu, a.mu) and torch.equal(logvar, a.logvar)
    torch.testing.assert_close(sample, e * torch.exp(0.5 * logvar) + mu, rtol=0, atol=0)
    with pytest.raises(ValueError, match="eps"):
        model.encode(x, eps=torch.zeros(1, 6, 64))


def test_tiny_without_decoder_and_config_errors():
    model = AgileEncoderModel(AgileEncoderConfig(**{**TINY, "decoder": None}))
    assert not model.has_decoder
    assert not any(k.startswith("decoder.") for k in model.state_dict())
    with pytest.raises(RuntimeError, match="mapping"):
        model.to_wplus(torch.zeros(1, 6, 64))
    with pytest.raises(ConfigError):
        AgileEncoderConfig(units=(3, 4, 14))
    with pytest.raises(ConfigError):
        AgileEncoderConfig.from_dict({"latent_space": "zplus"})


def test_tiny_official_layout_to_safetensors_round_trip(tmp_path):
    from maskstudio.models.checkpoints import load_checkpoint, load_official_model, save_checkpoint

    torch.manual_seed(4)
    model = AgileEncoderModel(AgileEncoderConfig(**TINY)).eval()
    torch.save({"state_dict": model.state_dict(), "opts": {"stylegan_size": 16}}, tmp_path / "encoder.pt")
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    eps = torch.randn(1, 6, 64)
    with torch.no_grad():
        ref = model.encode(x, eps=eps)
    official = load_official_model(tmp_path / "encoder.pt", config={"input_size": 64})
    assert official.arch == "agilegan_encoder"
    save_checkpoint(tmp_path / "agile", official.module, "agilegan_encoder", official.config)
    ours = load_checkpoint(tmp_path / "agile")
    for loaded in (official, ours):
        with torch.no_grad():
            got = loaded.module.encode(x, eps=eps)
        assert all(torch.equal(a, b) for a, b in zip(got, ref))
