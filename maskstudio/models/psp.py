"""pSp encoder (GradualStyleEncoder on an IR-SE-50 trunk) + its StyleGAN2 ``decoder``.

Loads the official pSp / DualStyleGAN ``encoder.pt`` (Z+ codes) and ``encoder_wplus.pt`` (W+)
state dicts unchanged: keys ``encoder.*`` (this module's :class:`GradualStyleEncoder`) and
``decoder.*`` (a rosinality StyleGAN2 generator, 1024 px for FFHQ). ``latent_avg`` ([n_styles,
512], stored beside the state dict in official files) is not a state-dict entry here either: pass
it to :meth:`PSPEncoderModel.set_latent_avg`.

How the encoder computes (facts from ``shared/reference/official_formats.md``):
the trunk's stage outputs c1 (after unit 6, 128 ch, 1/4 size), c2 (after unit 20, 256 ch, 1/8)
and c3 (after unit 23, 512 ch, 1/16) feed a small FPN: ``p2 = up(c3) + latlayer1(c2)``,
``p1 = up(p2) + latlayer2(c1)`` with bilinear ``align_corners=True`` up-sampling. Style heads
0..2 read c3, 3..6 read p2, 7.. read p1; each is a stack of stride-2 3x3 convs with
LeakyReLU(0.01) down to 1x1, then an equalized linear layer.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from maskstudio.errors import ConfigError
from maskstudio.models.configs import strict_from_dict
from maskstudio.models.irse import IRSE_UNITS, IRSETrunk
from maskstudio.models.registry import key_indices, register_detector
from maskstudio.models.stylegan2 import (
    EqualLinear,
    StyleGAN2Config,
    StyleGAN2Generator,
    detect_generator_config,
    map_rows,
)

__all__ = [
    "EncoderTrunkConfig",
    "ffhq_decoder_config",
    "PSPConfig",
    "GradualStyleBlock",
    "GradualStyleEncoder",
    "PSPEncoderModel",
    "map_rows",
    "prepare_input",
    "detect_trunk_config",
]

LATENT_SPACES = ("zplus", "wplus")
_C = TypeVar("_C", bound="EncoderTrunkConfig")
_E = TypeVar("_E", bound="GradualStyleEncoder")


class GradualStyleBlock(nn.Module):
    """``convs``: log2(spatial) stride-2 3x3 convs each followed by LeakyReLU(0.01); ``linear``."""

    def __init__(self, in_c: int, out_c: int, spatial: int) -> None:
        super().__init__()
        self.out_c = out_c
        num_pools = int(math.log2(spatial))
        if num_pools < 1 or 2**num_pools != spatial:
            raise ValueError(f"style head spatial size must be a power of two >= 2, got {spatial}")
        layers: list[nn.Module] = [nn.Conv2d(in_c, out_c, 3, stride=2, padding=1), nn.LeakyReLU(0.01)]
        for _ in range(num_pools - 1):
            layers += [nn.Conv2d(out_c, out_c, 3, stride=2, padding=1), nn.LeakyReLU(0.01)]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_c, out_c, lr_mul=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x)
        return self.linear(x.reshape(-1, self.out_c))


def _upsample_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y


def ffhq_decoder_config() -> dict[str, Any]:
    """The official FFHQ decoder: a 1024 px rosinality StyleGAN2 generator."""
    return {"size": 1024, "style_dim": 512, "n_mlp": 8, "channel_multiplier": 2}


@dataclass
class EncoderTrunkConfig:
    """Fields, checks and JSON round trip shared by :class:`PSPConfig` and
    :class:`~maskstudio.models.agilegan_encoder.AgileEncoderConfig` (both a GradualStyleEncoder on
    an IR-SE trunk). Subclasses add their own fields after these (``decoder`` last) and may add
    checks in :meth:`_check_extra`; messages start with the subclass's name.
    """

    n_styles: int = 18
    input_nc: int = 3
    input_size: int = 256
    units: tuple[int, ...] = IRSE_UNITS[50]
    depths: tuple[int, ...] = (64, 128, 256, 512)
    se_reduction: int = 16
    coarse_ind: int = 3
    middle_ind: int = 7

    def __post_init__(self) -> None:
        name = type(self).__name__
        self.units = tuple(int(u) for u in self.units)
        self.depths = tuple(int(d) for d in self.depths)
        if len(self.units) != 4 or len(self.depths) != 4:
            raise ConfigError(f"{name}: units and depths need 4 stages")
        self._check_extra()
        if self.input_size % 32 or self.input_size < 32:
            raise ConfigError(f"{name}: input_size must be a multiple of 32, got {self.input_size}")
        if not 0 < self.coarse_ind <= self.middle_ind <= self.n_styles:
            raise ConfigError(f"{name}: need 0 < coarse_ind <= middle_ind <= n_styles")
        decoder = getattr(self, "decoder", None)
        if decoder is not None:  # canonical form (int channel keys, all fields) for JSON round trips
            self.decoder: dict[str, Any] | None = StyleGAN2Config.from_dict(dict(decoder)).to_dict()

    def _check_extra(self) -> None:
        """Subclass checks, run after the stage check and before the size/index checks."""

    @property
    def style_dim(self) -> int:
        return self.depths[-1]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["units"] = list(self.units)
        d["depths"] = list(self.depths)
        return d

    @classmethod
    def from_dict(cls: type[_C], d: dict[str, Any]) -> _C:
        return strict_from_dict(cls, d)


@dataclass
class PSPConfig(EncoderTrunkConfig):
    """pSp encoder settings. Defaults = the official FFHQ checkpoints (IR-SE-50, 256 px, 18 styles).

    ``units``/``depths`` change the trunk (tiny test configs); the style width equals
    ``depths[-1]``. ``latent_space`` says what the encoder emits: ``"zplus"`` (DualStyleGAN
    ``encoder.pt``; each row still has to go through a mapping network) or ``"wplus"``.
    ``decoder`` is a :class:`~maskstudio.models.stylegan2.StyleGAN2Config` dict (None: no decoder).
    """

    latent_space: str = "zplus"
    start_from_latent_avg: bool = True
    decoder: dict[str, Any] | None = field(default_factory=ffhq_decoder_config)

    def _check_extra(self) -> None:
        if self.latent_space not in LATENT_SPACES:
            raise ConfigError(f"PSPConfig: latent_space must be one of {LATENT_SPACES}, got {self.latent_space!r}")


class GradualStyleEncoder(nn.Module):
    """IR-SE trunk + FPN + per-style heads -> codes [B, n_styles, style_dim] (without latent_avg)."""

    def __init__(
        self,
        n_styles: int = 18,
        input_nc: int = 3,
        input_size: int = 256,
        units: tuple[int, ...] = IRSE_UNITS[50],
        depths: tuple[int, ...] = (64, 128, 256, 512),
        se_reduction: int = 16,
        coarse_ind: int = 3,
        middle_ind: int = 7,
    ) -> None:
        super().__init__()
        trunk = IRSETrunk(input_nc, units, depths, se_reduction)
        # Official names: encoder.input_layer.*, encoder.body.* (no "trunk." level).
        self.input_layer = trunk.input_layer
        self.body = trunk.body
        taps = trunk.taps
        self._tap_c1, self._tap_c2, self._tap_c3 = taps[1], taps[2], taps[3]
        self.n_styles = n_styles
        self.coarse_ind = coarse_ind
        self.middle_ind = middle_ind
        width = depths[3]
        s3, s2, s1 = input_size // 16, input_size // 8, input_size // 4
        styles = []
        for i in range(n_styles):
            spatial = s3 if i < coarse_ind else (s2 if i < middle_ind else s1)
            styles.append(GradualStyleBlock(width, width, spatial))
        self.styles = nn.ModuleList(styles)
        self.latlayer1 = nn.Conv2d(depths[2], width, kernel_size=1)
        self.latlayer2 = nn.Conv2d(depths[1], width, kernel_size=1)

    @classmethod
    def from_config(cls: type[_E], cfg: EncoderTrunkConfig) -> _E:
        return cls(cfg.n_styles, cfg.input_nc, cfg.input_size, cfg.units, cfg.depths,
                   cfg.se_reduction, cfg.coarse_ind, cfg.middle_ind)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Trunk taps (c1, c2, c3)."""
        x = self.input_layer(x)
        c1 = c2 = c3 = None
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i == self._tap_c1:
                c1 = x
            elif i == self._tap_c2:
                c2 = x
            elif i == self._tap_c3:
                c3 = x
        assert c1 is not None and c2 is not None and c3 is not None
        return c1, c2, c3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c1, c2, c3 = self.features(x)
        latents = [self.styles[j](c3) for j in range(self.coarse_ind)]
        p2 = _upsample_add(c3, self.latlayer1(c2))
        latents += [self.styles[j](p2) for j in range(self.coarse_ind, self.middle_ind)]
        p1 = _upsample_add(p2, self.latlayer2(c1))
        latents += [self.styles[j](p1) for j in range(self.middle_ind, self.n_styles)]
        return torch.stack(latents, dim=1)


