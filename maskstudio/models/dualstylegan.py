"""DualStyleGAN (exemplar-based style transfer on a StyleGAN2), official key layout.

Keys: ``generator.*`` (a :class:`StyleGAN2Generator`), ``style.{1,2}`` (structure transform
T_s: PixelNorm + 2 equalized linear layers, lr_mul 0.01, fused leaky ReLU) and ``res.{0..n-1}``
(``n = n_latent``): ModRes blocks ``res.0..res.<res_index>`` and colour-transform equalized
linears ``res.<res_index+1>..``.

Per slot ``j`` with weight ``w_j`` (``interp_weights``):

* ``j <= res_index`` (structure): after the conv that consumes slot ``j`` (slot 0: the 4×4 conv,
  else ``generator.convs[j-1]``) ``out ← w_j·R_j(out, T_s(ext)_j) + out`` (skipped when
  ``w_j == 0``);
* ``j > res_index`` (colour): every layer reading slot ``j`` gets
  ``w_j·T_c_j(ext_j) + (1 − w_j)·intrinsic_j``.

Slot ``j`` takes the extrinsic path only if ``use_res`` and ``fuse_index >= max(j, 1)``.
Official full-size model: ``DualStyleGANConfig(size=1024)`` (253 keys).

Style codes: the official ``exstyle_code.npy`` is a dict {style image name: Z+ [1, n, 512]};
our checkpoints store each entry as the extra tensor ``exstyle_code.<name>``
(:func:`style_code_key` / :func:`style_code_name`) and the names in the dict's own key order
in the meta (:func:`style_code_extras`): a style id is the position in that order, as the
official ``--style_id`` (:func:`pick_style_code`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from maskstudio.errors import ConfigError, RenderError
from maskstudio.models.registry import key_indices, register_detector
from maskstudio.models.stylegan2 import (
    ConvLayer,
    EqualLinear,
    GeneratorSettings,
    PixelNorm,
    StyleGAN2Generator,
    _int_key_channels,
    detect_generator_config,
    map_rows,
    resolve_noise,
    to_module,
)

__all__ = ["DualStyleGANConfig", "DualStyleGAN", "AdaptiveInstanceNorm", "AdaResBlock",
           "STYLE_CODE_PREFIX", "OFFICIAL_DEFAULT_STYLE_ID", "style_code_key", "style_code_name",
           "style_code_extras", "style_names", "official_order", "style_codes_from_extras",
           "default_style_id", "pick_style_code"]


class AdaptiveInstanceNorm(nn.Module):
    """``gamma · InstanceNorm(x) + beta`` with ``(gamma, beta) = style(s)`` (plain Linear
    ``style_dim → 2C``; gamma first). Instance statistics per sample, biased variance, eps 1e-5."""

    def __init__(self, channels: int, style_dim: int):
        super().__init__()
        self.style = nn.Linear(style_dim, channels * 2)

    def forward(self, x: Tensor, s: Tensor) -> Tensor:
        gamma, beta = self.style(s).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return gamma * F.instance_norm(x, eps=1e-5) + beta


class AdaResBlock(nn.Module):
    """ModRes block: ``x + w · conv2(norm2(conv(norm(x, s)), s))``; identity when ``w == 0``."""

    def __init__(self, channels: int, style_dim: int = 512):
        super().__init__()
        self.conv = ConvLayer(channels, channels, 3)
        self.conv2 = ConvLayer(channels, channels, 3)
        self.norm = AdaptiveInstanceNorm(channels, style_dim)
        self.norm2 = AdaptiveInstanceNorm(channels, style_dim)

    def forward(self, x: Tensor, s: Tensor, w: float = 1.0) -> Tensor:
        if w == 0:
            return x
        out = self.conv(self.norm(x, s))
        out = self.conv2(self.norm2(out, s))
        return out * w + x


@dataclass
class DualStyleGANConfig(GeneratorSettings):
    """``DualStyleGAN(size, style_dim, n_mlp, channel_multiplier, res_index)``; ``channels``
    replaces the official per-resolution table (as in :class:`StyleGAN2Config`). The generator
    fields, ``generator_config()`` and ``from_dict`` come from
    :class:`~maskstudio.models.stylegan2.GeneratorSettings`."""

    res_index: int = 6

    def __post_init__(self) -> None:
        self.channels = _int_key_channels(self.channels)
        g = self.generator_config()  # validates size / channels
        if not 0 <= self.res_index < g.n_latent:
            raise ConfigError(f"res_index must be in 0..{g.n_latent - 1}, got {self.res_index}")
        last_res = 2 ** ((self.res_index + 5) // 2)
        if last_res > self.size:
            raise ConfigError(f"res_index {self.res_index} needs size >= {last_res}")

    def to_dict(self) -> dict[str, Any]:
        d = self.generator_config().to_dict()
        d["res_index"] = self.res_index
        return d


def _slot_resolution(j: int) -> int:
    """Resolution of the conv that consumes latent slot ``j``."""
    return 2 ** ((j + 5) // 2)


class DualStyleGAN(nn.Module):
    """DualStyleGAN: intrinsic StyleGAN2 path + extrinsic (exemplar style) path.

    ``forward(styles, exstyles, return_latents=False, return_feat=False, inject_index=None,
    truncation=1, truncation_latent=None, input_is_latent=False, noise=None,
    randomize_noise=True, z_plus_latent=False, use_res=True, fuse_index=18,
    interp_weights=None, generator=None)`` → ``(image, latent | None)``, or ``(features,
    rgb_skip)`` with ``return_feat``. ``interp_weights`` defaults to ``[1]*n_latent`` (only the
    first ``n_latent`` entries are read). The official style-transfer settings are truncation
    0.75 with ``truncation_latent=0``, ``interp_weights=[0.75]*7 + [1]*11`` and a clamp of the
    image to [-1, 1] by the caller.
    """

    def __init__(self, cfg: DualStyleGANConfig):
        super().__init__()
        self.cfg = cfg
        gcfg = cfg.generator_config()
        sd = cfg.style_dim
        self.style = nn.Sequential(PixelNorm(),
                                   EqualLinear(sd, sd, lr_mul=0.01, activation=True),
                                   EqualLinear(sd, sd, lr_mul=0.01, activation=True))
        self.generator = StyleGAN2Generator(gcfg)
        self.res_index = cfg.res_index
        self.n_latent = gcfg.n_latent
        ch = gcfg.channel_map()
        self.res = nn.ModuleList()
        for j in range(self.n_latent):
            if j <= cfg.res_index:
                self.res.append(AdaResBlock(ch[_slot_resolution(j)], sd))
            else:
                self.res.append(EqualLinear(sd, sd))

    # -- latents -----------------------------------------------------------------------------

    def map_exstyle(self, exstyle_zplus: Tensor) -> Tensor:
        """Extrinsic style code Z+ [B, L, D] (``exstyle_code.npy`` rows) → W+ through the
        generator's mapping network, row by row (what the official script feeds ``exstyles``)."""
        return map_rows(self.generator.style, to_module(exstyle_zplus, self))

    def preserve_color(self, exstyle_wplus: Tensor, instyle_wplus: Tensor) -> Tensor:
        """The official ``--preserve_color``: the colour slots (``res_index+1..``) of the
        extrinsic W+ code become the intrinsic (photo) code's, so the colour transform works on
        the photo's own colours. (The official script swaps the Z+ rows before the mapping for Z+
        encoders and the W+ rows after it for ``--wplus``; with one mapping both are this.)"""
        out = exstyle_wplus.clone()
        j = self.res_index + 1
        out[:, j:] = instyle_wplus[:, j:].to(out)
        return out

    def structure_codes(self, exstyles: Tensor) -> Tensor:
        """T_s(exstyles) per slot, [B, n_latent, D]."""
        if exstyles.ndim < 3:
            return self.style(exstyles).unsqueeze(1).repeat(1, self.n_latent, 1)
        return map_rows(self.style, exstyles)

    def _weights(self, interp_weights: Any) -> list[float]:
        if interp_weights is None:
            return [1.0] * self.n_latent
        if isinstance(interp_weights, Tensor):
            interp_weights = interp_weights.detach().flatten().tolist()
        w = [float(x) for x in interp_weights]
        if len(w) < self.n_latent:
            raise RenderError(f"interp_weights has {len(w)} entries, DualStyleGAN needs "
                              f"{self.n_latent}")
        return w[: self.n_latent]

    # -- forward -----------------------------------------------------------------------------

    def forward(self, styles: Any, exstyles: Tensor | None, return_latents: bool = False,
                return_feat: bool = False, inject_index: int | None = None,
                truncation: float = 1, truncation_latent: Tensor | float | None = None,
                input_is_latent: bool = False, noise: Sequence[Tensor | None] | None = None,
                randomize_noise: bool = True, z_plus_latent: bool = False, use_res: bool = True,
                fuse_index: int = 18, interp_weights: Any = None,
                generator: torch.Generator | None = None):
        g = self.generator
        latent = g.style_codes(styles, inject_index=inject_index, truncation=truncation,
                               truncation_latent=truncation_latent,
                               input_is_latent=input_is_latent, z_plus_latent=z_plus_latent)
        w = self._weights(interp_weights)
        noise = resolve_noise(noise, randomize_noise, g.noises, g.num_layers)

        n = self.n_latent
        ext = [use_res and fuse_index >= max(j, 1) for j in range(n)]
        codes = [latent[:, j] for j in range(n)]  # style actually fed to each slot's layers
        resstyles = None
        if use_res and any(ext):
            if exstyles is None:
                raise RenderError("DualStyleGAN with use_res=True needs exstyles")
            exstyles = exstyles.to(device=latent.device, dtype=latent.dtype)
            if exstyles.ndim == 3 and exstyles.shape[1] < n:
                raise RenderError(f"exstyles has {exstyles.shape[1]} rows, DualStyleGAN needs {n}")
            resstyles = self.structure_codes(exstyles)
            for j in range(self.res_index + 1, n):
                if ext[j]:
                    e = exstyles[:, j] if exstyles.ndim == 3 else exstyles
                    codes[j] = w[j] * self.res[j](e) + (1 - w[j]) * latent[:, j]

        def modres(out: Tensor, j: int) -> Tensor:
            if ext[j] and j <= self.res_index:
                assert resstyles is not None  # ext[j] implies use_res and any(ext): set above
                return self.res[j](out, resstyles[:, j], w[j])
            return out

        out = g.input(latent.shape[0])
        out = g.conv1(out, codes[0], noise[0], generator)
        out = modres(out, 0)
        skip = g.to_rgb1(out, codes[1])
        i = 1
        for b, to_rgb in enumerate(g.to_rgbs):
            out = g.convs[2 * b](out, codes[i], noise[2 * b + 1], generator)
            out = modres(out, i)
            out = g.convs[2 * b + 1](out, codes[i + 1], noise[2 * b + 2], generator)
            out = modres(out, i + 1)
            skip = to_rgb(out, codes[i + 2], skip)
            i += 2
            if return_feat and i > self.res_index:
                return out, skip
        return skip, (latent if return_latents else None)


