"""DMN v2 decoder up-sampling: config, layouts, ICNR, checkpoints, arch detection, warm start."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from maskstudio.errors import ConfigError
from maskstudio.models import checkpoints as ck
from maskstudio.models.dense_mapping import (UPSAMPLE_MODES, DenseMappingConfig, DenseMappingNetwork,
                                             _SubPixelConv, one_hot, warm_start)

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "dmn_starter.safetensors"


def _tiny(mode: str, seed: int = 0) -> DenseMappingNetwork:
    torch.manual_seed(seed)
    return DenseMappingNetwork(DenseMappingConfig(ngf=4, n_downsample=2, n_blocks=1, upsample=mode)).eval()


def _inputs(size=32, seed=1):
    g = torch.Generator().manual_seed(seed)
    lm = torch.randint(0, 19, (1, size, size), generator=g)
    return one_hot(lm), one_hot(lm), torch.rand(1, 3, size, size, generator=g) * 2 - 1


@pytest.mark.parametrize("mode", UPSAMPLE_MODES)
def test_config_round_trips_through_json(mode):
    cfg = DenseMappingConfig(ngf=16, upsample=mode)
    back = DenseMappingConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg and back.upsample == mode


def test_default_is_the_official_layout_and_old_json_loads():
    assert DenseMappingConfig().upsample == "transpose"
    # configs written before the option existed have no "upsample" key
    old = {"ngf": 16, "n_downsample": 4, "n_blocks": 4, "label_nc": 19, "output_nc": 3}
    assert DenseMappingConfig.from_dict(old).upsample == "transpose"
    net = DenseMappingNetwork(DenseMappingConfig(ngf=4, n_downsample=2, n_blocks=1))
    assert isinstance(net.model[11], torch.nn.ConvTranspose2d)  # stem 4 + 2 downs × 3 + 1 block
    assert "model.11.weight" in net.state_dict() and "model.11.conv.weight" not in net.state_dict()


@pytest.mark.parametrize("bad", ["bilinear", "", 3, None])
def test_unknown_upsample_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="upsample must be one of"):
        DenseMappingConfig(upsample=bad)


@pytest.mark.parametrize("mode", UPSAMPLE_MODES)
def test_every_layout_renders_the_right_shape(mode):
    net = _tiny(mode)
    with torch.no_grad():
        out = net(*_inputs())
    assert out.shape == (1, 3, 32, 32) and out.abs().max() < 1


def test_layouts_share_every_tensor_but_the_up_convs():
    sds = {m: _tiny(m).state_dict() for m in UPSAMPLE_MODES}
    ups = {"model.11", "model.14"}  # the two decoder up-sampling layers of n_downsample=2, n_blocks=1
    for m in ("resize_conv", "subpixel"):
        shared = {k for k in sds[m] if k in sds["transpose"] and sds[m][k].shape == sds["transpose"][k].shape}
        assert set(sds[m]) - shared == {f"{u}.conv.{p}" for u in ups for p in ("weight", "bias")}
    assert sds["resize_conv"]["model.11.conv.weight"].shape == (8, 16, 3, 3)
    assert sds["subpixel"]["model.11.conv.weight"].shape == (32, 16, 3, 3)


def test_icnr_makes_the_subpixel_layer_checkerboard_free_at_init():
    torch.manual_seed(0)
    layer = _SubPixelConv(6, 5)
    w = layer.conv.weight
    # the four phases pixel_shuffle interleaves share one kernel and one bias...
    assert torch.equal(w[0::4], w[1::4]) and torch.equal(w[0::4], w[3::4])
    assert torch.equal(layer.conv.bias[0::4], layer.conv.bias[2::4])
    assert not torch.equal(w[0], w[4])  # ...but output channels differ
    with torch.no_grad():
        y = layer(torch.randn(1, 6, 8, 8))
    assert y.shape == (1, 5, 16, 16)
    # so every 2×2 output block is constant (nearest-resize-like, no checkerboard)
    for dy, dx in ((0, 1), (1, 0), (1, 1)):
        assert torch.equal(y[..., 0::2, 0::2], y[..., dy::2, dx::2])


@pytest.mark.parametrize("mode", ("resize_conv", "subpixel"))
def test_v2_checkpoint_round_trip_and_arch_detection(tmp_path, mode):
    net = _tiny(mode, seed=3)
    ck.save_checkpoint(tmp_path / "v2", net, "maskgan_dmn", net.cfg)
    doc = json.loads((tmp_path / "v2.json").read_text())
    assert doc["config"]["upsample"] == mode
    loaded = ck.load_checkpoint(tmp_path / "v2.safetensors")
    assert loaded.module.cfg == net.cfg
    with torch.no_grad():
        assert torch.equal(loaded.module(*_inputs()), net(*_inputs()))
    # a bare state_dict (no JSON): the layout is worked out from the keys and shapes
    arch, cfg = ck.detect_arch(net.state_dict())
    assert arch == "maskgan_dmn" and DenseMappingConfig.from_dict(cfg) == net.cfg
    arch, cfg = ck.detect_arch(_tiny("transpose").state_dict())
    assert DenseMappingConfig.from_dict(cfg).upsample == "transpose"


def test_loading_a_v2_file_as_transpose_names_the_mismatch(tmp_path):
    net = _tiny("resize_conv")
    ck.save_checkpoint(tmp_path / "v2", net, "maskgan_dmn", net.cfg)
    doc = json.loads((tmp_path / "v2.json").read_text())
    doc["config"]["upsample"] = "transpose"
    (tmp_path / "v2.json").write_text(json.dumps(doc))
    with pytest.raises(ck.CheckpointError, match=r"v2.safetensors.*missing.*model\.11\.weight"):
        ck.load_checkpoint(tmp_path / "v2.safetensors")


def test_warm_start_copies_matching_tensors_only():
    src = _tiny("transpose", seed=1)
    dst = _tiny("subpixel", seed=2)
    fresh_up = dst.model[11].conv.weight.clone()
    stats = warm_start(dst, src.state_dict())
    assert stats["not_copied"] == ["model.11.conv.weight", "model.11.conv.bias",
                                   "model.14.conv.weight", "model.14.conv.bias"]
    assert sorted(stats["unused"]) == ["model.11.bias", "model.11.weight", "model.14.bias", "model.14.weight"]
    sd_s, sd_d = src.state_dict(), dst.state_dict()
    for k in sd_d:
        if k not in stats["not_copied"]:
            assert torch.equal(sd_s[k], sd_d[k]), k
    assert torch.equal(dst.model[11].conv.weight, fresh_up)  # ICNR init kept
    up = sum(p.numel() for n, p in dst.named_parameters() if n in stats["not_copied"])
    assert stats["params_copied"] == stats["params_total"] - up > 0


@pytest.mark.skipif(not SHIPPED.is_file(), reason="shipped starter DMN not present")
def test_warm_start_v2_from_the_shipped_starter():
    from maskstudio.training.dmn_trainer import DMNTrainConfig, warm_start_generator

    cfg = DMNTrainConfig(upsample="resize_conv").model_config()
    G = DenseMappingNetwork(cfg)
    stats = warm_start_generator(G, SHIPPED)
    # everything but the 4 decoder up-sampling convs (weight + bias each)
    assert stats["tensors_copied"] == stats["tensors_total"] - 8
    assert all(".conv." in n for n in stats["not_copied"])
    assert stats["params_copied"] / stats["params_total"] > 0.9


def test_cli_trains_a_warm_started_v2_run_and_refuses_a_layout_change_on_resume(tmp_path, capsys):
    from maskstudio.cli.main import main
    from tests.training_fixtures import make_dataset

    data = make_dataset(tmp_path / "data", n=6, size=64)
    common = ["--data", str(data), "--size", "64", "--ngf", "4", "--batch-size", "2", "--no-pseudo",
              "--threads", "1", "--device", "cpu", "--no-progress", "--save-every", "2"]
    assert main(["train", "dmn", "--out", str(tmp_path / "v1"), "--steps", "2", *common]) == 0
    v1 = tmp_path / "v1" / "dmn.safetensors"
    out = tmp_path / "v2"
    assert main(["train", "dmn", "--out", str(out), "--steps", "2", "--upsample", "subpixel",
                 "--init", str(v1), *common]) == 0
    warm = json.loads((out / "summary.json").read_text())["warm_start"]
    assert warm["tensors_copied"] == warm["tensors_total"] - 8  # 4 up-sampling convs, weight + bias
    loaded = ck.load_checkpoint(out / "dmn.safetensors")
    assert loaded.module.cfg.upsample == "subpixel"
    src = ck.load_checkpoint(v1).module.state_dict()
    # the generator started from v1: the 7×7 input conv moved only by 2 small Adam steps
    assert (loaded.module.state_dict()["model.1.weight"] - src["model.1.weight"]).abs().max() < 0.01
    capsys.readouterr()
    rc = main(["train", "dmn", "--out", str(out), "--steps", "4", "--resume", *common])
    assert rc == 2 and "resume with --upsample subpixel" in capsys.readouterr().err


def test_trunk_then_decode_is_generate():
    from maskstudio.models.dense_mapping import DenseMappingConfig, DenseMappingNetwork

    torch.manual_seed(0)
    net = DenseMappingNetwork(DenseMappingConfig(ngf=4, upsample="resize_conv")).eval()
    oh = torch.nn.functional.one_hot(torch.randint(0, 19, (1, 32, 32)), 19).permute(0, 3, 1, 2).float()
    img = torch.rand(1, 3, 32, 32) * 2 - 1
    style = net.encode_style(oh, img)
    feats = net.trunk(oh, style.flatten(1))
    assert feats.shape[-1] == 32 // 2 ** net.cfg.n_downsample
    torch.testing.assert_close(net.decode(feats), net.generate(oh, style))
    dec = {id(p) for p in net.decoder_parameters()}
    names = [n for n, p in net.named_parameters() if id(p) in dec]
    assert names and all(n.startswith("model.") for n in names)
    assert not any(n.startswith(("enc_style", "enc_label")) for n in names)


def test_freeze_trunk_trains_the_decoder_only_and_gan_from_holds_the_discriminator(tmp_path, capsys):
    from maskstudio.cli.main import main
    from maskstudio.models.dense_mapping import DenseMappingNetwork
    from maskstudio.training.common import load_state
    from tests.training_fixtures import make_dataset

    data = make_dataset(tmp_path / "data", n=6, size=64)
    common = ["--data", str(data), "--size", "64", "--ngf", "4", "--batch-size", "2", "--no-pseudo",
              "--threads", "1", "--device", "cpu", "--no-progress", "--save-every", "2"]
    assert main(["train", "dmn", "--out", str(tmp_path / "v1"), "--steps", "2", *common]) == 0
    v1 = load_state(tmp_path / "v1" / "dmn_state.pt")
    out = tmp_path / "v2"
    assert main(["train", "dmn", "--out", str(out), "--steps", "4", "--upsample", "resize_conv",
                 "--init", str(tmp_path / "v1" / "dmn.safetensors"), "--freeze-trunk", "--gan-from", "3",
                 *common]) == 0
    v2 = load_state(out / "dmn_state.pt")
    net = DenseMappingNetwork(DenseMappingConfig(ngf=4, upsample="resize_conv"))
    first_up = net.first_up_index
    decoder = {n for n, _ in net.named_parameters()
               if n.startswith("model.") and int(n.split(".")[1]) >= first_up}
    for name, _ in net.named_parameters():
        if name in decoder:
            continue
        torch.testing.assert_close(v2["G"][name], v1["G"][name], msg=name)  # trunk: bit-for-bit the init
    changed = [n for n in decoder if n in v1["G"] and v1["G"][n].shape == v2["G"][n].shape
               and not torch.equal(v1["G"][n], v2["G"][n])]
    assert changed  # the output conv (warm-started) moved
    summary = json.loads((out / "summary.json").read_text())
    assert "adv" not in summary["first"][0] and "d" not in summary["first"][0]  # steps 0-2: no GAN
    assert "adv" in summary["last"][-1] and "d" in summary["last"][-1]          # step 3: GAN on
    assert int(v2["opt_d"]["state"][0]["step"]) == 1                            # D stepped once
    capsys.readouterr()
    rc = main(["train", "dmn", "--out", str(out), "--steps", "6", "--resume", "--upsample", "resize_conv",
               *common])
    assert rc == 2 and "--freeze-trunk" in capsys.readouterr().err


def test_bilinear_conv_shares_resize_conv_tensors_but_renders_differently(tmp_path):
    near, bil = _tiny("resize_conv", seed=4), _tiny("bilinear_conv", seed=4)
    bil.load_state_dict(near.state_dict())  # same names and shapes
    with torch.no_grad():
        a, b = near(*_inputs()), bil(*_inputs())
    assert not torch.allclose(a, b)
    ck.save_checkpoint(tmp_path / "bil", bil, "maskgan_dmn", bil.cfg)
    loaded = ck.load_checkpoint(tmp_path / "bil.safetensors")
    assert loaded.module.cfg.upsample == "bilinear_conv"  # the JSON sidecar names the mode
    with torch.no_grad():
        assert torch.equal(loaded.module(*_inputs()), b)