def prepare_input(image: torch.Tensor, size: int = 256) -> torch.Tensor:
    """Bring an RGB batch in [-1, 1] to ``size`` x ``size`` for the encoder.

    Larger images are average-pooled (what DualStyleGAN's transfer script does with a 1024 px
    photo: ``adaptive_avg_pool2d`` to 256); smaller ones are resized bilinearly.
    """
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"expected an RGB batch [B, 3, H, W], got {list(image.shape)}")
    h, w = image.shape[-2:]
    if (h, w) == (size, size):
        return image
    if h >= size and w >= size:
        return F.adaptive_avg_pool2d(image, size)
    return F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False)


def build_decoder(decoder_cfg: dict[str, Any] | None) -> StyleGAN2Generator | None:
    """The StyleGAN2 generator stored under ``decoder.*`` (None: no decoder)."""
    if decoder_cfg is None:
        return None
    return StyleGAN2Generator(StyleGAN2Config.from_dict(dict(decoder_cfg)))


def check_decoder_width(decoder: nn.Module, style_dim: int) -> None:
    """The encoder's code width must equal the decoder's style_dim."""
    dec_dim = int(getattr(decoder, "style_dim", style_dim))
    if dec_dim != style_dim:
        raise ConfigError(f"encoder code width {style_dim} != decoder style_dim {dec_dim}")


