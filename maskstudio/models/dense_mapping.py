"""MaskGAN Dense Mapping Network (clean-room), state_dict-compatible with ``latest_net_G.pth``.

A pix2pixHD "global" generator whose residual blocks use adaptive instance normalisation
(AdaIN), driven by a spatial-aware style encoder: the reference photo is encoded, modulated
twice by SFT layers conditioned on features of the reference mask, pooled and projected to the
AdaIN parameter vector.

Two stages, so a renderer can cache an exemplar's style and only run the generator per stroke::

    net = DenseMappingNetwork(DenseMappingConfig(ngf=64))
    style = net.encode_style(one_hot(ref_mask), ref_image)     # [B, num_adain_params, 1, 1]
    image = net.generate(one_hot(edited_mask), style)          # [B, 3, H, W] in (-1, 1)
    image = net(one_hot(edited_mask), one_hot(ref_mask), ref_image)   # both at once

Inputs: one-hot masks float [B, label_nc, H, W] ({0,1}); the reference image RGB in [-1, 1]
((v/255 - 0.5) / 0.5). H and W must be divisible by 32 (the demo uses 512).

Layout facts (official key names; see shared/reference/official_formats.md §1):
``model.N`` is the generator sequence (reflect-pad 3, 7×7 conv, IN, ReLU; ``n_downsample``
× [3×3 s2 conv, IN, ReLU]; ``n_blocks`` AdaIN residual blocks; ``n_downsample`` × [transposed
3×3 s2 conv, IN, ReLU]; reflect-pad 3, 7×7 conv, tanh). ``enc_label`` and ``enc_style`` have
fixed widths (16→32→64) whatever ``ngf`` is; only the style head's output width
(``num_adain_params`` = n_blocks·2·2·ngf·2^n_downsample, 256·ngf in the official config)
follows ``ngf``. The AdaIN vector is consumed in module order, per AdaIN layer first C values
= shift (β), next C = scale (γ).

Decoder up-sampling (``DenseMappingConfig.upsample``; MaskStudio's v2 option, not in MaskGAN):
``"transpose"`` is the official stride-2 ``ConvTranspose2d`` (keys ``model.N.weight``, shape
[C_in, C_out, 3, 3]) and stays the default, so official checkpoints load unchanged. Its uneven
kernel overlap prints a checkerboard at the 2/4/8/16 px periods. ``"resize_conv"`` is nearest ×2
→ reflect-pad 1 → 3×3 conv (``model.N.conv.weight`` [C_out, C_in, 3, 3]); ``"bilinear_conv"`` is
the same with a bilinear ×2 (same tensors; a bare state dict without our JSON reads as
``"resize_conv"``: the JSON sidecar names the mode); ``"subpixel"`` is
reflect-pad 1 → 3×3 conv to 4·C_out → ``PixelShuffle(2)`` (``model.N.conv.weight``
[4·C_out, C_in, 3, 3]), initialised with ICNR (the four sub-pixel phases start identical, i.e.
as a nearest resize-conv). Every layout keeps the same module indices, so encoders, residual
blocks and the output conv share names and shapes across layouts (see :func:`warm_start`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from maskstudio.errors import ConfigError
from maskstudio.models.configs import strict_from_dict
from maskstudio.models.registry import key_indices, register_detector

__all__ = ["DenseMappingConfig", "DenseMappingNetwork", "one_hot", "warm_start", "SIZE_MULTIPLE",
           "UPSAMPLE_MODES"]

#: spatial sizes must be divisible by this (the encoders downsample 5 times)
SIZE_MULTIPLE = 32
_ENC_WIDTHS = (16, 32, 64)  # fixed in the official encoders
#: decoder up-sampling layouts; "transpose" is the official one
UPSAMPLE_MODES = ("transpose", "resize_conv", "bilinear_conv", "subpixel")


@dataclass(frozen=True)
class DenseMappingConfig:
    """Constructor settings. The official ``latest_net_G.pth`` is the default (ngf 64)."""

    ngf: int = 64
    n_downsample: int = 4
    n_blocks: int = 4
    label_nc: int = 19
    output_nc: int = 3
    #: decoder up-sampling: "transpose" (official), "resize_conv", "bilinear_conv" or "subpixel"
    #: (see module doc)
    upsample: str = "transpose"

    def __post_init__(self) -> None:
        if self.upsample not in UPSAMPLE_MODES:
            raise ConfigError(f"DenseMappingConfig.upsample must be one of {', '.join(UPSAMPLE_MODES)}, "
                              f"got {self.upsample!r}")
        for f in fields(self):
            if f.name == "upsample":
                continue
            v = getattr(self, f.name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"DenseMappingConfig.{f.name} must be a positive integer, got {v!r}")
        if self.n_downsample > 5:
            raise ConfigError(f"DenseMappingConfig.n_downsample must be <= 5, got {self.n_downsample}")

    @property
    def bottleneck_channels(self) -> int:
        return self.ngf * 2 ** self.n_downsample

    @property
    def num_adain_params(self) -> int:
        """Length of the style vector: 2 AdaIN layers per block, β and γ each C wide."""
        return self.n_blocks * 2 * 2 * self.bottleneck_channels

    def to_dict(self) -> dict[str, Any]:
        """Fields as a dict; ``upsample`` only when it is not the official ``"transpose"`` (so
        official-layout configs read exactly as before the option existed)."""
        d = asdict(self)
        if d["upsample"] == "transpose":
            del d["upsample"]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DenseMappingConfig":
        return strict_from_dict(cls, d)


def one_hot(label_map: torch.Tensor, num_classes: int = 19, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Integer label map [B,H,W] (or [H,W]) with values 0..num_classes-1 -> {0,1} [B,C,H,W]."""
    if label_map.dim() == 2:
        label_map = label_map.unsqueeze(0)
    if label_map.dim() != 3:
        raise ConfigError(f"one_hot expects a [B,H,W] label map, got shape {tuple(label_map.shape)}")
    if label_map.is_floating_point():
        raise ConfigError("one_hot expects an integer label map")
    idx = label_map.long()
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= num_classes):
        raise ConfigError(f"label values must be in 0..{num_classes - 1}, "
                          f"got {int(idx.min())}..{int(idx.max())}")
    b, h, w = idx.shape
    out = torch.zeros(b, num_classes, h, w, dtype=dtype, device=idx.device)
    return out.scatter_(1, idx.unsqueeze(1), 1.0)


