"""VGG-16 convolutional trunk (torchvision layout) for the Image2StyleGAN perceptual loss.

Loads the torchvision ImageNet VGG-16 weights (``vgg16-397923af.pth``, a bare state dict) by
their own key names ``features.N.weight`` / ``features.N.bias``: ``features`` is the same
sequence as torchvision's (3x3 conv + ReLU, 2x2 max-pool between the blocks), so the indices
line up. Only the layers up to the deepest one the loss reads are built (conv4_2 for the
Image2StyleGAN loss = ``features.19``); the file's deeper convs and its ``classifier.*`` are
dropped on import by this module's :func:`official_filter` (registered per model, like the
detectors).

Input: RGB in [-1, 1] (the generators' range), mapped to [0, 1] and normalised with the
ImageNet mean/std the torchvision weights were trained with. :meth:`VGG16Features.forward`
returns the activations (after ReLU) of the named layers, in the order asked for.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from maskstudio.errors import ConfigError
from maskstudio.models.configs import strict_from_dict
from maskstudio.models.registry import key_indices, register_detector, register_official_filter

__all__ = ["VGG16Config", "VGG16Features", "IMAGE2STYLEGAN_LAYERS", "layer_index", "official_filter"]

#: convs per block of VGG-16 (torchvision configuration "D")
BLOCKS = (2, 2, 3, 3, 3)
#: the layers the Image2StyleGAN perceptual loss reads
IMAGE2STYLEGAN_LAYERS = ("conv1_1", "conv1_2", "conv3_2", "conv4_2")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _layout() -> dict[str, int]:
    """conv name (``conv<block>_<n>``) -> its index in ``features`` (torchvision numbering)."""
    out, i = {}, 0
    for b, n in enumerate(BLOCKS, start=1):
        for c in range(1, n + 1):
            out[f"conv{b}_{c}"] = i
            i += 2  # conv, ReLU
        i += 1  # max-pool
    return out


_LAYOUT = _layout()


def layer_index(name: str) -> int:
    """``features`` index of the conv ``name`` (``"conv3_2"`` -> 12); ConfigError if unknown."""
    try:
        return _LAYOUT[name]
    except KeyError:
        raise ConfigError(f"unknown VGG-16 layer {name!r} (known: {', '.join(_LAYOUT)})") from None


@dataclass
class VGG16Config:
    """``widths``: channels of the five blocks (64, 128, 256, 512, 512 in the ImageNet weights;
    tiny test configs use a few). ``last_layer``: the deepest conv built."""

    widths: tuple[int, ...] = (64, 128, 256, 512, 512)
    last_layer: str = "conv4_2"

    def __post_init__(self) -> None:
        self.widths = tuple(int(w) for w in self.widths)
        if len(self.widths) != len(BLOCKS) or min(self.widths) < 1:
            raise ConfigError(f"VGG16Config: widths needs {len(BLOCKS)} positive entries, got {self.widths}")
        layer_index(self.last_layer)

    def to_dict(self) -> dict[str, Any]:
        return {"widths": list(self.widths), "last_layer": self.last_layer}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "VGG16Config":
        return strict_from_dict(cls, d)


class VGG16Features(nn.Module):
    """``features``: torchvision's VGG-16 ``features`` sequence cut after ``last_layer``'s ReLU."""

    mean: Tensor
    std: Tensor

    def __init__(self, cfg: VGG16Config | None = None) -> None:
        super().__init__()
        self.cfg = cfg or VGG16Config()
        stop = layer_index(self.cfg.last_layer) + 1  # include its ReLU
        layers: list[nn.Module] = []
        in_ch = 3
        for b, n in enumerate(BLOCKS):
            for _ in range(n):
                layers += [nn.Conv2d(in_ch, self.cfg.widths[b], 3, padding=1), nn.ReLU(inplace=False)]
                in_ch = self.cfg.widths[b]
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers[: stop + 1])
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def normalise(self, x: Tensor) -> Tensor:
        """RGB in [-1, 1] -> the ImageNet-normalised input the torchvision weights expect."""
        return ((x + 1.0) * 0.5 - self.mean.to(x)) / self.std.to(x)

    def forward(self, x: Tensor, layers: tuple[str, ...] = IMAGE2STYLEGAN_LAYERS) -> list[Tensor]:
        """Activations (after ReLU) of ``layers`` for RGB ``x`` in [-1, 1], in that order."""
        want = {layer_index(n) + 1: n for n in layers}  # the ReLU after each conv
        if max(want) >= len(self.features):
            raise ConfigError(f"layer(s) {layers} lie deeper than this trunk ({self.cfg.last_layer})")
        got: dict[str, Tensor] = {}
        h = self.normalise(x)
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in want:
                got[want[i]] = h
                if len(got) == len(want):
                    break
        return [got[n] for n in layers]


def _trunk_keys(sd: Mapping[str, Any]) -> list[int]:
    return key_indices(sd, r"features\.(\d+)\.weight$")


@register_official_filter("vgg16_features")
def official_filter(sd: Mapping[str, Tensor], config: Mapping[str, Any] | None = None) -> dict[str, Tensor]:
    """The torchvision file's entries this trunk holds: ``features.N.*`` up to ``last_layer``
    (the deeper convs and ``classifier.*`` are not used by the loss)."""
    last = layer_index(str((config or {}).get("last_layer", VGG16Config.last_layer)))
    out = {}
    for k, v in sd.items():
        if k.startswith("features."):
            idx = int(k.split(".")[1]) if k.split(".")[1].isdigit() else -1
            if 0 <= idx <= last:
                out[k] = v
        elif not k.startswith("classifier."):
            out[k] = v  # anything else stays, so the strict key check names it
    return out


@register_detector("vgg16_features")
def _detect(sd: Mapping[str, Any]) -> dict[str, Any] | None:
    idx = _trunk_keys(sd)
    if not idx or idx[0] != 0 or any(not k.startswith(("features.", "classifier.")) for k in sd):
        return None
    by_index = {i: n for n, i in _LAYOUT.items()}
    if any(i not in by_index for i in idx):
        return None
    widths = []
    for b in range(1, len(BLOCKS) + 1):
        k = f"features.{_LAYOUT[f'conv{b}_1']}.weight"
        if k not in sd:
            break
        widths.append(int(sd[k].shape[0]))
    if len(widths) < len(BLOCKS):  # a cut trunk: unknown widths keep the ImageNet defaults
        widths += list(VGG16Config.widths[len(widths):])
    last = by_index[idx[-1]]
    if layer_index(last) > layer_index(VGG16Config.last_layer):
        last = VGG16Config.last_layer
    return {"widths": widths, "last_layer": last}
