"""Local re-render: only the regions whose labels changed are re-synthesised.

Given the photo crop, its parsed (unedited) mask, the edited mask and a DMN render of the
edited mask (whole crop), :func:`local_rerender` keeps the photo's own pixels everywhere except
in the changed region dilated by ``margin_px``, where the render is blended in:

- ``method="feather"`` (the default, chosen by measurement — README "Photo editing"): the
  render's colours are first matched to the photo per class (mean and standard deviation per
  Lab channel of the render's pixels of class c mapped onto the photo's pixels of class c; a
  class the photo lacks is matched on the ring of unchanged pixels around the edit), then
  shifted by a smooth Lab offset field that makes them agree with the photo on the ring of
  unchanged pixels inside the region (local illumination), then alpha-blended with an alpha that is 1 on every changed pixel and falls smoothly to 0 at the
  edge of the dilated region (distance-based smoothstep).
- ``method="poisson"``: :func:`cv2.seamlessClone` (normal clone) of the render into the photo
  over the dilated region.

Either way, pixels outside the dilated region are the photo's, bit for bit (``alpha == 0``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from maskstudio.errors import RenderError

__all__ = ["LocalBlend", "edit_region", "feather_alpha", "match_colours", "local_rerender",
           "default_margin_px", "BLEND_METHODS"]

BLEND_METHODS = ("feather", "poisson")


def default_margin_px(size: int) -> int:
    """Dilation margin for a crop of side ``size``: 12 px at 512² (scaled, at least 3)."""
    return max(3, int(round(12 * size / 512)))


@dataclass(frozen=True, eq=False)
class LocalBlend:
    """The result of a local re-render. ``alpha``: float32 H×W in [0, 1], 0 outside ``region``;
    ``changed``: bool H×W, labels differ; ``region``: bool, ``changed`` dilated by the margin;
    ``fill``: what is composited, ``image = photo·(1 − alpha) + fill·alpha`` (the colour-matched
    render, or the Poisson-cloned pixels) — paste-back composites ``fill`` with ``alpha`` into the
    full photo so the feather is applied once."""

    image: np.ndarray
    alpha: np.ndarray
    changed: np.ndarray
    region: np.ndarray
    fill: np.ndarray

    @property
    def empty(self) -> bool:
        return not bool(self.changed.any())

    @property
    def bbox(self) -> tuple[int, int, int, int] | None:
        """Half-open (y0, x0, y1, x1) of ``region``, None when nothing changed."""
        ys, xs = np.nonzero(self.region)
        if ys.size == 0:
            return None
        return int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1


def edit_region(parsed: np.ndarray, edited: np.ndarray, margin_px: int) -> tuple[np.ndarray, np.ndarray]:
    """``(changed, region)``: where the labels differ, and that dilated by ``margin_px`` (disc)."""
    import cv2

    if parsed.shape != edited.shape:
        raise RenderError(f"local render: edited mask {edited.shape} and parsed mask {parsed.shape} differ in size")
    changed = parsed != edited
    if margin_px <= 0 or not changed.any():
        return changed, changed.copy()
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin_px + 1, 2 * margin_px + 1))
    region = cv2.dilate(changed.view(np.uint8), k) > 0
    return changed, region


def feather_alpha(changed: np.ndarray, margin_px: int) -> np.ndarray:
    """float32 alpha: 1 on ``changed`` and within ~1 px of it, smoothstep down to 0 at distance
    ``margin_px`` from it (exactly 0 beyond, i.e. outside the dilated region)."""
    import cv2

    if not changed.any():
        return np.zeros(changed.shape, np.float32)
    # distance of every pixel to the nearest changed pixel
    d = cv2.distanceTransform((~changed).view(np.uint8), cv2.DIST_L2, 5)
    t = np.clip((margin_px - d) / max(1.0, margin_px - 1.0), 0.0, 1.0)
    a = t * t * (3.0 - 2.0 * t)
    a[changed] = 1.0
    return a.astype(np.float32)


def _lab(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def _rgb(lab: np.ndarray) -> np.ndarray:
    import cv2

    return np.clip(cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _affine(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel gain and offset mapping src's mean/std to dst's (gain clipped to [0.8, 1.25]:
    a larger gain amplifies the render's soft class transitions into coloured fringes)."""
    ms, ss = src.mean(0), src.std(0) + 1e-3
    md, sd = dst.mean(0), dst.std(0) + 1e-3
    g = np.clip(sd / ss, 0.8, 1.25)
    return g, md - g * ms


def _window(region: np.ndarray, pad: int) -> tuple[slice, slice]:
    ys, xs = np.nonzero(region)
    h, w = region.shape
    return (slice(max(0, ys.min() - pad), min(h, ys.max() + 1 + pad)),
            slice(max(0, xs.min() - pad), min(w, xs.max() + 1 + pad)))


