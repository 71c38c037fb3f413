"""AgileGAN hierarchical VAE encoder (``pretrain/encoder.pt``) + its StyleGAN2 ``decoder``.

The encoder is the pSp GradualStyleEncoder (:mod:`maskstudio.models.psp`) whose per-row codes
go through two shared plain linear maps, ``encoder.fc_mu`` and ``encoder.fc_var`` (512 -> 512,
applied to each of the n_styles rows). Its forward returns ``(sample, logvar, mu)`` with
``sample = eps * exp(0.5 * logvar) + mu`` and eps standard normal, drawn from torch's global
generator unless given. The official inference uses ``mu`` as a Z+ code: each row goes through
the checkpoint's FFHQ mapping network (``decoder.style``) to give the W+ code for the stylised
generator (:meth:`AgileEncoderModel.to_wplus`; no latent_avg, no truncation).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import nn

from maskstudio.models.psp import (
    EncoderTrunkConfig,
    GradualStyleBlock,
    GradualStyleEncoder,
    build_decoder,
    check_decoder_width,
    detect_trunk_config,
    ffhq_decoder_config,
    is_trunk_listing,
    map_rows,
)
from maskstudio.models.registry import register_detector

__all__ = ["AgileEncoderConfig", "VAECodes", "VAEStyleEncoder", "AgileEncoderModel"]


@dataclass
class AgileEncoderConfig(EncoderTrunkConfig):
    """Defaults = the official checkpoint (IR-SE-50, 256 px input, 18 styles, 1024 px decoder).

    Fields, checks and ``to_dict``/``from_dict`` come from
    :class:`~maskstudio.models.psp.EncoderTrunkConfig` (as for ``PSPConfig``), plus ``decoder``.
    """

    decoder: dict[str, Any] | None = field(default_factory=ffhq_decoder_config)


class VAECodes(NamedTuple):
    sample: torch.Tensor
    logvar: torch.Tensor
    mu: torch.Tensor
    eps: torch.Tensor


class VAEStyleEncoder(GradualStyleEncoder):
    """GradualStyleEncoder + ``fc_mu`` / ``fc_var``; forward -> (sample, logvar, mu)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        head = self.styles[0]
        assert isinstance(head, GradualStyleBlock)
        width = head.out_c
        self.fc_mu = nn.Linear(width, width)
        self.fc_var = nn.Linear(width, width)

    def encode(
        self,
        x: torch.Tensor,
        eps: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> VAECodes:
        """All four tensors, eps included. eps: given, or N(0, 1) from ``generator`` / torch's
        global generator (``torch.manual_seed(s)`` first reproduces ``torch.randn(mu.shape)``)."""
        codes = super().forward(x)
        mu = self.fc_mu(codes)
        logvar = self.fc_var(codes)
        std = torch.exp(0.5 * logvar)
        if eps is None:
            eps = torch.randn(std.shape, generator=generator, dtype=std.dtype, device=std.device)
        elif eps.shape != std.shape:
            raise ValueError(f"eps must have shape {tuple(std.shape)}, got {tuple(eps.shape)}")
        eps = eps.to(std)
        return VAECodes(eps * std + mu, logvar, mu, eps)

    def forward(  # type: ignore[override]
        self,
        x: torch.Tensor,
        eps: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The official return value ``(sample, logvar, mu)``."""
        sample, logvar, mu, _ = self.encode(x, eps, generator)
        return sample, logvar, mu


class AgileEncoderModel(nn.Module):
    """The official ``EncoderModel`` layout: ``encoder`` (VAE encoder) + ``decoder`` (StyleGAN2)."""

    def __init__(self, cfg: AgileEncoderConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg or AgileEncoderConfig()
        self.encoder = VAEStyleEncoder.from_config(self.cfg)
        decoder = build_decoder(self.cfg.decoder)
        if decoder is not None:
            check_decoder_width(decoder, self.cfg.style_dim)
            self.decoder = decoder

    @property
    def has_decoder(self) -> bool:
        return "decoder" in self._modules

    def forward(
        self,
        x: torch.Tensor,
        eps: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(sample, logvar, mu), each [B, n_styles, D]. ``eps`` overrides the random draw."""
        return self.encoder(x, eps=eps, generator=generator)

    def encode(
        self,
        x: torch.Tensor,
        eps: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> VAECodes:
        """(sample, logvar, mu, eps) as a named tuple."""
        return self.encoder.encode(x, eps=eps, generator=generator)

    def encode_mu(self, x: torch.Tensor) -> torch.Tensor:
        """mu only (what inference uses), without drawing random numbers."""
        codes = GradualStyleEncoder.forward(self.encoder, x)
        return self.encoder.fc_mu(codes)

    def to_wplus(self, zplus: torch.Tensor, mapping: nn.Module | None = None) -> torch.Tensor:
        """Map every Z+ row through ``decoder.style`` (or ``mapping``) -> W+ [B, n_styles, D]."""
        if mapping is None:
            if not self.has_decoder:
                raise RuntimeError("Z+ -> W+ needs a mapping network: this model has no decoder")
            mapping = self.decoder.style
        return map_rows(mapping, zplus)


@register_detector("agilegan_encoder")
def _detect(sd: Any) -> dict[str, Any] | None:
    if not is_trunk_listing(sd) or "encoder.fc_mu.weight" not in sd:
        return None
    return detect_trunk_config(sd)
