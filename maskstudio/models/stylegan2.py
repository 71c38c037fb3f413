"""StyleGAN2 generator in the rosinality layout (same state_dict keys as the converted FFHQ
``g_ema``), written from the published description (see ``shared/reference/official_formats.md``).

Plain PyTorch: the up-sampling FIR filter (``upfirdn2d``) and the fused leaky ReLU are pure
tensor ops, so the module runs on any device and dtype (``module.to(device, dtype)``).

The building blocks (:class:`EqualLinear`, :class:`EqualConv2d`, :class:`ModulatedConv2d`,
:class:`StyledConv`, :class:`ToRGB`, :class:`NoiseInjection`, :class:`PixelNorm`,
:func:`fused_leaky_relu`, :func:`upfirdn2d`) are shared with the DualStyleGAN, AgileGAN and pSp
modules.

Latent "slots": the generator consumes ``n_latent = 2·log2(size) − 2`` style vectors. Slot 0
drives the 4×4 conv, slot 1 the 4×4 ToRGB and the first 8×8 conv; block ``b`` (resolution
``2^(b+3)``) uses slots ``2b+1``, ``2b+2`` for its convs and ``2b+3`` for its ToRGB.
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from maskstudio.errors import ConfigError, RenderError
from maskstudio.models.configs import strict_from_dict
from maskstudio.models.registry import key_indices, register_detector

__all__ = [
    "GeneratorSettings",
    "StyleGAN2Config",
    "StyleGAN2Generator",
    "MappingLatents",
    "EqualLinear",
    "EqualConv2d",
    "ConvLayer",
    "ModulatedConv2d",
    "StyledConv",
    "ToRGB",
    "NoiseInjection",
    "PixelNorm",
    "ConstantInput",
    "FusedLeakyReLU",
    "Blur",
    "Upsample",
    "fused_leaky_relu",
    "upfirdn2d",
    "make_fir_kernel",
    "default_channels",
    "prepare_latent",
    "resolve_noise",
    "draw_noise",
    "mean_latent",
    "to_module",
    "map_rows",
    "detect_generator_config",
    "config_with_channels",
]

_SQRT2 = math.sqrt(2.0)
BLUR_KERNEL = (1, 3, 3, 1)


# --------------------------------------------------------------------------- primitives


def fused_leaky_relu(x: Tensor, bias: Tensor | None = None, negative_slope: float = 0.2,
                     scale: float = _SQRT2) -> Tensor:
    """``leaky_relu(x + bias, slope) * scale``; ``bias`` is per channel (dim 1)."""
    if bias is not None:
        shape = [1, bias.shape[0]] + [1] * (x.ndim - 2)
        x = x + bias.view(shape)
    return F.leaky_relu(x, negative_slope) * scale


def upfirdn2d(x: Tensor, kernel: Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> Tensor:
    """Upsample (zero insertion) → pad → FIR filter (true convolution) → downsample.

    ``x`` [N,C,H,W]; ``kernel`` [kh,kw]; ``pad`` = (before, after), used for both axes
    (negative values crop). Same function as the official ``upfirdn2d`` op, computed as one
    depthwise (transposed) convolution.
    """
    c = x.shape[1]
    kh, kw = kernel.shape
    p0, p1 = pad
    k = kernel.to(device=x.device, dtype=x.dtype)
    if up > 1 and kh == kw and kh - 1 - p0 >= 0 and p1 - p0 + up - 1 < up:
        # zero insertion + padding + filter == strided transposed conv with the unflipped
        # kernel, padding kh-1-p0; the output length differs by p1-p0+up-1 (pad or crop).
        extra = p1 - p0 + up - 1
        out = F.conv_transpose2d(x, k.view(1, 1, kh, kw).expand(c, 1, kh, kw), stride=up,
                                 padding=kh - 1 - p0, output_padding=max(extra, 0), groups=c)
        if extra < 0:
            out = out[:, :, : out.shape[-2] + extra, : out.shape[-1] + extra]
        return out[:, :, ::down, ::down] if down > 1 else out
    if up > 1:
        n, _, h, w = x.shape
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(n, c, h * up, w * up)
    if p0 == p1 >= 0:
        padding = p0
    else:
        padding = 0
        x = F.pad(x, (max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)))
        if p0 < 0 or p1 < 0:
            hh, ww = x.shape[-2:]
            x = x[:, :, max(-p0, 0): hh - max(-p1, 0), max(-p0, 0): ww - max(-p1, 0)]
    weight = torch.flip(k, (0, 1)).view(1, 1, kh, kw).expand(c, 1, kh, kw)
    return F.conv2d(x, weight, stride=down, padding=padding, groups=c)


def make_fir_kernel(k: Sequence[float] = BLUR_KERNEL) -> Tensor:
    """Separable FIR kernel ``outer(k, k) / sum`` (entries sum to 1)."""
    t = torch.tensor(k, dtype=torch.float32)
    t = t[None, :] * t[:, None]
    return t / t.sum()


class PixelNorm(nn.Module):
    """``x · rsqrt(mean(x², dim=1) + 1e-8)``."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-8)


