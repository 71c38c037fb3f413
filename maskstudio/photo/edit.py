"""A photo edit end to end (Qt-free): open + align + parse, render an edited mask locally,
paste back at full resolution. What the CLI (``align``, ``render --photo``) and the app share.

    src = open_photo("me.jpg", parser)                  # PhotoSource: photo, alignment, crop, parsed
    out = render_edit(engine, src, edited_labels)       # PhotoEditResult: crop, alpha, full photo
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from maskstudio.errors import RenderError
from maskstudio.photo.align import Alignment, align_face, warp_crop
from maskstudio.photo.blend import local_rerender
from maskstudio.photo.paste import paste_back

__all__ = ["PhotoSource", "PhotoEditResult", "open_photo", "source_from_crop", "render_edit",
           "compose_edit", "photo_exemplar", "parser_module"]


@dataclass(frozen=True, eq=False)
class PhotoSource:
    """An opened photo: the full image, its alignment, the aligned crop and the crop's parsed
    (unedited) mask. ``alignment`` is None for a crop opened as is (a 512² face image): then
    the crop *is* the photo and paste-back is the identity."""

    image: np.ndarray
    crop: np.ndarray
    parsed: np.ndarray
    alignment: Alignment | None = None
    path: str = ""
    #: the photo file's bytes as read (projects keep the original file, not a re-encode)
    file_bytes: bytes | None = None

    @property
    def is_photo(self) -> bool:
        return self.alignment is not None

    @property
    def name(self) -> str:
        return Path(self.path).name if self.path else "photo"

    @classmethod
    def from_saved(cls, file_bytes: bytes, name: str, alignment: dict, parsed: np.ndarray) -> "PhotoSource":
        """Rebuild from what a project stores (no parser needed: the parsed mask is stored)."""
        from maskstudio.io.images import read_rgb_full

        rgb = read_rgb_full(name or "photo", data=file_bytes)
        al = Alignment.from_json(alignment)
        if al.photo_size != (rgb.shape[1], rgb.shape[0]):
            raise RenderError(f"{name}: the stored alignment is for a {al.photo_size[0]}×{al.photo_size[1]} photo, "
                              f"the stored photo is {rgb.shape[1]}×{rgb.shape[0]}")
        parsed = np.ascontiguousarray(parsed, dtype=np.uint8)
        if parsed.shape != (al.crop_size, al.crop_size):
            raise RenderError(f"{name}: the stored parsed mask is {parsed.shape}, the crop {al.crop_size}²")
        crop = warp_crop(rgb, al.crop_from_photo, al.crop_size)
        return cls(rgb, crop, parsed, al, name, file_bytes)


@dataclass(frozen=True, eq=False)
class PhotoEditResult:
    crop: np.ndarray          # uint8 S×S×3, the edited crop
    alpha: np.ndarray         # float32 S×S, what of ``fill`` replaced the photo's crop
    fill: np.ndarray          # uint8 S×S×3: crop = photo_crop·(1 − alpha) + fill·alpha
    full: np.ndarray          # uint8 H×W×3 at the photo's size (== crop for a crop source)
    render: np.ndarray        # the DMN's whole-crop render
    whole_face: bool = False


def parser_module(models):
    """The installed face parser's module from an engine :class:`ModelSet`; RenderError if none."""
    info = models.first("parser")
    if info is None:
        raise RenderError("no face parser is installed (the shipped checkpoints/face_parser is missing)")
    return models.load(info.id).module


def _parse_crop(parser, crop: np.ndarray) -> np.ndarray:
    """The crop's unedited mask: exactly what ``maskstudio parse CROP`` writes (no flip TTA), so
    a mask made with ``align`` + ``parse`` and left unedited renders the photo unchanged."""
    from maskstudio.models.face_parser import parse_image

    return parse_image(parser, crop, flip_tta=False)


def open_photo(path: "str | os.PathLike[str]", parser, *, size: int = 512, face: int = 0,
               image: np.ndarray | None = None, data: bytes | None = None, faces=None) -> PhotoSource:
    """Read, align (face ``face``, 0 = largest) and parse a photo. ``image``: already read;
    ``data``: the file's bytes, already read (kept so projects store the original)."""
    from maskstudio.files import read_file_bytes
    from maskstudio.io.images import read_rgb_full

    if data is None and (image is None or (path and os.path.isfile(path))):
        data = read_file_bytes(path, "photo")
    rgb = read_rgb_full(path, data=data) if image is None else image
    al = align_face(rgb, parser, size=size, face=face, faces=faces, name=os.fspath(path) or "photo")
    crop = warp_crop(rgb, al.crop_from_photo, size)
    return PhotoSource(rgb, crop, _parse_crop(parser, crop), al, os.fspath(path), data)


