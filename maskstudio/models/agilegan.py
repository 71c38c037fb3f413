"""AgileGAN attribute-aware generator (official ``DualGenerator`` key layout).

A StyleGAN2 whose 8..64 px layers exist twice (streams A and B: ``convsA``/``to_rgbsA``,
``convsB``/``to_rgbsB``) after a shared 4×4 stage (``input``, ``conv1``, ``to_rgb1``); the
≥128 px layers (``convsC``/``to_rgbsC``) are shared and run on each stream. One call returns
both images: A is used for female faces, B for male ones. Full size: 235 keys.

Noise indexing (official quirk, reproduced by default): conv1 reads noise entry 0, streams A
and B read entries 1..8 in the usual order, but C block ``k`` reads entries ``2k+1`` and
``2k+2`` again (the 8×8, 16×16, … entries) instead of its own. Therefore the stored noise
buffers (``randomize_noise=False``) only fit when ``official_noise_indexing=False`` (ours: C
block ``k`` then reads the entries of its own resolution). For deterministic official-style
renders use fresh noise from a seeded ``generator`` instead; fresh noise is drawn in the official
order (conv1, all of stream A, all of stream B, then per C block: A, A, B, B).

Each layer was fine-tuned from one layer of the FFHQ StyleGAN2 (:func:`photo_key`), so a
stylisation strength ``s`` < 1 is the parameter blend ``(1-s)·photo + s·style``
(:func:`blend_with_photo`, rendered by :meth:`AgileGANGenerator.render_stored_noise`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from maskstudio.errors import RenderError
from maskstudio.models.registry import key_indices, register_detector
from maskstudio.models.stylegan2 import (
    GeneratorSettings,
    MappingLatents,
    StyledConv,
    ToRGB,
    _int_key_channels,
    _first_param,
    build_stem,
    config_with_channels,
    prepare_latent,
    register_noise_buffers,
    resolve_noise,
)

__all__ = ["AgileGeneratorConfig", "AgileGANGenerator", "BRANCH_MAX_LOG2", "photo_key",
           "blend_with_photo"]

BRANCH_MAX_LOG2 = 6  # streams A/B cover 8..64 px (fixed in the official code)


@dataclass
class AgileGeneratorConfig(GeneratorSettings):
    """``DualGenerator(size, style_dim, n_mlp, channel_multiplier)``; ``channels`` optional.

    Fields, ``generator_config()`` and ``from_dict`` come from
    :class:`~maskstudio.models.stylegan2.GeneratorSettings`."""

    def __post_init__(self) -> None:
        self.channels = _int_key_channels(self.channels)
        self.generator_config()

    def to_dict(self) -> dict[str, Any]:
        return self.generator_config().to_dict()


def _blocks(sd: int, ch: dict[int, int], logs: range) -> tuple[nn.ModuleList, nn.ModuleList]:
    convs, rgbs = nn.ModuleList(), nn.ModuleList()
    for i in logs:
        in_ch, out_ch = ch[2 ** (i - 1)], ch[2 ** i]
        convs.append(StyledConv(in_ch, out_ch, 3, sd, upsample=True))
        convs.append(StyledConv(out_ch, out_ch, 3, sd))
        rgbs.append(ToRGB(out_ch, sd))
    return convs, rgbs


def _check_noise(n: Tensor | None, batch: int, res: int, what: str) -> None:
    if n is None:
        return
    ok = n.ndim == 4 and n.shape[1] == 1 and n.shape[0] in (1, batch) and \
        n.shape[2] in (1, res) and n.shape[3] in (1, res)
    if not ok:
        raise RenderError(
            f"noise for {what} has shape {tuple(n.shape)}, it must broadcast to "
            f"[{batch},1,{res},{res}] (under the official indexing AgileGAN's >=128 px blocks "
            "reuse the 8 px.. noise entries: use randomize_noise=True, [B,1,1,1] entries, or "
            "official_noise_indexing=False)")


class AgileGANGenerator(MappingLatents, nn.Module):
    """AgileGAN ``DualGenerator``.

    ``forward(styles, return_latents=False, inject_index=None, truncation=1,
    truncation_latent=None, input_is_latent=False, noise=None, randomize_noise=True,
    official_noise_indexing=True, generator=None)`` → ``(imageA, imageB, latent | None)``.
    The official inference passes a W+ code [B, n_latent, 512] with ``input_is_latent=True``
    and fresh random noise.
    """

    def __init__(self, cfg: AgileGeneratorConfig):
        super().__init__()
        self.cfg = cfg
        ch = build_stem(self, cfg.generator_config())
        sd = cfg.style_dim
        split = min(self.log_size, BRANCH_MAX_LOG2)
        self.convsA, self.to_rgbsA = _blocks(sd, ch, range(3, split + 1))
        self.convsB, self.to_rgbsB = _blocks(sd, ch, range(3, split + 1))
        self.convsC, self.to_rgbsC = _blocks(sd, ch, range(split + 1, self.log_size + 1))
        self.noises = nn.Module()
        register_noise_buffers(self.noises, self.num_layers)

    # -- latents (get_latent, mean_latent: MappingLatents) -------------------------------------

    def style_codes(self, styles: Any, *, inject_index: int | None = None,
                    truncation: float = 1, truncation_latent: Tensor | float | None = None,
                    input_is_latent: bool = False) -> Tensor:
        return prepare_latent(self.style, self.n_latent, styles, inject_index=inject_index,
                              truncation=truncation, truncation_latent=truncation_latent,
                              input_is_latent=input_is_latent, like=_first_param(self))

    def noise_draw_order(self, batch: int = 1) -> list[tuple[str, tuple[int, int, int, int]]]:
        """(layer name, shape) of every fresh noise draw of one forward, in call order."""
        order = [("conv1.noise", (batch, 1, 4, 4))]
        n_ab = len(self.to_rgbsA)
        for stream in "AB":
            for n in range(2 * n_ab):
                r = 2 ** (n // 2 + 3)
                order.append((f"convs{stream}.{n}.noise", (batch, 1, r, r)))
        for k in range(len(self.to_rgbsC)):
            r = 2 ** (n_ab + 3 + k)
            for _ in "AB":
                order += [(f"convsC.{2 * k + c}.noise", (batch, 1, r, r)) for c in (0, 1)]
        return order

    # -- forward -----------------------------------------------------------------------------

    def forward(self, styles: Any, return_latents: bool = False, inject_index: int | None = None,
                truncation: float = 1, truncation_latent: Tensor | float | None = None,
                input_is_latent: bool = False, noise: Sequence[Tensor | None] | None = None,
                randomize_noise: bool = True, official_noise_indexing: bool = True,
                generator: torch.Generator | None = None
                ) -> tuple[Tensor, Tensor, Tensor | None]:
        latent = self.style_codes(styles, inject_index=inject_index, truncation=truncation,
                                  truncation_latent=truncation_latent,
                                  input_is_latent=input_is_latent)
        noise = resolve_noise(noise, randomize_noise, self.noises, self.num_layers)
        n_ab = len(self.to_rgbsA)
        for k in range(len(self.to_rgbsC)):
            r = 2 ** (n_ab + 3 + k)
            for e in (2 * k + 1, 2 * k + 2) if official_noise_indexing else (
                    2 * (n_ab + k) + 1, 2 * (n_ab + k) + 2):
                _check_noise(noise[e], latent.shape[0], r, f"convsC block {k} (noise entry {e})")

        out = self.input(latent.shape[0])
        out = self.conv1(out, latent[:, 0], noise[0], generator)
        skip = self.to_rgb1(out, latent[:, 1])

        streams = []
        for convs, rgbs in ((self.convsA, self.to_rgbsA), (self.convsB, self.to_rgbsB)):
            o, s = out, skip
            for b, to_rgb in enumerate(rgbs):
                i = 2 * b + 1
                o = convs[2 * b](o, latent[:, i], noise[i], generator)
                o = convs[2 * b + 1](o, latent[:, i + 1], noise[i + 1], generator)
                s = to_rgb(o, latent[:, i + 2], s)
            streams.append([o, s])

        for k, to_rgb in enumerate(self.to_rgbsC):
            i = 2 * (n_ab + k) + 1  # latent slot of this block's first conv
            j = 2 * k + 1 if official_noise_indexing else i  # noise entry (official quirk)
            for st in streams:
                o = self.convsC[2 * k](st[0], latent[:, i], noise[j], generator)
                o = self.convsC[2 * k + 1](o, latent[:, i + 1], noise[j + 1], generator)
                st[0], st[1] = o, to_rgb(o, latent[:, i + 2], st[1])

        (_, image_a), (_, image_b) = streams
        return image_a, image_b, (latent if return_latents else None)

    def render_stored_noise(self, wplus: Tensor, params: dict[str, Tensor] | None = None
                            ) -> tuple[Tensor, Tensor]:
        """(imageA, imageB) from W+ with the stored noise maps, each C block reading the maps of
        its own resolution (the official inference draws fresh noise per call; stored maps make
        renders repeatable and let strength 0 reproduce the photo generator exactly).
        ``params``: replacement tensors, e.g. from :func:`blend_with_photo`."""
        kwargs = dict(input_is_latent=True, randomize_noise=False, official_noise_indexing=False)
        if params is None:
            img_a, img_b, _ = self([wplus], **kwargs)
        else:
            img_a, img_b, _ = torch.func.functional_call(self, params, ([wplus],), kwargs,
                                                         strict=False)
        return img_a, img_b


@register_detector("agilegan_generator")
def _detect(sd: Any) -> dict[str, Any] | None:
    if "convsA.0.conv.weight" not in sd or "conv1.conv.weight" not in sd:
        return None
    n_ab = len(key_indices(sd, r"to_rgbsA\.(\d+)\."))
    n_c = len(key_indices(sd, r"to_rgbsC\.(\d+)\."))
    style_idx = key_indices(sd, r"style\.(\d+)\.weight$")
    channels = {4: int(sd["conv1.conv.weight"].shape[1])}
    for i in range(n_ab):
        channels[2 ** (i + 3)] = int(sd[f"convsA.{2 * i}.conv.weight"].shape[1])
    for i in range(n_c):
        channels[2 ** (i + 3 + n_ab)] = int(sd[f"convsC.{2 * i}.conv.weight"].shape[1])
    cfg = {"size": 2 ** (n_ab + n_c + 2), "style_dim": int(sd["style.1.weight"].shape[0]),
           "n_mlp": len(style_idx)}
    return config_with_channels(cfg, channels)


# --------------------------------------------------------------------------- photo blending


def photo_key(key: str, n_ab: int) -> str:
    """AgileGAN key -> the StyleGAN2 key of the layer it was fine-tuned from (``n_ab``: blocks
    per branch, ``len(to_rgbsA)``)."""
    for branch in ("A", "B"):
        if key.startswith(f"convs{branch}."):
            return "convs." + key[len("convsA."):]
        if key.startswith(f"to_rgbs{branch}."):
            return "to_rgbs." + key[len("to_rgbsA."):]
    if key.startswith("convsC."):
        idx, _, rest = key[len("convsC."):].partition(".")
        return f"convs.{2 * n_ab + int(idx)}.{rest}"
    if key.startswith("to_rgbsC."):
        idx, _, rest = key[len("to_rgbsC."):].partition(".")
        return f"to_rgbs.{n_ab + int(idx)}.{rest}"
    return key


def blend_with_photo(style: "AgileGANGenerator", photo: nn.Module, strength: float, *,
                     style_name: str = "AgileGAN", photo_name: str = "the photo generator"
                     ) -> dict[str, Tensor]:
    """Parameters and noise maps ``(1-s)·photo + s·style`` for ``style`` (a
    ``torch.func.functional_call`` mapping), from the StyleGAN2 ``photo`` it was fine-tuned
    from. RenderError (naming ``style_name`` / ``photo_name``) when a layer has no match."""
    ref: dict[str, Tensor] = dict(photo.named_parameters())
    ref.update((k, b) for k, b in photo.named_buffers() if k.startswith("noises."))
    n_ab = len(style.to_rgbsA)
    out: dict[str, Tensor] = {}
    tensors: list[tuple[str, Tensor]] = list(style.named_parameters())
    tensors += [(k, b) for k, b in style.named_buffers() if k.startswith("noises.")]
    for k, v in tensors:
        pk = photo_key(k, n_ab)
        pv = ref.get(pk)
        if pv is None or pv.shape != v.shape:
            raise RenderError(f"{style_name} does not match {photo_name} ({k} vs {pk}); "
                              "strength < 1 needs matching layers")
        out[k] = torch.lerp(pv.to(v.dtype), v, strength)
    return out