class FusedLeakyReLU(nn.Module):
    """Bias + leaky ReLU(0.2) · √2; parameter ``bias`` [C]."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return fused_leaky_relu(x, self.bias)


class Blur(nn.Module):
    """FIR smoothing with buffer ``kernel`` (``× upsample_factor²``) and fixed padding."""

    kernel: Tensor

    def __init__(self, kernel: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        k = make_fir_kernel(kernel)
        if upsample_factor > 1:
            k = k * (upsample_factor ** 2)
        self.register_buffer("kernel", k)
        self.pad = pad

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """×2 FIR up-sampling (ToRGB skip path), buffer ``kernel``."""

    kernel: Tensor

    def __init__(self, kernel: Sequence[float] = BLUR_KERNEL, factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_fir_kernel(kernel) * (factor ** 2))
        p = self.kernel.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class EqualLinear(nn.Module):
    """Equalized-lr linear layer: ``W·lr_mul/√in``, bias ``b·lr_mul``; optional fused lrelu."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = (1.0 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias)

    def extra_repr(self) -> str:
        return (f"{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}, "
                f"activation={self.activation}")


class EqualConv2d(nn.Module):
    """Equalized-lr conv: ``W/√(in·k²)``, zero padding."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size ** 2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride,
                        padding=self.padding)


class ConvLayer(nn.Sequential):
    """``EqualConv2d`` (k//2 padding; no bias when activated) + optional ``FusedLeakyReLU``.

    Keys ``0.weight`` and ``1.bias`` (the rosinality ``ConvLayer`` without down-sampling)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, bias: bool = True,
                 activate: bool = True):
        layers: list[nn.Module] = [EqualConv2d(in_ch, out_ch, kernel_size,
                                               padding=kernel_size // 2,
                                               bias=bias and not activate)]
        if activate:
            layers.append(FusedLeakyReLU(out_ch))
        super().__init__(*layers)


