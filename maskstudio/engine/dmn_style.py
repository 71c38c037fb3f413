"""Edits in the DMN's style space: semantic boundaries, per-region styles, given style codes.

The DMN's style code is one global vector (the style encoder ends in a global average pool;
every AdaIN layer takes one γ/β per channel for the whole image). So:

* **Semantic edits** move the cached code along unit boundary normals
  (:mod:`maskstudio.io.style_files`): ``code + value · std · d / (d·n)`` where ``n`` is the
  boundary's normal, ``std`` the training codes' spread along it (slider unit) and ``d = n`` —
  or, with conditional manipulation (InterFaceGAN, default on), ``n`` with the other
  boundaries' normals of the set projected out, so the edit keeps the other attributes'
  linear predictions fixed while its own moves by exactly ``value`` std. Only the generator
  re-runs (the encoding is cached).
* **Per-region styles** render the face once more with each extra style and composite it
  inside its classes with a feathered mask (Gaussian, σ = side/128 px). A code that varies in
  space would need AdaIN parameters per position at the 16×16 bottleneck (256² input), far
  coarser than a lip or an eyebrow, and it changes the statistics every later layer was trained
  on; compositing is exact at the pixel level and costs one generator pass per extra style,
  cached like any face (measured in ``maskstudio bench``; see :func:`spatial_mix_generate` for
  the alternative we measured).
* **Style codes** from a latent file replace the exemplar's encoding (:class:`StyleCode`).
"""
from __future__ import annotations

import json
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from maskstudio.engine.types import REGIONS, Exemplar, StyleCode  # noqa: F401  (REGIONS re-exported)
from maskstudio.errors import RenderError
from maskstudio.labels import NAMES

__all__ = ["REGIONS", "BoundaryIndex", "style_latent_meta", "edit_code", "edit_directions", "feather_alpha", "composite", "dmn_sha256",
           "spatial_mix_generate"]


