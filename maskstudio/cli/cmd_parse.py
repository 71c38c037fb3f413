"""``maskstudio parse IMAGE... -o OUT`` — face photos to label PNGs with our face parser.

Any input size; each output ``OUT/<stem>.png`` is an 8-bit label PNG (value = class index) at
the input's size. ``--color`` also writes ``OUT/<stem>.color.png`` in the display palette.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from maskstudio.errors import ConfigError, file_error


def register(subparsers) -> None:
    p = subparsers.add_parser("parse", help="parse face photos into label masks")
    p.add_argument("images", nargs="+", type=Path, help="face photos (aligned, any size)")
    p.add_argument("-o", "--out", required=True, type=Path, help="output folder")
    p.add_argument("--parser", type=Path, default=None,
                   help="parser checkpoint (.safetensors); default: the shipped face_parser")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--flip-tta", action="store_true", help="average with the mirrored image (slower)")
    p.add_argument("--color", action="store_true", help="also write palette-coloured previews")
    p.set_defaults(func=handler)


def default_parser_path() -> Path:
    from maskstudio.settings import SHIPPED_CHECKPOINTS

    return SHIPPED_CHECKPOINTS / "face_parser.safetensors"


def handler(args: argparse.Namespace) -> int:
    from maskstudio.io.masks import write_color_png, write_label_png
    from maskstudio.models.face_parser import parse_image
    from maskstudio.settings import resolve_device
    from maskstudio.training.common import load_parser
    from maskstudio.io.images import read_rgb

    for img in args.images:
        if not img.is_file():
            raise file_error(ConfigError, img, "no such image file")
    parser = load_parser(args.parser or default_parser_path(), resolve_device(args.device))
    args.out.mkdir(parents=True, exist_ok=True)
    for img in args.images:
        rgb = read_rgb(img)
        labels = parse_image(parser, rgb, flip_tta=args.flip_tta)
        dst = args.out / f"{img.stem}.png"
        write_label_png(dst, labels)
        if args.color:
            write_color_png(args.out / f"{img.stem}.color.png", labels)
        print(dst)
    return 0