def _instance_stats_norm(x: torch.Tensor, weight=None, bias=None, eps: float = 1e-5) -> torch.Tensor:
    """Per-sample, per-channel normalisation (biased variance), optional per-sample affine.

    ``weight``/``bias`` are [B, C] (AdaIN) or None. Half types are computed in float32.
    """
    dtype = x.dtype
    if dtype in (torch.float16, torch.bfloat16):
        x = x.float()
        weight = None if weight is None else weight.float()
        bias = None if bias is None else bias.float()
    b, c, h, w = x.shape
    y = F.batch_norm(x.reshape(1, b * c, h, w), None, None,
                     weight=None if weight is None else weight.reshape(b * c),
                     bias=None if bias is None else bias.reshape(b * c),
                     training=True, eps=eps)
    return y.reshape(b, c, h, w).to(dtype)


class _InstanceNorm(nn.Module):
    """InstanceNorm without affine parameters or running statistics (no state_dict entries)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _instance_stats_norm(x)


class _AdaIN(nn.Module):
    """Adaptive instance norm. ``running_mean``/``running_var`` exist only for key compatibility."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        return _instance_stats_norm(x, gamma, beta)


class _AdaINConv(nn.Module):
    """reflect-pad 1 → 3×3 conv → AdaIN (→ ReLU). Children registered norm first (key order)."""

    def __init__(self, channels: int, relu: bool):
        super().__init__()
        self.norm = _AdaIN(channels)
        self.conv = nn.Conv2d(channels, channels, 3, 1, 0)
        self.relu = relu

    def forward(self, x, gamma, beta):
        x = self.conv(F.pad(x, (1, 1, 1, 1), mode="reflect"))
        x = self.norm(x, gamma, beta)
        return F.relu(x) if self.relu else x


class _AdaINResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv_block = nn.ModuleList([_AdaINConv(channels, True), _AdaINConv(channels, False)])

    def forward(self, x, params: list[tuple[torch.Tensor, torch.Tensor]]):
        y = x
        for unit, (gamma, beta) in zip(self.conv_block, params):
            y = unit(y, gamma, beta)
        return x + y