class PSPEncoderModel(nn.Module):
    """The official pSp module layout: ``encoder`` (GradualStyleEncoder) + ``decoder`` (StyleGAN2).

    :meth:`encode` gives the raw encoder codes; :meth:`forward` adds ``latent_avg`` when one is
    set and ``start_from_latent_avg`` is true, i.e. returns the code in ``latent_space``
    (Z+ or W+). :meth:`to_wplus` turns such a code into W+ (row-wise mapping for Z+).
    """

    def __init__(self, cfg: PSPConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or PSPConfig()
        self.encoder = GradualStyleEncoder.from_config(self.cfg)
        decoder = build_decoder(self.cfg.decoder)
        if decoder is not None:
            check_decoder_width(decoder, self.cfg.style_dim)
            self.decoder = decoder
        self.register_buffer("latent_avg", None, persistent=False)

    @property
    def has_decoder(self) -> bool:
        return "decoder" in self._modules

    def set_latent_avg(self, latent_avg: torch.Tensor | None) -> None:
        """Set the checkpoint's ``latent_avg`` ([n_styles, D], [1, n_styles, D] or [D]); None clears."""
        if latent_avg is None:
            self.latent_avg = None
            return
        t = latent_avg.detach().to(torch.float32)
        d = self.cfg.style_dim
        if t.dim() == 3 and t.shape[0] == 1:
            t = t[0]
        if t.shape == (d,):
            t = t.expand(self.cfg.n_styles, d).clone()
        if t.shape != (self.cfg.n_styles, d):
                raise ConfigError(
                f"latent_avg must have shape [{self.cfg.n_styles}, {d}] or [{d}], got {list(latent_avg.shape)}"
            )
        ref = next(self.parameters())
        self.latent_avg = t.to(device=ref.device, dtype=ref.dtype)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Raw encoder output [B, n_styles, D] (no latent_avg)."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        codes = self.encoder(x)
        if self.cfg.start_from_latent_avg and self.latent_avg is not None:
            codes = codes + self.latent_avg.to(codes.dtype).unsqueeze(0)
        return codes

    def to_wplus(self, codes: torch.Tensor, mapping: nn.Module | None = None) -> torch.Tensor:
        """W+ from this encoder's codes: identity for ``wplus``; row-wise mapping for ``zplus``.

        ``mapping`` defaults to this checkpoint's ``decoder.style`` (what pSp's own inference
        uses, and what the engine uses for every output, DualStyleGAN included). The official
        DualStyleGAN transfer script maps the Z+ code with the DualStyleGAN's own
        ``generator.style`` instead; pass that as ``mapping`` to follow it.
        """
        if self.cfg.latent_space == "wplus":
            return codes
        if mapping is None:
            if not self.has_decoder:
                raise RuntimeError("Z+ codes need a mapping network: this model has no decoder")
            mapping = self.decoder.style
        return map_rows(mapping, codes)


def detect_trunk_config(sd: Any) -> dict[str, Any]:
    """Encoder trunk settings (+ ``decoder``) of a pSp-layout listing (``encoder.*``,
    ``decoder.*``), shared with the AgileGAN encoder. KeyError/IndexError on a damaged listing."""
    body = key_indices(sd, r"encoder\.body\.(\d+)\.res_layer\.1\.weight$")
    units: list[int] = []
    depths: list[int] = []
    for i in body:
        d = int(sd[f"encoder.body.{i}.res_layer.1.weight"].shape[0])
        if depths and depths[-1] == d:
            units[-1] += 1
        else:
            depths.append(d)
            units.append(1)
    styles = key_indices(sd, r"encoder\.styles\.(\d+)\.linear\.weight$")
    n_convs = [len(key_indices(sd, rf"encoder\.styles\.{i}\.convs\.(\d+)\.weight$")) for i in styles]
    groups = sorted(set(n_convs))
    cfg: dict[str, Any] = {"n_styles": len(styles), "units": units, "depths": depths,
                           "input_nc": int(sd["encoder.input_layer.0.weight"].shape[1])}
    if len(groups) >= 2:
        cfg["coarse_ind"] = n_convs.count(groups[0])
        cfg["middle_ind"] = cfg["coarse_ind"] + n_convs.count(groups[1])
    if groups:
        # the coarsest head reduces the stride-16 map to 1x1 with one stride-2 conv per halving
        cfg["input_size"] = 16 * 2 ** groups[0]
    cfg["decoder"] = detect_generator_config(sd, "decoder.") if "decoder.conv1.conv.weight" in sd else None
    return cfg


def is_trunk_listing(sd: Any) -> bool:
    return any(k.startswith("encoder.body.") for k in sd)


@register_detector("psp_encoder")
def _detect(sd: Any) -> dict[str, Any] | None:
    if not is_trunk_listing(sd) or "encoder.fc_mu.weight" in sd:
        return None  # (fc_mu: the AgileGAN VAE encoder)
    return detect_trunk_config(sd)
