"""``maskstudio render --photo PHOTO --mask EDITED.png -o OUT.png [--whole-face] [--exemplar E]``

Aligns PHOTO exactly as ``maskstudio align`` does (same ``--size``, ``--face``), parses the crop
for the unedited mask, renders EDITED (crop coordinates, as ``align`` + ``parse`` produced it)
with the DMN — locally: only the changed labels, dilated, are re-synthesised and blended — with
the photo crop as the exemplar (unless ``--exemplar``), pastes the crop back and writes OUT at
the photo's size. EDITED equal to the parsed mask gives OUT equal to the (decoded) photo.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from maskstudio.errors import ConfigError, MaskFileError, RenderError, file_error


def add_photo_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("photo editing (--photo)")
    g.add_argument("--photo", type=Path, default=None,
                   help="edit this photo: align it, render --mask (crop coords) locally, paste back at full size")
    g.add_argument("--whole-face", action="store_true",
                   help="with --photo: re-render the whole crop instead of only the changed regions")
    g.add_argument("--face", type=int, default=0, help="with --photo: which face (0 = the largest)")
    g.add_argument("--blend", choices=("feather", "poisson"), default="feather",
                   help="with --photo: how a local re-render is blended (default feather)")
    g.add_argument("--margin", type=int, default=None, metavar="PX",
                   help="with --photo: dilation of the changed region in crop px (default 12 at 512)")
    g.add_argument("--save-crop", type=Path, default=None, metavar="CROP.png",
                   help="with --photo: also write the edited crop alone")


def photo_handler(args: argparse.Namespace) -> int:
    from maskstudio.cli.cmd_render import load_exemplar, read_labels, write_png
    from maskstudio.engine.pipeline import Engine
    from maskstudio.photo.edit import open_photo, parser_module, render_edit
    from maskstudio.settings import Settings

    masks = args.mask if isinstance(args.mask, list) else [args.mask]
    if len(masks) != 1 or masks[0].is_dir():
        raise ConfigError(f"{' '.join(map(str, masks))}: with --photo, --mask must be one mask file "
                          "(the edited crop mask)")
    args.mask = masks[0]
    unsupported = [flag for flag, v in (("--edit", args.edit), ("--agile", args.agile), ("--dual", args.dual),
                                        ("--save-latent", args.save_latent)) if v]
    if unsupported or args.output not in (None, "face"):
        raise ConfigError(f"--photo renders the DMN face locally; {', '.join(unsupported) or '--output'} "
                          "is not supported with it")
    if not 64 <= args.size <= 4096:
        raise ConfigError(f"--size must be in 64..4096, not {args.size}")
    if args.margin is not None and args.margin < 0:
        raise ConfigError(f"--margin must be 0 or more, not {args.margin}")
    edited = read_labels(args.mask)
    exemplar = load_exemplar(args.exemplar, args.exemplar_mask) if args.exemplar is not None else None
    settings = Settings.from_env(device=args.device)
    engine = Engine(settings, precision=args.precision, start_worker=False)
    try:
        src = open_photo(args.photo, parser_module(engine.models), size=args.size, face=args.face)
        if edited.shape != src.parsed.shape:
            raise file_error(MaskFileError, args.mask, f"is {edited.shape[1]}×{edited.shape[0]}, the aligned crop "
                                                       f"is {args.size}×{args.size} (paint on `maskstudio align` "
                                                       "+ `maskstudio parse` output of this photo)")
        res = render_edit(engine, src, edited, whole_face=args.whole_face, exemplar=exemplar,
                          method=args.blend, margin_px=args.margin)
    finally:
        engine.close()
    write_png(args.out, res.full)
    if args.save_crop is not None:
        write_png(args.save_crop, res.crop)
    changed = int((edited != src.parsed).sum())
    how = "whole face" if args.whole_face else f"{changed} changed label px, local"
    print(f"{args.out}: {res.full.shape[1]}×{res.full.shape[0]} ({how})", file=sys.stderr)
    return 0


__all__ = ["add_photo_arguments", "photo_handler", "RenderError"]