class ModulatedConv2d(nn.Module):
    """Style-modulated conv, one grouped conv for the whole batch.

    ``w = W/√(in·k²) · s`` per sample (``s`` = ``modulation(style)``), optionally demodulated by
    ``rsqrt(Σ w² + 1e-8)``. With ``upsample``: grouped stride-2 transposed conv, then
    :class:`Blur` with pad (1, 1). Modulation/demodulation run in float32 even when the module
    is half precision (the weights are then cast back to the activation dtype).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False,
                 blur_kernel: Sequence[float] = BLUR_KERNEL):
        super().__init__()
        self.in_ch, self.out_ch, self.kernel_size = in_ch, out_ch, kernel_size
        self.upsample = upsample
        self.demodulate = demodulate
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1),
                             upsample_factor=factor)
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size ** 2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)

    def modulated_weight(self, style: Tensor, dtype: torch.dtype) -> Tensor:
        """Per-sample weights [B, out, in, k, k] for styles [B, style_dim]."""
        b = style.shape[0]
        s = self.modulation(style)
        w: Tensor = self.weight
        if w.dtype in (torch.float16, torch.bfloat16):
            s, w = s.float(), w.float()
        w = self.scale * w * s.view(b, 1, self.in_ch, 1, 1)
        if self.demodulate:
            d = torch.rsqrt(w.pow(2).sum(dim=(2, 3, 4)) + 1e-8)
            w = w * d.view(b, self.out_ch, 1, 1, 1)
        return w.to(dtype)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        if x.dtype == torch.float32:
            return self._forward_scaled_activations(x, style)
        return self._forward_grouped(x, style)

    def _forward_scaled_activations(self, x: Tensor, style: Tensor) -> Tensor:
        """The same result as :meth:`_forward_grouped` (within float32 rounding), computed as
        ``conv(x · s, W) · d``: the per-sample scale moves from the weight onto the activations
        and the demodulation onto the output, so the convolution keeps its one fixed weight (no
        [B, out, in, k, k] tensor per call, no grouped conv). About 20-25 % less CPU at the low
        layers of a 1024 generator; used for float32 activations (half precision keeps the
        grouped form, whose per-sample weights stay in range)."""
        b = x.shape[0]
        s = self.modulation(style).float() * self.scale  # [B, in]
        w = self.weight[0].float()  # [out, in, k, k]
        xs = x * s.view(b, self.in_ch, 1, 1)
        if self.upsample:
            out = F.conv_transpose2d(xs, w.transpose(0, 1), padding=0, stride=2)
        else:
            out = F.conv2d(xs, w, padding=self.padding)
        if self.demodulate:
            d = torch.rsqrt(s.pow(2) @ w.pow(2).sum(dim=(2, 3)).t() + 1e-8)  # [B, out]
            out = out * d.view(b, self.out_ch, 1, 1)
        return self.blur(out) if self.upsample else out

    def _forward_grouped(self, x: Tensor, style: Tensor) -> Tensor:
        """Per-sample modulated weights, one grouped conv for the batch (the official layout)."""
        b, c, h, w_ = x.shape
        k = self.kernel_size
        weight = self.modulated_weight(style, x.dtype)
        x = x.reshape(1, b * c, h, w_)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(b * c, self.out_ch, k, k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=b)
            out = out.view(b, self.out_ch, out.shape[-2], out.shape[-1])
            return self.blur(out)
        weight = weight.reshape(b * self.out_ch, c, k, k)
        out = F.conv2d(x, weight, padding=self.padding, groups=b)
        return out.view(b, self.out_ch, out.shape[-2], out.shape[-1])

    def extra_repr(self) -> str:
        return (f"{self.in_ch}, {self.out_ch}, k={self.kernel_size}, upsample={self.upsample}, "
                f"demodulate={self.demodulate}")


def draw_noise(like: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Fresh N(0,1) noise [B,1,H,W] for activations ``like``: drawn in float32 (exactly like
    the official ``new_empty(...).normal_()`` for float32 activations) on the device of
    ``generator`` (default: of ``like``), then moved/cast — so a CPU generator gives the same
    noise on every device."""
    b, _, h, w = like.shape
    device = generator.device if generator is not None else like.device
    n = torch.empty(b, 1, h, w, device=device, dtype=torch.float32)
    n.normal_(generator=generator)
    return n.to(device=like.device, dtype=like.dtype)


class NoiseInjection(nn.Module):
    """``x + weight · noise`` (parameter ``weight`` [1]); noise broadcasts ([1|B,1,1|H,1|W])."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, noise: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        if noise is None:
            noise = draw_noise(x, generator)
        return x + self.weight * noise.to(device=x.device, dtype=x.dtype)


class ConstantInput(nn.Module):
    """Learned 4×4 input ``input`` [1,C,4,4], repeated over the batch."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> Tensor:
        return self.input.expand(batch, -1, -1, -1)