def source_from_crop(crop: np.ndarray, parser=None, parsed: np.ndarray | None = None, path: str = "") -> PhotoSource:
    """A 512²-style crop opened as is (no alignment): the local re-render still applies."""
    if parsed is None:
        if parser is None:
            raise RenderError("a crop without a mask needs the face parser")
        parsed = _parse_crop(parser, crop)
    return PhotoSource(crop, crop, parsed, None, path)


def photo_exemplar(source: PhotoSource):
    """The default style reference of a photo edit: the crop with its parsed mask."""
    from maskstudio.engine.types import Exemplar

    return Exemplar(source.crop, source.parsed, name=Path(source.path).name or "photo")


def compose_edit(source: PhotoSource, edited: np.ndarray, render: np.ndarray | None, *,
                 whole_face: bool = False, method: str = "feather", margin_px: int | None = None,
                 paste: bool = True) -> PhotoEditResult:
    """Put a DMN ``render`` of ``edited`` (any size; resized to the crop) into the photo.
    ``render`` may be None when ``edited`` equals the parsed mask (nothing to re-synthesise).
    The app calls this off the UI thread with the engine's result."""
    crop = source.crop
    s = crop.shape[0]
    if edited.shape != source.parsed.shape:
        raise RenderError(f"edited mask is {edited.shape[1]}×{edited.shape[0]}, the photo crop is "
                          f"{s}×{s}: paint on the aligned crop (maskstudio align + parse)")
    if render is None or (not whole_face and np.array_equal(edited, source.parsed)):
        if whole_face:
            raise RenderError("a whole-face render needs the DMN's image")
        z = np.zeros((s, s), np.float32)
        return PhotoEditResult(crop.copy(), z, crop.copy(), source.image.copy() if paste else crop.copy(),
                               crop.copy(), False)
    if render.shape[:2] != (s, s):
        import cv2

        render = cv2.resize(render, (s, s), interpolation=cv2.INTER_AREA if render.shape[0] > s else cv2.INTER_LINEAR)
    if whole_face:
        out_crop, alpha, fill = render, np.ones((s, s), np.float32), render
    else:
        lb = local_rerender(crop, source.parsed, edited, render, margin_px=margin_px, method=method)
        out_crop, alpha, fill = lb.image, lb.alpha, lb.fill
    if not paste or source.alignment is None:
        return PhotoEditResult(out_crop, alpha, fill, out_crop.copy(), render, whole_face)
    al = source.alignment
    if al.crop_size != s:
        al = al.resized(s)
    full = paste_back(source.image, fill, al.crop_from_photo, alpha)
    return PhotoEditResult(out_crop, alpha, fill, full, render, whole_face)


def render_edit(engine, source: PhotoSource, edited: np.ndarray, *, whole_face: bool = False,
                exemplar=None, method: str = "feather", margin_px: int | None = None,
                paste: bool = True) -> PhotoEditResult:
    """Render ``edited`` (crop coordinates) with the DMN and put it into the photo.

    Local (default): only the changed labels, dilated, are re-synthesised and blended
    (:func:`~maskstudio.photo.blend.local_rerender`); an unedited mask returns the photo itself
    without rendering. ``whole_face``: the whole crop is the render. ``exemplar``: another
    :class:`~maskstudio.engine.types.Exemplar` as the style (default: the photo crop with its
    parsed mask). ``paste``: also composite into the full photo (else ``full`` is the crop)."""
    from maskstudio.engine.types import RenderRequest

    s = source.crop.shape[0]
    render = None
    if whole_face or edited.shape != source.parsed.shape or not np.array_equal(edited, source.parsed):
        if edited.shape != source.parsed.shape:
            return compose_edit(source, edited, None)  # raises the size message
        ex = exemplar if exemplar is not None else photo_exemplar(source)
        res = engine.render_sync(RenderRequest(edited, ex, output="face", size_px=s))
        if not res.ok:
            raise RenderError(f"render failed: {res.error}")
        render = res.image
    return compose_edit(source, edited, render, whole_face=whole_face, method=method, margin_px=margin_px,
                        paste=paste)