@register_detector("dualstylegan")
def _detect(sd: Any) -> dict[str, Any] | None:
    if "generator.conv1.conv.weight" not in sd or not any(k.startswith("res.") for k in sd):
        return None
    cfg = detect_generator_config(sd, "generator.")
    modres = key_indices(sd, r"res\.(\d+)\.conv\.0\.weight$")
    cfg["res_index"] = max(modres) if modres else -1
    return cfg


# --------------------------------------------------------------------------- style codes

#: extra-tensor name of a style image's code in our checkpoints: ``exstyle_code.<image name>``
STYLE_CODE_PREFIX = "exstyle_code."
_CODE_PREFIXES = (STYLE_CODE_PREFIX, "refined_exstyle_code.", "exstyle.")
#: ``--style_id`` default of the official transfer script (used when the stored order is official)
OFFICIAL_DEFAULT_STYLE_ID = 53
#: checkpoint meta: style names in the ``exstyle_code.npy`` dict's own key order, and a marker
#: saying that order is the file's (older installs stored the names sorted)
META_NAMES, META_ORDER, FILE_ORDER = "exstyle_names", "exstyle_order", "file"


def style_code_key(name: str) -> str:
    """``<name>`` -> the extra-tensor key ``exstyle_code.<name>``."""
    return STYLE_CODE_PREFIX + name