def dmn_sha256(info) -> str | None:
    """SHA-256 of a file-based DMN's weights (recorded in its JSON), None for in-memory models."""
    if info is None:
        return None
    path = Path(info.path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("sha256")
    except (OSError, ValueError):
        return None


def style_latent_meta(engine, request) -> dict[str, Any]:
    """The JSON sidecar of a DMN style latent written for ``request`` (app and ``render --save-latent``):
    which DMN the codes belong to, and the edits already applied to them."""
    dmn = engine.models.first("dmn")
    return {"dmn": {"id": dmn.id if dmn else None, "sha256": engine.dmn_sha256()},
            "edits": dict(request.style_edits), "conditional": bool(request.style_conditional),
            "note": "edits and per-region styles are already applied to the codes"}


class BoundaryIndex:
    """DMN style boundaries found under the model roots (``<root>/dmn_boundaries/``), and which of
    them fit a given DMN (same code length; same DMN sha when both are known)."""

    def __init__(self, roots) -> None:
        self.roots = list(roots)
        self._lock = threading.Lock()
        self._all: dict[str, Any] | None = None
        self.skipped: list[tuple[Path, str]] = []
        self._sha: dict[tuple[str, float], str | None] = {}

    def rescan(self) -> None:
        with self._lock:
            self._all = None

    def all(self) -> dict[str, Any]:
        from maskstudio.io.style_files import find_boundaries

        with self._lock:
            if self._all is None:
                self._all, self.skipped = find_boundaries(self.roots)
            return self._all

    def sha_of(self, info) -> str | None:
        key = (str(info.path), float(info.mtime))
        if key not in self._sha:
            self._sha[key] = dmn_sha256(info)
        return self._sha[key]

    def for_dmn(self, info, dim: int | None) -> tuple[dict[str, Any], dict[str, str]]:
        """(usable boundaries by name, {name: why not} for the others) for DMN ``info``."""
        if info is None:
            return {}, {n: "no DMN installed" for n in self.all()}
        sha = self.sha_of(info)
        ok, bad = {}, {}
        for name, b in self.all().items():
            if dim is not None and b.dim != dim:
                bad[name] = f"made for a DMN with {b.dim} style values, {info.id} has {dim}"
            elif sha and b.dmn_sha256 and b.dmn_sha256 != sha:
                bad[name] = f"made for DMN {b.meta.get('dmn', {}).get('id', '?')} (another sha256), not {info.id}"
            else:
                ok[name] = b
        return ok, bad


def edit_directions(boundaries: dict[str, Any], names, conditional: bool) -> dict[str, np.ndarray]:
    """Per edited name: the offset per +1 slider unit (float64 [dim]) = std · d / (d·n)."""
    out = {}
    for name in names:
        b = boundaries[name]
        n = np.asarray(b.normal, np.float64)
        d = n
        if conditional:
            others = [np.asarray(o.normal, np.float64) for k, o in sorted(boundaries.items()) if k != name]
            if others:
                q, _ = np.linalg.qr(np.stack(others, 1))
                d = n - q @ (q.T @ n)
        dn = float(d @ n)
        if dn < 1e-6:  # n lies in the span of the others: cannot be edited independently
            raise RenderError(f"style boundary {name!r} cannot be edited with the others held fixed "
                              "(it is a combination of them); turn conditional editing off")
        out[name] = d * (b.std / dn)
    return out


def edit_code(code: torch.Tensor, offsets: dict[str, np.ndarray], edits) -> torch.Tensor:
    """code [B, D(,1,1)] + Σ value · offset (float32 math, result in the code's dtype)."""
    if not edits:
        return code
    total = np.zeros(code.reshape(code.shape[0], -1).shape[1], np.float64)
    for name, v in edits:
        total += v * offsets[name]
    delta = torch.from_numpy(total.astype(np.float32)).to(code.device)
    flat = code.reshape(code.shape[0], -1).float() + delta
    return flat.reshape(code.shape).to(code.dtype)


def _gauss_kernel(sigma: float) -> torch.Tensor:
    r = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def feather_alpha(labels: np.ndarray, classes, size: int, device, sigma_px: float | None = None) -> torch.Tensor:
    """[1,1,S,S] float32 in [0,1]: the classes' region at side ``size``, blurred (σ = size/128)."""
    from maskstudio.engine.pipeline import _resize_labels

    lab = _resize_labels(np.asarray(labels), size)
    m = torch.from_numpy(np.isin(lab, list(classes)).astype(np.float32))[None, None].to(device)
    sigma = sigma_px if sigma_px is not None else size / 128.0
    if sigma <= 0:
        return m
    k = _gauss_kernel(sigma).to(device)
    r = (len(k) - 1) // 2
    m = F.conv2d(F.pad(m, (r, r, 0, 0), mode="replicate"), k.reshape(1, 1, 1, -1))
    m = F.conv2d(F.pad(m, (0, 0, r, r), mode="replicate"), k.reshape(1, 1, -1, 1))
    return m.clamp_(0, 1)


def composite(base: torch.Tensor, layers) -> torch.Tensor:
    """base [1,3,S,S]; layers: [(image [1,3,S,S], alpha [1,1,S,S])] applied in order."""
    out = base.float()
    for img, alpha in layers:
        out = torch.lerp(out, img.float(), alpha)
    return out.to(base.dtype)


def region_groups(region_styles) -> list[tuple[Any, tuple[int, ...]]]:
    """{class: source} -> [(source, classes)] grouped by source key, ordered by first class."""
    groups: dict[str, list] = {}
    for cls in sorted(region_styles):
        src = region_styles[cls]
        groups.setdefault(src.key, [src, []])[1].append(cls)
    return [(src, tuple(cls)) for src, cls in groups.values()]


def row_names(classes) -> tuple[str, ...]:
    return tuple(NAMES[c] for c in classes)


def source_label(src) -> str:
    if isinstance(src, Exemplar):
        return src.name or src.key
    if isinstance(src, StyleCode):
        return src.name or src.key
    return str(src)


@torch.no_grad()
def spatial_mix_generate(net, onehot: torch.Tensor, codes: list[torch.Tensor], weights: list[torch.Tensor]) -> torch.Tensor:
    """The alternative to compositing, measured in ``maskstudio bench``: AdaIN with γ/β that vary
    in space — Σ_k weight_k(x, y) · code_k, the weights (summing to 1, [1,1,S,S]) pooled to each
    AdaIN layer's resolution (the bottleneck, S/2^n_downsample). One generator pass for any number
    of styles. Uses the network's own layers; same result as ``net.generate`` for one code."""
    from maskstudio.models.dense_mapping import _AdaINConv, _AdaINResBlock, _instance_stats_norm

    c = net.cfg.bottleneck_channels
    x = onehot
    k = 0
    for layer in net.model:
        if not isinstance(layer, _AdaINResBlock):
            x = layer(x)
            continue
        h, w = x.shape[-2:]
        wts = [F.adaptive_avg_pool2d(wk.to(x.dtype), (h, w)) for wk in weights]

        def param(j: int, k: int = k, x: torch.Tensor = x, wts: list = wts) -> torch.Tensor:
            return sum(wk * code.reshape(1, -1)[:, (k + j) * c:(k + j + 1) * c, None, None].to(x.dtype)
                       for wk, code in zip(wts, codes))

        y = x
        for u, unit in enumerate(layer.conv_block):
            assert isinstance(unit, _AdaINConv)  # an _AdaINResBlock holds two _AdaINConv units
            beta, gamma = param(2 * u), param(2 * u + 1)
            y = unit.conv(F.pad(y, (1, 1, 1, 1), mode="reflect"))
            y = _instance_stats_norm(y) * gamma + beta
            if unit.relu:
                y = F.relu(y)
        x = x + y
        k += 4
    return x