class StyledConv(nn.Module):
    """Modulated conv → noise → bias + leaky ReLU (keys ``conv.*``, ``noise.weight``,
    ``activate.bias``)."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int,
                 upsample: bool = False, blur_kernel: Sequence[float] = BLUR_KERNEL,
                 demodulate: bool = True):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel_size, style_dim, demodulate=demodulate,
                                    upsample=upsample, blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_ch)

    def forward(self, x: Tensor, style: Tensor, noise: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
        out = self.conv(x, style)
        out = self.noise(out, noise, generator)
        return self.activate(out)


class ToRGB(nn.Module):
    """1×1 modulated conv to RGB (no demodulation) + bias + up-sampled skip."""

    def __init__(self, in_ch: int, style_dim: int, upsample: bool = True,
                 blur_kernel: Sequence[float] = BLUR_KERNEL):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_ch, 3, 1, style_dim, demodulate=False)

    def forward(self, x: Tensor, style: Tensor, skip: Tensor | None = None) -> Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


# --------------------------------------------------------------------------- config


def default_channels(channel_multiplier: int = 2) -> dict[int, int]:
    """The official per-resolution channel table."""
    cm = channel_multiplier
    return {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm,
            512: 32 * cm, 1024: 16 * cm}


def _int_key_channels(channels: Any) -> dict[int, int] | None:
    if channels is None:
        return None
    try:
        return {int(k): int(v) for k, v in dict(channels).items()}
    except (TypeError, ValueError) as e:
        raise ConfigError(f"channels must map resolution -> channel count, got {channels!r}") from e


_S = TypeVar("_S", bound="GeneratorSettings")


@dataclass
class GeneratorSettings:
    """The six rosinality ``Generator`` constructor settings, shared by :class:`StyleGAN2Config`
    and the configs of the generators built on it (DualStyleGAN, AgileGAN), which add their own
    fields after these. ``from_dict`` rejects keys that are not fields of the class."""

    size: int = 1024
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    lr_mlp: float = 0.01
    channels: dict[int, int] | None = None

    def generator_config(self) -> "StyleGAN2Config":
        """The equivalent single-stream StyleGAN2 config (validates size and channels)."""
        return StyleGAN2Config(size=self.size, style_dim=self.style_dim, n_mlp=self.n_mlp,
                               channel_multiplier=self.channel_multiplier, lr_mlp=self.lr_mlp,
                               channels=self.channels)

    @classmethod
    def from_dict(cls: type[_S], d: dict[str, Any]) -> _S:
        return strict_from_dict(cls, d)


@dataclass
class StyleGAN2Config(GeneratorSettings):
    """Constructor settings. ``channels`` (resolution → width) replaces the official table."""

    def __post_init__(self) -> None:
        self.channels = _int_key_channels(self.channels)
        log = math.log2(self.size) if self.size > 0 else -1
        if self.size < 4 or log != int(log):
            raise ConfigError(f"StyleGAN2 size must be a power of two >= 4, got {self.size}")
        if self.channels is not None:
            missing = [r for r in self.resolutions if r not in self.channels]
            if missing:
                raise ConfigError(f"channels map lacks resolutions {missing}")

    @property
    def log_size(self) -> int:
        return int(math.log2(self.size))

    @property
    def resolutions(self) -> list[int]:
        return [2 ** i for i in range(2, self.log_size + 1)]

    @property
    def n_latent(self) -> int:
        return self.log_size * 2 - 2

    @property
    def num_layers(self) -> int:
        return (self.log_size - 2) * 2 + 1

    def channel_map(self) -> dict[int, int]:
        table = self.channels if self.channels is not None else default_channels(
            self.channel_multiplier)
        return {r: table[r] for r in self.resolutions}

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "style_dim": self.style_dim, "n_mlp": self.n_mlp,
                "channel_multiplier": self.channel_multiplier, "lr_mlp": self.lr_mlp,
                "channels": None if self.channels is None else dict(self.channels)}


# --------------------------------------------------------------------------- shared logic


def build_mapping(style_dim: int, n_mlp: int, lr_mlp: float) -> nn.Sequential:
    """PixelNorm + ``n_mlp`` equalized linear layers (keys ``1..n_mlp``)."""
    layers: list[nn.Module] = [PixelNorm()]
    for _ in range(n_mlp):
        layers.append(EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation=True))
    return nn.Sequential(*layers)


def map_rows(mapping: Callable[[Tensor], Tensor], codes: Tensor) -> Tensor:
    """Apply a mapping network to every row of [B, L, D] codes (Z+ → W+)."""
    b, n, d = codes.shape
    return mapping(codes.reshape(b * n, d)).reshape(b, n, -1)


def prepare_latent(mapping: Callable[[Tensor], Tensor], n_latent: int, styles: Any, *,
                   inject_index: int | None = None, truncation: float = 1,
                   truncation_latent: Tensor | float | None = None,
                   input_is_latent: bool = False, z_plus_latent: bool = False,
                   like: Tensor | None = None) -> Tensor:
    """Official style preparation: mapping (Z / Z+), truncation, broadcast and two-style
    mixing. Returns the slot codes [B, n_latent, D]. Inputs are moved to the device and dtype
    of ``like`` (the module's parameters) when given."""
    if isinstance(styles, Tensor):
        styles = [styles]
    styles = list(styles)
    if not 1 <= len(styles) <= 2:
        raise RenderError(f"expected one or two style tensors, got {len(styles)}")
    if like is not None:
        styles = [s.to(device=like.device, dtype=like.dtype) for s in styles]
    if not input_is_latent:
        if z_plus_latent:
            styles = [map_rows(mapping, s) if s.ndim == 3 else mapping(s) for s in styles]
        else:
            styles = [mapping(s) for s in styles]
    if truncation < 1:
        t = truncation_latent
        if isinstance(t, Tensor):
            t = t.to(device=styles[0].device, dtype=styles[0].dtype)
        elif t is None:
            raise RenderError("truncation < 1 needs truncation_latent (e.g. mean_latent())")
        styles = [t + truncation * (s - t) for s in styles]
    if len(styles) == 1:
        s = styles[0]
        latent = s.unsqueeze(1).repeat(1, n_latent, 1) if s.ndim < 3 else s
    else:
        if inject_index is None:
            inject_index = random.randint(1, n_latent - 1)
        s0, s1 = styles
        if s0.ndim < 3:
            latent = torch.cat([s0.unsqueeze(1).repeat(1, inject_index, 1),
                                s1.unsqueeze(1).repeat(1, n_latent - inject_index, 1)], 1)
        else:
            latent = torch.cat([s0[:, :inject_index], s1[:, inject_index:]], 1)
    if latent.shape[1] != n_latent:
        raise RenderError(f"style code has {latent.shape[1]} rows, the generator needs {n_latent}")
    return latent


def mean_latent(mapping: nn.Module, style_dim: int, n: int, like: Tensor,
                generator: torch.Generator | None = None) -> Tensor:
    """Mean of ``mapping`` over ``n`` random z ([1, style_dim]); z drawn on the generator's
    device (default: ``like``'s), used on ``like``'s device and dtype."""
    device = generator.device if generator is not None else like.device
    z = torch.randn(n, style_dim, device=device, generator=generator)
    return mapping(z.to(device=like.device, dtype=like.dtype)).mean(0, keepdim=True)


def resolve_noise(noise: Sequence[Tensor | None] | None, randomize_noise: bool,
                  buffers: nn.Module, num_layers: int) -> list[Tensor | None]:
    """Explicit list, stored ``noise_i`` buffers (randomize_noise=False) or ``None`` (draw)."""
    if noise is None:
        if randomize_noise:
            return [None] * num_layers
        return [getattr(buffers, f"noise_{i}") for i in range(num_layers)]
    noise = list(noise)
    if len(noise) < num_layers:
        raise RenderError(f"noise list has {len(noise)} entries, the generator needs {num_layers}")
    return noise


def register_noise_buffers(module: nn.Module, num_layers: int) -> None:
    for i in range(num_layers):
        r = 2 ** ((i + 5) // 2)
        module.register_buffer(f"noise_{i}", torch.randn(1, 1, r, r))


def build_stem(module: MappingLatents, cfg: StyleGAN2Config) -> dict[int, int]:
    """Give ``module`` the size attributes (``size``, ``style_dim``, ``log_size``,
    ``num_layers``, ``n_latent``, ``channels``) and the layers every rosinality-style generator
    starts with, registered (and randomly initialised) in this order: ``style`` (mapping),
    ``input``, ``conv1``, ``to_rgb1``. Returns the channel map."""
    ch = cfg.channel_map()
    sd = cfg.style_dim
    module.size, module.style_dim = cfg.size, sd
    module.log_size = cfg.log_size
    module.num_layers = cfg.num_layers
    module.n_latent = cfg.n_latent
    module.channels = ch
    module.style = build_mapping(sd, cfg.n_mlp, cfg.lr_mlp)
    module.input = ConstantInput(ch[4])
    module.conv1 = StyledConv(ch[4], ch[4], 3, sd)
    module.to_rgb1 = ToRGB(ch[4], sd, upsample=False)
    return ch


def _first_param(module: nn.Module) -> Tensor:
    return next(module.parameters())


def to_module(x: Tensor, module: nn.Module) -> Tensor:
    """``x`` on the device and in the floating dtype of ``module``'s parameters."""
    p = _first_param(module)
    return x.to(device=p.device, dtype=p.dtype)


# --------------------------------------------------------------------------- detection


def config_with_channels(cfg: dict[str, Any], channels: dict[int, int]) -> dict[str, Any]:
    """``cfg`` plus ``channel_multiplier`` when ``channels`` (resolution -> width) is an official
    table (:func:`default_channels`), else plus ``channels`` itself."""
    for cm in (2, 1, 4):
        table = default_channels(cm)
        if all(table.get(r) == c for r, c in channels.items()):
            cfg["channel_multiplier"] = cm
            return cfg
    cfg["channels"] = channels
    return cfg


def detect_generator_config(sd: Any, prefix: str = "") -> dict[str, Any]:
    """StyleGAN2 generator settings from the keys/shapes under ``prefix`` (``""``, ``"decoder."``,
    ``"generator."``…). KeyError/IndexError on a damaged listing."""
    p = re.escape(prefix)
    n_rgb = len(key_indices(sd, p + r"to_rgbs\.(\d+)\."))
    style_idx = key_indices(sd, p + r"style\.(\d+)\.weight$")
    style_dim = int(sd[f"{prefix}style.{style_idx[0]}.weight"].shape[0]) if style_idx else 512
    channels = {4: int(sd[f"{prefix}conv1.conv.weight"].shape[1])}
    for i in range(n_rgb):
        channels[2 ** (i + 3)] = int(sd[f"{prefix}convs.{2 * i}.conv.weight"].shape[1])
    cfg: dict[str, Any] = {"size": 2 ** (n_rgb + 2), "style_dim": style_dim, "n_mlp": len(style_idx)}
    return config_with_channels(cfg, channels)


@register_detector("stylegan2")
def _detect(sd: Any) -> dict[str, Any] | None:
    if "conv1.conv.weight" not in sd or "input.input" not in sd or "convsA.0.conv.weight" in sd:
        return None  # (the AgileGAN two-branch generator has the same stem)
    return detect_generator_config(sd)


# --------------------------------------------------------------------------- generator


class MappingLatents(nn.Module):
    """``get_latent`` / ``mean_latent`` for an ``nn.Module`` generator with a mapping network
    ``style`` and a ``ConstantInput`` ``input``; declares the stem :func:`build_stem` sets up."""

    size: int
    style_dim: int
    log_size: int
    num_layers: int
    n_latent: int
    channels: dict[int, int]
    style: nn.Module
    input: ConstantInput
    conv1: StyledConv
    to_rgb1: ToRGB

    def get_latent(self, z: Tensor) -> Tensor:
        """Mapping network: z [..., 512] → w."""
        return self.style(to_module(z, self))

    def mean_latent(self, n_latent: int = 4096, generator: torch.Generator | None = None) -> Tensor:
        """Mean of the mapping of ``n_latent`` random z, [1, style_dim] (official recipe)."""
        return mean_latent(self.style, self.style_dim, n_latent, self.input.input, generator)


class StyleGAN2Generator(MappingLatents, nn.Module):
    """rosinality ``Generator``: keys ``style.*``, ``input.input``, ``conv1.*``, ``to_rgb1.*``,
    ``convs.*``, ``to_rgbs.*``, ``noises.noise_*``.

    ``forward(styles, return_latents=False, inject_index=None, truncation=1,
    truncation_latent=None, input_is_latent=False, noise=None, randomize_noise=True,
    z_plus_latent=False, generator=None)`` → ``(image, latent | None)`` with the official
    semantics; ``generator`` (ours) is the torch.Generator for fresh noise draws.
    Inputs are cast to the module's dtype; output is unclamped RGB in the module's dtype.
    """

    def __init__(self, cfg: StyleGAN2Config):
        super().__init__()
        self.cfg = cfg
        ch = build_stem(self, cfg)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        register_noise_buffers(self.noises, self.num_layers)
        in_ch = ch[4]
        for i in range(3, self.log_size + 1):
            out_ch = ch[2 ** i]
            self.convs.append(StyledConv(in_ch, out_ch, 3, cfg.style_dim, upsample=True))
            self.convs.append(StyledConv(out_ch, out_ch, 3, cfg.style_dim))
            self.to_rgbs.append(ToRGB(out_ch, cfg.style_dim))
            in_ch = out_ch

    # -- latents (get_latent, mean_latent: MappingLatents) -------------------------------------

    def style_codes(self, styles: Any, *, inject_index: int | None = None,
                    truncation: float = 1, truncation_latent: Tensor | float | None = None,
                    input_is_latent: bool = False, z_plus_latent: bool = False) -> Tensor:
        """The [B, n_latent, D] slot codes the synthesis network would use."""
        return prepare_latent(self.style, self.n_latent, styles, inject_index=inject_index,
                              truncation=truncation, truncation_latent=truncation_latent,
                              input_is_latent=input_is_latent, z_plus_latent=z_plus_latent,
                              like=_first_param(self))

    # -- synthesis ---------------------------------------------------------------------------

    def synthesis(self, latent: Tensor, noise: Sequence[Tensor | None] | None = None,
                  randomize_noise: bool = True,
                  generator: torch.Generator | None = None, *, max_res: int | None = None,
                  check: Callable[[], None] | None = None) -> Tensor:
        """Image from slot codes [B, n_latent, D].

        ``max_res`` stops after the layers of that resolution: the ToRGB skip sum there is a
        valid low-resolution render (previews). ``check()`` runs before every resolution block
        (a cancel check: a superseded 1024² synthesis stops within one block)."""
        noise = resolve_noise(noise, randomize_noise, self.noises, self.num_layers)
        if max_res is None:
            max_res = self.size
        out = self.input(latent.shape[0])
        out = self.conv1(out, latent[:, 0], noise[0], generator)
        skip = self.to_rgb1(out, latent[:, 1])
        i, res = 1, 4
        for b, to_rgb in enumerate(self.to_rgbs):
            if res >= max_res:
                break
            if check is not None:
                check()
            out = self.convs[2 * b](out, latent[:, i], noise[2 * b + 1], generator)
            out = self.convs[2 * b + 1](out, latent[:, i + 1], noise[2 * b + 2], generator)
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2
            res *= 2
        return skip

    def forward(self, styles: Any, return_latents: bool = False, inject_index: int | None = None,
                truncation: float = 1, truncation_latent: Tensor | float | None = None,
                input_is_latent: bool = False, noise: Sequence[Tensor | None] | None = None,
                randomize_noise: bool = True, z_plus_latent: bool = False,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor | None]:
        latent = self.style_codes(styles, inject_index=inject_index, truncation=truncation,
                                  truncation_latent=truncation_latent,
                                  input_is_latent=input_is_latent, z_plus_latent=z_plus_latent)
        image = self.synthesis(latent, noise, randomize_noise, generator)
        return image, (latent if return_latents else None)