def style_code_name(extra_key: str) -> str | None:
    """``exstyle_code.<name>`` -> ``<name>`` (None for other extras)."""
    for prefix in _CODE_PREFIXES:
        if extra_key.startswith(prefix) and len(extra_key) > len(prefix):
            return extra_key[len(prefix):]
    return None


def style_code_extras(codes: Mapping[str, Tensor], n_latent: int | None = None,
                      owner: str = "the generator") -> tuple[dict[str, Tensor], dict[str, Any]]:
    """What a checkpoint stores for the codes of an ``exstyle_code.npy`` (``codes`` in the
    file's own key order, as :func:`~maskstudio.models.checkpoints.load_exstyle_codes` returns
    them): ``(extras, meta)`` = one float32 ``exstyle_code.<name>`` tensor per style image, and
    the names in that order. The official style id is the position in this order (the authors'
    ``destylize.py`` wrote the dict in ``os.listdir`` order, not sorted). ValueError when a code
    has another row count than ``n_latent`` (``owner`` names the generator in the message)."""
    for name, code in codes.items():
        if n_latent is not None and code.shape[1] != int(n_latent):
            raise ValueError(f"style code {name!r} has {code.shape[1]} rows, {owner} needs "
                             f"{int(n_latent)} (codes from another model?)")
    extras = {style_code_key(n): c.to(torch.float32).contiguous() for n, c in codes.items()}
    return extras, {META_NAMES: list(codes), META_ORDER: FILE_ORDER}


