"""``maskstudio eval parser|dmn --images DIR --masks DIR`` — score the starter models.

    maskstudio eval parser --images I --masks M [--parser P] [--split split.json --subset val]
    maskstudio eval dmn --images I --masks M [--dmn D] [--parser P] [--size 256]

Images and masks are matched by file stem. ``--split`` restricts to the stems a training run
held out. ``--json PATH`` also writes the numbers.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--images", required=True, type=Path, help="folder of face photos")
    p.add_argument("--masks", required=True, type=Path, help="folder of label PNGs (same stems)")
    p.add_argument("--parser", type=Path, default=None, help="parser checkpoint (default: shipped)")
    p.add_argument("--split", type=Path, default=None, help="split.json of a training run")
    p.add_argument("--subset", default="val", help="which list of --split to use (default: val)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N pairs")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path, default=None, help="also write the metrics as JSON")


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate the face parser or the DMN")
    sub = p.add_subparsers(dest="eval_what", metavar="WHAT", required=True)
    pp = sub.add_parser("parser", help="per-class F1, mean F1, pixel accuracy, mIoU")
    _common(pp)
    pp.add_argument("--flip-tta", action="store_true", help="average with the mirrored image")
    pp.set_defaults(func=_eval_parser)
    pd = sub.add_parser("dmn", help="parse-mIoU of renders (own / different exemplar), L1, PSNR, "
                                    "texture (checkerboard dB, sharpness) vs the real photos")
    _common(pd)
    pd.add_argument("--dmn", type=Path, default=None, help="DMN checkpoint (default: shipped dmn_starter)")
    pd.add_argument("--size", type=int, default=None,
                    help="render size, a multiple of 32 (default: the checkpoint's native size, else 256)")
    pd.set_defaults(func=_eval_dmn)


def _triples(args):
    from maskstudio.training.evaluate import match_folders, stems_from_split

    stems = stems_from_split(args.split, args.subset) if args.split else None
    triples = match_folders(args.images, args.masks, stems)
    return triples[: args.limit] if args.limit else triples


def _parser(args):
    from maskstudio.cli.cmd_parse import default_parser_path
    from maskstudio.settings import resolve_device
    from maskstudio.training.common import load_parser

    return load_parser(args.parser or default_parser_path(), resolve_device(args.device))


def _write_json(path: Path | None, doc: dict) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=1))


def _eval_parser(args) -> int:
    from maskstudio.training.evaluate import evaluate_parser

    triples = _triples(args)
    scores = evaluate_parser(_parser(args), triples, flip_tta=args.flip_tta)
    print(f"{len(triples)} image/mask pairs")
    print(scores.table())
    _write_json(args.json, {"count": len(triples), **scores.to_dict()})
    return 0


def _eval_dmn(args) -> int:
    from maskstudio.errors import ConfigError
    from maskstudio.settings import SHIPPED_CHECKPOINTS, resolve_device
    from maskstudio.training.common import load_dmn
    from maskstudio.training.evaluate import evaluate_dmn, load_pairs_at

    if args.size is not None and args.size % 32:
        raise ConfigError(f"--size {args.size}: must be a multiple of 32")
    triples = _triples(args)
    G, loaded = load_dmn(args.dmn or SHIPPED_CHECKPOINTS / "dmn_starter.safetensors", resolve_device(args.device))
    size = args.size or int(loaded.meta.get("native_size_px") or loaded.meta.get("train", {}).get("size") or 256)
    parser = _parser(args)
    images, masks = load_pairs_at(triples, size)
    from maskstudio.training.metrics import TEXTURE_SIZE_PX

    real = None if size >= TEXTURE_SIZE_PX else load_pairs_at(triples, TEXTURE_SIZE_PX)[0]
    scores = evaluate_dmn(G.to(next(parser.parameters()).device), parser, images, masks, real_images=real)
    print(scores.summary())
    _write_json(args.json, scores.to_dict())
    return 0
