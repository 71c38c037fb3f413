"""``maskstudio parse IMAGE... -o OUT`` — face photos to label PNGs with our face parser.

Any input size; each output ``OUT/<stem>.png`` is an 8-bit label PNG (value = class index) at
the input's size, upright (EXIF orientation). Photos larger than
:data:`maskstudio.io.images.PHOTO_MAX_SIDE` are parsed at that size and the labels scaled back
(nearest neighbour), so memory stays bounded. ``--color`` also writes ``OUT/<stem>.color.png`` in
the display palette.
Under ``torchrun --nproc-per-node N`` the images are split across the N processes (one GPU each).
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
    from maskstudio.io.images import image_size_hw, read_rgb
    from maskstudio.io.masks import resize_nearest

    for img in args.images:
        if not img.is_file():
            raise file_error(ConfigError, img, "no such image file")
    # under torchrun each rank parses its share of the images on its own device
    from maskstudio.training.distributed import shard_for_this_rank

    images, device = shard_for_this_rank(args.images, args.device)
    parser = load_parser(args.parser or default_parser_path(), resolve_device(device or "auto"))
    args.out.mkdir(parents=True, exist_ok=True)
    for img in images:
        rgb = read_rgb(img)  # big photos are shrunk while decoding (bounded memory) ...
        labels = parse_image(parser, rgb, flip_tta=args.flip_tta)
        size_hw = image_size_hw(img)
        if labels.shape != size_hw:  # ... and the labels come back at the photo's size
            labels = resize_nearest(labels, size_hw)
        dst = args.out / f"{img.stem}.png"
        write_label_png(dst, labels)
        if args.color:
            write_color_png(args.out / f"{img.stem}.color.png", labels)
        print(dst)
    return 0
