"""``maskstudio align PHOTO -o CROP.png [--size 512] [--json META.json] [--face N]``

Finds the faces in a photo (any size, EXIF orientation honoured), aligns one (0 = the largest,
the default) onto the crop convention of the training data and writes the ``size``² crop.
``--json`` writes the alignment: ``photo_size`` [w, h], ``crop_size``, ``crop_from_photo``
(2×3 affine, photo pixel coords -> crop pixel coords, OpenCV convention: (0, 0) = centre of
the top-left pixel), ``face_box`` [x, y, w, h] and the 5 ``landmarks`` in photo coords.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from maskstudio.errors import ConfigError, MaskFileError, file_error


def register(subparsers) -> None:
    p = subparsers.add_parser("align", help="find and align the face of a photo (writes the crop)",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("photo", type=Path, help="photo (JPEG/PNG/WebP/TIFF, any size)")
    p.add_argument("-o", "--out", required=True, type=Path, help="the aligned crop (.png)")
    p.add_argument("--size", type=int, default=512, help="crop side in pixels (default 512)")
    p.add_argument("--json", type=Path, default=None, help="write the alignment as JSON")
    p.add_argument("--face", type=int, default=0, help="which face: 0 = the largest (default), 1 = next, ...")
    p.add_argument("--device", default="cpu", help="cpu (default) | auto | cuda | cuda:N")
    p.set_defaults(func=handler)


def load_parser_models(device: str = "cpu"):
    """The engine's ModelSet (installed + shipped models) under a device policy."""
    from maskstudio.engine.device import DevicePolicy
    from maskstudio.engine.models import ModelSet
    from maskstudio.settings import Settings

    settings = Settings.from_env(device=device)
    return ModelSet.from_settings(settings, policy=DevicePolicy(device))


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(path)
    except OSError as e:
        raise file_error(MaskFileError, path, f"cannot write ({e})") from e


def handler(args: argparse.Namespace) -> int:
    from maskstudio.cli.cmd_render import write_png
    from maskstudio.photo.edit import open_photo, parser_module

    if not 64 <= args.size <= 4096:
        raise ConfigError(f"--size must be in 64..4096, not {args.size}")
    if args.face < 0:
        raise ConfigError(f"--face must be 0 or more, not {args.face}")
    parser = parser_module(load_parser_models(args.device))
    src = open_photo(args.photo, parser, size=args.size, face=args.face)
    write_png(args.out, src.crop)
    al = src.alignment
    assert al is not None  # open_photo always aligns
    if args.json is not None:
        write_json(args.json, al.to_json())
    print(f"{args.out}: face {al.face_index} of {al.n_faces}, box {al.box.to_list()}, "
          f"angle {al.angle_deg:+.1f}°, scale {al.scale:.3f} crop px per photo px")
    return 0