class _EncConv(nn.Module):
    """Encoder unit: reflect pad → conv (→ ReLU); weights at ``.conv``."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, pad: int, relu: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, 0)
        self.pad = pad
        self.relu = relu

    def forward(self, x):
        if self.pad:
            x = F.pad(x, (self.pad,) * 4, mode="reflect")
        x = self.conv(x)
        return F.relu(x) if self.relu else x


class _ResizeConv(nn.Module):
    """Nearest (or bilinear) ×2 → reflect-pad 1 → 3×3 conv (weights at ``.conv``)."""

    def __init__(self, cin: int, cout: int, mode: str = "nearest"):
        super().__init__()
        self.mode = mode
        self.conv = nn.Conv2d(cin, cout, 3, 1, 0)

    def forward(self, x):
        if self.mode == "nearest":
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        else:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return self.conv(F.pad(x, (1, 1, 1, 1), mode="reflect"))


class _SubPixelConv(nn.Module):
    """Reflect-pad 1 → 3×3 conv to 4·C_out → PixelShuffle(2) (weights at ``.conv``), ICNR init."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout * 4, 3, 1, 0)
        icnr_(self.conv.weight, self.conv.bias)

    def forward(self, x):
        return F.pixel_shuffle(self.conv(F.pad(x, (1, 1, 1, 1), mode="reflect")), 2)


@torch.no_grad()
def icnr_(weight: torch.Tensor, bias: torch.Tensor | None = None, scale: int = 2) -> None:
    """ICNR (Aitken et al. 2017) in place: every group of ``scale²`` output channels that
    ``PixelShuffle(scale)`` interleaves gets one shared kernel (Kaiming-uniform as a plain conv's),
    so at init the layer equals a nearest resize followed by a conv — no checkerboard."""
    if weight.is_meta:
        return
    cout4, cin, kh, kw = weight.shape
    r2 = scale * scale
    if cout4 % r2:
        raise ConfigError(f"ICNR: {cout4} output channels are not a multiple of {r2}")
    base = torch.empty(cout4 // r2, cin, kh, kw, dtype=weight.dtype, device=weight.device)
    nn.init.kaiming_uniform_(base, a=5 ** 0.5)  # nn.Conv2d's default
    weight.copy_(base.repeat_interleave(r2, dim=0))  # pixel_shuffle takes channel c*r2 + phase
    if bias is not None:
        bound = 1 / (cin * kh * kw) ** 0.5
        b = torch.empty(cout4 // r2, dtype=bias.dtype, device=bias.device).uniform_(-bound, bound)
        bias.copy_(b.repeat_interleave(r2))


def _up_layer(mode: str, cin: int, cout: int) -> nn.Module:
    if mode == "transpose":
        return nn.ConvTranspose2d(cin, cout, 3, 2, 1, output_padding=1)
    if mode == "resize_conv":
        return _ResizeConv(cin, cout)
    if mode == "bilinear_conv":
        return _ResizeConv(cin, cout, "bilinear")
    return _SubPixelConv(cin, cout)


def _encoder_stem(cin: int, last_relu: bool = True) -> nn.Sequential:
    a, b, c = _ENC_WIDTHS
    return nn.Sequential(_EncConv(cin, a, 7, 1, 3), _EncConv(a, b, 4, 2, 1),
                         _EncConv(b, c, 4, 2, 1, relu=last_relu))


class _LabelEncoder(nn.Module):
    """Reference one-hot -> (fea1 [B,64,H/4,W/4], fea2 [B,64,H/32,W/32])."""

    def __init__(self, label_nc: int):
        super().__init__()
        c = _ENC_WIDTHS[-1]
        self.model = _encoder_stem(label_nc, last_relu=False)  # fea1 is taken before the activation
        self.model_last = nn.Sequential(nn.ReLU(), _EncConv(c, c, 4, 2, 1), _EncConv(c, c, 4, 2, 1),
                                        _EncConv(c, c, 4, 2, 1, relu=False))

    def forward(self, onehot):
        fea1 = self.model(onehot)
        return fea1, self.model_last(fea1)


class _SFT(nn.Module):
    """Spatial feature transform: x·scale(cond) + shift(cond) (plain scale, not 1+scale)."""

    def __init__(self, channels: int):
        super().__init__()
        self.SFT_scale_conv1 = nn.Conv2d(channels, channels, 1)
        self.SFT_scale_conv2 = nn.Conv2d(channels, channels, 1)
        self.SFT_shift_conv1 = nn.Conv2d(channels, channels, 1)
        self.SFT_shift_conv2 = nn.Conv2d(channels, channels, 1)

    def forward(self, x, cond):
        scale = self.SFT_scale_conv2(F.leaky_relu(self.SFT_scale_conv1(cond), 0.1))
        shift = self.SFT_shift_conv2(F.leaky_relu(self.SFT_shift_conv1(cond), 0.1))
        return x * scale + shift


class _StyleEncoder(nn.Module):
    """Reference image + label features -> AdaIN parameter vector [B, n, 1, 1]."""

    def __init__(self, input_nc: int, num_adain_params: int):
        super().__init__()
        c = _ENC_WIDTHS[-1]
        self.model = _encoder_stem(input_nc)
        self.model_middle = nn.Sequential(*[_EncConv(c, c, 4, 2, 1) for _ in range(3)])
        self.model_last = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, num_adain_params, 1))
        self.sft1 = _SFT(c)
        self.sft2 = _SFT(c)

    def forward(self, image, fea1, fea2):
        x = self.sft1(self.model(image), fea1)
        x = self.sft2(self.model_middle(x), fea2)
        return self.model_last(x)


