"""Checkpoint reading/writing: official layouts, our safetensors + JSON, and refusals."""
from __future__ import annotations

import argparse
import json
import os
import pickle

import numpy as np
import pytest
import torch

import parity_utils as pu
from maskstudio.errors import CheckpointError, ConfigError
from maskstudio.models import checkpoints as ck
from maskstudio.models import registry
from maskstudio.models.dense_mapping import DenseMappingConfig, DenseMappingNetwork, one_hot

TINY = DenseMappingConfig(ngf=4, n_downsample=2, n_blocks=1)


class Evil:
    """Unpickling this would run a shell command that creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _tiny_net(seed=0, cfg=TINY) -> DenseMappingNetwork:
    torch.manual_seed(seed)
    net = DenseMappingNetwork(cfg).eval()
    with torch.no_grad():  # make buffers non-trivial so a lost buffer would show
        for b in net.buffers():
            b.add_(torch.randn_like(b) * 0.1)
    return net


def _inputs(size=32, batch=1, seed=1):
    g = torch.Generator().manual_seed(seed)
    lm = torch.randint(0, 19, (batch, size, size), generator=g)
    ref = torch.randint(0, 19, (batch, size, size), generator=g)
    img = torch.rand(batch, 3, size, size, generator=g) * 2 - 1
    return one_hot(lm), one_hot(ref), img


def _out(net, inputs):
    p = next(net.parameters())
    with torch.no_grad():
        return net(*[x.to(p.dtype) for x in inputs])


def _assert_same_state(a: torch.nn.Module, b: torch.nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# -- official layouts --------------------------------------------------------------------

@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_bare_state_dict_round_trip_to_safetensors(tmp_path, zip_format):
    """latest_net_G.pth (PyTorch 0.4: legacy format) -> ours -> identical outputs."""
    net = _tiny_net()
    src = tmp_path / "latest_net_G.pth"
    torch.save(net.state_dict(), src, _use_new_zipfile_serialization=zip_format)
    sd = ck.load_official(src)
    assert sd.layout == "state_dict" and sd.extras == {} and isinstance(sd, dict)
    assert ck.detect_arch(sd) == ("maskgan_dmn", TINY.to_dict())
    official = ck.load_official_model(src)
    assert official.arch == "maskgan_dmn" and official.config == TINY.to_dict()
    _assert_same_state(official.module, net)
    x = _inputs()
    want = _out(net, x)
    assert torch.equal(_out(official.module, x), want)

    st, js = ck.save_checkpoint(tmp_path / "out" / "dmn", official.module, official.arch, official.module.cfg,
                                meta={"source": "test"})
    assert st.name == "dmn.safetensors" and js.name == "dmn.json" and st.is_file()
    doc = json.loads(js.read_text())
    assert doc["format_version"] == ck.FORMAT_VERSION and doc["arch"] == "maskgan_dmn"
    assert doc["config"] == TINY.to_dict() and doc["dtype"] == "float32" and doc["extras"] == []
    assert doc["meta"] == {"source": "test"} and doc["sha256"] == ck.sha256_file(st)
    for p in (st, js, tmp_path / "out" / "dmn"):  # any of the three spellings loads
        loaded = ck.load_checkpoint(p)
        assert isinstance(loaded.module, DenseMappingNetwork) and not loaded.module.training
        _assert_same_state(loaded.module, net)
        assert torch.equal(_out(loaded.module, x), want)
    assert loaded.meta == {"source": "test"} and loaded.config == TINY.to_dict()


def test_g_ema_wrapper_with_training_snapshot_parts(tmp_path):
    net = _tiny_net()
    # what torch.optim.Adam.state_dict() holds (built by hand: importing torch.optim costs seconds)
    g_optim = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(4, 19, 7, 7),
                             "exp_avg_sq": torch.rand(4, 19, 7, 7)}},
               "param_groups": [{"lr": 0.002, "betas": (0.0, 0.99), "eps": 1e-8, "weight_decay": 0,
                                 "amsgrad": False, "params": [0, 1]}]}
    latent_avg = torch.randn(512)
    src = tmp_path / "snapshot.pt"
    torch.save({"g": net.state_dict(), "d": {"w": torch.zeros(2)}, "g_ema": net.state_dict(),
                "g_optim": g_optim, "latent_avg": latent_avg,
                "args": argparse.Namespace(size=64, lr=0.002), "ada_aug_p": 0.1}, src)
    sd = ck.load_official(src)
    assert sd.layout == "g_ema"
    assert sorted(sd.ignored) == ["d", "g", "g_optim"]
    assert torch.equal(sd.extras["latent_avg"], latent_avg)
    assert sd.extras["args"].size == 64 and sd.extras["ada_aug_p"] == 0.1
    m = ck.load_official_model(src, dtype="fp16")
    assert m.extras["latent_avg"].dtype == torch.float16
    assert next(m.module.parameters()).dtype == torch.float16


def test_state_dict_opts_layout_with_numpy_values(tmp_path):
    net = _tiny_net()
    src = tmp_path / "encoder.pt"
    opts = {"start_from_latent_avg": True, "lr": np.float64(1e-4), "mean": np.array([0.5, 0.5], np.float32),
            "n_styles": np.int64(18), "name": "psp"}
    torch.save({"state_dict": net.state_dict(), "opts": opts, "latent_avg": torch.randn(18, 512)}, src)
    sd = ck.load_official(src)
    assert sd.layout == "state_dict+opts"
    got = sd.extras["opts"]
    assert got["lr"] == 1e-4 and got["n_styles"] == 18 and got["start_from_latent_avg"] is True
    np.testing.assert_array_equal(got["mean"], opts["mean"])
    assert sd.extras["latent_avg"].shape == (18, 512)
    assert set(sd) == set(net.state_dict())


def test_official_narrow_fixture_through_safetensors_gives_official_numbers(tmp_path):
    """Official-layout file of the real (narrow) official weights -> ours -> official outputs."""
    fx, spec = pu.load_fixture("maskgan_dmn")
    src = tmp_path / "latest_net_G.pth"
    torch.save(pu.fixture_state_dict(fx, "maskgan_dmn"), src)
    official = ck.load_official_model(src)
    assert official.config == DenseMappingConfig(ngf=8).to_dict()
    ck.save_checkpoint(tmp_path / "converted", official.module, official.arch, official.config)
    ours = ck.load_checkpoint(tmp_path / "converted.safetensors")
    for case in fx["cases"]:
        i = case["inputs"]
        with torch.no_grad():
            a = official.module(i["label_onehot"], i["ref_label_onehot"], i["ref_image"])
            b = ours.module(i["label_onehot"], i["ref_label_onehot"], i["ref_image"])
        assert torch.equal(a, b)
        pu.assert_close("maskgan_dmn", case["name"], "image(via safetensors)", b, case["outputs"]["image"],
                        pu.atol_for(spec, "image"))


# -- dtypes --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,name", [(torch.float16, "fp16"), (torch.bfloat16, "bf16"), (torch.float32, "float32")])
def test_load_casts_and_saves_in_dtype(tmp_path, dtype, name):
    net = _tiny_net()
    ck.save_checkpoint(tmp_path / "m", net, "maskgan_dmn", net.cfg, extra_tensors={"latent_avg": torch.randn(4)})
    loaded = ck.load_checkpoint(tmp_path / "m", dtype=name)
    assert {p.dtype for p in loaded.module.parameters()} == {dtype}
    assert loaded.extras["latent_avg"].dtype == dtype
    x = _inputs()
    assert (_out(loaded.module, x).float() - _out(net, x)).abs().max() < 0.05
    # saving in that dtype records it and reloads without change
    ck.save_checkpoint(tmp_path / "h", loaded.module, "maskgan_dmn", loaded.config, dtype=dtype)
    assert json.loads((tmp_path / "h.json").read_text())["dtype"] == str(dtype).replace("torch.", "")
    again = ck.load_checkpoint(tmp_path / "h", dtype=None)
    _assert_same_state(again.module, loaded.module)
    with pytest.raises(ConfigError, match="dtype"):
        ck.load_checkpoint(tmp_path / "m", dtype="int8")


# -- refusals --------------------------------------------------------------------------------

def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    raw = tmp_path / "evil_raw.pth"
    raw.write_bytes(pickle.dumps({"model.1.weight": Evil(marker)}, protocol=2))
    zipped = tmp_path / "evil_zip.pt"
    torch.save({"state_dict": {"a": torch.zeros(1)}, "opts": Evil(marker)}, zipped)
    for path in (raw, zipped):
        with pytest.raises(CheckpointError, match="refusing to load") as e:
            ck.load_official(path)
        assert str(path) in str(e.value)
        with pytest.raises(CheckpointError):
            ck.load_official_model(path)
    assert not marker.exists(), "malicious pickle code ran"
    # a plain pickle load of the same file would have run it: the test file is a real threat
    pickle.loads(raw.read_bytes())
    assert marker.exists()


def test_malicious_exstyle_npy_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "exstyle_code.npy"
    np.save(path, np.array({"a.jpg": Evil(marker)}, dtype=object), allow_pickle=True)
    with pytest.raises(CheckpointError, match="refusing to load.*not allowed") as e:
        ck.load_exstyle_codes(path)
    assert str(path) in str(e.value)
    assert not marker.exists()


def test_exstyle_codes_dict_npy(tmp_path):
    rng = np.random.default_rng(0)
    codes = {"cartoon_001.jpg": rng.standard_normal((1, 18, 512)).astype(np.float32),
             "cartoon_002.jpg": rng.standard_normal((1, 18, 512)).astype(np.float32)}
    path = tmp_path / "refined_exstyle_code.npy"
    np.save(path, codes, allow_pickle=True)
    got = ck.load_exstyle_codes(path)
    assert list(got) == list(codes)
    for k in codes:
        assert got[k].dtype == torch.float32 and torch.equal(got[k], torch.from_numpy(codes[k]))
    plain = tmp_path / "plain.npy"
    np.save(plain, np.zeros((1, 18, 512), np.float32))
    with pytest.raises(CheckpointError, match="not a dict"):
        ck.load_exstyle_codes(plain)
    bad = tmp_path / "bad.npy"
    np.save(bad, {"x": np.zeros((3,), np.float32)}, allow_pickle=True)
    with pytest.raises(CheckpointError, match="'x'"):
        ck.load_exstyle_codes(bad)


def test_truncated_files_are_refused(tmp_path):
    net = _tiny_net()
    src = tmp_path / "net.pth"
    torch.save(net.state_dict(), src)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as e:
        ck.load_official(src)
    assert str(src) in str(e.value)

    st, _ = ck.save_checkpoint(tmp_path / "ours", net, "maskgan_dmn", net.cfg)
    blob = st.read_bytes()
    st.write_bytes(blob[: len(blob) - 100])
    with pytest.raises(CheckpointError, match="sha256") as e:
        ck.load_checkpoint(st)
    assert str(st) in str(e.value)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        ck.load_checkpoint(st, verify=False)
    with pytest.raises(CheckpointError, match="not found"):
        ck.load_official(tmp_path / "absent.pth")


def test_wrong_architecture_is_refused_with_first_key(tmp_path):
    net8 = _tiny_net(cfg=DenseMappingConfig(ngf=8, n_downsample=2, n_blocks=1))
    src = tmp_path / "ngf8.pth"
    torch.save(net8.state_dict(), src)
    with pytest.raises(CheckpointError, match=r"mis-shaped key\(s\), first 'model.1.weight'.*\(8, 19, 7, 7\)") as e:
        ck.load_official_model(src, arch="maskgan_dmn", config={"ngf": 4, "n_downsample": 2, "n_blocks": 1})
    assert str(src) in str(e.value)
    # one more residual block shifts the upsampling indices: missing AND unexpected keys
    with pytest.raises(CheckpointError, match=r"missing key\(s\), first 'model.11.conv_block.0.norm.running_mean'"
                                              r"; 6 unexpected key\(s\), first 'model.11.weight'"):
        ck.load_official_model(src, arch="maskgan_dmn", config={"ngf": 8, "n_downsample": 2, "n_blocks": 2})
    # our JSON says one config, the tensors are another
    ck.save_checkpoint(tmp_path / "m", net8, "maskgan_dmn", net8.cfg)
    js = tmp_path / "m.json"
    doc = json.loads(js.read_text())
    doc["config"]["ngf"] = 4
    js.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match=r"m.safetensors: does not match DenseMappingNetwork"):
        ck.load_checkpoint(js)
    # unknown tensors: not any architecture we know
    junk = tmp_path / "junk.pth"
    torch.save({"foo.weight": torch.zeros(2)}, junk)
    with pytest.raises(CheckpointError, match="unknown architecture"):
        ck.load_official_model(junk)


def test_check_state_dict_counts_and_names(tmp_path):
    net = _tiny_net()
    sd = dict(net.state_dict())
    ck.check_state_dict(net, sd, "x.pth")  # exact: no error
    sd.pop("model.1.bias")
    sd.pop("enc_label.model.0.conv.bias")
    sd["extra.thing"] = torch.zeros(1)
    sd["model.1.weight"] = torch.zeros(1, 19, 7, 7)
    with pytest.raises(CheckpointError) as e:
        ck.check_state_dict(net, sd, tmp_path / "x.pth")
    msg = str(e.value)
    assert msg.startswith(str(tmp_path / "x.pth") + ": ")
    assert "1 mis-shaped key(s), first 'model.1.weight'" in msg
    assert "2 missing key(s), first 'model.1.bias'" in msg
    assert "1 unexpected key(s), first 'extra.thing'" in msg


def test_our_json_problems(tmp_path):
    net = _tiny_net()
    st, js = ck.save_checkpoint(tmp_path / "m.safetensors", net, "maskgan_dmn", net.cfg)
    js.write_text("{not json")
    with pytest.raises(CheckpointError, match="m.json: not valid JSON"):
        ck.load_checkpoint(st)
    js.write_text(json.dumps({"format_version": 99, "arch": "maskgan_dmn", "config": {}}))
    with pytest.raises(CheckpointError, match="format_version"):
        ck.load_checkpoint(st)
    js.write_text(json.dumps({"format_version": 1, "arch": "nope", "config": {}}))
    with pytest.raises(CheckpointError, match="cannot build nope"):
        ck.load_checkpoint(st, verify=False)
    js.unlink()
    with pytest.raises(CheckpointError, match="m.json: file not found"):
        ck.load_checkpoint(st)
    with pytest.raises(ConfigError, match="unknown architecture"):
        ck.save_checkpoint(tmp_path / "z", net, "nope", net.cfg)


# -- detection of every official listing ------------------------------------------------------

DETECT = [("maskgan_dmn", "narrow_keys", "maskgan_dmn"), ("maskgan_dmn_full", "full_size_keys", "maskgan_dmn"),
          ("stylegan2", "narrow_keys", "stylegan2"), ("stylegan2", "full_size_256_keys", "stylegan2"),
          ("stylegan2", "full_size_1024_keys", "stylegan2"), ("dualstylegan", "narrow_keys", "dualstylegan"),
          ("dualstylegan", "full_size_keys", "dualstylegan"),
          ("agilegan_generator", "narrow_keys", "agilegan_generator"),
          ("agilegan_generator", "full_size_keys", "agilegan_generator"),
          ("psp_encoder", "full_size_keys", "psp_encoder"), ("agilegan_encoder", "full_size_keys", "agilegan_encoder")]


@pytest.mark.parametrize("fixture,field,arch", DETECT, ids=[f"{a}-{b}" for a, b, _ in DETECT])
def test_detect_arch_on_official_listings(fixture, field, arch):
    _, spec = pu.load_fixture(fixture)
    listing = pu.key_listing(spec, field)
    sd = {k: torch.empty(shape, device="meta") for k, shape in listing.items()}
    got_arch, cfg = ck.detect_arch(sd)
    assert got_arch == arch
    with torch.device("meta"):  # a ConfigError here (module missing or broken) fails the test
        module = registry.build(arch, cfg)
    ck.check_state_dict(module, sd, f"{fixture}:{field}")  # the detected config fits exactly


def test_each_model_file_registers_its_own_detector():
    found, failed = registry.detectors()
    assert failed == {}
    assert set(found) == {"maskgan_dmn", "stylegan2", "dualstylegan", "agilegan_generator",
                          "psp_encoder", "agilegan_encoder", "vgg16_features"}
    for arch, detect in found.items():  # the detector lives in the module of the arch's class
        assert detect.__module__ == registry.ARCHITECTURES[arch][1].partition(":")[0]


def test_detect_arch_refuses_ambiguous_and_damaged_listings():
    _, spec = pu.load_fixture("maskgan_dmn")
    dmn = {k: torch.empty(s, device="meta") for k, s in pu.key_listing(spec, "narrow_keys").items()}
    _, spec = pu.load_fixture("stylegan2")
    sg = {k: torch.empty(s, device="meta") for k, s in pu.key_listing(spec, "narrow_keys").items()}
    with pytest.raises(CheckpointError, match="<x>: ambiguous architecture: the keys fit maskgan_dmn and stylegan2"):
        ck.detect_arch({**dmn, **sg}, "<x>")
    damaged = {k: v for k, v in sg.items() if k != "convs.0.conv.weight"}
    with pytest.raises(CheckpointError, match="<y>: cannot work out the architecture: KeyError"):
        ck.detect_arch(damaged, "<y>")


def test_old_style_one_element_num_batches_tracked_is_accepted(tmp_path):
    """Files saved before PyTorch 0.4 hold 0-d entries as 1-D [1]; load_state_dict takes them."""
    from maskstudio.models.psp import PSPConfig, PSPEncoderModel

    cfg = PSPConfig(n_styles=4, input_size=32, units=(1, 1, 1, 1), depths=(4, 4, 8, 8), se_reduction=2,
                    coarse_ind=1, middle_ind=2, decoder=None)
    torch.manual_seed(0)
    net = PSPEncoderModel(cfg)
    sd = net.state_dict()
    old = {k: (v.reshape(1) + 3 if k.endswith("num_batches_tracked") else v) for k, v in sd.items()}
    assert sum(k.endswith("num_batches_tracked") for k in old) > 0
    ck.check_state_dict(net, old, "<old>")  # no mis-shaped complaint
    torch.save({"state_dict": old, "opts": {"start_from_latent_avg": False}}, tmp_path / "old.pt")
    loaded = ck.load_official_model(tmp_path / "old.pt", arch="psp_encoder", config=cfg.to_dict())
    nbt = [v for k, v in loaded.module.state_dict().items() if k.endswith("num_batches_tracked")]
    assert all(v.shape == () and int(v) == int(sd_v) + 3 for v, sd_v in
               zip(nbt, [v for k, v in sd.items() if k.endswith("num_batches_tracked")]))
    wrong = dict(old, **{k: torch.zeros(2, dtype=torch.long) for k in old if k.endswith("num_batches_tracked")})
    with pytest.raises(CheckpointError, match="mis-shaped"):
        ck.check_state_dict(net, wrong, "<wrong>")