def match_colours(render: np.ndarray, photo: np.ndarray, parsed: np.ndarray, edited: np.ndarray,
                  region: np.ndarray, changed: np.ndarray, *, min_px: int = 30) -> np.ndarray:
    """The render with its colours inside ``region`` matched to the photo, per edited class
    (module docstring). Outside ``region`` the render is returned unchanged. Class statistics
    come from a ~128² subsample of the whole images; the rest works in the region's window."""
    import cv2

    out = render.copy()
    if not region.any():
        return out
    sigma = min(32.0, max(2.0, float(np.sqrt(region.sum() / np.pi)) / 2.0))
    win = _window(region, int(2 * sigma) + 1)
    st = max(1, region.shape[0] // 128)
    ren_s, pho_s = _lab(render[::st, ::st]), _lab(photo[::st, ::st])
    ed_s, pa_s = edited[::st, ::st], parsed[::st, ::st]
    ren = _lab(render[win])
    pho = _lab(photo[win])
    reg, chg, ed = region[win], changed[win], edited[win]
    ring = reg & ~chg
    res = ren.copy()
    for c in np.unique(ed[reg]):
        sel = reg & (ed == c)
        src_px, dst_px = ren_s[ed_s == c], pho_s[pa_s == c]
        if len(dst_px) < min_px or len(src_px) < min_px:
            # the photo has no such class: match the render to the photo on the unchanged ring
            src_px, dst_px = ren[ring], pho[ring]
            if len(src_px) < min_px:
                continue
        g, o = _affine(src_px.reshape(-1, 3), dst_px.reshape(-1, 3))
        res[sel] = ren[sel] * g + o
    # local illumination: a smooth Lab offset that makes the matched render agree with the photo
    # on the unchanged ring (normalised Gaussian convolution of the ring's differences)
    if ring.sum() >= min_px:
        # the field is smooth: compute it at 1/4 resolution and interpolate
        h, w = reg.shape
        f = 4 if min(h, w) >= 32 else 1
        hs, ws = max(1, h // f), max(1, w // f)
        wgt = ring.astype(np.float32)
        num = cv2.resize((pho - res) * wgt[..., None], (ws, hs), interpolation=cv2.INTER_AREA)
        den = cv2.resize(wgt, (ws, hs), interpolation=cv2.INTER_AREA)
        num = cv2.GaussianBlur(num, (0, 0), sigma / f)
        den = cv2.GaussianBlur(den, (0, 0), sigma / f)[..., None]
        off: np.ndarray = np.where(den > 1e-4, num / np.maximum(den, 1e-6), 0.0).astype(np.float32)
        off = cv2.resize(off, (w, h), interpolation=cv2.INTER_LINEAR)
        res[reg] += off[reg]
    ow = out[win]
    ow[reg] = _rgb(res[reg][None])[0]
    return out


def _poisson(render: np.ndarray, photo: np.ndarray, region: np.ndarray) -> np.ndarray:
    """cv2.seamlessClone of the render into the photo over ``region`` (padded so the mask never
    touches the image border, where OpenCV's solver misbehaves)."""
    import cv2

    pad = 8
    src = cv2.copyMakeBorder(render, pad, pad, pad, pad, cv2.BORDER_REFLECT101)
    dst = cv2.copyMakeBorder(photo, pad, pad, pad, pad, cv2.BORDER_REFLECT101)
    m = np.zeros(src.shape[:2], np.uint8)
    m[pad:-pad, pad:-pad] = region.view(np.uint8) * 255
    ys, xs = np.nonzero(m)
    # OpenCV centres the mask's bounding box on p: choose p so the region stays in place
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    p = (int(x0 + (x1 - x0) // 2), int(y0 + (y1 - y0) // 2))
    out = cv2.seamlessClone(src, dst, m, p, cv2.NORMAL_CLONE)[pad:-pad, pad:-pad]
    res = photo.copy()
    res[region] = out[region]
    return res


def local_rerender(photo: np.ndarray, parsed: np.ndarray, edited: np.ndarray, render: np.ndarray, *,
                   margin_px: int | None = None, method: str = "feather") -> LocalBlend:
    """Blend ``render`` (the DMN render of ``edited``, same size as ``photo``) into ``photo``
    only where ``edited`` differs from ``parsed``, dilated by ``margin_px``."""
    if method not in BLEND_METHODS:
        raise RenderError(f"local render: unknown blend method {method!r} (one of {', '.join(BLEND_METHODS)})")
    if photo.shape[:2] != parsed.shape or render.shape != photo.shape:
        raise RenderError(f"local render: photo {photo.shape}, parsed mask {parsed.shape} and render "
                          f"{render.shape} must have the same size")
    margin = default_margin_px(photo.shape[0]) if margin_px is None else int(margin_px)
    changed, region = edit_region(parsed, edited, margin)
    if not changed.any():
        return LocalBlend(photo.copy(), np.zeros(parsed.shape, np.float32), changed, region, photo.copy())
    if method == "poisson":
        image = _poisson(render, photo, region)
        alpha = region.astype(np.float32)
        return LocalBlend(image, alpha, changed, region, image)
    alpha = feather_alpha(changed, margin)
    alpha[~region] = 0.0
    matched = match_colours(render, photo, parsed, edited, region, changed)
    win = _window(region, 0)
    a = alpha[win][..., None]
    blended = (a * matched[win].astype(np.float32) + (1.0 - a) * photo[win].astype(np.float32) + 0.5).astype(np.uint8)
    image = photo.copy()
    iw = image[win]
    reg = region[win]
    iw[reg] = blended[reg]
    return LocalBlend(image, alpha, changed, region, matched)
