"""VGG-16 trunk (torchvision layout) for the Image2StyleGAN perceptual loss: keys, numbers, import."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from maskstudio.errors import ConfigError
from maskstudio.models import checkpoints as ck
from maskstudio.models import registry
from maskstudio.models.vgg import (
    IMAGE2STYLEGAN_LAYERS,
    VGG16Config,
    VGG16Features,
    layer_index,
    official_filter,
)

TINY = VGG16Config(widths=(2, 3, 4, 5, 6))


def _torchvision_like_state_dict(widths=(2, 3, 4, 5, 6), seed=0) -> dict[str, torch.Tensor]:
    """Every entry of a torchvision ``vgg16`` state dict (all 13 convs + the classifier), tiny."""
    g = torch.Generator().manual_seed(seed)
    sd, i, c_in = {}, 0, 3
    for b, n in enumerate((2, 2, 3, 3, 3)):
        for _ in range(n):
            sd[f"features.{i}.weight"] = 0.3 * torch.randn(widths[b], c_in, 3, 3, generator=g)
            sd[f"features.{i}.bias"] = 0.1 * torch.randn(widths[b], generator=g)
            c_in = widths[b]
            i += 2
        i += 1
    for j, (o, k) in enumerate(((7, widths[4] * 49), (7, 7), (10, 7))):
        sd[f"classifier.{3 * j}.weight"] = torch.randn(o, k, generator=g)
        sd[f"classifier.{3 * j}.bias"] = torch.randn(o, generator=g)
    return sd


def test_layer_names_follow_torchvision_indices():
    assert [layer_index(n) for n in IMAGE2STYLEGAN_LAYERS] == [0, 2, 12, 19]
    assert layer_index("conv5_3") == 28
    with pytest.raises(ConfigError, match="unknown VGG-16 layer 'conv6_1'"):
        layer_index("conv6_1")
    net = VGG16Features(TINY)
    assert [k for k in net.state_dict() if k.endswith("weight")] == [
        f"features.{i}.weight" for i in (0, 2, 5, 7, 10, 12, 14, 17, 19)]


def test_features_are_the_relu_activations_of_normalised_input():
    sd = _torchvision_like_state_dict()
    net = VGG16Features(TINY)
    net.load_state_dict(official_filter(sd), strict=True)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    got = net(x)
    assert [tuple(f.shape) for f in got] == [(1, 2, 32, 32), (1, 2, 32, 32), (1, 4, 8, 8), (1, 5, 4, 4)]
    # by hand, from the state dict: [-1,1] -> [0,1] -> ImageNet normalisation -> conv/ReLU/pool
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    h = ((x + 1) / 2 - mean) / std

    def conv(h, i):
        return F.relu(F.conv2d(h, sd[f"features.{i}.weight"], sd[f"features.{i}.bias"], padding=1))

    c11 = conv(h, 0)
    c12 = conv(c11, 2)
    h = conv(conv(F.max_pool2d(c12, 2), 5), 7)
    c32 = conv(conv(F.max_pool2d(h, 2), 10), 12)
    c42 = conv(conv(F.max_pool2d(conv(c32, 14), 2), 17), 19)
    for a, b in zip(got, (c11, c12, c32, c42)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    with pytest.raises(ConfigError, match="deeper than this trunk"):
        net(x, ("conv5_1",))


def test_torchvision_file_is_detected_filtered_and_loaded_strictly(tmp_path):
    sd = _torchvision_like_state_dict()
    path = tmp_path / "vgg16-397923af.pth"
    torch.save(sd, path)
    arch, cfg = ck.detect_arch(sd)
    assert arch == "vgg16_features" and cfg == {"widths": [2, 3, 4, 5, 6], "last_layer": "conv4_2"}
    loaded = ck.load_official_model(path)
    assert loaded.arch == "vgg16_features" and isinstance(loaded.module, VGG16Features)
    assert torch.equal(loaded.module.features[19].weight, sd["features.19.weight"])
    assert sorted(registry.filter_official("vgg16_features", sd)) == sorted(
        k for k in sd if k.startswith("features.") and int(k.split(".")[1]) <= 19)
    # round trip through our safetensors + JSON
    ck.save_checkpoint(tmp_path / "vgg", loaded.module, loaded.arch, loaded.config)
    again = ck.load_checkpoint(tmp_path / "vgg")
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    for a, b in zip(again.module(x), loaded.module(x)):
        assert torch.equal(a, b)
    # a file with a foreign entry is named by the strict check, not silently filtered
    bad = dict(sd, **{"extra.weight": torch.zeros(1)})
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(ck.CheckpointError):
        ck.load_official_model(tmp_path / "bad.pth", arch="vgg16_features", config=cfg)
