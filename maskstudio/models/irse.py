"""IR-SE residual trunk (the ArcFace-style ResNet with squeeze-and-excitation units).

Shared by the pSp GradualStyleEncoder (:mod:`maskstudio.models.psp`) and the AgileGAN VAE
encoder (:mod:`maskstudio.models.agilegan_encoder`). State-dict names follow the official
checkpoints: ``input_layer.{0,1,2}`` (3x3 conv, BatchNorm, PReLU) and ``body.<i>`` units, each
with ``res_layer.{0..5}`` (BN, 3x3 conv, PReLU, 3x3 conv with the unit's stride, BN, SE) and,
when the width changes, ``shortcut_layer.{0,1}`` (1x1 strided conv + BN). A unit whose width
does not change sub-samples its shortcut with a 1x1 max-pool (no parameters).

Depth presets (units per stage at widths 64/128/256/512): 50 -> 3/4/14/3, 100 -> 3/13/30/3,
152 -> 3/8/36/3. Each stage's first unit has stride 2.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["IRSE_UNITS", "SEModule", "BottleneckIRSE", "IRSETrunk", "stage_tap_indices"]

IRSE_UNITS: dict[int, tuple[int, int, int, int]] = {
    50: (3, 4, 14, 3),
    100: (3, 13, 30, 3),
    152: (3, 8, 36, 3),
}


class SEModule(nn.Module):
    """Squeeze-and-excitation gate: x * sigmoid(fc2(relu(fc1(mean_hw(x))))), 1x1 convs, no bias."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = channels // reduction
        if hidden < 1:
            raise ValueError(f"SE reduction {reduction} too large for {channels} channels")
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=False)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = x.mean(dim=(2, 3), keepdim=True)
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(gate))))
        return x * gate


class _MaxPoolShortcut(nn.Module):
    """Identity-width shortcut: 1x1 max-pool with the unit's stride (plain sub-sampling)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x
        return x[:, :, :: self.stride, :: self.stride]


class BottleneckIRSE(nn.Module):
    """One IR-SE unit: BN -> conv3x3 -> PReLU -> conv3x3(stride) -> BN -> SE, plus shortcut."""

    def __init__(self, in_channels: int, depth: int, stride: int, se_reduction: int = 16) -> None:
        super().__init__()
        if in_channels == depth:
            self.shortcut_layer: nn.Module = _MaxPoolShortcut(stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channels, depth, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(depth),
            )
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, depth, kernel_size=3, stride=1, padding=1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, kernel_size=3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(depth),
            SEModule(depth, se_reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


def stage_tap_indices(units: Sequence[int]) -> list[int]:
    """Index in ``body`` of the last unit of every stage (50 layers: [2, 6, 20, 23])."""
    out, total = [], 0
    for n in units:
        total += int(n)
        out.append(total - 1)
    return out


class IRSETrunk(nn.Module):
    """``input_layer`` + ``body``; :meth:`forward` returns the output of every stage.

    ``units``/``depths`` default to IR-SE-50 (3/4/14/3 units at 64/128/256/512 channels).
    Spatial size halves at each stage: a 256x256 input gives maps at 128, 64, 32, 16.
    """

    def __init__(
        self,
        input_nc: int = 3,
        units: Sequence[int] = IRSE_UNITS[50],
        depths: Sequence[int] = (64, 128, 256, 512),
        se_reduction: int = 16,
    ) -> None:
        super().__init__()
        if len(units) != len(depths) or not units:
            raise ValueError("units and depths must be non-empty and of equal length")
        self.units = tuple(int(u) for u in units)
        self.depths = tuple(int(d) for d in depths)
        self.input_layer = nn.Sequential(
            nn.Conv2d(input_nc, self.depths[0], kernel_size=3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(self.depths[0]),
            nn.PReLU(self.depths[0]),
        )
        modules: list[nn.Module] = []
        in_c = self.depths[0]
        for n_units, depth in zip(self.units, self.depths):
            modules.append(BottleneckIRSE(in_c, depth, 2, se_reduction))
            modules.extend(BottleneckIRSE(depth, depth, 1, se_reduction) for _ in range(n_units - 1))
            in_c = depth
        self.body = nn.Sequential(*modules)
        self.taps = stage_tap_indices(self.units)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the feature map after the last unit of every stage (coarsest last)."""
        x = self.input_layer(x)
        taps = set(self.taps)
        outs = []
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i in taps:
                outs.append(x)
        return outs