class DenseMappingNetwork(nn.Module):
    """MaskGAN DMN: ``forward(onehot, ref_onehot, ref_image) -> image`` in (-1, 1)."""

    def __init__(self, cfg: DenseMappingConfig | None = None):
        super().__init__()
        cfg = cfg or DenseMappingConfig()
        self.cfg = cfg
        ngf = cfg.ngf
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(cfg.label_nc, ngf, 7), _InstanceNorm(), nn.ReLU()]
        for i in range(cfg.n_downsample):
            m = 2 ** i
            layers += [nn.Conv2d(ngf * m, ngf * m * 2, 3, 2, 1), _InstanceNorm(), nn.ReLU()]
        c = cfg.bottleneck_channels
        self._block_index = list(range(len(layers), len(layers) + cfg.n_blocks))
        layers += [_AdaINResBlock(c) for _ in range(cfg.n_blocks)]
        for i in range(cfg.n_downsample):
            m = 2 ** (cfg.n_downsample - i)
            layers += [_up_layer(cfg.upsample, ngf * m, ngf * m // 2), _InstanceNorm(), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, cfg.output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.enc_style = _StyleEncoder(3, cfg.num_adain_params)
        self.enc_label = _LabelEncoder(cfg.label_nc)

    # -- helpers ---------------------------------------------------------------------------
    @property
    def num_adain_params(self) -> int:
        return self.cfg.num_adain_params

    def _check(self, x: torch.Tensor, channels: int, what: str) -> None:
        if x.dim() != 4 or x.shape[1] != channels:
            raise ConfigError(f"{what} must be [B,{channels},H,W], got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            raise ConfigError(f"{what}: size {h}x{w} is not divisible by {SIZE_MULTIPLE}")

    # -- stages ----------------------------------------------------------------------------
    def encode_label(self, ref_onehot: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Label encoder on the reference one-hot: (fea1 at H/4, fea2 at H/32), 64 channels."""
        self._check(ref_onehot, self.cfg.label_nc, "reference one-hot")
        return self.enc_label(ref_onehot)

    def encode_style(self, ref_onehot: torch.Tensor, ref_image: torch.Tensor) -> torch.Tensor:
        """Style (AdaIN parameter) vector [B, num_adain_params, 1, 1] of an exemplar."""
        self._check(ref_image, 3, "reference image")
        fea1, fea2 = self.encode_label(ref_onehot)
        if ref_image.shape[-2:] != ref_onehot.shape[-2:]:
            raise ConfigError(f"reference image {tuple(ref_image.shape[-2:])} and mask "
                              f"{tuple(ref_onehot.shape[-2:])} sizes differ")
        return self.enc_style(ref_image, fea1, fea2)

    def generate(self, onehot: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Image [B, output_nc, H, W] in (-1, 1) from a one-hot mask and a style vector.

        ``style`` is [B or 1, num_adain_params(, 1, 1)]; a batch of 1 is broadcast.
        """
        self._check(onehot, self.cfg.label_nc, "one-hot mask")
        b = onehot.shape[0]
        style = style.reshape(style.shape[0], -1)
        if style.shape[1] != self.cfg.num_adain_params:
            raise ConfigError(f"style has {style.shape[1]} values, this network needs "
                              f"{self.cfg.num_adain_params}")
        if style.shape[0] != b:
            if style.shape[0] != 1:
                raise ConfigError(f"style batch {style.shape[0]} does not match mask batch {b}")
            style = style.expand(b, -1)
        return self.decode(self.trunk(onehot, style.to(onehot.dtype)))

    @property
    def first_up_index(self) -> int:
        """Index in ``self.model`` of the decoder's first layer (after the last AdaIN block)."""
        return self._block_index[-1] + 1

    def trunk(self, onehot: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """Encoder and AdaIN residual blocks: bottleneck features [B, C, H/2^n, W/2^n] from a
        checked one-hot mask and a [B, num_adain_params] style (use :meth:`generate`)."""
        chunks = style.split(self.cfg.bottleneck_channels, dim=1)  # beta0, gamma0, beta1, gamma1, ...
        x = onehot
        k = 0
        for layer in list(self.model)[:self.first_up_index]:
            if isinstance(layer, _AdaINResBlock):
                x = layer(x, [(chunks[k + 1], chunks[k]), (chunks[k + 3], chunks[k + 2])])
                k += 4
            else:
                x = layer(x)
        return x

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """Decoder: up-sampling stages and output conv, bottleneck features to the image."""
        return self.model[self.first_up_index:](features)

    def decoder_parameters(self) -> list[nn.Parameter]:
        """The parameters :meth:`decode` uses (what a frozen-trunk fine-tune trains)."""
        return list(self.model[self.first_up_index:].parameters())

    def forward(self, onehot: torch.Tensor, ref_onehot: torch.Tensor, ref_image: torch.Tensor) -> torch.Tensor:
        return self.generate(onehot, self.encode_style(ref_onehot, ref_image))


@torch.no_grad()
def warm_start(net: nn.Module, source: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Copy into ``net`` every tensor of ``source`` whose name and shape match (e.g. a
    ``"transpose"`` checkpoint into a ``"resize_conv"`` network: encoders, residual blocks, first
    and output convs carry over; the decoder's up-sampling convs keep their fresh init).

    Returns counts: ``tensors_copied``/``tensors_total`` and ``params_copied``/``params_total``
    (learnable values), plus the names left at init (``not_copied``) and the source tensors
    that found no place (``unused``)."""
    own = net.state_dict()
    params = {n for n, _ in net.named_parameters()}
    copied, not_copied = [], []
    for name, t in own.items():
        src = source.get(name)
        if src is not None and tuple(src.shape) == tuple(t.shape):
            t.copy_(src.to(dtype=t.dtype, device=t.device))
            copied.append(name)
        else:
            not_copied.append(name)
    unused = sorted(k for k in source if k not in set(copied))
    numel = {n: own[n].numel() for n in own}
    return {"tensors_copied": len(copied), "tensors_total": len(own),
            "params_copied": sum(numel[n] for n in copied if n in params),
            "params_total": sum(numel[n] for n in params),
            "not_copied": not_copied, "unused": unused}


@register_detector("maskgan_dmn")
def _detect(sd: Mapping[str, Any]) -> dict[str, Any] | None:
    """Settings of an official ``latest_net_G.pth`` listing (None: not a DMN)."""
    if "enc_style.model_last.1.weight" not in sd or "model.1.weight" not in sd:
        return None
    blocks = key_indices(sd, r"model\.(\d+)\.conv_block\.")
    last = max(key_indices(sd, r"model\.(\d+)\.weight$"))
    w = sd["model.1.weight"]
    cfg: dict[str, Any] = {"ngf": int(w.shape[0]), "n_downsample": (blocks[0] - 4) // 3,
                           "n_blocks": len(blocks), "label_nc": int(w.shape[1]),
                           "output_nc": int(sd[f"model.{last}.weight"].shape[0])}
    up = sd.get(f"model.{blocks[-1] + 1}.conv.weight")  # v2 decoders; official: ConvTranspose
    if up is not None:  # resize_conv [C/2, C, 3, 3]; subpixel [4·C/2, C, 3, 3]
        cfg["upsample"] = "subpixel" if up.shape[0] == 2 * up.shape[1] else "resize_conv"
    return cfg