def official_order(meta: Mapping[str, Any] | None) -> bool:
    """Whether a checkpoint's style names are stored in the style file's own (official) order."""
    return bool(meta) and meta.get(META_ORDER) == FILE_ORDER  # type: ignore[union-attr]


def style_names(extra_keys: Any, meta: Mapping[str, Any] | None = None) -> list[str]:
    """Style names among ``extra_keys``: in the stored file order when the checkpoint meta has
    it (:func:`style_code_extras`), else sorted (installs from before the order was kept)."""
    names = [n for n in (style_code_name(k) for k in extra_keys) if n is not None]
    stored = list((meta or {}).get(META_NAMES) or [])
    if official_order(meta) and sorted(stored) == sorted(names):
        return [str(n) for n in stored]
    return sorted(names)


def style_codes_from_extras(extras: Mapping[str, Any], n_latent: int, style_dim: int,
                            owner: str = "DualStyleGAN", meta: Mapping[str, Any] | None = None
                            ) -> dict[str, Tensor]:
    """The extrinsic style codes (Z+ [1, n_latent, style_dim]) among a checkpoint's extra
    tensors, by style name, in :func:`style_names` order. ``owner`` starts the RenderError for a
    mis-shaped code."""
    codes: dict[str, Tensor] = {}
    n, d = int(n_latent), int(style_dim)
    by_name = {style_code_name(k): t for k, t in extras.items() if isinstance(t, Tensor)}
    by_name.pop(None, None)
    for name in style_names([style_code_key(str(x)) for x in by_name], meta):
        t = by_name[name]
        if t.dim() == 2 and tuple(t.shape) == (n, d):
            t = t[None]
        if t.dim() != 3 or t.shape[0] != 1 or tuple(t.shape[1:]) != (n, d):
            raise RenderError(f"{owner}: style code {name!r} has shape {list(t.shape)}, "
                              f"expected [1, {n}, {d}]")
        codes[name] = t
    return codes


def default_style_id(n_codes: int, official: bool) -> int:
    """The style used when none is asked for: the official script's default id when the codes
    are in the official order and there are enough of them, else the first."""
    return OFFICIAL_DEFAULT_STYLE_ID if official and n_codes > OFFICIAL_DEFAULT_STYLE_ID else 0


def pick_style_code(codes: Mapping[str, Tensor], code: str | None, owner: str = "DualStyleGAN",
                    *, official: bool = False) -> str:
    """The name of the style code ``code`` asks for: None -> :func:`default_style_id`; a name;
    or a number = the style id, the position in ``codes`` (the official ``--style_id`` when
    ``codes`` are in the file's order). RenderError otherwise."""
    names = list(codes)
    if code is None:
        return names[default_style_id(len(names), official)]
    if code in codes:
        return code
    if code.isdigit() and int(code) < len(names):
        return names[int(code)]
    raise RenderError(f"{owner} has no style code {code!r} "
                      f"(has {len(names)}: {', '.join(names[:5])}...)")
