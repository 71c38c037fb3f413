"""``maskstudio mask``: convert and inspect mask files; benchmark the mask document.

    maskstudio mask convert IN OUT [--format label|color] [--size original|working|N|HxW] [--id N]
    maskstudio mask info IN [--json] [--id N]
    maskstudio mask bench [--repeat N] [--json PATH]

``IN`` is a label PNG, a colour PNG (detected from the image mode) or a folder of CelebAMask-HQ
part files (``00000_skin.png`` ...; ``--id`` picks the face when it holds several). ``convert``
keeps the input's size unless ``--size`` says otherwise (``working`` = 512 x 512).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from maskstudio import labels as L
from maskstudio.errors import MaskStudioError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "mask", help="convert / inspect mask files (label PNG, colour PNG, CelebAMask-HQ parts)",
        description="Convert and inspect mask files; benchmark the mask document.",
    )
    sub = p.add_subparsers(dest="mask_command", metavar="ACTION")
    sub.required = True

    c = sub.add_parser("convert", help="convert a mask between formats",
                       description="Convert a mask (label PNG, colour PNG or part folder) to a "
                                   "label or colour PNG.")
    c.add_argument("input", type=Path, metavar="IN", help="mask file or CelebAMask-HQ part folder")
    c.add_argument("output", type=Path, metavar="OUT", help="PNG to write")
    c.add_argument("--format", choices=("label", "color"), default="label",
                   help="label: 8-bit class indices (default); color: RGB palette colours")
    c.add_argument("--size", default="original",
                   help="original (default: the input's size), working (512x512), N or HxW")
    c.add_argument("--id", type=int, default=None, dest="image_id",
                   help="image id in a part folder that holds several faces")
    c.set_defaults(func=convert_handler)

    i = sub.add_parser("info", help="size, classes present and pixel share per class",
                       description="Print a mask's size, the classes present and each one's pixel share.")
    i.add_argument("input", type=Path, metavar="IN")
    i.add_argument("--json", action="store_true", help="print JSON instead of a table")
    i.add_argument("--id", type=int, default=None, dest="image_id")
    i.set_defaults(func=info_handler)

    b = sub.add_parser("bench", help="benchmark brush stroke, flood fill and undo (medians)",
                       description="Benchmark MaskDocument operations on a 512x512 mask.")
    b.add_argument("--repeat", type=int, default=50, help="timed runs per operation (default 50)")
    b.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write results as JSON")
    b.set_defaults(func=bench_handler)


def _parse_size(text: str, original_hw: tuple[int, int]) -> tuple[int, int]:
    from maskstudio.io.masks import WORKING_SIZE

    t = text.strip().lower()
    if t == "original":
        return original_hw
    if t == "working":
        return (WORKING_SIZE, WORKING_SIZE)
    m = re.fullmatch(r"(\d+)(?:x(\d+))?", t)
    if not m:
        raise MaskStudioError(f"--size {text!r}: expected original, working, N or HxW")
    h = int(m.group(1))
    w = int(m.group(2)) if m.group(2) else h
    if not (1 <= h <= 8192 and 1 <= w <= 8192):
        raise MaskStudioError(f"--size {text!r}: sides must be 1..8192")
    return (h, w)


def convert_handler(args: argparse.Namespace) -> int:
    from maskstudio.io.masks import read_mask, write_mask

    mask = read_mask(args.input, image_id=args.image_id, resize=False)
    size_hw = _parse_size(args.size, mask.original_size_hw)
    write_mask(args.output, mask.labels, args.format, size_hw)
    h, w = size_hw
    print(f"{args.output}: {args.format} PNG {w}x{h} (from {mask.source_format} {args.input})")
    return 0


def mask_info(path: Path, image_id: int | None = None) -> dict:
    """What ``mask info`` prints, as a dict (at the file's own size)."""
    from maskstudio.io.masks import read_mask

    mask = read_mask(path, image_id=image_id, resize=False)
    counts = np.bincount(mask.labels.ravel(), minlength=L.NUM_CLASSES)
    total = int(counts.sum())
    h, w = mask.original_size_hw
    return {
        "path": str(path),
        "format": mask.source_format,
        "width": int(w),
        "height": int(h),
        "classes": [
            {"index": int(c), "name": L.NAMES[c], "display": L.DISPLAY_NAMES[c],
             "pixels": int(counts[c]), "share": float(counts[c]) / total}
            for c in range(L.NUM_CLASSES) if counts[c]
        ],
    }


def info_handler(args: argparse.Namespace) -> int:
    info = mask_info(args.input, args.image_id)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['path']}: {info['format']} mask, {info['width']}x{info['height']} px, "
          f"{len(info['classes'])} classes present")
    for c in info["classes"]:
        print(f"  {c['index']:>2} {c['name']:<10} {c['display']:<11} {100 * c['share']:7.3f}%  "
              f"{c['pixels']:>9} px")
    return 0


def bench_handler(args: argparse.Namespace) -> int:
    from maskstudio.bench.mask import run_benchmark, print_report

    if args.repeat < 1:
        raise MaskStudioError("--repeat must be at least 1")
    results = run_benchmark(repeat=args.repeat)
    print_report(results, sys.stdout)
    if args.json is not None:
        from maskstudio.bench.mask import write_json

        write_json(args.json, results)
    return 0
