"""Multi-scale patch discriminator (pix2pixHD-style) used only while training the DMN.

Each scale is a PatchGAN: 4×4 convs, stride 2 for the first ``n_layers`` layers, instance norm,
LeakyReLU(0.2), a 1-channel patch map at the end. Scale ``k`` sees the input average-pooled
``k`` times. ``forward`` returns, per scale, the list of intermediate activations (the last one
is the patch map) so the trainer can compute feature matching.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class PatchDiscriminatorConfig:
    in_channels: int = 22   # 19 one-hot label channels + 3 image channels
    ndf: int = 32
    n_layers: int = 3
    num_scales: int = 2
    max_channels: int = 256

    def to_dict(self) -> dict:
        return asdict(self)


class PatchDiscriminator(nn.Module):
    def __init__(self, cfg: PatchDiscriminatorConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(nn.Conv2d(cfg.in_channels, cfg.ndf, 4, 2, 2), nn.LeakyReLU(0.2, True))]
        ch = cfg.ndf
        for i in range(1, cfg.n_layers + 1):
            nxt = min(ch * 2, cfg.max_channels)
            stride = 2 if i < cfg.n_layers else 1
            layers.append(nn.Sequential(nn.Conv2d(ch, nxt, 4, stride, 2),
                                        nn.InstanceNorm2d(nxt), nn.LeakyReLU(0.2, True)))
            ch = nxt
        layers.append(nn.Conv2d(ch, 1, 4, 1, 2))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats


class MultiScaleDiscriminator(nn.Module):
    def __init__(self, cfg: PatchDiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or PatchDiscriminatorConfig()
        self.scales = nn.ModuleList([PatchDiscriminator(cfg) for _ in range(cfg.num_scales)])

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i, d in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            out.append(d(x))
        return out


def _mean(losses: list[torch.Tensor]) -> torch.Tensor:
    """Mean of scalar losses, added left to right like ``sum``; there is always at least one scale."""
    if not losses:
        raise ValueError("no discriminator outputs to average")
    total = losses[0]
    for loss in losses[1:]:
        total = total + loss
    return total / len(losses)


def lsgan_loss(outputs: list[list[torch.Tensor]], real: bool) -> torch.Tensor:
    """Least-squares GAN loss over the patch maps of every scale (mean over scales)."""
    target = 1.0 if real else 0.0
    return _mean([F.mse_loss(o[-1], torch.full_like(o[-1], target)) for o in outputs])


def feature_matching_loss(fake: list[list[torch.Tensor]], real: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 between discriminator activations (all but the patch map) of fake and real, averaged."""
    return _mean([F.l1_loss(f, r.detach())
                  for f_scale, r_scale in zip(fake, real)
                  for f, r in zip(f_scale[:-1], r_scale[:-1])])
